#!/usr/bin/env bash
# Two "hosts" on one machine: rank 0 and rank 1 in separate network
# namespaces joined by a veth pair that this script makes (inside a user
# namespace, so no root is needed where the kernel allows unprivileged user
# namespaces). Rendezvous (TCPStore) and Gloo's collectives cross a real
# network interface, not loopback; the run must end with the losses of one
# process on the same global batch, and the gradients must have gone
# through the veth (its byte counter). Exits 77 (skipped) with the reason
# where the machine does not allow the namespaces.
#   two_hosts_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$(realpath "$1")
src=$(realpath "$2")
source "$src/tests/check_lib.sh"

if ! command -v ip >/dev/null || ! command -v unshare >/dev/null || ! command -v nsenter >/dev/null; then
  echo "SKIP: needs ip (iproute2), unshare and nsenter (util-linux)"
  exit 77
fi
if ! why=$(unshare --user --map-root-user --net sh -c 'ip link add v0 type veth peer name v1' 2>&1); then
  echo "SKIP: this machine does not allow a network namespace with a veth pair: $why"
  exit 77
fi

make_scratch_dir two-hosts
prepare_byte_shards
{
  tiny_gpt2_config_head
  cat <<TOML
[run]
steps = 6
eval_every = 0
log_every = 1
one_step_every = 0
[distributed]
timeout_s = 30
TOML
} >"$work/run.toml"
train() { "$muonlab" train --config "$work/run.toml" --sample-tokens 0 "$@"; }

train --set data.batch_size=4 --set "run.out_dir=$work/one" >"$work/one.log"

# Inside a new user + network namespace ("host A"): host B is a second
# network namespace held by a sleeping process; the veth pair joins them.
export muonlab src work
unshare --user --map-root-user --net bash -euo pipefail -c '
  unshare --net sleep 600 &
  host_b=$!
  trap "kill $host_b" EXIT
  sleep 0.2
  ip link set lo up
  ip link add veth_a type veth peer name veth_b netns $host_b
  ip addr add 10.77.0.1/24 dev veth_a
  ip link set veth_a up
  nsenter -t $host_b -n sh -c "ip link set lo up; ip addr add 10.77.0.2/24 dev veth_b; ip link set veth_b up"
  # /proc/net/dev is this namespace'"'"'s (sysfs still shows the outer one).
  tx_bytes() { sed "s/:/ /" /proc/net/dev | awk "\$1 == \"veth_a\" { print \$10 }"; }
  before=$(tx_bytes)
  rank() {
    env RANK=$1 WORLD_SIZE=2 MASTER_ADDR=10.77.0.1 MASTER_PORT=29577 GLOO_SOCKET_IFNAME=$2 \
      "$muonlab" train --config "$work/run.toml" --sample-tokens 0 --set data.batch_size=2 --set "run.out_dir=$work/two"
  }
  rank 0 veth_a >"$work/two.log" 2>&1 &
  rank0=$!
  nsenter -t $host_b -n bash -c "$(declare -f rank); rank 1 veth_b" >"$work/rank1.log" 2>&1
  wait $rank0
  echo "veth_a sent $(( $(tx_bytes) - before )) bytes" >"$work/veth.txt"
' || { cat "$work/two.log" "$work/rank1.log" >&2; exit 1; }

one=$(grep -o 'final train loss [0-9.]*' "$work/one.log")
two=$(grep -o 'final train loss [0-9.]*' "$work/two.log")
# Equal up to fp32 rounding: two ranks average their half-batch gradients,
# one process takes the mean over the whole batch, so the sums run in
# another order and the losses part around the fifth significant digit
# (by about 5e-5 here, on either side of a 4-decimal rounding).
if ! awk -v a="${one##* }" -v b="${two##* }" 'BEGIN { d = a - b; exit !(d <= 2e-4 && d >= -2e-4) }'; then
  echo "FAIL: one process: $one; two hosts: $two" >&2
  exit 1
fi
sent=$(grep -o '[0-9]* bytes' "$work/veth.txt" | cut -d" " -f1)
# tiny-gpt2's gradients are about 140 kB; 6 steps must move at least that much.
if ((sent < 140000)); then
  echo "FAIL: only $sent bytes crossed veth_a" >&2
  exit 1
fi
echo "PASS: two hosts over a veth pair (10.77.0.1 <-> 10.77.0.2, $sent bytes sent by host A): $two, as one process"
