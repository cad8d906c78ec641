"""Methods side by side under one budget: trains each config in its own
process (so its peak memory is its own), then linear probes at 1% and 100% of
the labels and weighted kNN; prints a Markdown table and writes
WORKDIR/benchmark.json.

  python launch/benchmark.py --workdir runs/bench \
      --run simclr=configs/simclr.py:fashion_mnist \
      --run moco_v2=configs/moco_v2.py:fashion_mnist [--override global_batch_size=64 ...]

``--override KEY=VALUE`` applies ``--config.KEY=VALUE`` to every run.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sslax_command():
  return [sys.executable, "-m", "sslax"]


def run_measured(cmd):
  """Runs ``cmd``; returns (wall seconds, peak resident memory in GB)."""
  start = time.perf_counter()
  proc = subprocess.Popen(cmd, cwd=ROOT)
  _, status, usage = os.wait4(proc.pid, 0)
  if os.waitstatus_to_exitcode(status) != 0:
    sys.exit(f"benchmark: {' '.join(cmd)} failed")
  return time.perf_counter() - start, usage.ru_maxrss / 1e6  # ru_maxrss is in KiB


def images_per_second(workdir):
  rates = []
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      record = json.loads(line)
      if "examples_per_second" in record or "images_per_second" in record:
        # (runs written before examples_per_second say images_per_second)
        rates.append(record.get("examples_per_second", record.get("images_per_second")))
  rates = rates[1:] or rates  # the first interval includes compilation
  return sum(rates) / len(rates)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--run", action="append", required=True, metavar="NAME=CONFIG")
  parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE")
  args = parser.parse_args()
  results = {}
  for spec in args.run:
    name, _, config = spec.partition("=")
    workdir = os.path.join(args.workdir, name)
    overrides = [f"--config.{o}" for o in args.override] + ["--config.progress_bar=False"]
    train_s, peak_gb = run_measured(sslax_command() + [
        "train", "--config", config, "--workdir", workdir] + overrides)
    for fraction in ("0.01", "1.0"):
      run_measured(sslax_command() + ["eval", "linear", "--workdir", workdir,
                                      "--label-fraction", fraction])
    run_measured(sslax_command() + ["eval", "knn", "--workdir", workdir])

    def load(name_):
      with open(os.path.join(workdir, "eval", name_)) as f:
        return json.load(f)

    results[name] = {
        "config": config, "overrides": args.override,
        "linear_top1_0.01": load("linear_0.01.json")["top1"],
        "linear_top1_1.0": load("linear_1.0.json")["top1"],
        "knn_top1_k20": load("knn.json")["top1_k20"],
        "knn_top1_k200": load("knn.json")["top1_k200"],
        "images_per_second": images_per_second(workdir),
        "train_seconds": train_s, "train_peak_memory_gb": peak_gb,
    }
    with open(os.path.join(args.workdir, "benchmark.json"), "w") as f:
      json.dump(results, f, indent=2)
  print("| method | linear 1% | linear 100% | kNN k=20 | kNN k=200 | images/s | "
        "train s | peak memory (GB) |")
  print("|---|---|---|---|---|---|---|---|")
  for name, r in results.items():
    print(f"| {name} | {100 * r['linear_top1_0.01']:.2f} | {100 * r['linear_top1_1.0']:.2f} "
          f"| {100 * r['knn_top1_k20']:.2f} | {100 * r['knn_top1_k200']:.2f} "
          f"| {r['images_per_second']:.0f} | {r['train_seconds']:.0f} "
          f"| {r['train_peak_memory_gb']:.2f} |")


if __name__ == "__main__":
  main()
