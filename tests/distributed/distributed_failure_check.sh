#!/usr/bin/env bash
# A rank that dies or hangs ends the others: two ranks train (started by
# hand, as torchrun or a cluster scheduler would, without muonlab launch's
# watching), one is killed (SIGKILL) or frozen (SIGSTOP) mid-run, and the
# survivor must exit non-zero within distributed.timeout_s, naming the rank
# that stopped answering. Nothing hangs.
#   distributed_failure_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir dist-failure
prepare_byte_shards
timeout_s=6
{
  tiny_gpt2_config_head
  cat <<TOML
batch_size = 2
[run]
steps = 1000000
eval_every = 0
log_every = 1
one_step_every = 0
[distributed]
timeout_s = $timeout_s
TOML
} >"$work/run.toml"

pids=()
cleanup() { kill -9 "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# check CASE SIGNAL: rank 1 gets SIGNAL once rank 0 has logged 3 steps.
check() {
  local name=$1 signal=$2 port=$((20000 + RANDOM % 30000))
  for rank in 0 1; do
    RANK=$rank WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$muonlab" train --config "$work/run.toml" --sample-tokens 0 --set "run.out_dir=$work/$name" \
      >"$work/$name.rank$rank.log" 2>&1 &
    pids[rank]=$!
  done
  for _ in $(seq 600); do
    [[ -f $work/$name/metrics.jsonl ]] && (($(wc -l <"$work/$name/metrics.jsonl") >= 3)) && break
    sleep 0.05
  done
  kill "-$signal" "${pids[1]}"
  local start=$SECONDS status=0
  wait "${pids[0]}" || status=$?
  local took=$((SECONDS - start))
  kill -9 "${pids[1]}" 2>/dev/null || true
  if ((status == 0)); then
    echo "FAIL ($name): rank 0 exited 0 after rank 1 got SIG$signal" >&2
    exit 1
  fi
  if ((took > timeout_s + 10)); then
    echo "FAIL ($name): rank 0 took ${took}s to give up (timeout ${timeout_s}s)" >&2
    exit 1
  fi
  if ! grep -q "rank 0 of 2: .* failed: .*Not answering: rank 1 (no heartbeat" "$work/$name.rank0.log"; then
    echo "FAIL ($name): rank 0's message does not name rank 1:" >&2
    cat "$work/$name.rank0.log" >&2
    exit 1
  fi
  echo "$name: rank 0 exited $status after ${took}s: $(grep -o 'rank 0 of 2: .*' "$work/$name.rank0.log" | cut -c1-160)"
}

check killed KILL
check frozen STOP
echo "PASS: a killed and a frozen rank each ended the other within the ${timeout_s}s timeout, named"
