"""One Markdown table from the eval JSONs of several runs (local directories
or URLs such as ``gs://``, read through ``etils.epath``)."""

import json

from etils import epath

from sslax.errors import UserError, read_json
from sslax.eval.protocols import EVALUATIONS
from sslax.train import run_config


def _read_json(path):
  """The JSON in ``path``, or None where it is not valid JSON."""
  try:
    return json.loads(path.read_bytes().decode("utf-8"))
  except (UnicodeDecodeError, json.JSONDecodeError):
    return None


def collect(run_dir: str):
  """Rows ``(run, method, dataset, step, features, protocol, label fraction,
  top-1 %)``."""
  run = epath.Path(run_dir)
  config_path = run / "config.json"
  eval_dir = run / "eval"
  if not config_path.exists():
    raise UserError(f"{run_dir} is not a workdir (it has no config.json); give the "
                    "--workdir that `sslax train` wrote")
  if not eval_dir.is_dir() or not any(p.name.endswith(".json") for p in eval_dir.iterdir()):
    raise UserError(f"{run_dir} has no evaluation results yet (no eval/*.json); run "
                    f"`sslax eval linear --workdir {run_dir}` (or knn, ...) first")
  config = read_json(config_path, "restore it from a copy")
  method = config.get("method", "?")
  # Results written before they named their data: the run's own.
  trained_on = run_config.describe_data(config.get("data", {}))
  rows = []
  for name in sorted(p.name for p in eval_dir.iterdir()):
    for evaluation in EVALUATIONS.values():
      if evaluation.claims(name):
        result = _read_json(eval_dir / name)
        if result is not None:  # (torn or not JSON: left out)
          dataset = result.get("dataset", trained_on)
          step = result.get("step", "?")
          rows.extend((run_dir, method, dataset, step, *row)
                      for row in evaluation.report_rows(name, result))
        break
  return rows


def markdown(run_dirs):
  rows = [row for d in run_dirs for row in collect(d)]
  lines = ["| run | method | dataset | step | features | protocol | labels | top-1 (%) |",
           "|---|---|---|---|---|---|---|---|"]
  for run, method, dataset, step, feats, protocol, fraction, top1 in sorted(
      rows, key=lambda r: (r[0], r[4], r[5], r[6])):
    lines.append(f"| {run} | {method} | {dataset} | {step} | {feats} | {protocol} | "
                 f"{fraction:g} | {top1:.2f} |")
  return "\n".join(lines)
