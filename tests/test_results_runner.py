"""launch/results.py (`make results`): the protocol's runs in order (grid
points on validation, then seeds with the winner), finished runs and
evaluations skipped, an interrupted run resumed, tables of mean ± std that
match a hand computation, and RESULTS.md rewritten only between its markers.
Most tests use stand-ins for training and evaluation; the last trains a tiny
grid on the smoke config for real."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import sslax
from sslax.probes.linear import VERSION as PROBE_VERSION

from conftest import ROOT, load_launch_script


results = load_launch_script("results")
LR = "optimizer.learning_rate"
ROWS = (
    results.Row("simclr", "SimCLR", "configs/simclr.py:smoke", "methods",
                ((LR, (0.5, 1.0)), ("simclr.temperature", (0.2,)))),
    results.Row("byol", "BYOL", "configs/byol.py:smoke", "methods", ((LR, (0.1, 0.2)),)),
    results.Row("rotation", "rotation", "configs/rotation.py:smoke", "pretext",
                ((LR, (0.1,)),)),
    results.Row("jigsaw", "jigsaw", "configs/jigsaw.py:smoke", "pretext", ()),
    results.Row("simclr_b64", "SimCLR b64", "configs/simclr.py:smoke", "batch64",
                fixed=(("global_batch_size", 16),), tuned_by="simclr"),
    results.Row("moco_v2_b64", "MoCo b64", "configs/moco_v2.py:smoke", "batch64",
                fixed=(("global_batch_size", 16),), tuned_by="byol"),
)


def _markdown(tmp_path):
  path = tmp_path / "RESULTS.md"
  path.write_text("# head\nkept above\n" + "".join(
      f"<!-- results:{m} -->\nold {m}\n<!-- /results:{m} -->\n" for m in results.MARKERS)
      + "kept below\n")
  return path


def _score(job, kind, protocol, fraction, seed):
  """A stand-in figure: known per row, kind and seed; tuning scores favour
  the larger learning rate."""
  base = {"simclr": 0.60, "byol": 0.70, "rotation": 0.65, "jigsaw": 0.55,
          "simclr_b64": 0.50, "moco_v2_b64": 0.52}[job.row]
  base -= {"encoder": 0.0, "raw_pixels": 0.1, "random_init": 0.2}[kind]
  if protocol == "tune":
    return base + dict(job.overrides).get(LR, 0)
  return base + 0.02 * seed + (0.1 if fraction == 1.0 else 0.0)


@pytest.fixture
def stand_ins(monkeypatch, tmp_path):
  calls = []
  trained = set()

  def train(workdir, config_spec, overrides, log):
    calls.append(("train", os.path.relpath(workdir, tmp_path / "runs"), tuple(overrides)))
    trained.add(workdir)
    return 10.0, 1.5

  def evaluate(workdir, job):
    os.makedirs(os.path.join(workdir, "eval"), exist_ok=True)
    for file_name, kind, protocol, fraction in job.evals:
      if results.eval_done(results.read_eval(workdir, file_name), job, protocol):
        continue
      calls.append((protocol, job.workdir, kind, fraction))
      score = _score(job, kind, protocol, fraction, job.seed)
      if protocol == "knn":
        result = {"top1_k20": score, "top1_k200": score - 0.05}
      elif protocol == "tune":
        result = {"top1_k20": score}
      elif protocol == "linear":
        result = {"top1": score, "seed": job.seed, "probe_version": PROBE_VERSION}
      else:
        result = {"top1": score, "seed": job.seed}
      with open(os.path.join(workdir, "eval", f"{file_name}.json"), "w") as f:
        json.dump({**result, "step": job.steps}, f)

  monkeypatch.setattr(results, "train", train)
  monkeypatch.setattr(results, "evaluate", evaluate)
  monkeypatch.setattr(results, "trained", lambda workdir, steps: workdir in trained)
  monkeypatch.setattr(results, "examples_per_second", lambda workdir: 123.0)
  monkeypatch.setattr(results, "machine", lambda: {"device": "test CPU", "jax": "x",
                                                   "python": "y", "xla_flags": ""})
  return calls, tmp_path


def _trained_where_evaluated(monkeypatch):
  """The stand-in ``trained``: a workdir is trained where the stand-in
  evaluation left its eval/ folder, so a deleted or moved workdir is
  trained again."""
  monkeypatch.setattr(results, "trained",
                      lambda workdir, steps: os.path.isdir(os.path.join(workdir, "eval")))


def _run(tmp_path, md, *args, rows=ROWS):
  results.main(["--workdir", str(tmp_path / "runs"), *args], rows=rows, results_md=str(md),
               ledger=str(tmp_path / "RESULTS.json"))


def _ledger(tmp_path):
  with open(tmp_path / "RESULTS.json") as f:
    return json.load(f)


def _block(text, name):
  return re.search(rf"<!-- results:{name} -->\n(.*?)<!-- /results:{name} -->", text,
                   re.S).group(1)


def test_grids_on_validation_then_seeds_with_the_winner_then_nothing_twice(stand_ins, capsys):
  calls, tmp_path = stand_ins
  md = _markdown(tmp_path)
  _run(tmp_path, md)
  trains = [c for c in calls if c[0] == "train"]
  tuning = [c for c in trains if "/tune/" in c[1]]
  # every grid point once, each a short run scored on validation only
  assert sorted(c[1] for c in tuning) == [
      "byol/tune/learning_rate0.1", "byol/tune/learning_rate0.2",
      "rotation/tune/learning_rate0.1",
      "simclr/tune/learning_rate0.5_temperature0.2",
      "simclr/tune/learning_rate1_temperature0.2"]
  for _, _, overrides in tuning:
    o = dict(overrides)
    assert o["data.tuning"] is True and o["data.eval_split"] == "validation"
    assert o["data.validation_fraction"] == 0.1 and o["num_steps"] == results.TUNE_STEPS
  # a row's seeds start only after its grid, with the winner's settings
  order = [c[1] for c in trains]
  for row in ("simclr", "byol"):
    last_tune = max(i for i, w in enumerate(order) if w.startswith(f"{row}/tune/"))
    first_seed = min(i for i, w in enumerate(order) if w.startswith(f"{row}/") and "/seed" in w)
    assert first_seed > last_tune
  seeds = {c[1]: dict(c[2]) for c in trains if "/seed" in c[1]}
  assert len(seeds) == 6 * len(results.SEEDS)
  assert seeds["simclr/learning_rate1_temperature0.2/seed1"] == {
      LR: 1.0, "simclr.temperature": 0.2, "seed": 1}
  assert seeds["byol/learning_rate0.2/seed2"] == {LR: 0.2, "seed": 2}
  assert seeds["jigsaw/default/seed0"] == {"seed": 0}  # no grid: the config's own settings
  # rows tuned by another take its winner, with their own fixed overrides
  assert seeds["simclr_b64/learning_rate1_temperature0.2/seed0"] == {
      "global_batch_size": 16, LR: 1.0, "simclr.temperature": 0.2, "seed": 0}
  assert seeds["moco_v2_b64/learning_rate0.2/seed0"] == {
      "global_batch_size": 16, LR: 0.2, "seed": 0}
  for name in ("simclr", "byol"):
    grid = _ledger(tmp_path)["grids"][name]
    assert grid["winner"] == {"simclr": {LR: 1.0, "simclr.temperature": 0.2},
                              "byol": {LR: 0.2}}[name]
    assert len(grid["points"]) == 2
  # the demo row evaluates its baselines and fine-tuning; the others probe
  assert {c[2] for c in calls if c[0] == "finetune"} == {"encoder", "random_init"}
  assert {c[1].split("/")[0] for c in calls if c[0] == "finetune"} == {"simclr"}

  text = md.read_text()
  assert text.startswith("# head\nkept above\n") and text.endswith("kept below\n")
  assert "old " not in text and "test CPU" in text

  calls.clear()
  capsys.readouterr()
  _run(tmp_path, md)
  assert calls == []
  assert "results: 0 runs left" in capsys.readouterr().out


def test_mean_and_std_tables_match_a_hand_computation(stand_ins):
  _, tmp_path = stand_ins
  md = _markdown(tmp_path)
  _run(tmp_path, md)
  text = md.read_text()
  methods = _block(text, "methods")
  # BYOL, linear 1%: 0.70, 0.72, 0.74 -> mean 72.00, sample std 2.00;
  # linear 100%: 82.00; kNN: 72.00 and 67.00, all with std 2.00.
  assert ("| BYOL | **72.00 ± 2.00** | **82.00 ± 2.00** | **72.00 ± 2.00** | "
          "**67.00 ± 2.00** | learning_rate 0.2 | 123 |") in methods
  assert "| SimCLR | 62.00 ± 2.00 | 72.00 ± 2.00 |" in methods
  demo = _block(text, "demo")
  assert "| raw pixels (784-d) | 52.00 ± 2.00 | 62.00 ± 2.00 |" in demo
  assert "| SimCLR encoder (2048-d) | **62.00 ± 2.00** | **72.00 ± 2.00** |" in demo
  grids = _block(text, "grids")
  assert "| BYOL | learning_rate 0.1: 80.00; **learning_rate 0.2: 90.00** |" in grids
  claims = _block(text, "claims")
  # BYOL - random init: 72 - 42 = 30 points, se sqrt(4/3 + 4/3) = 1.63; Welch's
  # t = 18.4 on (8/3)^2 / (2 (4/3)^2 / 2) = 4 degrees of freedom: p = 5e-5
  assert "BYOL vs random init, linear 1%: +30.00 ± 1.63 points (p < 0.001: ahead)" in claims
  # MoCo b64 - SimCLR b64: 2 points, the same se: t = 1.22, p = 0.288
  assert ("MoCo v2 vs SimCLR, linear 1%: +2.00 ± 1.63 points (p = 0.288: within noise)"
          in claims)
  # t = 6.12 on 4 degrees of freedom: p = 0.0036
  assert "rotation vs jigsaw, linear 1%: +10.00 ± 1.63 points (p = 0.004: ahead)" in claims
  assert ("SimCLR + fine-tuning vs from scratch, 10% of the labels: +20.00 ± 1.63 points "
          "(p < 0.001: ahead)" in claims)
  # BYOL - SimCLR in every column: 10 points, se 1.63, p = 0.004 as above
  assert ("kNN k=20: BYOL has the highest mean; it leads SimCLR by 10.00 ± 1.63 points "
          "(p = 0.004: ahead)") in claims


def test_statistics_by_hand():
  assert results.mean_std([1.0, 2.0, 3.0, 6.0]) == (3.0, pytest.approx((14 / 3) ** 0.5))
  assert results.mean_std([5.0]) == (5.0, 0.0)
  d, se, p = results.difference([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
  assert d == 2.0 and se == pytest.approx((1 / 3) ** 0.5)
  # Welch: t = 2 / se = sqrt(12) on (1/3)^2 / ((1/3)^2 / 2) = 2 degrees of
  # freedom, whose two-sided tail is 1 - t / sqrt(t^2 + 2): 3.5 standard
  # errors and still within noise with three seeds
  t = 12 ** 0.5
  assert p == pytest.approx(1 - t / (t ** 2 + 2) ** 0.5)
  assert results.verdict(d, p) == "within noise"
  d, se, p = results.difference([1.0, 2.0, 3.0], [-2.0, -3.0, -4.0])
  assert p < 0.05 and results.verdict(d, p) == "ahead"
  assert results.verdict(-d, p) == "behind"
  assert results.difference([1.0, 1.0], [1.0, 1.0]) == (0.0, 0.0, 1.0)
  assert results.difference([2.0, 2.0], [1.0, 1.0]) == (1.0, 0.0, 0.0)
  assert results.verdict(0.0, 0.0) == "within noise"
  assert results.pick_winner([0.5, 0.7, 0.7]) == 1


def test_the_cpu_kind_names_family_model_and_vector_extensions():
  """Two machines called "AMD EPYC" gave different figures for one run; the
  ledger tells such machines apart by family, model and vector extensions."""
  zen3 = ("vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
          "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma bmi2\n")
  assert results.cpu_kind(zen3) == (
      "AMD EPYC (AuthenticAMD family 25 model 1; avx2, fma, no avx512f)")
  zen4 = zen3.replace(": 1\n", ": 17\n").replace("bmi2", "bmi2 avx512f avx512bw")
  assert results.cpu_kind(zen4) == "AMD EPYC (AuthenticAMD family 25 model 17; avx2, fma, avx512f)"
  assert results.cpu_kind("") == "? (? family ? model ?; no avx2, no fma, no avx512f)"


def test_the_machine_records_the_flags_of_the_training_processes():
  """The runner records the XLA flags its `sslax train` processes run with,
  even before it has imported sslax itself (else --redo-other-machines would
  take every run for another machine's)."""
  code = ("import json, sys; sys.path.insert(0, 'launch'); import results; "
          "print(json.dumps(results.machine()))")
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "SSLAX_FAST_CPU")}
  for extra, flags in (({}, sslax.FAST_CPU_FLAG), ({"SSLAX_FAST_CPU": "0"}, "")):
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, **extra},
                         capture_output=True, text=True, check=True, timeout=120)
    recorded = json.loads(out.stdout.strip().splitlines()[-1])
    assert recorded["xla_flags"] == flags
    assert "family" in recorded["cpu"] or not os.path.exists("/proc/cpuinfo")


def test_rows_whose_runs_came_from_two_kinds_of_machine_are_named():
  a = {"device": "2-core CPU", "cpu": "EPYC (family 25 model 1; avx2)", "jax": "0.10.2",
       "xla_flags": ""}
  b = {**a, "cpu": "EPYC (family 25 model 17; avx512f)"}
  done = {"figures": {"knn": {}}}
  record = {"runs": {"simclr/tune/a": {**done, "machine": a},
                     "simclr/lr1/seed0": {**done, "machine": b},
                     "byol/tune/a": {**done, "machine": a},
                     "byol/tune/b": {"machine": b},  # not finished
                     "byol/tune/c": {**done}}}  # machine not recorded
  assert results.mixed_rows(record) == {"simclr": sorted(
      [f"2-core CPU, {m['cpu']}, JAX 0.10.2, XLA_FLAGS `(none)`" for m in (a, b)])}


def test_runs_of_another_kind_of_machine_are_made_again(stand_ins, capsys, monkeypatch):
  """--redo-other-machines takes the runs of another CPU kind, or of none
  recorded, out of the ledger and moves their workdirs aside; they are
  trained again, the others are not."""
  calls, tmp_path = stand_ins
  _trained_where_evaluated(monkeypatch)
  md = _markdown(tmp_path)
  _run(tmp_path, md, "--only", "rotation")
  ledger = _ledger(tmp_path)
  runs = ledger["runs"]
  other = {**runs["rotation/learning_rate0.1/seed1"]["machine"], "cpu": "another CPU"}
  runs["rotation/learning_rate0.1/seed1"]["machine"] = other
  del runs["rotation/learning_rate0.1/seed2"]["machine"]
  with open(tmp_path / "RESULTS.json", "w") as f:
    json.dump(ledger, f)
  workdir = tmp_path / "runs" / "rotation" / "learning_rate0.1" / "seed1"
  assert (workdir / "eval").is_dir()
  calls.clear()
  _run(tmp_path, md, "--only", "rotation")
  assert calls == []  # without the flag the ledger is kept as it is
  _run(tmp_path, md, "--only", "rotation", "--redo-other-machines")
  assert sorted(c[1] for c in calls if c[0] == "train") == [
      "rotation/learning_rate0.1/seed1", "rotation/learning_rate0.1/seed2"]
  assert "2 runs made on another kind of machine than this one (test CPU" in (
      capsys.readouterr().out)
  moved = list((tmp_path / "runs" / "other_machines").glob("*/rotation/learning_rate0.1/seed1"))
  assert len(moved) == 1 and (moved[0] / "eval").is_dir()
  runs = _ledger(tmp_path)["runs"]
  assert {r["machine"]["device"] for r in runs.values()} == {"test CPU"}
  assert results.mixed_rows(_ledger(tmp_path)) == {}
  # a tuning run of another machine takes its row's grid with it, until the
  # grid is made again
  ledger = _ledger(tmp_path)
  ledger["runs"]["rotation/tune/learning_rate0.1"]["machine"]["cpu"] = "another CPU"
  (tmp_path / "RESULTS.json").write_text(json.dumps(ledger))
  monkeypatch.setattr(results, "train", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt))
  with pytest.raises(KeyboardInterrupt):
    _run(tmp_path, md, "--only", "rotation", "--redo-other-machines")
  assert "rotation" not in _ledger(tmp_path)["grids"]


def test_the_time_left_is_the_ledgers_median_per_row_and_stage():
  done = {"figures": {"knn": {}}}
  record = {"runs": {
      "simclr/tune/a": {**done, "train_seconds": 100.0, "eval_seconds": 20.0},
      "simclr/tune/b": {**done, "train_seconds": 200.0, "eval_seconds": 40.0},
      "simclr/tune/c": {**done, "train_seconds": 900.0, "eval_seconds": 60.0},
      "simclr/lr1/seed0": {**done, "train_seconds": 3000.0, "eval_seconds": 600.0},
      "byol/tune/a": {**done, "train_seconds": 60.0, "eval_seconds": 0.0},
      "byol/tune/b": {"train_seconds": 5000.0},  # not finished: no figures
  }}
  # SimCLR's tuning runs: median 240 s; BYOL's: 60 s; BYOL has no seed run
  # yet, so every row's seed runs (3600 s) stand in
  left = [("simclr", "tune", False), ("byol", "tune", False), ("byol", "seed", False)]
  assert results.hours_left(record, left) == pytest.approx((240 + 60 + 3600) / 3600)
  # a row with no tuning run: the median of all rows' tuning runs (60, 120, 240, 960)
  assert results.hours_left(record, [("jigsaw", "tune", False)]) == pytest.approx(180 / 3600)
  # a trained run left to evaluate: the evaluations' median (SimCLR's tuning: 40 s)
  assert results.hours_left(record, [("simclr", "tune", True)]) == pytest.approx(40 / 3600)
  assert results.hours_left(record, [("byol", "seed", True)]) == pytest.approx(600 / 3600)
  assert results.hours_left({"runs": {}}, [("simclr", "tune", False)]) is None
  assert results.hours_left(record, []) == 0


def test_parts_resume_and_say_what_is_left(stand_ins, capsys):
  calls, tmp_path = stand_ins
  md = _markdown(tmp_path)
  _run(tmp_path, md, "--only", "byol")
  out = capsys.readouterr().out
  assert {c[1].split("/")[0] for c in calls} == {"byol"}
  assert "RESULTS.md is rewritten when every run is finished" in out
  assert "old methods" in md.read_text()  # not rewritten yet
  _run(tmp_path, md, "--list")
  out = capsys.readouterr().out
  assert "simclr/tune/learning_rate0.5_temperature0.2: to train" in out
  assert "byol/" not in out
  # the tables of the rows finished so far, printed; RESULTS.md untouched
  _run(tmp_path, md, "--tables")
  out = capsys.readouterr().out
  assert "results: 1 of 6 rows finished (byol)" in out
  assert "| BYOL | **72.00 ± 2.00** |" in out and "SimCLR" not in out
  assert "old methods" in md.read_text()
  calls.clear()
  _run(tmp_path, md)
  assert all(not c[1].startswith("byol/") for c in calls)
  # an evaluation lost since (from the ledger and the workdir) is redone, alone
  os.remove(tmp_path / "runs" / "byol" / "learning_rate0.2" / "seed1" / "eval" / "knn.json")
  ledger = _ledger(tmp_path)
  del ledger["runs"]["byol/learning_rate0.2/seed1"]["figures"]["knn"]
  (tmp_path / "RESULTS.json").write_text(json.dumps(ledger))
  calls.clear()
  _run(tmp_path, md)
  assert calls == [("knn", "byol/learning_rate0.2/seed1", "encoder", None)]


def test_the_ledger_outlives_the_workdirs(stand_ins, capsys):
  """A fresh machine with the committed ledger and no workdir trains nothing
  the ledger holds and makes the same tables; a run whose settings changed
  since (a new grid value) is trained again, the others are not."""
  calls, tmp_path = stand_ins
  md = _markdown(tmp_path)
  _run(tmp_path, md)
  first = md.read_text()
  ledger = _ledger(tmp_path)
  entry = ledger["runs"]["byol/learning_rate0.2/seed1"]
  assert entry["overrides"] == [[LR, 0.2], ["seed", 1]]
  assert entry["figures"]["knn"]["top1_k20"] == pytest.approx(0.72)
  assert entry["figures"]["knn"]["top1_k200"] == pytest.approx(0.67)
  assert entry["machine"]["device"] == "test CPU" and entry["train_seconds"] == 10.0
  shutil.rmtree(tmp_path / "runs")
  md.write_text(_markdown(tmp_path).read_text())
  calls.clear()
  capsys.readouterr()
  _run(tmp_path, md)
  assert calls == [] and "results: 0 runs left" in capsys.readouterr().out
  assert md.read_text() == first
  # BYOL's grid gains a point: that point, then (its winner changing) BYOL's
  # seeds and the row tuned by it are trained again; nothing else is
  rows = tuple(r._replace(grid=((LR, (0.1, 0.2, 0.4)),)) if r.name == "byol" else r
               for r in ROWS)
  _run(tmp_path, md, rows=rows)
  trained = sorted(c[1] for c in calls if c[0] == "train")
  assert trained == ["byol/learning_rate0.4/seed0", "byol/learning_rate0.4/seed1",
                     "byol/learning_rate0.4/seed2", "byol/tune/learning_rate0.4",
                     "moco_v2_b64/learning_rate0.4/seed0", "moco_v2_b64/learning_rate0.4/seed1",
                     "moco_v2_b64/learning_rate0.4/seed2"]
  runs = _ledger(tmp_path)["runs"]
  assert runs["byol/learning_rate0.4/seed1"]["overrides"] == [[LR, 0.4], ["seed", 1]]
  assert runs["byol/learning_rate0.2/seed1"]["overrides"] == [[LR, 0.2], ["seed", 1]]  # kept


def test_runs_finished_in_a_workdir_alone_go_into_the_ledger(stand_ins):
  """A workdir finished before the ledger existed (or by another ledger) is
  copied into it, not trained again."""
  calls, tmp_path = stand_ins
  md = _markdown(tmp_path)
  _run(tmp_path, md, "--only", "rotation")
  os.remove(tmp_path / "RESULTS.json")
  calls.clear()
  _run(tmp_path, md, "--only", "rotation")
  assert calls == []
  runs = _ledger(tmp_path)["runs"]
  figures = runs["rotation/learning_rate0.1/seed2"]["figures"]
  assert figures["linear_0.01"]["top1"] == pytest.approx(0.69)


def test_an_evaluation_of_another_seed_probe_or_without_every_k_is_not_taken():
  job = results.seed_jobs(ROWS[1], ((LR, 0.2),), 100)[1]  # BYOL, seed 1
  assert job.seed == 1
  linear = {"top1": 0.7, "seed": 1, "step": 100, "probe_version": PROBE_VERSION}
  assert results.eval_done(linear, job, "linear")
  assert not results.eval_done({**linear, "seed": 0}, job, "linear")  # `sslax eval` default
  # a result of the probe's first version (none recorded) or another one
  assert not results.eval_done({k: v for k, v in linear.items() if k != "probe_version"},
                               job, "linear")
  assert not results.eval_done({**linear, "probe_version": PROBE_VERSION + 1}, job, "linear")
  assert not results.eval_done({**linear, "step": 50}, job, "linear")
  assert not results.eval_done(None, job, "linear")
  knn = {"top1_k20": 0.7, "top1_k200": 0.6, "step": 100}
  assert results.eval_done(knn, job, "knn")
  assert not results.eval_done({"top1_k20": 0.7, "step": 100}, job, "knn")
  assert results.eval_done({"top1_k20": 0.7, "step": 100}, job, "tune")


def test_the_config_digest_follows_the_whole_config_not_its_run_control():
  def digest(config, *overrides):
    return results.job_config_digest(results.Job("r", "w", config, overrides, 1, ()))
  base = digest("configs/simclr.py:smoke", ("seed", 0))
  assert digest("configs/simclr.py:smoke", ("seed", 0)) == base
  assert digest("configs/simclr.py:smoke", ("seed", 1)) != base
  # the same overrides on another config file's (or variant's) config
  assert digest("configs/simclr.py:fashion_mnist", ("seed", 0)) != base
  # run-control keys (data workers, logging) are not the run's settings
  assert digest("configs/simclr.py:smoke", ("seed", 0), ("data.workers", 2),
                ("log_every", 7)) == base


def test_a_ledger_entry_of_another_config_is_trained_again(stand_ins, monkeypatch):
  """An entry whose config digest differs (its config file changed since,
  with the same overrides) is not taken for the run."""
  calls, tmp_path = stand_ins
  _trained_where_evaluated(monkeypatch)
  md = _markdown(tmp_path)
  _run(tmp_path, md, "--only", "rotation")
  ledger = _ledger(tmp_path)
  assert ledger["runs"]["rotation/learning_rate0.1/seed1"]["config_digest"] == (
      results.job_config_digest(results.seed_jobs(ROWS[2], ((LR, 0.1),), 1)[1]))
  ledger["runs"]["rotation/learning_rate0.1/seed1"]["config_digest"] = "0" * 16
  (tmp_path / "RESULTS.json").write_text(json.dumps(ledger))
  shutil.rmtree(tmp_path / "runs")
  calls.clear()
  _run(tmp_path, md, "--only", "rotation")
  assert [c[1] for c in calls if c[0] == "train"] == ["rotation/learning_rate0.1/seed1"]


def test_a_workdir_holding_another_configs_run_is_refused(stand_ins, capsys):
  """A finished workdir whose config.json is not the run's is never copied
  into the ledger under the run's settings."""
  calls, tmp_path = stand_ins
  md = _markdown(tmp_path)
  _run(tmp_path, md, "--only", "rotation")
  os.remove(tmp_path / "RESULTS.json")
  from sslax.config_loading import apply_overrides, load_config_file
  other = apply_overrides(load_config_file(os.path.join(ROOT, "configs/rotation.py:smoke")),
                          ["optimizer.learning_rate=0.3", "seed=2"])
  workdir = tmp_path / "runs" / "rotation" / "learning_rate0.1" / "seed2"
  (workdir / "config.json").write_text(other.to_json())
  capsys.readouterr()
  with pytest.raises(SystemExit) as exit_info:
    _run(tmp_path, md, "--only", "rotation")
  assert exit_info.value.code == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and str(workdir) in err and "move it away" in err
  runs = _ledger(tmp_path)["runs"] if os.path.exists(tmp_path / "RESULTS.json") else {}
  assert "rotation/learning_rate0.1/seed2" not in runs
  # with the run's own config it is taken
  mine = apply_overrides(load_config_file(os.path.join(ROOT, "configs/rotation.py:smoke")),
                         ["optimizer.learning_rate=0.1", "seed=2", "progress_bar=False"])
  (workdir / "config.json").write_text(mine.to_json())
  calls.clear()
  _run(tmp_path, md, "--only", "rotation")
  assert calls == [] and "rotation/learning_rate0.1/seed2" in _ledger(tmp_path)["runs"]


def test_a_grid_is_in_the_ledger_before_its_first_seed_run_ends(stand_ins, monkeypatch):
  """A row's grid and winner are written as soon as its tuning runs are
  finished, not after the next run: a stop during the first seed run keeps
  them."""
  calls, tmp_path = stand_ins
  md = _markdown(tmp_path)
  train = results.train

  def train_until_a_seed_run(workdir, config_spec, overrides, log):
    if os.sep + "seed" in workdir:
      raise KeyboardInterrupt
    return train(workdir, config_spec, overrides, log)

  monkeypatch.setattr(results, "train", train_until_a_seed_run)
  with pytest.raises(KeyboardInterrupt):
    _run(tmp_path, md, "--only", "byol")
  grid = _ledger(tmp_path)["grids"]["byol"]
  assert grid["winner"] == {LR: 0.2} and len(grid["points"]) == 2


def test_budget_stops_starting_runs(stand_ins, capsys, monkeypatch):
  calls, tmp_path = stand_ins
  clock = iter(range(0, 10 ** 6, 100))  # each reading 100 s after the last
  monkeypatch.setattr(results, "clock", lambda: float(next(clock)))
  _run(tmp_path, _markdown(tmp_path), "--budget-minutes", "5")
  assert 1 <= len([c for c in calls if c[0] == "train"]) <= 3
  assert "budget is spent; run the same command again" in capsys.readouterr().out


def test_unknown_row_and_missing_marker(stand_ins, capsys):
  _, tmp_path = stand_ins
  with pytest.raises(SystemExit) as e:
    _run(tmp_path, _markdown(tmp_path), "--only", "simclr_v9")
  assert e.value.code == 2
  assert "unknown row simclr_v9; the rows are simclr, byol" in capsys.readouterr().err
  md = tmp_path / "RESULTS.md"
  md.write_text("no markers\n")
  with pytest.raises(SystemExit, match="has no <!-- results:"):
    _run(tmp_path, md)
  assert md.read_text() == "no markers\n"


def test_results_md_has_every_marker_the_runner_writes():
  with open(os.path.join(ROOT, "RESULTS.md")) as f:
    text = f.read()
  for marker in results.MARKERS:
    assert text.count(f"<!-- results:{marker} -->") == 1, marker
    assert text.count(f"<!-- /results:{marker} -->") == 1, marker


def test_every_row_config_and_grid_key_exists():
  """Each row's config loads and every key its grid and fixed overrides set
  is a key of that config (a typo would only show hours into the protocol)."""
  from sslax.config_loading import load_config_file
  for row in results.ROWS:
    config = load_config_file(os.path.join(ROOT, row.config))
    keys = [k for k, _ in row.grid] + [k for k, _ in row.fixed]
    for key in keys + [k for k, _ in results.TUNING]:
      node = config
      for part in key.split("."):
        assert part in node, f"{row.name}: {key}"
        node = node[part]
    if row.tuned_by:
      assert row.tuned_by in [r.name for r in results.ROWS]


@pytest.mark.slow
def test_a_tiny_grid_for_real_skips_finished_runs_and_resumes_an_interrupted_one(
    tmp_path, monkeypatch, capsys):
  """The smoke config on 600 Fashion-MNIST images: two grid points scored on
  the validation split, then two seeds; a tuning run stopped at step 2 is
  taken up from its checkpoint (its log shows steps 3 and 4 only), and a
  second start trains and evaluates nothing."""
  import numpy as np
  from sslax.config_loading import apply_overrides, load_config_file
  from sslax.data.sources import fashion_mnist
  from sslax.train import checkpoint
  from sslax.train.loop import train_and_evaluate

  train, test = fashion_mnist("train"), fashion_mnist("test")
  data = tmp_path / "fm.npz"
  a, b = train.get(np.arange(600)), test.get(np.arange(200))
  np.savez(data, images=a["image"], labels=a["label"], test_images=b["image"],
           test_labels=b["label"])
  fixed = (("data.name", "arrays"), ("data.data_dir", str(data)), ("checkpoint_every", 2),
           ("log_every", 1), ("online_eval_every", 0))
  row = results.Row("simclr", "SimCLR", "configs/simclr.py:smoke", "methods",
                    ((LR, (0.5, 1.0)),), fixed=fixed)
  monkeypatch.setattr(results, "TUNE_STEPS", 4)
  monkeypatch.setattr(results, "SEEDS", (0, 1))
  monkeypatch.setattr(results, "DEMO_ROW", "")
  root = tmp_path / "runs"
  first = results.tuning_jobs(row)[0]
  assert first.workdir == "simclr/tune/learning_rate0.5"
  config = load_config_file(os.path.join(ROOT, row.config))
  config = apply_overrides(config, [f"{k}={v}" for k, v in first.overrides])
  train_and_evaluate(config, str(root / first.workdir), stop_at=2)
  assert checkpoint.saved_steps(str(root / first.workdir)) == [2]

  def run():
    results.main(["--workdir", str(root)], rows=(row,), results_md=str(_markdown(tmp_path)),
                 ledger=str(tmp_path / "RESULTS.json"))
    return capsys.readouterr().out

  out = run()
  with open(root / "simclr_tune_learning_rate0.5.log") as f:
    steps = [int(line.split()[1].split("/")[0]) for line in f if line.startswith("step ")]
  assert steps and min(steps) == 3 and max(steps) == 4, steps
  with open(tmp_path / "RESULTS.json") as f:
    grid = json.load(f)["grids"]["simclr"]
  assert [p["settings"] for p in grid["points"]] == [{LR: 0.5}, {LR: 1.0}]
  for point in grid["points"]:  # scored on the 60 validation images
    assert 0 < point["score"] <= 1
  for name in ("learning_rate0.5", "learning_rate1"):
    with open(root / "simclr" / "tune" / name / "config.json") as f:
      data_config = json.load(f)["data"]
    assert data_config["tuning"] and data_config["eval_split"] == "validation"
  winner = grid["winner"][LR]
  for seed in (0, 1):
    with open(root / "simclr" / f"learning_rate{winner:g}" / f"seed{seed}" / "config.json") as f:
      saved = json.load(f)
    assert saved["seed"] == seed and saved["optimizer"]["learning_rate"] == winner
    assert not saved["data"]["tuning"] and saved["data"]["eval_split"] == "test"
  assert "| SimCLR |" in out and " ± " in out

  assert "results: 0 runs left" in run()
  with open(root / f"simclr_learning_rate{winner:g}_seed0.log") as f:
    assert sum(line.startswith("step 1/") for line in f) == 1  # trained once


def test_a_winner_at_the_edge_of_a_grid_is_said():
  row = results.Row("r", "R", "configs/simclr.py:smoke", "methods",
                    ((LR, (0.5, 1.0, 2.0)), ("simclr.temperature", (0.2, 0.5))))
  assert results.at_edge(row, ((LR, 2.0), ("simclr.temperature", 0.2))) == [LR]
  assert results.at_edge(row, ((LR, 0.5), ("simclr.temperature", 0.5))) == [LR]
  assert results.at_edge(row, ((LR, 1.0), ("simclr.temperature", 0.2))) == []
