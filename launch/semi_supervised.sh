#!/bin/bash
# The SimCLR Table 7 layout for a trained workdir: fine-tuning from the trained
# encoder against supervised training from scratch (same labelled subset, same
# steps) at 1%, 10% and 100% of the labels, then the table of every eval JSON.
# Usage: launch/semi_supervised.sh WORKDIR [EPOCHS_AT_100%]
# EPOCHS_AT_100% (default: config.finetune.epochs) shortens the 100% runs.
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0
fi
if [ $# -lt 1 ]; then
  echo "usage: launch/semi_supervised.sh WORKDIR [EPOCHS_AT_100%]" >&2; exit 2
fi
cd "$(dirname "$0")/.."
WORKDIR="$1"
EPOCHS_FULL="${2:-}"
SSLAX="${SSLAX:-.venv/bin/sslax}"  # a command, split on spaces
for fraction in 0.01 0.1 1.0; do
  extra=()
  if [[ "$fraction" == "1.0" && -n "$EPOCHS_FULL" ]]; then extra=(--epochs "$EPOCHS_FULL"); fi
  for init in encoder random_init; do
    $SSLAX eval finetune --workdir "$WORKDIR" --label-fraction "$fraction" \
      --init "$init" "${extra[@]}"
  done
done
$SSLAX report "$WORKDIR"
