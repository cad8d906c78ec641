"""A linear probe of a ``dense`` encoder's mask-pooled features on the
classes of the objects in video frames (``sslax.eval.objects``): the
garments of the video corpus (``config.evals.objects.data``, default
``data/video``), trained on its training clips and scored on its test clips.
``--features random_init`` and ``lab_pixels`` give the baselines.
``eval/objects.json`` (``objects_<features>.json``)."""

import re

OUTPUT, LABELS = "dense", False
HELP = ("linear probe of mask-pooled dense features on the classes of the video "
        "corpus' garments (top-1)")
FEATURES = ("encoder", "random_init", "lab_pixels")
_FILE = re.compile(r"^objects(?:_(random_init|lab_pixels))?\.json$")


def applies(definition, probe_labels: bool) -> bool:
  del definition, probe_labels  # its data is config.evals.objects.data
  return True


def add_arguments(parser):
  parser.add_argument("--features", default="encoder", choices=FEATURES,
                      help="encoder (default), random_init (the same network at its "
                      "initialisation) or lab_pixels (raw Lab cells)")
  parser.add_argument("--clips", type=int, help="only the first N clips of each split")
  parser.add_argument("--encoder", help="which of the run's dense encoders (default: the "
                      "primary)")
  from sslax.eval.objects import DEFAULTS  # pylint: disable=g-import-not-at-top
  parser.add_argument("--frames", type=int, default=DEFAULTS["frames"],
                      help="evenly spaced frames of each clip whose objects are probed")
  parser.add_argument("--min-pixels", type=int, default=DEFAULTS["min_pixels"],
                      help="leave out objects covering fewer pixels of a frame")


def run(args, overrides):
  from sslax.eval import objects  # pylint: disable=g-import-not-at-top
  if args.frames <= 0 or args.min_pixels <= 0:
    from sslax.errors import UserError  # pylint: disable=g-import-not-at-top
    raise UserError("--frames and --min-pixels must be positive")
  return objects.evaluate_workdir(args.workdir, args.features, limit=args.clips,
                                  encoder=args.encoder,
                                  overrides=overrides, frames=args.frames,
                                  min_pixels=args.min_pixels)


def claims(file_name) -> bool:
  return bool(_FILE.match(file_name))


def report_rows(file_name, result):
  features = _FILE.match(file_name).group(1) or "encoder"
  return [(features, "objects linear", 1.0, 100 * result["top1"])]
