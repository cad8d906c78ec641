"""`make results`: RESULTS.md's Fashion-MNIST tables under one protocol, on
this machine, with sslax's default path.

The protocol, the same for every row:

1. Tuning. Each row declares a small grid (``Row.grid``: the learning rate,
   plus the one hyperparameter its paper says matters most). Every point is a
   short run (``TUNE_STEPS`` x 256) on the training split less a seeded,
   stratified 10% validation split (``TUNING``: ``data.tuning`` makes a run
   scored on test impossible), scored by the weighted kNN top-1 (k = 20) of
   the validation examples against the rest. The best point wins (the first
   in grid order on a tie); the grid and its winner are written to the
   ledger and to RESULTS.md.
2. Seeds. The final budget (the config's 1000 steps x 256, on the whole
   training split) with the winner's settings, for each of ``SEEDS``; then
   the linear probe at 1% and 100% of the labels (the 1% subset drawn with the
   same seed) and the weighted kNN (k = 20, 200), scored on test. The SimCLR
   row also probes raw pixels and a randomly initialised encoder (the demo's
   baselines), and fine-tunes its encoder and a random one at 1% and 10% of
   the labels.
3. Tables and claims: mean +- standard deviation over the seeds per column;
   each comparison as a difference of means +- its standard error and the
   p-value of Welch's t-test, "within noise" where p >= 0.05.

It is resumable: a finished training or evaluation is skipped, an interrupted
training resumes from its last checkpoint. ``--only ROW`` runs part of it and
``--budget-minutes M`` stops starting runs after M minutes; each start says
what is left and about how long it takes here (the median time of the
ledger's runs of the same row and stage). When everything is finished the
tables between RESULTS.md's ``<!-- results:NAME -->`` markers are rewritten,
with the machines, the flags and the time they took.

The ledger (``RESULTS.json``, beside RESULTS.md; ``--ledger PATH``) keeps
every finished run's figures, settings, machine and time, and each grid with
its winner. A run it holds with the same settings (config file, overrides,
and a digest of the whole config they give) is finished even when its
workdir is gone, so the protocol can be run in parts on fresh
machines of one kind, the ledger committed between them; the tables are made
from the ledger alone. Each run records its machine (the CPU's family, model
and vector extensions, JAX, the XLA flags): ``--tables`` names the rows whose
runs came from more than one kind, and ``--redo-other-machines`` takes the
runs of every other kind out of the ledger (their workdirs moved under
``WORKDIR/other_machines``) so that they are made again on this one.

  python launch/results.py [--workdir runs/protocol] [--only simclr --only byol]
  python launch/results.py --budget-minutes 170   # one sitting; run again to go on
  python launch/results.py --list      # what is finished and left; trains nothing
  python launch/results.py --tables    # the tables of the rows finished so far
  python launch/results.py --ledger /tmp/mine.json   # keep RESULTS.json as it is
  python launch/results.py --redo-other-machines      # every row from this machine's kind
"""

import argparse
import hashlib
import itertools
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from typing import NamedTuple, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "launch"))
from benchmark import examples_per_second, run_measured, sslax_command  # noqa: E402

TUNE_STEPS = 300
SEEDS = (0, 1, 2)
# What makes a run a tuning run: scored on a validation split carved from the
# training data, never on test.
TUNING = (("data.validation_fraction", 0.1), ("data.validation_seed", 0),
          ("data.tuning", True), ("data.eval_split", "validation"))
TUNE_SCORE = "top1_k20"
LR = "optimizer.learning_rate"
clock = time.perf_counter  # (the tests' stand-in clock replaces it)


class Row(NamedTuple):
  """One row of a table: a config, its grid ((key, values) pairs, tried as
  their product), overrides every run of it gets, and ``tuned_by``: another
  row whose winner it takes instead of a grid of its own."""
  name: str
  label: str
  config: str
  table: str
  grid: Tuple = ()
  fixed: Tuple = ()
  tuned_by: str = ""


def _fm(method):
  return f"configs/{method}.py:fashion_mnist"


ROWS = (
    Row("simclr", "SimCLR", _fm("simclr"), "methods",
        ((LR, (0.5, 1.0, 2.0)), ("simclr.temperature", (0.2, 0.5)))),
    Row("moco_v1", "MoCo v1 (K = 4096, m = 0.99)", _fm("moco_v1"), "methods",
        ((LR, (0.03, 0.06, 0.12)), ("moco.temperature", (0.07, 0.2)))),
    Row("moco_v2", "MoCo v2 (K = 4096, m = 0.99)", _fm("moco_v2"), "methods",
        ((LR, (0.03, 0.06, 0.12)), ("moco.temperature", (0.1, 0.2)))),
    Row("byol", "BYOL", _fm("byol"), "methods",
        ((LR, (0.5, 1.0, 2.0)), ("byol.tau_base", (0.99, 0.996)))),
    Row("barlow_twins", "Barlow Twins", _fm("barlow_twins"), "methods",
        ((LR, (0.25, 0.5, 1.0)), ("barlow_twins.lambd", (0.005, 0.02)))),
    Row("vicreg", "VICReg (μ = 25, ν = 1)", _fm("vicreg"), "methods",
        ((LR, (1.0, 2.0, 4.0)), ("vicreg.sim_coeff", (10.0, 25.0)))),
    Row("simsiam", "SimSiam", _fm("simsiam"), "methods",
        ((LR, (0.25, 0.5, 1.0)), ("optimizer.weight_decay", (1e-4, 5e-4)))),
    Row("rotation", "rotation", _fm("rotation"), "pretext", ((LR, (0.05, 0.1, 0.2)),)),
    Row("relative_patch", "relative patch location", _fm("relative_patch"), "pretext",
        ((LR, (0.05, 0.1, 0.2)),)),
    Row("jigsaw", "jigsaw", _fm("jigsaw"), "pretext",
        ((LR, (0.05, 0.1, 0.2)), ("jigsaw.num_permutations", (30, 100)))),
    Row("exemplar", "exemplar (2,000 seeds, parametric)", _fm("exemplar"), "pretext",
        ((LR, (0.05, 0.1, 0.2)), ("exemplar.temperature", (0.07, 0.2)))),
    Row("denoising_ae", "denoising autoencoder", _fm("denoising_ae"), "pretext",
        ((LR, (5e-4, 1e-3, 2e-3)),)),
    Row("context_encoder", "context encoder", _fm("context_encoder"), "pretext",
        ((LR, (5e-4, 1e-3, 2e-3)),)),
    # MoCo's queue against SimCLR's in-batch negatives at batch 64, each with
    # its batch-256 winner (learning rates scale with the batch).
    Row("simclr_b64", "SimCLR (126 negatives)", _fm("simclr"), "batch64",
        fixed=(("global_batch_size", 64),), tuned_by="simclr"),
    Row("moco_v2_b64", "MoCo v2 (4096 queued negatives)", _fm("moco_v2"), "batch64",
        fixed=(("global_batch_size", 64), ("moco.bn_groups", 2)), tuned_by="moco_v2"),
)
DEMO_ROW = "simclr"
# The demo's rows: (features kind, label); the encoder is the SimCLR row's.
DEMO_ROWS = (("raw_pixels", "raw pixels (784-d)"),
             ("random_init", "randomly initialised encoder (2048-d)"),
             ("encoder", "SimCLR encoder (2048-d)"))
FRACTIONS = (0.01, 1.0)
FINETUNE_FRACTIONS = (0.01, 0.1)
FINETUNE_ROWS = (("random_init", "supervised from scratch (same network, subset and steps)"),
                 ("encoder", "SimCLR + fine-tuning"))
KS = (20, 200)
# (title, protocol, label fraction, figure): the probe columns of every table.
COLUMNS = (("linear 1%", "linear", 0.01, "top1"), ("linear 100%", "linear", 1.0, "top1"),
           ("kNN k=20", "knn", None, "top1_k20"), ("kNN k=200", "knn", None, "top1_k200"))
RESULTS_MD = os.path.join(ROOT, "RESULTS.md")
LEDGER = os.path.join(ROOT, "RESULTS.json")
MARKERS = ("provenance", "grids", "demo", "demo-knn", "methods", "batch64", "pretext",
           "finetune", "claims")


# --- the runs ----------------------------------------------------------------

class Job(NamedTuple):
  """One training run and the evaluations it needs."""
  row: str
  workdir: str      # relative to the results workdir
  config: str
  overrides: Tuple  # (key, value) pairs
  steps: int
  evals: Tuple      # (file name, kind, protocol, fraction)
  seed: int = 0


def grid_points(row: Row):
  """Every point of ``row.grid`` as (key, value) pairs, in declared order."""
  keys = [k for k, _ in row.grid]
  return [tuple(zip(keys, values)) for values in itertools.product(*(v for _, v in row.grid))]


def point_name(point) -> str:
  """``learning_rate0.5_temperature0.2``: a point's directory."""
  return "_".join(f"{key.rsplit('.', 1)[-1]}{value:g}" if isinstance(value, float)
                  else f"{key.rsplit('.', 1)[-1]}{value}" for key, value in point) or "default"


def linear_file(kind, fraction):
  from sslax.eval.evaluate import linear_name
  return linear_name(kind, fraction)


def finetune_file(kind, fraction):
  from sslax.eval.evaluate import finetune_name
  return finetune_name(kind, fraction)


def knn_file(kind):
  return "knn" if kind == "encoder" else f"knn_{kind}"


def final_evaluations(name):
  """The (file name, kind, protocol, fraction) a seed run of row ``name``
  needs."""
  kinds = [k for k, _ in DEMO_ROWS] if name == DEMO_ROW else ["encoder"]
  needed = []
  for kind in kinds:
    needed += [(linear_file(kind, f), kind, "linear", f) for f in FRACTIONS]
    needed.append((knn_file(kind), kind, "knn", None))
  if name == DEMO_ROW:
    needed += [(finetune_file(kind, f), kind, "finetune", f)
               for kind, _ in FINETUNE_ROWS for f in FINETUNE_FRACTIONS]
  return tuple(needed)


TUNE_EVALUATIONS = (("knn", "encoder", "tune", None),)


def num_steps(config_spec):
  from sslax.config_loading import load_config_file
  return load_config_file(os.path.join(ROOT, config_spec)).num_steps


def tuning_jobs(row: Row):
  if row.tuned_by or not row.grid:
    return []
  return [Job(row.name, os.path.join(row.name, "tune", point_name(p)), row.config,
              (*row.fixed, *p, ("num_steps", TUNE_STEPS), *TUNING), TUNE_STEPS,
              TUNE_EVALUATIONS) for p in grid_points(row)]


def seed_run(name, winner, seed) -> str:
  """A seed run's workdir, named by its settings: a new winner is a new run,
  never a finished run of other settings taken for it."""
  return os.path.join(name, point_name(winner), f"seed{seed}")


def seed_jobs(row: Row, winner, steps):
  return [Job(row.name, seed_run(row.name, winner, s), row.config,
              (*row.fixed, *winner, ("seed", s)), steps, final_evaluations(row.name), s)
          for s in SEEDS]


def read_eval(workdir, file_name):
  path = os.path.join(workdir, "eval", f"{file_name}.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def trained(workdir, steps):
  from sslax.train.checkpoint import latest_step
  return os.path.isdir(workdir) and latest_step(workdir) == steps


def config_digest(config: dict) -> str:
  """A short hash of a comparable config (``comparable_config``)."""
  return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def job_config_digest(job: Job) -> str:
  """The digest of the config ``sslax train`` runs ``job`` with (its config
  file's, with its overrides), less the run-control keys: a changed config
  file changes it, though the overrides stay the same."""
  from sslax.config_loading import apply_overrides, load_config_file
  from sslax.train.run_config import comparable_config
  config = apply_overrides(load_config_file(os.path.join(ROOT, job.config)),
                           [f"{k}={v}" for k, v in job.overrides])
  return config_digest(comparable_config(json.loads(config.to_json())))


def settings(job: Job):
  """What makes a ledger entry this job's: its config file, its overrides and
  the digest of the whole config they give."""
  return {"config": job.config, "overrides": [list(kv) for kv in job.overrides],
          "config_digest": job_config_digest(job)}


def same_settings(entry, job: Job) -> bool:
  return {k: entry.get(k) for k in ("config", "overrides", "config_digest")} == settings(job)


def eval_done(result, job: Job, protocol) -> bool:
  """Whether an evaluation's result is one ``job`` needs: at its last step,
  of its seed (the labelled subset's), with every k of its kNN, and a linear
  probe's of the probe's current version (``sslax.probes.linear.VERSION``)."""
  from sslax.probes.linear import VERSION
  if not result or result.get("step") != job.steps:
    return False
  if protocol in ("linear", "finetune") and result.get("seed") != job.seed:
    return False
  if protocol == "linear" and result.get("probe_version") != VERSION:
    return False
  ks = (20,) if protocol == "tune" else KS if protocol == "knn" else ()
  return all(f"top1_k{k}" in result for k in ks)


def check_workdir_config(workdir, job: Job):
  """Refuses (one line, exit 2) a workdir whose saved config is not the
  one ``job`` runs: its figures are another run's."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  from sslax.train.run_config import comparable_config
  with open(path) as f:
    saved = comparable_config(json.load(f))
  if config_digest(saved) != job_config_digest(job):
    print(f"results: error: {workdir} holds a run of another config than {job.workdir}'s "
          f"({job.config} with {settings_text(job.overrides)}); move it away and run "
          "again", file=sys.stderr)
    sys.exit(2)


def entry_of(record, job: Job) -> dict:
  """The ledger's entry of ``job``, a fresh one (its settings only) in place of
  an entry of other settings or none."""
  entry = record["runs"].get(job.workdir, {})
  if not same_settings(entry, job):
    entry = record["runs"][job.workdir] = settings(job)
  return entry


def recorded(record, job: Job) -> bool:
  """Whether the ledger holds ``job`` finished: the same config and
  overrides, and every evaluation it needs at its last step."""
  entry = record["runs"].get(job.workdir, {})
  return same_settings(entry, job) and all(
      eval_done(entry.get("figures", {}).get(f), job, protocol)
      for f, _, protocol, _ in job.evals)


def finished(root, record, job: Job) -> bool:
  """Finished in the ledger, or in its workdir (then copied to the ledger, so
  that it outlives the workdir)."""
  if recorded(record, job):
    return True
  workdir = os.path.join(root, job.workdir)
  figures = {f: read_eval(workdir, f) for f, *_ in job.evals}
  if not (all(eval_done(figures[f], job, protocol) for f, _, protocol, _ in job.evals)
          and trained(workdir, job.steps)):
    return False
  check_workdir_config(workdir, job)
  entry_of(record, job)["figures"] = figures
  return True


def figure(record, run, file_name, key):
  """One figure of a finished run (``run``: its workdir under the results
  workdir) from the ledger."""
  return record["runs"][run]["figures"][file_name][key]


def pick_winner(scores):
  """The index of the highest score (the first on a tie)."""
  return max(range(len(scores)), key=lambda i: (scores[i], -i))


def at_edge(row: Row, winner) -> list:
  """The keys of ``row.grid`` (of more than two values) whose winning value
  is its lowest or highest: the best setting may lie outside the grid."""
  chosen = dict(winner)
  return [key for key, values in row.grid
          if len(values) > 2 and chosen[key] in (min(values), max(values))]


def winner_of(root, record, row: Row, rows):
  """The winning point of ``row``'s grid (or of the row it is tuned by) from
  its tuning runs, or None while any is unfinished; the grid and its winner
  go into the ledger's ``grids``."""
  source = next(r for r in rows if r.name == row.tuned_by) if row.tuned_by else row
  if not source.grid:
    return ()
  jobs = tuning_jobs(source)
  if not all([finished(root, record, j) for j in jobs]):
    return None
  scores = [figure(record, j.workdir, "knn", TUNE_SCORE) for j in jobs]
  points = grid_points(source)
  best = points[pick_winner(scores)]
  record.setdefault("grids", {})[source.name] = {
      "score": f"validation kNN {TUNE_SCORE}", "steps": TUNE_STEPS,
      "points": [{"settings": dict(p), "score": s} for p, s in zip(points, scores)],
      "winner": dict(best), "at_edge": at_edge(source, best)}
  return best


def train(workdir, config_spec, overrides, log):
  """Trains (or resumes) in its own process; returns (seconds, peak GB)."""
  cmd = sslax_command() + ["train", "--config", os.path.join(ROOT, config_spec),
                           "--workdir", workdir, "--config.progress_bar=False",
                           *[f"--config.{k}={v}" for k, v in overrides]]
  print(f"results: sslax train --config {config_spec} --workdir {workdir} "
        + " ".join(f"--config.{k}={v}" for k, v in overrides) + f" (log: {log})", flush=True)
  return run_measured(cmd, log)


def evaluate(workdir, job: Job):
  from sslax.eval.evaluate import evaluate_finetune, evaluate_knn, evaluate_linear
  for file_name, kind, protocol, fraction in job.evals:
    if eval_done(read_eval(workdir, file_name), job, protocol):
      continue
    print(f"results: {job.workdir}: {protocol} on {kind} features"
          + (f" at {fraction:.0%} of the labels" if fraction else ""), flush=True)
    if protocol == "tune":
      evaluate_knn(workdir, ks=(20,), kind=kind)
    elif protocol == "linear":
      evaluate_linear(workdir, fraction=fraction, kind=kind, seed=job.seed)
    elif protocol == "finetune":
      evaluate_finetune(workdir, fraction=fraction, kind=kind, seed=job.seed)
    else:
      evaluate_knn(workdir, ks=KS, kind=kind)


def cpu_kind(cpuinfo):
  """The CPU's vendor, family, model and vector extensions from /proc/cpuinfo's
  text: machines of one model name can give different figures for one run,
  so the ledger records which kind each run came from."""
  def field(name):
    found = re.search(rf"^{name}\s*:\s*(.*)$", cpuinfo, re.M)
    return found.group(1).strip() if found else "?"
  flags = set(field("flags").split())
  vectors = ", ".join(f if f in flags else f"no {f}" for f in ("avx2", "fma", "avx512f"))
  return (f"{field('model name')} ({field('vendor_id')} family {field('cpu family')} "
          f"model {field('model')}; {vectors})")


def machine():
  try:
    with open("/proc/cpuinfo") as f:
      cpu = cpu_kind(f.read())
  except OSError:
    cpu = platform.processor() or platform.machine()
  import jax
  import sslax
  devices = jax.devices()
  on_cpu = devices[0].platform == "cpu"
  return {"device": f"{os.cpu_count()}-core CPU" if on_cpu
                    else f"{len(devices)} x {devices[0].device_kind}",
          "cpu": cpu, "jax": jax.__version__, "python": platform.python_version(),
          # the flags of the `sslax train` processes, whether or not this
          # process has imported sslax yet
          "xla_flags": sslax.fast_cpu_xla_flags(os.environ)}


def machine_kind(m):
  """What of a ledger's ``machine`` changes a run's figures: the device, the
  CPU kind, JAX and the XLA flags."""
  return (f"{m['device']}, {m.get('cpu', 'CPU kind not recorded')}, JAX {m['jax']}, "
          f"XLA_FLAGS `{m['xla_flags'] or '(none)'}`")


def mixed_rows(record):
  """{row: sorted machine kinds} for the rows whose finished runs came from
  more than one kind of machine: their figures mix two roundings."""
  kinds = {}
  for name, run in record["runs"].items():
    if "figures" in run and "machine" in run:
      kinds.setdefault(name.split("/")[0], set()).add(machine_kind(run["machine"]))
  return {row: sorted(k) for row, k in kinds.items() if len(k) > 1}


def redo_other_machines(root, record, here):
  """Takes out of the ledger every finished run made on another kind of
  machine than ``here`` (or on one it did not record), and moves its workdir,
  if any, under ``root/other_machines/<time>/``, so that the runs are made
  again here and every row comes from one kind. Returns their names."""
  moved_to = os.path.join(root, "other_machines", time.strftime("%Y%m%d-%H%M%S"))
  gone = []
  for name, run in sorted(record["runs"].items()):
    if "figures" not in run or (
        "machine" in run and machine_kind(run["machine"]) == machine_kind(here)):
      continue
    del record["runs"][name]
    gone.append(name)
    if stage(name) == "tune":  # its grid is made again with it
      record.get("grids", {}).pop(name.split(os.sep)[0], None)
    workdir = os.path.join(root, name)
    if os.path.isdir(workdir):
      os.makedirs(os.path.dirname(os.path.join(moved_to, name)), exist_ok=True)
      os.replace(workdir, os.path.join(moved_to, name))
  return gone


# --- statistics and tables ------------------------------------------------------

def mean_std(values):
  """Mean and sample standard deviation (n - 1; 0 for a single value)."""
  n = len(values)
  mean = sum(values) / n
  var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
  return mean, math.sqrt(var)


def difference(a, b):
  """``(d, se, p)``: the difference of the means of ``a`` and ``b``, its
  standard error sqrt(s_a^2 / n_a + s_b^2 / n_b) and the two-sided p-value
  of Welch's t-test (unequal variances; with three seeds a side its degrees
  of freedom are 2 to 4, so a difference needs about 3 to 4 standard errors
  to reach p < 0.05)."""
  from scipy import stats
  (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
  se = math.sqrt(sa ** 2 / len(a) + sb ** 2 / len(b))
  if se == 0:
    return ma - mb, 0.0, float(ma == mb)
  p = stats.ttest_ind_from_stats(ma, sa, len(a), mb, sb, len(b), equal_var=False).pvalue
  return ma - mb, se, float(p)


ALPHA = 0.05


def verdict(d, p) -> str:
  """"ahead" or "behind" where Welch's test gives p < ALPHA, else "within
  noise"."""
  if p >= ALPHA or d == 0:
    return "within noise"
  return "ahead" if d > 0 else "behind"


def p_text(p) -> str:
  return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def cell(values) -> str:
  mean, std = mean_std([100 * v for v in values])
  return f"{mean:.2f} ± {std:.2f}"


def bold_best(rows, columns, means):
  """Marks each column's highest mean in bold (ties all bold)."""
  for c in columns:
    best = max(m[c] for m in means)
    for r, m in zip(rows, means):
      if m[c] == best:
        r[c] = f"**{r[c]}**"
  return rows


def markdown(header, rows):
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
  return "\n".join(lines)


def seed_values(record, name, file_name, key):
  """One figure of row ``name`` for each seed."""
  winner = record["winners"][name]
  return [figure(record, seed_run(name, winner, s), file_name, key) for s in SEEDS]


def row_values(record, name, kind="encoder"):
  """{column title: [figure per seed]} of the four probe columns."""
  return {title: seed_values(record, name, linear_file(kind, fraction)
                             if protocol == "linear" else knn_file(kind), key)
          for title, protocol, fraction, key in COLUMNS}


def settings_text(winner) -> str:
  return ", ".join(f"{k.rsplit('.', 1)[-1]} {v:g}" if isinstance(v, float)
                   else f"{k.rsplit('.', 1)[-1]} {v}" for k, v in winner) or "config's own"


def mean_table(header, labelled_values, extra=None):
  """Rows of ``label | mean ± std per column``, each column's highest mean in
  bold; ``labelled_values`` is a list of (label, {column: values}) whose
  dicts' keys, in order, are the columns after the label; ``extra``: more
  cells per row."""
  columns = list(labelled_values[0][1])
  rows = [[label] + [cell(values[c]) for c in columns] + (extra[i] if extra else [])
          for i, (label, values) in enumerate(labelled_values)]
  means = [[None] + [mean_std(values[c])[0] for c in columns]
           for _, values in labelled_values]
  return markdown(header, bold_best(rows, range(1, 1 + len(columns)), means))


def claim(name_a, values_a, name_b, values_b, column) -> str:
  d, se, p = difference([100 * v for v in values_a], [100 * v for v in values_b])
  return (f"{name_a} vs {name_b}, {column}: {d:+.2f} ± {se:.2f} points "
          f"({p_text(p)}: {verdict(d, p)})")


def claims(record, rows):
  """Each claim the results make, recomputed, as Markdown list lines."""
  by = {r.name: r for r in rows}
  values = {r.name: row_values(record, r.name) for r in rows}
  titles = [t for t, *_ in COLUMNS]
  out = []

  def comparison(heading, a, b, label_a, label_b):
    out.append(f"- {heading}")
    out.extend(f"  - {claim(label_a, a[t], label_b, b[t], t)}" for t in a if t in b)

  if "moco_v2_b64" in by and "simclr_b64" in by:
    comparison("MoCo's queue beats SimCLR at batch 64:", values["moco_v2_b64"],
               values["simclr_b64"], "MoCo v2", "SimCLR")
  if "byol" in by and DEMO_ROW in by:
    comparison("BYOL does not collapse (against the randomly initialised encoder):",
               values["byol"], row_values(record, DEMO_ROW, "random_init"), "BYOL",
               "random init")
  pretext = [r.name for r in rows if r.table == "pretext"]
  if "rotation" in pretext and len(pretext) > 1:
    out.append("- rotation is the strongest pretext task (against the best other row "
               "of each column):")
    for t in titles:
      best = max((n for n in pretext if n != "rotation"),
                 key=lambda n: mean_std(values[n][t])[0])
      out.append("  - " + claim("rotation", values["rotation"][t], by[best].label,
                                values[best][t], t))
  if DEMO_ROW in by:
    out.append("- pretraining plus fine-tuning beats training from scratch:")
    for fraction in FINETUNE_FRACTIONS:
      pre = seed_values(record, DEMO_ROW, finetune_file("encoder", fraction), "top1")
      scratch = seed_values(record, DEMO_ROW, finetune_file("random_init", fraction), "top1")
      out.append("  - " + claim("SimCLR + fine-tuning", pre, "from scratch", scratch,
                                f"{fraction:.0%} of the labels"))
  methods = [r.name for r in rows if r.table == "methods"]
  if len(methods) > 1:
    out.append("- the methods table, column by column:")
  for t in titles:
    if len(methods) < 2:
      break
    best = max(methods, key=lambda n: mean_std(values[n][t])[0])
    gaps = sorted((difference([100 * v for v in values[best][t]],
                              [100 * v for v in values[n][t]]), by[n].label)
                  for n in methods if n != best)
    leads = [f"{label} by {d:.2f} ± {se:.2f} points ({p_text(p)}: {verdict(d, p)})"
             for (d, se, p), label in gaps]
    out.append(f"  - {t}: {by[best].label} has the highest mean; it leads "
               + "; ".join(leads))
  return "\n".join(out)


def grids_table(record, rows):
  lines = []
  for row in rows:
    grid = record.get("grids", {}).get(row.name)
    if row.tuned_by or not grid:
      continue
    cells = []
    for point in grid["points"]:
      text = f"{settings_text(tuple(point['settings'].items()))}: {100 * point['score']:.2f}"
      cells.append(f"**{text}**" if point["settings"] == grid["winner"] else text)
    edge = grid.get("at_edge") or []
    lines.append([row.label, "; ".join(cells) + (
        f" (the winner is at the edge of the {', '.join(k.rsplit('.', 1)[-1] for k in edge)} "
        "range)" if edge else "")])
  return markdown(["row", f"grid ({TUNE_STEPS} steps x 256, validation kNN top-1 at k = 20; "
                   "winner in bold)"], lines)


def tables(record, rows=ROWS):
  """The Markdown for each RESULTS.md marker, from the ledger."""
  by = {r.name: r for r in rows}
  winners = {r.name: tuple(record["winners"].get(r.name, ())) for r in rows}

  def table_rows(table):
    return [r for r in rows if r.table == table]

  def rate(name):
    rates = [record["runs"][seed_run(name, record["winners"][name], s)].get(
        "examples_per_second") for s in SEEDS]
    rates = [r for r in rates if r]
    return f"{sum(rates) / len(rates):.0f}" if rates else "–"

  def method_rows(table):
    members = table_rows(table)
    return mean_table(
        ["row", *[t for t, *_ in COLUMNS], "settings", "examples/s"],
        [(r.label, row_values(record, r.name)) for r in members],
        [[settings_text(winners[r.name]), rate(r.name)] for r in members])

  blocks = {}
  if DEMO_ROW in by:
    demo = [(label, row_values(record, DEMO_ROW, kind)) for kind, label in DEMO_ROWS]
    lin = [(label, {t: v[t] for t in ("linear 1%", "linear 100%")}) for label, v in demo]
    knn = [(label, {t: v[t] for t in ("kNN k=20", "kNN k=200")}) for label, v in demo]
    blocks["demo"] = mean_table(["Fashion-MNIST, linear probe, test top-1", *lin[0][1]], lin)
    blocks["demo-knn"] = mean_table(["Fashion-MNIST, kNN test top-1", *knn[0][1]], knn)
    fine = [(label, {f"{f:.0%} labels": seed_values(record, DEMO_ROW, finetune_file(kind, f),
                                                      "top1") for f in FINETUNE_FRACTIONS})
            for kind, label in FINETUNE_ROWS]
    blocks["finetune"] = mean_table(["Fashion-MNIST, fine-tuning, test top-1", *fine[0][1]],
                                    fine)
  for table in ("methods", "batch64", "pretext"):
    if table_rows(table):
      blocks[table] = method_rows(table)
  blocks["grids"] = grids_table(record, rows)
  blocks["claims"] = claims(record, rows)
  runs = [record["runs"][j.workdir] for r in rows for j in all_jobs(record, r)]
  total = sum(r.get("train_seconds", 0) + r.get("eval_seconds", 0) for r in runs)
  machines = sorted({json.dumps(r["machine"], sort_keys=True) for r in runs if "machine" in r})
  where = "; ".join(f"a {machine_kind(m)}, Python {m['python']}"
                    for m in map(json.loads, machines))
  blocks["provenance"] = (
      f"Produced by `make results` (`python launch/results.py`, its ledger RESULTS.json) on "
      f"{where}; "
      f"protocol: grids of {TUNE_STEPS}-step runs scored on a 10% validation split, then "
      f"seeds {', '.join(str(s) for s in SEEDS)} at each config's budget; mean ± sample standard "
      f"deviation (n − 1) over the seeds; claims by Welch's t-test; {total / 3600:.1f} hours of training and evaluation in all.")
  return blocks


def rewrite_results_md(blocks, path=RESULTS_MD):
  """Replaces the text between ``<!-- results:NAME -->`` and
  ``<!-- /results:NAME -->`` for each block; other text is left alone."""
  with open(path) as f:
    text = f.read()
  for name, body in blocks.items():
    pattern = re.compile(rf"(<!-- results:{name} -->\n).*?(<!-- /results:{name} -->)", re.S)
    if not pattern.search(text):
      sys.exit(f"results: {path} has no <!-- results:{name} --> ... "
               f"<!-- /results:{name} --> markers")
    text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
  with open(path, "w") as f:
    f.write(text)


# --- the command ---------------------------------------------------------------

def plan(root, rows, record):
  """(jobs that can run now, the (row, stage, evaluation only) of every run
  left): tuning runs, then the seed runs of rows whose winner is known."""
  steps = {r.name: num_steps(r.config) for r in rows}
  ready, waiting = [], []
  for row in rows:
    tune = tuning_jobs(row)
    ready += [j for j in tune if not finished(root, record, j)]
    winner = winner_of(root, record, row, rows)
    if winner is None:
      waiting += [(row.name, "seed", False)] * len(SEEDS)
      continue
    record["winners"][row.name] = [list(kv) for kv in winner]
    ready += [j for j in seed_jobs(row, winner, steps[row.name])
              if not finished(root, record, j)]
  return ready, [(j.row, stage(j.workdir), trained(os.path.join(root, j.workdir), j.steps))
                 for j in ready] + waiting


def stage(run: str) -> str:
  """A run's stage: "tune" for a grid point's (``row/tune/point``), else
  "seed"."""
  return "tune" if run.split(os.sep)[1] == "tune" else "seed"


def hours_left(record, left):
  """About how long the runs ``left`` ((row, stage, evaluation only)) take:
  each the median training and evaluation time (or evaluation time alone) of
  the ledger's runs of its row and stage, else of its stage in every row;
  None before the ledger has one."""
  times = {}
  for run, entry in record["runs"].items():
    if "train_seconds" in entry and entry.get("figures"):
      evaluation = entry.get("eval_seconds", 0.0)
      for only in (False, True):
        seconds = evaluation + (0.0 if only else entry["train_seconds"])
        times.setdefault((run.split(os.sep)[0], stage(run), only), []).append(seconds)
        times.setdefault((stage(run), only), []).append(seconds)
  estimates = [times.get((row, kind, only)) or times.get((kind, only))
               for row, kind, only in left]
  if not all(estimates):
    return None
  return sum(statistics.median(t) for t in estimates) / 3600


def finished_rows(root, rows, record):
  """The rows whose grid (or their tuner's) and seed runs are all finished;
  their winners go into ``record["winners"]``."""
  done = []
  for row in rows:
    winner = winner_of(root, record, row, rows)
    if winner is None:
      continue
    if all([finished(root, record, j)
            for j in seed_jobs(row, winner, num_steps(row.config))]):
      record["winners"][row.name] = [list(kv) for kv in winner]
      done.append(row)
  return done


def all_jobs(record, row: Row):
  """Every run of a finished row: its grid's and its seeds'."""
  winner = tuple(map(tuple, record["winners"][row.name]))
  return tuning_jobs(row) + seed_jobs(row, winner, num_steps(row.config))


def run_job(root, job: Job, record):
  workdir = os.path.join(root, job.workdir)
  check_workdir_config(workdir, job)
  entry = entry_of(record, job)
  entry.setdefault("train_seconds", 0.0)
  entry.setdefault("eval_seconds", 0.0)
  # (No peak memory: a process forked from this one after it has evaluated
  # in-process inherits its resident set in ru_maxrss.)
  if not trained(workdir, job.steps):
    log = os.path.join(root, job.workdir.replace(os.sep, "_") + ".log")
    seconds, _ = train(workdir, job.config, job.overrides, log)
    entry["train_seconds"] += seconds
  entry["examples_per_second"] = examples_per_second(workdir)
  entry["machine"] = machine()
  start = time.perf_counter()
  evaluate(workdir, job)
  entry["eval_seconds"] += time.perf_counter() - start
  entry["figures"] = {f: read_eval(workdir, f) for f, *_ in job.evals}


def read_ledger(path):
  if not os.path.exists(path):
    return {"runs": {}}
  with open(path) as f:
    return json.load(f)


def write_ledger(record, path):
  """Written whole, then renamed over the old one: an interrupted write
  loses nothing."""
  kept = {k: v for k, v in record.items() if k != "winners"}
  with open(path + ".tmp", "w") as f:
    json.dump(kept, f, indent=1)
    f.write("\n")
  os.replace(path + ".tmp", path)


def main(argv=None, rows=ROWS, results_md=RESULTS_MD, ledger=LEDGER):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", default=os.path.join(ROOT, "runs", "protocol"))
  parser.add_argument("--ledger", default=ledger,
                      help="the figures of every finished run (default: RESULTS.json)")
  parser.add_argument("--only", action="append", metavar="ROW",
                      help="run only these rows (repeatable): " + ", ".join(r.name for r in rows))
  parser.add_argument("--budget-minutes", type=float, default=0,
                      help="start no run after this many minutes (0: no limit)")
  parser.add_argument("--list", action="store_true", help="say what is left and stop")
  parser.add_argument("--redo-other-machines", action="store_true",
                      help="first take the runs made on another kind of machine (CPU, "
                           "JAX, XLA flags) out of the ledger, so that they are made "
                           "again here; their workdirs go under WORKDIR/other_machines")
  parser.add_argument("--tables", action="store_true",
                      help="print the tables of the rows finished so far and stop "
                      "(RESULTS.md is rewritten only when every row is)")
  args = parser.parse_args(argv)
  names = [r.name for r in rows]
  unknown = sorted(set(args.only or ()) - set(names))
  if unknown:
    print(f"results: error: unknown row {', '.join(unknown)}; the rows are "
          f"{', '.join(names)}", file=sys.stderr)
    sys.exit(2)
  if args.redo_other_machines and (args.list or args.tables):
    print("results: error: --redo-other-machines changes the ledger; run it without "
          "--list and --tables", file=sys.stderr)
    sys.exit(2)
  root = os.path.abspath(args.workdir)
  os.makedirs(root, exist_ok=True)
  record = read_ledger(args.ledger)
  record["winners"] = {}
  if args.tables:
    done = finished_rows(root, rows, record)
    print(f"results: {len(done)} of {len(rows)} rows finished"
          + (f" ({', '.join(r.name for r in done)})" if done else ""))
    for row, kinds in mixed_rows(record).items():
      print(f"results: {row}'s runs come from {len(kinds)} kinds of machine: "
            + "; ".join(kinds))
    if done:
      blocks = tables(record, done)
      for name in MARKERS:
        if name in blocks:
          print(blocks[name] + "\n")
    return
  if args.redo_other_machines:
    here = machine()
    gone = redo_other_machines(root, record, here)
    write_ledger(record, args.ledger)
    print(f"results: {len(gone)} runs made on another kind of machine than this one "
          f"({machine_kind(here)}) will be made again here", flush=True)
  started = clock()
  while True:
    before = json.dumps([record["runs"], record.get("grids")])
    ready, left = plan(root, rows, record)
    if not args.list and json.dumps([record["runs"], record.get("grids")]) != before:
      write_ledger(record, args.ledger)  # the runs found finished in a workdir, new grids
    mine = [j for j in ready if not args.only or j.row in args.only]
    hours = hours_left(record, left)
    to_evaluate = sum(only for *_, only in left)
    print(f"results: {len(left)} runs left"
          + (f", {to_evaluate} of them trained and left to evaluate" if to_evaluate else "")
          + (f" ({len(mine)} can start now" + (" in --only's rows" if args.only else "") + ")"
             if left else "")
          + (f"; about {hours:.1f} hours at the pace of the ledger's runs"
             if left and hours is not None else ""), flush=True)
    if args.list:
      for job in ready:
        print(f"  {job.workdir}: " + ("needs evaluation" if trained(
            os.path.join(root, job.workdir), job.steps) else "to train"))
      return
    if not mine:
      break
    if args.budget_minutes and clock() - started > 60 * args.budget_minutes:
      print(f"results: the {args.budget_minutes:g}-minute budget is spent; run the same "
            "command again to go on", flush=True)
      break
    record["protocol"] = {"tune_steps": TUNE_STEPS, "seeds": list(SEEDS),
                          "tuning": [list(kv) for kv in TUNING], "tune_score": TUNE_SCORE}
    run_job(root, mine[0], record)
    write_ledger(record, args.ledger)
  if left:
    print("results: RESULTS.md is rewritten when every run is finished "
          "(`python launch/results.py --list` says what is left)")
    return
  blocks = tables(record, rows)
  rewrite_results_md(blocks, results_md)
  for name in MARKERS:
    if name in blocks:
      print(blocks[name] + "\n")
  print(f"results: RESULTS.md rewritten; every figure is in {args.ledger}")


if __name__ == "__main__":
  main()
