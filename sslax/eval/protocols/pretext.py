"""The run's pretext task on held-out data (``sslax.eval.pretext``): its own
loss and metrics (e.g. ``pretext_top1``) on the evaluation split, for an
encoder of any output kind; asked for by name, never suggested (a contrastive
loss on held-out data says little). ``eval/pretext.json``."""

OUTPUT, LABELS = None, False  # None: any output kind
HELP = ("the run's own pretext loss and accuracies on its held-out split "
        "(order, direction, rotation, colour)")


def applies(definition, probe_labels: bool) -> bool:
  del definition, probe_labels
  return False


def add_arguments(parser):
  parser.add_argument("--split", help="the split to measure on (default: "
                      "config.data.eval_split)")
  parser.add_argument("--batches", type=int, help="only the first N batches")
  parser.add_argument("--seed", type=int, default=0, help="the keys of the pretext draws")


def run(args, overrides):
  from sslax.eval import pretext  # pylint: disable=g-import-not-at-top
  return pretext.evaluate_workdir(args.workdir, split=args.split, batches=args.batches,
                                  seed=args.seed, overrides=overrides)


def claims(file_name) -> bool:
  return file_name == "pretext.json"


def report_rows(file_name, result):
  del file_name
  return [("encoder", f"pretext {key} ({result.get('split', 'test')})", 1.0, value)
          for key, value in result.items()
          if isinstance(value, float) and key not in ("examples",)]
