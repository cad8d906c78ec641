"""Linear probe on frozen features (``sslax.eval.evaluate.evaluate_linear``):
vector encoders on labelled data; ``eval/linear_<fraction>.json``."""

import re

OUTPUT, LABELS = "vector", True
HELP = "linear probe on frozen features"
_FILE = re.compile(r"^linear(?:_(random_init|raw_pixels|mfcc))?_([0-9.]+)\.json$")


def applies(definition, probe_labels: bool) -> bool:
  del definition
  return probe_labels  # the run's own labelled splits


def add_arguments(parser):
  parser.add_argument("--label-fraction", type=float, default=1.0)
  parser.add_argument("--features", default="encoder",
                      help="encoder (default), random_init, raw_pixels (images) "
                      "or mfcc (speech)")
  parser.add_argument("--seed", type=int, default=0)


def run(args, overrides):
  from sslax.eval.evaluate import evaluate_linear  # pylint: disable=g-import-not-at-top
  # (the evaluation checks the label fraction before anything else)
  return evaluate_linear(args.workdir, args.label_fraction, args.features, args.seed,
                         overrides)


def claims(file_name) -> bool:
  """Whether ``file_name`` (in ``WORKDIR/eval``) is one of its results."""
  return bool(_FILE.match(file_name))


def report_rows(file_name, result):
  """``(features, protocol, label fraction, top-1 %)`` rows."""
  m = _FILE.match(file_name)
  return [(m.group(1) or "encoder", "linear", float(m.group(2)),
           100 * result["top1"])] if m else []
