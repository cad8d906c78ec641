"""Training throughput of configs on this machine: compiles each config's
train step, then times ``--steps`` steps on real batches (after ``--warmup``
steps) and prints images/s (examples, not views) and the step time.

  python launch/throughput.py configs/simclr.py:fashion_mnist configs/byol.py:fashion_mnist
"""

import argparse
import time

import jax

from sslax.config_loading import load_config_file
from sslax.data import pipeline
from sslax.sharding import data_sharding
from sslax.train.loop import compile_step, init_state, setup


def measure(spec, steps, warmup):
  config = load_config_file(spec)
  run = setup(config)
  state = init_state(run)
  train_step = compile_step(run, state)
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
  return config.global_batch_size * steps / seconds, seconds / steps


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("configs", nargs="+")
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--warmup", type=int, default=3)
  args = parser.parse_args()
  print(f"{jax.device_count()} x {jax.devices()[0].device_kind}")
  print("| config | images/s | ms/step |")
  print("|---|---|---|")
  for spec in args.configs:
    rate, step_time = measure(spec, args.steps, args.warmup)
    print(f"| {spec} | {rate:.0f} | {1000 * step_time:.0f} |", flush=True)


if __name__ == "__main__":
  main()
