#!/bin/bash
# Smoke run on this machine's CPU or GPU: train a config's :smoke variant,
# then a linear probe at 10% labels (a table encoder, word2vec's: the word
# evaluations).
# Usage: launch/local_smoke.sh [CONFIG_FILE]   (default configs/simclr.py)
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0
fi
cd "$(dirname "$0")/.."
CONFIG="${1:-configs/simclr.py}"
WORKDIR="${WORKDIR:-runs/smoke/$(basename "$CONFIG" .py)-$(date +%Y%m%d-%H%M%S)}"
.venv/bin/sslax train --config "$CONFIG:smoke" --workdir "$WORKDIR"
if grep -q '"output": "table"' "$WORKDIR/encoder.json"; then
  .venv/bin/sslax eval words --workdir "$WORKDIR"
else
  .venv/bin/sslax eval linear --workdir "$WORKDIR" --label-fraction 0.1
fi
tail -n 2 "$WORKDIR/metrics.jsonl"
