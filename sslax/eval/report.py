"""One Markdown table from the eval JSONs of several runs."""

import json
import os
import re

from sslax.errors import UserError

_FRACTION_PROTOCOLS = re.compile(
    r"^(linear|finetune|transfer_fashion_mnist_linear)"
    r"(?:_(random_init|raw_pixels|mfcc))?_([0-9.]+)\.json$")
_KNN = re.compile(r"^knn(?:_(random_init|raw_pixels|mfcc))?\.json$")


def collect(run_dir: str):
  """Rows ``(run, method, features, protocol, label fraction, top-1 %)``."""
  config_path = os.path.join(run_dir, "config.json")
  eval_dir = os.path.join(run_dir, "eval")
  if not os.path.exists(config_path) or not os.path.isdir(eval_dir):
    raise UserError(f"{run_dir} has no config.json and eval/ results; run `sslax eval "
                    f"linear --workdir {run_dir}` first")
  with open(config_path) as f:
    method = json.load(f).get("method", "?")
  rows = []
  for name in sorted(os.listdir(eval_dir)):
    with open(os.path.join(eval_dir, name)) as f:
      try:
        result = json.load(f)
      except json.JSONDecodeError:
        continue
    if m := _FRACTION_PROTOCOLS.match(name):
      rows.append((run_dir, method, m.group(2) or "encoder", m.group(1),
                   float(m.group(3)), 100 * result["top1"]))
    elif m := _KNN.match(name):
      for key, value in sorted(result.items()):
        if key.startswith("top1_k"):
          rows.append((run_dir, method, m.group(1) or "encoder", f"kNN k={key[6:]}",
                       1.0, 100 * value))
  return rows


def markdown(run_dirs):
  rows = [row for d in run_dirs for row in collect(d)]
  lines = ["| run | method | features | protocol | labels | top-1 (%) |",
           "|---|---|---|---|---|---|"]
  for run, method, feats, protocol, fraction, top1 in sorted(
      rows, key=lambda r: (r[0], r[2], r[3], r[4])):
    lines.append(f"| {run} | {method} | {feats} | {protocol} | {fraction:g} | {top1:.2f} |")
  return "\n".join(lines)
