"""`make demo`: SimCLR on Fashion-MNIST on this machine's CPU, then linear
probes at 1% and 100% of the labels against raw pixels and a randomly
initialised encoder. Prints a table and writes WORKDIR/results.json."""

import argparse
import json
import os
import time

from sslax.config_loading import load_config_file
from sslax.errors import exit_on_user_error
from sslax.eval.evaluate import labelled_subset, linear_name, write_eval
from sslax.eval.features import features
from sslax.probes.linear import linear_probe
from sslax.train.loop import train_and_evaluate
from sslax.train.metrics import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRACTIONS = (0.01, 1.0)
ROWS = (("raw_pixels", "raw pixels"), ("random_init", "random-init encoder"),
        ("simclr", "SimCLR encoder"))


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--workdir", default="runs/demo")
  parser.add_argument("--config", default=os.path.join(ROOT, "configs", "simclr.py:fashion_mnist"))
  args = parser.parse_args()
  run_dir = os.path.join(args.workdir, "simclr")
  config = load_config_file(args.config)
  config.progress_bar = True

  start = time.perf_counter()
  train_and_evaluate(config, run_dir)
  train_seconds = time.perf_counter() - start
  logged = read_metrics(run_dir)
  # The first logged interval includes compilation; leave it out of the rate.
  # (runs written before examples_per_second say images_per_second)
  rates = [r.get("examples_per_second", r.get("images_per_second")) for r in logged
           if "examples_per_second" in r or "images_per_second" in r]
  rates = rates[1:] or rates
  images_per_second = sum(rates) / len(rates)

  results = {"linear_top1": {}, "details": {}}
  for kind, _ in ROWS:
    feature_kind = "encoder" if kind == "simclr" else kind
    print(f"linear probe: {kind} features", flush=True)
    train_x, train_y, test_x, test_y, n = features(config, feature_kind, run_dir)
    results["linear_top1"][kind] = {}
    for fraction in FRACTIONS:
      subset = labelled_subset(run_dir, train_y, fraction, seed=0)
      r = linear_probe(train_x, train_y, test_x, test_y, fraction=fraction,
                       num_classes=n, seed=0, subset=subset)
      results["linear_top1"][kind][str(fraction)] = r["top1"]
      results["details"][f"{kind}_{fraction}"] = r
      write_eval(run_dir, linear_name(feature_kind, fraction), {**r, "features": feature_kind})
  results.update(train_seconds=train_seconds, images_per_second=images_per_second,
                 num_steps=config.num_steps, global_batch_size=config.global_batch_size,
                 encoder=dict(config.model), final_loss=logged[-1]["loss"])
  with open(os.path.join(args.workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)

  print()
  print(f"Fashion-MNIST linear probe, test top-1 (%)   [{config.num_steps} steps x "
        f"{config.global_batch_size} images, {train_seconds:.0f} s, "
        f"{images_per_second:.0f} images/s]")
  print(f"{'features':<22}{'1% labels':>12}{'100% labels':>14}")
  for kind, label in ROWS:
    row = results["linear_top1"][kind]
    print(f"{label:<22}{100 * row['0.01']:>12.2f}{100 * row['1.0']:>14.2f}")
  simclr = results["linear_top1"]["simclr"]
  ahead = all(simclr[str(f)] > results["linear_top1"][k][str(f)]
              for f in FRACTIONS for k in ("raw_pixels", "random_init"))
  print(f"SimCLR ahead of both baselines at both fractions: {'yes' if ahead else 'NO'}")
  print(f"results: {os.path.join(args.workdir, 'results.json')}")


if __name__ == "__main__":
  exit_on_user_error("demo", main)
