#!/bin/bash
# CPC's two downstream tables on this machine.
#   Images: CPC on Fashion-MNIST (1000 steps x 256, the budget of every method's
#   fashion_mnist config), linear probe at 1% and 100% of the labels, against the
#   same encoder at random initialisation, and weighted kNN; compare with
#   SimCLR's row from `make demo` or launch/benchmark.py (same budget).
#   Speech: CPC on the espeak-ng speaker corpus, linear speaker classification
#   from CPC features, MFCC statistics and the random-init encoder, and weighted
#   kNN of CPC features and MFCC statistics.
# Usage: launch/cpc.sh [RUNS_DIR]   (default runs/cpc)
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0
fi
cd "$(dirname "$0")/.."
RUNS="${1:-runs/cpc}"
SSLAX="${SSLAX:-.venv/bin/sslax}"  # a command, split on spaces
$SSLAX train --config configs/cpc_image.py --workdir "$RUNS/image"
for fraction in 0.01 1.0; do
  for features in encoder random_init; do
    $SSLAX eval linear --workdir "$RUNS/image" --label-fraction "$fraction" --features "$features"
  done
done
$SSLAX eval knn --workdir "$RUNS/image"
$SSLAX data make-speech --out data/espeak_speakers
$SSLAX train --config configs/cpc_speech.py --workdir "$RUNS/speech"
for features in encoder mfcc random_init; do
  $SSLAX eval linear --workdir "$RUNS/speech" --features "$features"
done
for features in encoder mfcc; do
  $SSLAX eval knn --workdir "$RUNS/speech" --features "$features"
done
$SSLAX report "$RUNS/image" "$RUNS/speech"
