"""Workdir-level evaluation: each function reads a trained workdir and writes
``WORKDIR/eval/<name>.json``."""

import json
import os

import ml_collections
import numpy as np

from sslax.data.sources import SOURCE_LABELLED, labelled_source, require_labels
from sslax.errors import UserError
from sslax.eval import features as features_lib
from sslax.eval import finetune as finetune_lib
from sslax.probes.knn import knn_accuracies
from sslax.probes.linear import check_fraction, linear_probe, stratified_subset
from sslax.probes.sgd import check_probe, sgd_linear_probe
from sslax.train import checkpoint, run_config


def fraction_name(fraction: float) -> str:
  return str(float(fraction))


def provenance(config, workdir: str) -> dict:
  """What a result was computed on: the evaluated data (``data.name``, and
  its ``data_dir`` where it has one) and the checkpoint's step."""
  return {"dataset": run_config.describe_data(config.data),
          "step": checkpoint.latest_step(workdir)}


def write_eval(workdir: str, name: str, result: dict):
  """Writes ``WORKDIR/eval/<name>.json``."""
  out = checkpoint.workdir_path(workdir) / "eval"
  out.mkdir(parents=True, exist_ok=True)
  (out / f"{name}.json").write_text(json.dumps(result, indent=2))


def linear_name(kind: str, fraction: float) -> str:
  prefix = "linear" if kind == "encoder" else f"linear_{kind}"
  return f"{prefix}_{fraction_name(fraction)}"


def finetune_name(kind: str, fraction: float) -> str:
  prefix = "finetune" if kind == "encoder" else f"finetune_{kind}"
  return f"{prefix}_{fraction_name(fraction)}"


def labelled_subset(workdir: str, labels: np.ndarray, fraction: float, seed: int):
  """The stratified, seed-fixed labelled subset, saved as
  ``WORKDIR/eval/labels_<fraction>_seed<seed>.json`` the first time it is used
  and read back afterwards, so every protocol on this workdir (linear probe,
  fine-tuning, the baselines) sees the same labelled examples."""
  path = (checkpoint.workdir_path(workdir) / "eval" /
          f"labels_{fraction_name(fraction)}_seed{seed}.json")
  if path.exists():
    saved = json.loads(path.read_text())
    indices = np.asarray(saved["indices"], np.int64)
    if saved.get("num_examples") != len(labels) or (len(indices) and indices.max() >= len(labels)):
      raise UserError(f"{path} was made for a different training set; move it away "
                      "to draw a new subset")
    return indices
  indices = stratified_subset(labels, fraction, seed)
  write_eval(workdir, path.stem, {
      "label_fraction": fraction, "seed": seed, "num_examples": int(len(labels)),
      "indices": indices.tolist()})
  return indices


def load_classified_config(workdir: str, overrides=()):
  """The workdir's config, refused with a one-line error when its test labels
  are not classes of its training set (the photo corpus)."""
  config = run_config.load_config(workdir, overrides)
  if config.data.name in SOURCE_LABELLED:
    raise UserError(f"{workdir} trained on {config.data.name}, whose labels are source "
                    "photographs that differ between train and test; evaluate it with "
                    f"`sslax eval transfer --workdir {workdir}`")
  return config


def probe_name(config) -> str:
  """``config.eval.linear_probe`` ("lbfgs" for configs saved without it),
  refused with one line when it names no probe."""
  return check_probe(config.eval.get("linear_probe", "lbfgs"))


def run_linear_probe(config, train_x, train_y, test_x, test_y, *, fraction: float,
                     num_classes: int, seed: int = 0, subset=None, recompute=None):
  """The linear probe ``config.eval.linear_probe`` names on frozen features:
  ``lbfgs``, the full-batch L-BFGS logistic regression with its L2 penalty
  chosen on a validation split (``sslax.probes.linear``), or ``sgd``, the
  mini-batch protocol of SimCLR (Chen et al. 2020, appendix B.6) with
  ``config.eval.sgd_*`` (``sslax.probes.sgd``; ``recompute``: its training
  features from augmented images). Returns the dict for the eval JSON."""
  probe = probe_name(config)
  if probe == "lbfgs":
    result = linear_probe(train_x, train_y, test_x, test_y, fraction=fraction, seed=seed,
                          num_classes=num_classes, subset=subset)
    result["probe"] = "lbfgs"
    return result
  e = config.eval
  return sgd_linear_probe(
      train_x, train_y, test_x, test_y, fraction=fraction, seed=seed,
      num_classes=num_classes, subset=subset, epochs=float(e.get("sgd_epochs", 90)),
      batch_size=int(e.get("sgd_batch_size", 4096)),
      learning_rate=float(e.get("sgd_learning_rate", 0.1)),
      momentum=float(e.get("sgd_momentum", 0.9)),
      weight_decay=float(e.get("sgd_weight_decay", 0.0)), recompute=recompute)


def evaluate_linear(workdir: str, fraction: float = 1.0, kind: str = "encoder",
                    seed: int = 0, overrides=()):
  """Linear probe of a workdir's features (``config.eval.linear_probe``);
  writes and returns ``WORKDIR/eval/linear_<fraction>.json``
  (``linear_<kind>_<fraction>.json`` for the baselines ``raw_pixels`` and
  ``random_init``)."""
  fraction = check_fraction(fraction)
  config = load_classified_config(workdir, overrides)
  probe = probe_name(config)  # (checked before the features are computed)
  recompute = None
  if probe == "sgd" and config.eval.get("linear_augment", False):
    recompute = features_lib.augmented_inputs(config, kind, workdir)
  train_x, train_y, test_x, test_y, num_classes = features_lib.features(
      config, kind, workdir, "the linear probe")
  subset = labelled_subset(workdir, train_y, fraction, seed)
  result = run_linear_probe(config, train_x, train_y, test_x, test_y, fraction=fraction,
                            seed=seed, num_classes=num_classes, subset=subset,
                            recompute=recompute)
  result.update(features=kind, feature_dim=int(train_x.shape[1]),
                **provenance(config, workdir))
  write_eval(workdir, linear_name(kind, fraction), result)
  return result


def evaluate_knn(workdir: str, ks=(20, 200), temperature: float = 0.07,
                 kind: str = "encoder", overrides=()):
  """Weighted kNN top-1 (Wu et al. 2018) for each k; writes and returns
  ``WORKDIR/eval/knn.json`` (``knn_<kind>.json`` for the baselines)."""
  config = load_classified_config(workdir, overrides)
  train_x, train_y, test_x, test_y, num_classes = features_lib.features(
      config, kind, workdir, "kNN evaluation")
  result = {f"top1_k{k}": accuracy for k, accuracy in knn_accuracies(
      train_x, train_y, test_x, test_y, ks=ks, num_classes=num_classes,
      temperature=temperature).items()}
  result.update(temperature=temperature, features=kind, **provenance(config, workdir))
  write_eval(workdir, "knn" if kind == "encoder" else f"knn_{kind}", result)
  return result


def evaluate_finetune(workdir: str, fraction: float, kind: str = "encoder",
                      seed: int = 0, epochs=None, overrides=()):
  """Fine-tunes the workdir's encoder (``kind='encoder'``) or a randomly
  initialised one (``'random_init'``: the supervised baseline) with a linear
  head on the labelled subset; writes and returns ``finetune_<fraction>.json``
  (``finetune_random_init_<fraction>.json``)."""
  fraction = check_fraction(fraction)
  if kind not in ("encoder", "random_init"):
    raise UserError(f"fine-tuning starts from encoder or random_init, not {kind!r}")
  if epochs is not None and epochs <= 0:
    raise UserError(f"--epochs must be positive, got {epochs}")
  config = load_classified_config(workdir, overrides)
  encoder = features_lib.load_run_encoder(workdir, random_init=kind == "random_init")
  preprocess = encoder.definition.preprocess["kind"]
  if encoder.definition.modality != "image":
    raise UserError(f"fine-tuning is implemented for image runs; evaluate "
                    f"{encoder.definition.modality} runs with `sslax eval linear "
                    f"--workdir {workdir}`")
  if preprocess != "normalize":
    raise UserError(f"fine-tuning {config.method}'s L-channel encoder is not "
                    f"implemented; use `sslax eval transfer --workdir {workdir}`")
  if epochs is not None:  # (the config's own value may be an int)
    config.finetune = ml_collections.ConfigDict({**config.finetune.to_dict(),
                                                 "epochs": float(epochs)})
  train = labelled_source(config.data, "eval_train_split", "fine-tuning")
  test = labelled_source(config.data, "eval_split", "fine-tuning")
  require_labels(train.labels, config.data, "eval_train_split", "fine-tuning")
  require_labels(test.labels, config.data, "eval_split", "fine-tuning")
  subset = labelled_subset(workdir, train.labels, fraction, seed)
  steps = finetune_lib.num_steps(len(subset), config.finetune)
  # The supervised run itself (checkpoints, metrics) beside eval/; one
  # fine-tuning of the encoder per checkpoint step it starts from, so that a
  # run trained further (--extend-to) is never answered by an older one's.
  start = "" if kind == "random_init" else f"_from{checkpoint.latest_step(workdir)}"
  run_dir = os.path.join(workdir, "finetune_runs",
                         f"{finetune_name(kind, fraction)}_seed{seed}_{steps}steps{start}")
  result, _ = finetune_lib.finetune(encoder.variables, train, test, subset, config,
                                    steps=steps, seed=seed, workdir=run_dir)
  result.update(label_fraction=fraction, num_labels=int(len(subset)), steps=steps,
                epochs=float(config.finetune.epochs),
                batch_size=int(config.finetune.batch_size), init=kind, seed=seed,
                **provenance(config, workdir))
  write_eval(workdir, finetune_name(kind, fraction), result)
  return result
