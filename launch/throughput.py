"""Training throughput of configs on this machine: compiles each config's
train step, then times ``--steps`` steps on real batches (after ``--warmup``
steps) and prints images/s (examples, not views), the step time, the step's
FLOPs as XLA's cost analysis counts them (model and augmentation, forward and
backward) and the model FLOPs utilisation (MFU) against the devices' peak.

  python launch/throughput.py configs/simclr.py:fashion_mnist configs/byol.py:fashion_mnist
  python launch/throughput.py configs/simclr.py:imagenet --config.data.name=synthetic

  python launch/throughput.py configs/simclr.py:fashion_mnist --profile --trace /tmp/trace

The peak is known for common accelerators (``PEAK_TFLOPS``, dense bf16 and
fp32 per device); elsewhere (CPUs) give ``--peak-tflops`` or MFU is not shown.
``--profile`` also times the method's loss alone, the loss with its
gradients (each jitted on its own) and the compiled step, each the median of
``--steps`` calls on the first batch already on the devices: what the
optimizer, the side updates and the online probe add is the step less the
gradients, and the first table's ms/step, on the pipeline's batches, also
holds any wait for them. ``--trace DIR`` writes a ``jax.profiler`` trace of
the timed steps (TensorBoard's profile plugin or Perfetto reads it), which
slows them (the first table is then of traced steps), and prints its
costliest events: the compiled step's operations (XLA's fusion names) and
the input pipeline's, in milliseconds a step, Python frames and the
runtime's own wrappers (PjRt, the thunk executor) left out; events on
different threads overlap, so they do not add up to the step.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import statistics
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


def median_ms(fn, args, calls):
  """Median milliseconds of ``calls`` calls of ``fn(*args)`` after one
  (compiling) call."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(calls):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1000 * statistics.median(times)


def loss_parts(run, state, batch, calls):
  """(ms of the method's loss, ms of the loss and its gradients) on
  ``batch``, each jitted on its own, under the run's mesh."""
  method = run.method
  key = jax.random.fold_in(state.rng, 0)

  def loss(params, model_state, method_state, batch, key):
    return method.loss_fn(params, model_state, method_state, batch, key)[0]

  args = (state.params, state.model_state, state.method_state, batch, key)
  with jax.set_mesh(run.mesh):
    return (median_ms(jax.jit(loss), args, calls),
            median_ms(jax.jit(jax.value_and_grad(loss)), args, calls))


def step_ms(train_step, state, batch, calls):
  """(median ms of ``calls`` steps on ``batch``, the state after them): the
  step donates its state, so each call takes the last one's."""
  times = []
  for _ in range(calls + 1):  # the first is not timed
    start = time.perf_counter()
    state, _ = train_step(state, batch)
    jax.block_until_ready(state)
    times.append(time.perf_counter() - start)
  return 1000 * statistics.median(times[1:]), state


RUNTIME_WRAPPERS = ("$", "ThunkExecutor", "PjitFunction", "CommonPjRt", "PjRt")


def costliest_events(trace_dir, steps, count=12):
  """[(name, milliseconds a step, calls a step)] of the ``count`` events of
  the trace in ``trace_dir`` with the largest total duration, Python frames
  (``$``-prefixed) and the runtime's wrappers (``RUNTIME_WRAPPERS``) left
  out; [] when it holds no trace."""
  files = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)
  if not files:
    return []
  with gzip.open(max(files, key=os.path.getmtime)) as f:
    events = json.load(f).get("traceEvents", [])
  total, calls = collections.Counter(), collections.Counter()
  for e in events:
    name = e.get("name", "")
    if e.get("ph") == "X" and not name.startswith(RUNTIME_WRAPPERS):
      total[name] += e.get("dur", 0)
      calls[name] += 1
  return [(name, us / 1000 / steps, calls[name] / steps)
          for name, us in total.most_common(count)]


def measure(spec, steps, warmup, overrides=(), profile=False, trace=None):
  """(examples/s, seconds a step, FLOPs a step, compute dtype, loss parts
  or None) of config ``spec``."""
  config = apply_overrides(load_config_file(spec), overrides)
  run = setup(config)
  state = init_state(run)
  first = global_batch(run, 0) if profile else None
  parts = loss_parts(run, state, first, steps) if profile else None
  train_step, flops = compile_with_flops(run, state)
  if profile:
    whole, state = step_ms(train_step, state, first, steps)
    parts = (*parts, whole)
  batches = pipeline.BatchIterator(run.source, seed=config.seed,
                                   global_batch=config.global_batch_size,
                                   sharding=data_sharding(run.mesh),
                                   workers=config.data.get("workers", 0))
  try:
    start = None
    for step, batch in batches:
      if step == warmup:
        jax.block_until_ready(state)
        if trace:
          jax.profiler.start_trace(trace)
        start = time.perf_counter()
      if step == warmup + steps:
        break
      state, _ = train_step(state, batch)
    jax.block_until_ready(state)
    seconds = time.perf_counter() - start
    if trace:
      jax.profiler.stop_trace()
  finally:
    batches.close()
  return (config.global_batch_size * steps / seconds, seconds / steps, flops,
          config.compute_dtype, parts)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("configs", nargs="+")
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--peak-tflops", type=float,
                      help="peak TFLOP/s per device, for MFU where the device is not known")
  parser.add_argument("--profile", action="store_true",
                      help="also time the loss alone and the loss with its gradients")
  parser.add_argument("--trace", help="write a jax.profiler trace of the timed steps here")
  args, rest = parser.parse_known_args()
  overrides = [a[len("--config."):] for a in rest if a.startswith("--config.")]
  if len(overrides) != len(rest):
    parser.error(f"unknown arguments: {[a for a in rest if not a.startswith('--config.')]}")
  kind = jax.devices()[0].device_kind
  print(f"{jax.device_count()} x {kind}")
  print("| config | dtype | images/s | ms/step | GFLOP/step | TFLOP/s (all devices) | MFU |")
  print("|---|---|---|---|---|---|---|")
  profiles = []
  for i, spec in enumerate(args.configs):
    trace = f"{args.trace}/{i}" if args.trace else None
    rate, step_time, flops, dtype, parts = measure(spec, args.steps, args.warmup, overrides,
                                                   args.profile, trace)
    achieved = flops / step_time / 1e12  # per device
    peak = args.peak_tflops or peak_tflops(kind, dtype)
    mfu = f"{100 * achieved / peak:.1f}%" if peak else "n/a"
    print(f"| {spec} | {dtype} | {rate:.0f} | {1000 * step_time:.0f} "
          f"| {flops * jax.device_count() / 1e9:.1f} | {achieved * jax.device_count():.2f} "
          f"| {mfu} |", flush=True)
    if parts:
      profiles.append((spec, *parts))
    if trace:
      events = costliest_events(trace, args.steps)
      print(f"\n{spec}: the trace's costliest events ({trace})")
      print("| event | ms a step | calls a step |\n|---|---|---|" if events
            else f"no trace file (*.trace.json.gz) was written under {trace}")
      for name, ms, n in events:
        print(f"| {name} | {ms:.2f} | {n:g} |")
      print()
  if profiles:
    print("\n| config | loss ms | loss and gradients ms | step ms |")
    print("|---|---|---|---|")
    for spec, forward, gradients, whole in profiles:
      print(f"| {spec} | {forward:.1f} | {gradients:.1f} | {whole:.1f} |")


if __name__ == "__main__":
  main()
