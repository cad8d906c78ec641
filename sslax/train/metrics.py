"""Run metrics: ``WORKDIR/metrics.jsonl`` (one JSON object per logged step)
and TensorBoard event files under ``WORKDIR/tensorboard``. Only process 0
writes."""

import json
import os

import jax

METRICS_FILE = "metrics.jsonl"


def read_metrics(workdir: str):
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


class MetricWriter:
  """Appends records; on resume, first drops records past the restored step so
  the file reads as one uninterrupted run."""

  def __init__(self, workdir: str, resume_step: int = 0):
    self.active = jax.process_index() == 0
    self.path = os.path.join(workdir, METRICS_FILE)
    self._tb = None
    if not self.active:
      return
    os.makedirs(workdir, exist_ok=True)
    kept = [r for r in read_metrics(workdir) if r.get("step", 0) <= resume_step]
    with open(self.path, "w") as f:
      for record in kept:
        f.write(json.dumps(record) + "\n")
    try:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
    except ImportError:
      self._tb = None

  def write(self, step: int, values: dict):
    if not self.active:
      return
    record = {"step": int(step), **{k: float(v) for k, v in values.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    if self._tb is not None:
      for k, v in values.items():
        self._tb.add_scalar(k, float(v), int(step))
      self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()
