"""Training throughput of configs on this machine: compiles each config's
train step, then times ``--steps`` steps on real batches (after ``--warmup``
steps) and prints images/s (examples, not views), the step time, the step's
FLOPs as XLA's cost analysis counts them (model and augmentation, forward and
backward) and the model FLOPs utilisation (MFU) against the devices' peak.

  python launch/throughput.py configs/simclr.py:fashion_mnist configs/byol.py:fashion_mnist
  python launch/throughput.py configs/simclr.py:imagenet --config.data.name=synthetic

The peak is known for common accelerators (``PEAK_TFLOPS``, dense bf16 and
fp32 per device); elsewhere (CPUs) give ``--peak-tflops`` or MFU is not shown.
"""

import argparse
import time

import jax

from sslax.config_loading import apply_overrides, load_config_file
from sslax.data import pipeline
from sslax.sharding import data_sharding
from sslax.train.run import global_batch, init_state, setup
from sslax.train.step import compile_step

# Dense peak TFLOP/s per device: (bfloat16, float32), from the vendors' data
# sheets (NVIDIA: tensor cores without sparsity, float32 as TF32).
PEAK_TFLOPS = {"H100": (989.0, 494.0), "H200": (989.0, 494.0), "A100": (312.0, 156.0),
               "L4": (121.0, 60.0), "TPU v4": (275.0, 275.0), "TPU v5 lite": (197.0, 197.0),
               "TPU v5e": (197.0, 197.0), "TPU v5p": (459.0, 459.0),
               "TPU v6 lite": (918.0, 918.0), "TPU v6e": (918.0, 918.0)}


def peak_tflops(device_kind: str, dtype: str):
  """The per-device peak for ``device_kind`` (e.g. "NVIDIA H100 80GB HBM3"), or None."""
  for name, (bf16, fp32) in PEAK_TFLOPS.items():
    if name.lower() in device_kind.lower():
      return bf16 if dtype == "bfloat16" else fp32
  return None


def compile_with_flops(run, state):
  """The run's train step compiled ahead of time, and its FLOPs on one
  device from XLA's cost analysis of that (partitioned) executable: the
  global batch's FLOPs / device count."""
  jitted = compile_step(run, state).jitted
  with jax.set_mesh(run.mesh):
    compiled = jitted.lower(state, global_batch(run, 0)).compile()
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  flops = float(analysis.get("flops", 0.0)) if analysis else 0.0

  def train_step(state, batch):
    with jax.set_mesh(run.mesh):
      return compiled(state, batch)

  return train_step, flops


def measure(spec, steps, warmup, overrides=()):
  config = apply_overrides(load_config_file(spec), overrides)
  run = setup(config)
  state = init_state(run)
  train_step, flops = compile_with_flops(run, state)
  batches = pipeline.BatchIterator(run.source, seed=config.seed,
                                   global_batch=config.global_batch_size,
                                   sharding=data_sharding(run.mesh),
                                   workers=config.data.get("workers", 0))
  try:
    start = None
    for step, batch in batches:
      if step == warmup:
        jax.block_until_ready(state)
        start = time.perf_counter()
      if step == warmup + steps:
        break
      state, _ = train_step(state, batch)
    jax.block_until_ready(state)
    seconds = time.perf_counter() - start
  finally:
    batches.close()
  return config.global_batch_size * steps / seconds, seconds / steps, flops, config.compute_dtype


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("configs", nargs="+")
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--peak-tflops", type=float,
                      help="peak TFLOP/s per device, for MFU where the device is not known")
  args, rest = parser.parse_known_args()
  overrides = [a[len("--config."):] for a in rest if a.startswith("--config.")]
  if len(overrides) != len(rest):
    parser.error(f"unknown arguments: {[a for a in rest if not a.startswith('--config.')]}")
  kind = jax.devices()[0].device_kind
  print(f"{jax.device_count()} x {kind}")
  print("| config | dtype | images/s | ms/step | GFLOP/step | TFLOP/s (all devices) | MFU |")
  print("|---|---|---|---|---|---|---|")
  for spec in args.configs:
    rate, step_time, flops, dtype = measure(spec, args.steps, args.warmup, overrides)
    achieved = flops / step_time / 1e12  # per device
    peak = args.peak_tflops or peak_tflops(kind, dtype)
    mfu = f"{100 * achieved / peak:.1f}%" if peak else "n/a"
    print(f"| {spec} | {dtype} | {rate:.0f} | {1000 * step_time:.0f} "
          f"| {flops * jax.device_count() / 1e9:.1f} | {achieved * jax.device_count():.2f} "
          f"| {mfu} |", flush=True)


if __name__ == "__main__":
  main()
