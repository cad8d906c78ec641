#!/bin/bash
# Runs one training as N processes on this machine (a rehearsal of a
# multi-host run): each process sees DEVICES simulated CPU devices, they meet
# at 127.0.0.1:PORT and exchange collectives over gloo.
# Usage: launch/cpu_processes.sh CONFIG WORKDIR [N=2] [DEVICES=4] [PORT=12355]
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0
fi
if [ $# -lt 2 ]; then
  echo "usage: launch/cpu_processes.sh CONFIG WORKDIR [N=2] [DEVICES=4] [PORT=12355]" >&2; exit 2
fi
cd "$(dirname "$0")/.."
CONFIG="$1"; WORKDIR="$2"; N="${3:-2}"; DEVICES="${4:-4}"; PORT="${5:-12355}"
pids=()
for ((i = 0; i < N; i++)); do
  # (gloo's "[Gloo] Rank N is connected to ..." lines, one per peer, dropped)
  XLA_FLAGS="--xla_force_host_platform_device_count=$DEVICES" JAX_PLATFORMS=cpu \
    .venv/bin/sslax train --config "$CONFIG" --workdir "$WORKDIR" \
    --coordinator "127.0.0.1:$PORT" --num-processes "$N" --process-id "$i" \
    > >(grep --line-buffered -v '^\[Gloo\]') 2> >(grep --line-buffered -v '^\[Gloo\]' >&2) &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
