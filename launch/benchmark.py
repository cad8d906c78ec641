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


def run_measured(cmd, log=None):
  """Runs ``cmd`` (its output appended to ``log`` where given); returns
  (wall seconds, peak resident memory in GB)."""
  start = time.perf_counter()
  with open(log, "a") if log else open(os.devnull) as out:
    proc = subprocess.Popen(cmd, cwd=ROOT, **(dict(stdout=out, stderr=subprocess.STDOUT)
                                               if log else {}))
    _, status, usage = os.wait4(proc.pid, 0)
  if os.waitstatus_to_exitcode(status) != 0:
    sys.exit(f"{os.path.basename(sys.argv[0])}: {' '.join(cmd)} failed"
             + (f"; see {log}" if log else ""))
  return time.perf_counter() - start, usage.ru_maxrss / 1e6  # ru_maxrss is in KiB


def examples_per_second(workdir):
  """The mean logged training rate, leaving out the first interval
  (compilation)."""
  rates = []
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      record = json.loads(line)
      if "examples_per_second" in record or "images_per_second" in record:
        # (runs written before examples_per_second say images_per_second)
        rates.append(record.get("examples_per_second", record.get("images_per_second")))
  rates = rates[1:] or rates
  return sum(rates) / len(rates) if rates else None


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--run", action="append", required=True, metavar="NAME=CONFIG")
  parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE")
  parser.add_argument("--fractions", nargs="+", default=["0.01", "1.0"],
                      help="label fractions of the linear probe (default 0.01 1.0)")
  args = parser.parse_args()
  results = {}
  for spec in args.run:
    name, _, config = spec.partition("=")
    workdir = os.path.join(args.workdir, name)
    overrides = [f"--config.{o}" for o in args.override] + ["--config.progress_bar=False"]
    train_s, peak_gb = run_measured(sslax_command() + [
        "train", "--config", config, "--workdir", workdir] + overrides)
    for fraction in args.fractions:
      run_measured(sslax_command() + ["eval", "linear", "--workdir", workdir,
                                      "--label-fraction", fraction])
    run_measured(sslax_command() + ["eval", "knn", "--workdir", workdir])

    def load(name_):
      with open(os.path.join(workdir, "eval", name_)) as f:
        return json.load(f)

    results[name] = {
        "config": config, "overrides": args.override,
        **{f"linear_top1_{float(f)}": load(f"linear_{float(f)}.json")["top1"]
           for f in args.fractions},
        "knn_top1_k20": load("knn.json")["top1_k20"],
        "knn_top1_k200": load("knn.json")["top1_k200"],
        "examples_per_second": examples_per_second(workdir),
        "train_seconds": train_s, "train_peak_memory_gb": peak_gb,
    }
    with open(os.path.join(args.workdir, "benchmark.json"), "w") as f:
      json.dump(results, f, indent=2)
  linear = "".join(f"linear {float(f):.0%} | " for f in args.fractions)
  print(f"| method | {linear}kNN k=20 | kNN k=200 | examples/s | train s | peak memory (GB) |")
  print("|---|" + "---|" * (len(args.fractions) + 5))
  for name, r in results.items():
    linear = "".join(f"{100 * r[f'linear_top1_{float(f)}']:.2f} | " for f in args.fractions)
    print(f"| {name} | {linear}{100 * r['knn_top1_k20']:.2f} | {100 * r['knn_top1_k200']:.2f} "
          f"| {r['examples_per_second']:.0f} | {r['train_seconds']:.0f} "
          f"| {r['train_peak_memory_gb']:.2f} |")


if __name__ == "__main__":
  main()
