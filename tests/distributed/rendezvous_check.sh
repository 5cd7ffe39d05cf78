#!/usr/bin/env bash
# Ranks that cannot meet fail fast and say why, naming the address, the
# port, the missing ranks or the setting that differs, with exit 1:
#   - a rank whose MASTER_ADDR:MASTER_PORT has no store behind it;
#   - rank 0 on a MASTER_PORT another process holds;
#   - rank 0 of 3 with only ranks 0 and 1 started (rank 2 never joins);
#   - two ranks started with different optimizer.lr.
#   rendezvous_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir rendezvous
prepare_byte_shards
{
  tiny_gpt2_config_head
  cat <<TOML
batch_size = 2
[run]
steps = 2
eval_every = 0
[distributed]
timeout_s = 3
TOML
} >"$work/run.toml"

pids=()
cleanup() { kill -9 "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { echo $((20000 + RANDOM % 30000)); }

# rank NAME RANK WORLD PORT [--set ...]: starts a rank in the background.
rank() {
  local name=$1 rank=$2 world=$3 port=$4
  shift 4
  RANK=$rank WORLD_SIZE=$world MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$muonlab" train --config "$work/run.toml" --sample-tokens 0 --set "run.out_dir=$work/$name" "$@" \
    >"$work/$name.rank$rank.log" 2>&1 &
  pids+=($!)
}

# expect_failure NAME RANK PID PATTERN: the rank exits 1 with PATTERN.
expect_failure() {
  local name=$1 rank=$2 pid=$3 pattern=$4 status=0
  wait "$pid" || status=$?
  if ((status != 1)) || ! grep -q "muonlab: error: .*$pattern" "$work/$name.rank$rank.log"; then
    echo "FAIL ($name): rank $rank exited $status, expected 1 with '$pattern':" >&2
    cat "$work/$name.rank$rank.log" >&2
    exit 1
  fi
  echo "$name: $(grep -o 'muonlab: error: .*' "$work/$name.rank$rank.log" | cut -c1-200)"
}

port=$(free_port)
rank nothing-listening 1 2 "$port"
expect_failure nothing-listening 1 "${pids[-1]}" "cannot reach rank 0's rendezvous store at 127.0.0.1:$port (MASTER_ADDR:MASTER_PORT)"

port=$(free_port)
/usr/bin/python3 -c "
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', $port)); s.listen(); print('listening', flush=True); time.sleep(60)" >"$work/holder.log" &
pids+=($!)
holder=$!
for _ in $(seq 100); do grep -q listening "$work/holder.log" && break; sleep 0.05; done
rank port-in-use 0 2 "$port"
expect_failure port-in-use 0 "${pids[-1]}" "cannot serve the rendezvous store on port $port (MASTER_PORT).*choose another MASTER_PORT"
kill "$holder"

port=$(free_port)
rank missing-rank 0 3 "$port"
first=${pids[-1]}
rank missing-rank 1 3 "$port"
expect_failure missing-rank 0 "$first" "rank(s) 2 did not join within 3 s at 127.0.0.1:$port"
# Rank 1 times out itself or sees rank 0's store close first; on a loaded
# machine it may start only after rank 0 gave up, and find no store at all.
expect_failure missing-rank 1 "${pids[-1]}" \
  "rank(s) 2 did not join\\|rendezvous store at 127.0.0.1:$port closed\\|cannot reach rank 0's rendezvous store"

# These two must meet before they differ: a timeout that a loaded machine's
# start-up cannot outlast (they fail at once when they meet).
port=$(free_port)
rank different-config 0 2 "$port" --set distributed.timeout_s=60
first=${pids[-1]}
rank different-config 1 2 "$port" --set distributed.timeout_s=60 --set optimizer.lr=0.5
expect_failure different-config 0 "$first" "rank 1 was started with a different configuration: optimizer.lr = 0.001 on rank 0, 0.5 on rank 1"
expect_failure different-config 1 "${pids[-1]}" "rank 0 was started with a different configuration: optimizer.lr = 0.5 on rank 1, 0.001 on rank 0"
echo "PASS: an unreachable store, a port in use, a rank that never joined and a differing setting were each named"
