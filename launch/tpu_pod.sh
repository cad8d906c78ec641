#!/bin/bash
# Starts a run on every worker of a Cloud TPU VM pod slice. Each worker reads
# its own shard of every global batch; jax.distributed.initialize() finds the
# other workers by itself. TFDS data must already be prepared in DATA_DIR
# (a gs:// bucket all workers can read), e.g. with
#   tfds build imagenet2012 --data_dir gs://BUCKET/tfds --file_format array_record
#
# Usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR DATA_DIR [--config.key=value ...]
# Example: launch/tpu_pod.sh my-v4-64 us-central2-b configs/simclr.py:imagenet \
#            gs://BUCKET/runs/simclr gs://BUCKET/tfds
set -euo pipefail
TPU="$1"; ZONE="$2"; CONFIG="$3"; WORKDIR="$4"; DATA_DIR="$5"; shift 5
REPO="${REPO:?set REPO to the git URL of your sslax checkout}"
COMMIT="${COMMIT:-$(git rev-parse HEAD)}"  # every worker runs the same commit
EXTRA="$(printf ' %q' "$@")"
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command "
  set -e
  [ -d sslax ] || git clone $REPO sslax
  cd sslax && git fetch -q origin && git checkout -q $COMMIT
  python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e . 'jax[tpu]'
  .venv/bin/sslax train --distributed --config $CONFIG --workdir $WORKDIR \
      --config.data.data_dir=$DATA_DIR $EXTRA
"
