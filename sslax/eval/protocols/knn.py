"""Weighted kNN on frozen features (``sslax.eval.evaluate.evaluate_knn``):
vector encoders on labelled data; ``eval/knn.json``."""

import re

from sslax.errors import UserError

OUTPUT, LABELS = "vector", True
HELP = "weighted kNN on frozen features (k=20, 200)"
_FILE = re.compile(r"^knn(?:_(random_init|raw_pixels|mfcc))?\.json$")


def applies(definition, probe_labels: bool) -> bool:
  del definition
  return probe_labels  # the run's own labelled splits


def add_arguments(parser):
  parser.add_argument("--temperature", type=float, default=0.07)
  parser.add_argument("--features", default="encoder",
                      help="encoder (default), random_init or raw_pixels")


def run(args, overrides):
  if args.temperature <= 0:
    raise UserError(f"--temperature must be positive, got {args.temperature}")
  from sslax.eval.evaluate import evaluate_knn  # pylint: disable=g-import-not-at-top
  return evaluate_knn(args.workdir, temperature=args.temperature, kind=args.features,
                      overrides=overrides)


def claims(file_name) -> bool:
  """Whether ``file_name`` (in ``WORKDIR/eval``) is one of its results."""
  return bool(_FILE.match(file_name))


def report_rows(file_name, result):
  m = _FILE.match(file_name)
  if not m:
    return []
  return [(m.group(1) or "encoder", f"kNN k={key[6:]}", 1.0, 100 * value)
          for key, value in sorted(result.items()) if key.startswith("top1_k")]
