"""Evaluation of frozen or fine-tuned encoders."""

import json
import os

from sslax.eval import features as features_lib
from sslax.eval.knn import knn_accuracy
from sslax.eval.linear import check_fraction, linear_probe
from sslax.train import checkpoint


def fraction_name(fraction: float) -> str:
  return str(float(fraction))


def write_eval(workdir: str, name: str, result: dict):
  """Writes ``WORKDIR/eval/<name>.json``."""
  os.makedirs(os.path.join(workdir, "eval"), exist_ok=True)
  with open(os.path.join(workdir, "eval", f"{name}.json"), "w") as f:
    json.dump(result, f, indent=2)


def linear_name(kind: str, fraction: float) -> str:
  prefix = "linear" if kind == "encoder" else f"linear_{kind}"
  return f"{prefix}_{fraction_name(fraction)}"


def evaluate_linear(workdir: str, fraction: float = 1.0, kind: str = "encoder",
                    seed: int = 0):
  """Linear probe of a workdir's features; writes and returns
  ``WORKDIR/eval/linear_<fraction>.json`` (``linear_<kind>_<fraction>.json`` for
  the baselines ``raw_pixels`` and ``random_init``)."""
  fraction = check_fraction(fraction)
  config = checkpoint.load_config(workdir)
  train_x, train_y, test_x, test_y, num_classes = features_lib.features(
      config, kind, workdir)
  result = linear_probe(train_x, train_y, test_x, test_y, fraction=fraction,
                        seed=seed, num_classes=num_classes)
  result.update(features=kind, feature_dim=int(train_x.shape[1]))
  write_eval(workdir, linear_name(kind, fraction), result)
  return result


def evaluate_knn(workdir: str, ks=(20, 200), temperature: float = 0.07,
                 kind: str = "encoder"):
  """Weighted kNN top-1 (Wu et al. 2018) for each k; writes and returns
  ``WORKDIR/eval/knn.json`` (``knn_<kind>.json`` for the baselines)."""
  config = checkpoint.load_config(workdir)
  train_x, train_y, test_x, test_y, num_classes = features_lib.features(
      config, kind, workdir)
  result = {f"top1_k{k}": knn_accuracy(train_x, train_y, test_x, test_y, k=k,
                                       num_classes=num_classes,
                                       temperature=temperature)
            for k in ks}
  result.update(temperature=temperature, features=kind)
  write_eval(workdir, "knn" if kind == "encoder" else f"knn_{kind}", result)
  return result
