"""Transfer: a linear probe of the run's encoder on other labelled images
(``sslax.eval.transfer``), by default grayscale Fashion-MNIST; the target
data is ``config.evals.transfer.data`` (a ``config.data``-like group: name,
data_dir, splits). Vector encoders; ``eval/transfer_<dataset>_linear_*.json``."""

import re

from sslax.data import modality
from sslax.data.modality import image

OUTPUT, LABELS = "vector", True
HELP = ("linear probe of the encoder on other labelled images (default: grayscale "
        "Fashion-MNIST; config.evals.transfer.data)")
_FILE = re.compile(r"^transfer_(\w+?)_linear(?:_(random_init))?_([0-9.]+)\.json$")


def applies(definition, probe_labels: bool) -> bool:
  del probe_labels  # its data is config.evals.transfer.data
  return modality.owning(definition.preprocess["kind"]) is image and (
      1 in image.input_channels(definition))  # gray target images


def add_arguments(parser):
  parser.add_argument("--label-fraction", type=float, default=1.0)
  parser.add_argument("--features", default="encoder", help="encoder (default) or random_init")
  parser.add_argument("--seed", type=int, default=0)


def run(args, overrides):
  from sslax.eval.transfer import transfer_linear  # pylint: disable=g-import-not-at-top
  return transfer_linear(args.workdir, args.label_fraction, args.seed, args.features,
                         overrides=overrides)


def claims(file_name) -> bool:
  """Whether ``file_name`` (in ``WORKDIR/eval``) is one of its results."""
  return bool(_FILE.match(file_name))


def report_rows(file_name, result):
  m = _FILE.match(file_name)
  return [(m.group(2) or "encoder", f"transfer_{m.group(1)}_linear", float(m.group(3)),
           100 * result["top1"])] if m else []
