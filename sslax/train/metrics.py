"""Run metrics: ``WORKDIR/metrics.jsonl`` (one JSON object per logged step)
and TensorBoard event files under ``WORKDIR/tensorboard``. Only process 0
writes."""

import json

import jax

from sslax.train.checkpoint import workdir_path

METRICS_FILE = "metrics.jsonl"


def read_metrics(workdir: str):
  """The logged records; a line torn by a killed process is skipped."""
  path = workdir_path(workdir) / METRICS_FILE
  if not path.exists():
    return []
  records = []
  for line in path.read_text().splitlines():
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      continue
  return records


class MetricWriter:
  """Appends records; on resume, first drops records past the restored step so
  the file reads as one uninterrupted run."""

  def __init__(self, workdir: str, resume_step: int = 0):
    self.active = jax.process_index() == 0
    self.path = workdir_path(workdir) / METRICS_FILE
    self._tb = None
    if not self.active:
      return
    self.path.parent.mkdir(parents=True, exist_ok=True)
    kept = [r for r in read_metrics(workdir) if r.get("step", 0) <= resume_step]
    self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    try:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(str(workdir_path(workdir) / "tensorboard"))
    except ImportError:
      self._tb = None

  def write(self, step: int, values: dict):
    if not self.active:
      return
    record = {"step": int(step), **{k: float(v) for k, v in values.items()}}
    with self.path.open("a") as f:
      f.write(json.dumps(record) + "\n")
    if self._tb is not None:
      for k, v in values.items():
        self._tb.add_scalar(k, float(v), int(step))
      self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()
