"""launch/results.py (`make results`): finished runs and evaluations are
skipped, an unfinished one is taken up where it stopped, and RESULTS.md's
tables are rewritten only between their markers, from the runs' own files.
Training and evaluation are stand-ins here; the real ones are tested
elsewhere."""

import json
import os
import re

import pytest

from conftest import ROOT, load_launch_script


results = load_launch_script("results")
METHODS = (("simclr", "SimCLR", "configs/simclr.py:smoke"),
           ("byol", "BYOL", "configs/byol.py:smoke"))
MARKERS = ("provenance", "demo", "demo-knn", "methods")
# top-1 per (run, features kind); the linear probe reads it at 1%, and 0.1
# more at 100%; kNN at k = 20 and 0.05 less at k = 200.
SCORES = {("simclr", "raw_pixels"): 0.5, ("simclr", "random_init"): 0.4,
          ("simclr", "encoder"): 0.6, ("byol", "encoder"): 0.7}


def _markdown(tmp_path):
  path = tmp_path / "RESULTS.md"
  path.write_text("# head\nkept above\n" + "".join(
      f"<!-- results:{m} -->\nold {m}\n<!-- /results:{m} -->\n" for m in MARKERS)
      + "kept below\n")
  return path


@pytest.fixture
def stand_ins(monkeypatch, tmp_path):
  calls = []
  trained = set()

  def train(workdir, config_spec, log):
    calls.append(("train", os.path.basename(workdir)))
    trained.add(workdir)
    return 10.0, 1.5

  def write(workdir, file_name, result):
    os.makedirs(os.path.join(workdir, "eval"), exist_ok=True)
    with open(os.path.join(workdir, "eval", f"{file_name}.json"), "w") as f:
      json.dump(result, f)

  def evaluate(workdir, name, steps):
    for file_name, kind, protocol, fraction in results.evaluations(name):
      if (results.read_eval(workdir, file_name) or {}).get("step") == steps:
        continue
      calls.append((protocol, name, kind, fraction))
      score = SCORES[(name, kind)]
      if protocol == "linear":
        write(workdir, file_name, {"top1": score + (0.1 if fraction == 1.0 else 0), "step": steps})
      else:
        write(workdir, file_name, {"top1_k20": score, "top1_k200": score - 0.05, "step": steps})

  monkeypatch.setattr(results, "train", train)
  monkeypatch.setattr(results, "evaluate", evaluate)
  monkeypatch.setattr(results, "trained", lambda workdir, steps: workdir in trained)
  monkeypatch.setattr(results, "examples_per_second", lambda workdir: 123.0)
  monkeypatch.setattr(results, "machine", lambda: {"device": "test CPU", "jax": "x",
                                                   "python": "y", "xla_flags": ""})
  return calls, tmp_path


def _run(tmp_path, md, *args):
  results.main(["--workdir", str(tmp_path / "runs"), *args], methods=METHODS,
               results_md=str(md))


def test_every_run_then_nothing_twice_and_tables_between_markers(stand_ins, capsys):
  calls, tmp_path = stand_ins
  md = _markdown(tmp_path)
  _run(tmp_path, md)
  assert [c for c in calls if c[0] == "train"] == [("train", "simclr"), ("train", "byol")]
  # the demo run evaluates its two baselines as well as its encoder
  assert len([c for c in calls if c[0] != "train" and c[1] == "simclr"]) == 9
  assert len([c for c in calls if c[0] != "train" and c[1] == "byol"]) == 3
  text = md.read_text()
  assert text.startswith("# head\nkept above\n") and text.endswith("kept below\n")
  assert "old " not in text
  methods = re.search(r"<!-- results:methods -->\n(.*?)<!-- /results:methods -->",
                      text, re.S).group(1)
  # BYOL is best in every probe column, each figure from its own files
  assert "| SimCLR | 60.00 | 70.00 | 60.00 | 55.00 | 123 | 1.50 |" in methods
  assert "| BYOL | **70.00** | **80.00** | **70.00** | **65.00** | 123 | 1.50 |" in methods
  demo = re.search(r"<!-- results:demo -->\n(.*?)<!-- /results:demo -->", text, re.S).group(1)
  assert "| raw pixels (784-d) | 50.00 | 60.00 |" in demo
  assert "| SimCLR encoder (2048-d) | **60.00** | **70.00** |" in demo
  assert "test CPU" in text

  calls.clear()
  capsys.readouterr()
  _run(tmp_path, md)
  assert calls == []
  assert "2 of 2 runs finished" in capsys.readouterr().out


def test_an_unfinished_run_is_taken_up_where_it_stopped(stand_ins, capsys):
  calls, tmp_path = stand_ins
  md = _markdown(tmp_path)
  _run(tmp_path, md, "--only", "simclr")
  out = capsys.readouterr().out
  assert "left: byol" in out and "old methods" in md.read_text()  # not rewritten yet
  _run(tmp_path, md, "--list")
  assert "1 of 2 runs finished (simclr); left: byol" in capsys.readouterr().out
  calls.clear()
  _run(tmp_path, md)
  assert calls[0] == ("train", "byol") and all(c[1] == "byol" for c in calls)
  # an evaluation lost since is redone, alone
  os.remove(tmp_path / "runs" / "byol" / "eval" / "knn.json")
  calls.clear()
  _run(tmp_path, md)
  assert calls == [("knn", "byol", "encoder", None)]


def test_unknown_run_and_missing_marker(stand_ins, capsys):
  _, tmp_path = stand_ins
  with pytest.raises(SystemExit) as e:
    _run(tmp_path, _markdown(tmp_path), "--only", "simclr_v9")
  assert e.value.code == 2
  assert "unknown run simclr_v9; the runs are simclr, byol" in capsys.readouterr().err
  md = tmp_path / "RESULTS.md"
  md.write_text("no markers\n")
  with pytest.raises(SystemExit, match="has no <!-- results:"):
    _run(tmp_path, md)
  assert md.read_text() == "no markers\n"


def test_results_md_has_every_marker_the_runner_writes():
  with open(os.path.join(ROOT, "RESULTS.md")) as f:
    text = f.read()
  for marker in MARKERS:
    assert text.count(f"<!-- results:{marker} -->") == 1, marker
    assert text.count(f"<!-- /results:{marker} -->") == 1, marker
