"""One Markdown table from the eval JSONs of several runs (local directories
or URLs such as ``gs://``, read through ``etils.epath``)."""

import json

from etils import epath

from sslax.errors import UserError
from sslax.eval.protocols import EVALUATIONS


def _read_json(path):
  """The JSON in ``path``, or None where it is not valid JSON."""
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError:
    return None


def collect(run_dir: str):
  """Rows ``(run, method, features, protocol, label fraction, top-1 %)``."""
  run = epath.Path(run_dir)
  config_path = run / "config.json"
  eval_dir = run / "eval"
  if not config_path.exists() or not eval_dir.is_dir():
    raise UserError(f"{run_dir} has no config.json and eval/ results; run `sslax eval "
                    f"linear --workdir {run_dir}` first")
  method = json.loads(config_path.read_text()).get("method", "?")
  rows = []
  for name in sorted(p.name for p in eval_dir.iterdir()):
    for evaluation in EVALUATIONS.values():
      if evaluation.claims(name):
        result = _read_json(eval_dir / name)
        if result is not None:  # (torn or not JSON: left out)
          rows.extend((run_dir, method, *row) for row in evaluation.report_rows(name, result))
        break
  return rows


def markdown(run_dirs):
  rows = [row for d in run_dirs for row in collect(d)]
  lines = ["| run | method | features | protocol | labels | top-1 (%) |",
           "|---|---|---|---|---|---|"]
  for run, method, feats, protocol, fraction, top1 in sorted(
      rows, key=lambda r: (r[0], r[2], r[3], r[4])):
    lines.append(f"| {run} | {method} | {feats} | {protocol} | {fraction:g} | {top1:.2f} |")
  return "\n".join(lines)
