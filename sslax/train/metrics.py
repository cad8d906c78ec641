"""Run metrics: ``WORKDIR/metrics.jsonl`` (one JSON object per logged step)
and TensorBoard event files under ``WORKDIR/tensorboard``. Only process 0
writes."""

import contextlib
import io
import json
import os
import re

import jax

from sslax.train.checkpoint import workdir_path

METRICS_FILE = "metrics.jsonl"


# One complete "key": number pair of a row.
_PAIR = re.compile(r'"([^"]+)":\s*(-?(?:[0-9][0-9.eE+-]*|Infinity)|NaN)(?=\s*[,}])')


def _salvage(line: str):
  """The complete ``"key": value`` pairs of a torn row (a process killed while
  writing it), or None when not even its step is readable."""
  record = {k: (int(v) if k == "step" else float(v)) for k, v in _PAIR.findall(line)}
  return record if "step" in record else None


def read_metrics(workdir: str):
  """The logged records; of a line torn by a killed process, what is readable."""
  path = workdir_path(workdir) / METRICS_FILE
  if not path.exists():
    return []
  records = []
  for line in path.read_text().splitlines():
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      torn = _salvage(line)
      if torn is not None:
        records.append(torn)
  return records


def _sync(f):
  """Makes a written row durable before the step's checkpoint can be (local files)."""
  f.flush()
  with contextlib.suppress(AttributeError, OSError, io.UnsupportedOperation):
    os.fsync(f.fileno())


class MetricWriter:
  """Appends records, each synced to disk before the trainer saves that step's
  checkpoint, so a crash loses no row of a saved step: at worst it tears the
  row of a step after the last checkpoint, which the resumed run recomputes
  and writes whole. On resume, first drops records past the restored step
  (rewriting the file atomically) so it reads as one uninterrupted run."""

  def __init__(self, workdir: str, resume_step: int = 0):
    self.active = jax.process_index() == 0
    self.path = workdir_path(workdir) / METRICS_FILE
    self._tb = None
    if not self.active:
      return
    self.path.parent.mkdir(parents=True, exist_ok=True)
    kept = [r for r in read_metrics(workdir) if r.get("step", 0) <= resume_step]
    text = "".join(json.dumps(r) + "\n" for r in kept)
    if not self.path.exists() or self.path.read_text() != text:
      tmp = self.path.parent / (METRICS_FILE + ".tmp")
      with tmp.open("w") as f:
        f.write(text)
        _sync(f)
      tmp.replace(self.path)
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
      _sync(f)
    if self._tb is not None:
      for k, v in values.items():
        self._tb.add_scalar(k, float(v), int(step))
      self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()
