"""Fine-tuning the encoder with a linear head on a fraction of the labels
(``sslax.eval.evaluate.evaluate_finetune``): vector encoders of images on
labelled data; ``eval/finetune_<fraction>.json``."""

import re

OUTPUT, LABELS = "vector", True
HELP = ("fine-tune encoder + linear head on a fraction of the labels (or train "
        "from scratch: --init random_init)")
_FILE = re.compile(r"^finetune(?:_(random_init))?_([0-9.]+)\.json$")


def applies(definition, probe_labels: bool) -> bool:
  del definition
  return probe_labels  # the run's own labelled splits


def add_arguments(parser):
  parser.add_argument("--label-fraction", type=float, default=0.01)
  parser.add_argument("--init", default="encoder",
                      help="encoder (the trained one, default) or random_init (the "
                      "supervised baseline on the same subset and budget)")
  parser.add_argument("--epochs", type=float,
                      help="passes over the labelled subset (default: config.finetune.epochs)")
  parser.add_argument("--seed", type=int, default=0)


def run(args, overrides):
  from sslax.eval.evaluate import evaluate_finetune  # pylint: disable=g-import-not-at-top
  # (the evaluation checks the label fraction before anything else)
  return evaluate_finetune(args.workdir, args.label_fraction, args.init, args.seed,
                           args.epochs, overrides)


def claims(file_name) -> bool:
  """Whether ``file_name`` (in ``WORKDIR/eval``) is one of its results."""
  return bool(_FILE.match(file_name))


def report_rows(file_name, result):
  m = _FILE.match(file_name)
  return [(m.group(1) or "encoder", "finetune", float(m.group(2)),
           100 * result["top1"])] if m else []
