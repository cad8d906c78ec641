"""launch/throughput.py's reading of a jax.profiler trace: the costliest
events a step, Python frames and the executor's wrappers left out."""

import gzip
import json

import pytest

from conftest import load_launch_script

throughput = load_launch_script("throughput")


def _trace(tmp_path, events):
  folder = tmp_path / "plugins" / "profile" / "run"
  folder.mkdir(parents=True)
  with gzip.open(folder / "host.trace.json.gz", "wt") as f:
    json.dump({"traceEvents": events}, f)


def test_costliest_events_per_step(tmp_path):
  def x(name, dur):
    return {"ph": "X", "name": name, "dur": dur, "pid": 1, "tid": 1}

  _trace(tmp_path, [
      x("fusion.1", 3000), x("fusion.1", 5000),  # 8 ms over 2 steps: 4 a step, 1 call
      x("sort.0", 1000), x("sort.0", 1000), x("sort.0", 2000), x("sort.0", 2000),
      x("$api.py:1 block_until_ready", 90000),  # Python frames are left out
      x("ThunkExecutor::Execute", 80000),  # and the runtime's wrappers
      x("PjitFunction(jit(step))", 70000), x("CommonPjRtBuffer::Await", 60000),
      {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "/host:CPU"}},
      x("copy.3", 500)])
  events = throughput.costliest_events(str(tmp_path), steps=2, count=2)
  assert events == [("fusion.1", pytest.approx(4.0), 1.0), ("sort.0", pytest.approx(3.0), 2.0)]
  assert [e[0] for e in throughput.costliest_events(str(tmp_path), steps=2)] == [
      "fusion.1", "sort.0", "copy.3"]


def test_no_trace_file_is_no_events(tmp_path):
  assert throughput.costliest_events(str(tmp_path), steps=3) == []
