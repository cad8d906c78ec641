"""Tracking by label propagation (``sslax.eval.track``): a ``dense``
encoder's feature maps of each frame carry the first frame's masks and
keypoints through every test clip of the video corpus
(``config.evals.track.data``, default ``data/video``, split ``test``); DAVIS
J and F (also under the DAVIS 2017 toolkit's rules: ``davis2017``), PCK@0.1
and @0.2. ``--features`` also gives the baselines: the
randomly initialised encoder, raw Lab pixels, TV-L1 optical flow and copying
the first frame.
``eval/track.json`` (``track_<features>.json``); ``sslax viz`` draws its
``pictures``."""

import re

OUTPUT, LABELS = "dense", False
HELP = ("propagate the first frame's masks and keypoints through the video corpus' "
        "test clips (J, F, PCK) with a dense encoder")
FEATURES = ("encoder", "random_init", "lab_pixels", "flow", "copy")
_FILE = re.compile(r"^track(?:_(random_init|lab_pixels|flow|copy))?\.json$")


def applies(definition, probe_labels: bool) -> bool:
  del definition, probe_labels  # its data is config.evals.track.data
  return True


def add_arguments(parser):
  parser.add_argument("--features", default="encoder", choices=FEATURES,
                      help="encoder (default), random_init, lab_pixels, flow (TV-L1 "
                      "optical flow; the video extra) or copy (the first frame's labels "
                      "in every frame)")
  parser.add_argument("--clips", type=int, help="only the first N test clips")
  parser.add_argument("--encoder", help="which of the run's dense encoders (default: the "
                      "primary)")
  from sslax.eval.track import DEFAULTS  # pylint: disable=g-import-not-at-top
  for name, default in DEFAULTS.items():
    parser.add_argument(f"--{name}", type=type(default), default=default)


def run(args, overrides):
  from sslax.eval import track  # pylint: disable=g-import-not-at-top
  return track.evaluate_workdir(args.workdir, args.features, limit=args.clips,
                                encoder=args.encoder,
                                overrides=overrides, context=args.context, topk=args.topk,
                                radius=args.radius, temperature=args.temperature)


def pictures(workdir, config, out, title, seed):
  """Propagated masks through test clips and a real one (PNG strips, GIFs),
  and one pixel's attention (``sslax.eval.track_viz``)."""
  from sslax.eval import track_viz  # pylint: disable=g-import-not-at-top
  return track_viz.pictures(workdir, config, out, title, seed)


def claims(file_name) -> bool:
  return bool(_FILE.match(file_name))


def report_rows(file_name, result):
  features = _FILE.match(file_name).group(1) or "encoder"
  return [(features, f"track {key}", 1.0, result[key])
          for key in ("J", "F", "PCK@0.1", "PCK@0.2")]
