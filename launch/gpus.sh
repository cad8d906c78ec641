#!/bin/bash
# Trains on every NVIDIA GPU of this machine: one process drives all of them
# (JAX's single-host model); each GPU computes 1/N of every global batch and
# the global-batch losses (SimCLR's negatives, Barlow Twins' statistics)
# gather across them. CUDA_VISIBLE_DEVICES picks a subset.
#
# Set-up once (CUDA 12 wheels of the tested JAX release, no system CUDA needed):
#   make install && .venv/bin/pip install -c constraints.txt -e '.[cuda12]'
# Usage: launch/gpus.sh CONFIG WORKDIR [--config.key=value ...]
# Example: launch/gpus.sh configs/simclr.py:cifar10 runs/simclr-c10 \
#            --config.model.encoder=resnet18 --config.compute_dtype=bfloat16
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0
fi
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: launch/gpus.sh CONFIG WORKDIR [--config.key=value ...]" >&2; exit 2
fi
CONFIG="$1"; WORKDIR="$2"; shift 2
GPUS="$(.venv/bin/python -c 'import jax; print(len(jax.devices("gpu")))' 2>/dev/null || echo 0)"
if [ "$GPUS" = 0 ]; then
  echo "error: JAX sees no GPU; install the CUDA build with" \
       ".venv/bin/pip install -c constraints.txt -e '.[cuda12]' and check nvidia-smi" >&2
  exit 2
fi
echo "training on $GPUS GPU(s): $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | sort | uniq -c | xargs)" >&2
# Let XLA overlap the gradient all-reduce with the backward pass.
export XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_enable_latency_hiding_scheduler=true"
exec .venv/bin/sslax train --config "$CONFIG" --workdir "$WORKDIR" "$@"
