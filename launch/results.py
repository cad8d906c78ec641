"""`make results`: regenerates RESULTS.md's demo tables and its table of
self-supervised methods on Fashion-MNIST, on this machine, with sslax's
default path.

Every run trains its config's ``fashion_mnist`` variant (1000 steps x 256,
seed 0) in its own process (so its peak memory is its own), then the linear
probe at 1% and 100% of the labels and the weighted kNN (k = 20, 200). The
SimCLR run is the demo's, and its raw-pixel and random-init baselines are
probed the same way.

It is resumable: a finished training or evaluation is skipped, an interrupted
training resumes from its last checkpoint. ``--only NAME`` runs part of it;
each start says which runs are finished and which are left. When every run is
finished the tables between RESULTS.md's ``<!-- results:NAME -->`` markers are
rewritten, with the machine, the XLA flags and the time they took.

  python launch/results.py [--workdir runs/results] [--only simclr --only byol]
  python launch/results.py --list      # the runs and what is left; trains nothing

On this 2-core CPU the whole of it takes about an hour (RESULTS.md says how
long it took last).
"""

import argparse
import json
import os
import platform
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "launch"))
from benchmark import examples_per_second, run_measured, sslax_command  # noqa: E402

# (run name, row label, config): the methods table, in RESULTS.md's order.
METHODS = (
    ("simclr", "SimCLR", "configs/simclr.py:fashion_mnist"),
    ("moco_v1", "MoCo v1 (K = 4096, m = 0.99)", "configs/moco_v1.py:fashion_mnist"),
    ("moco_v2", "MoCo v2 (K = 4096, m = 0.99)", "configs/moco_v2.py:fashion_mnist"),
    ("byol", "BYOL", "configs/byol.py:fashion_mnist"),
    ("barlow_twins", "Barlow Twins", "configs/barlow_twins.py:fashion_mnist"),
    ("vicreg", "VICReg (λ = μ = 25, ν = 1)", "configs/vicreg.py:fashion_mnist"),
    ("simsiam", "SimSiam", "configs/simsiam.py:fashion_mnist"),
)
# The demo's rows: (features kind, label); the encoder is the SimCLR run's.
DEMO_ROWS = (("raw_pixels", "raw pixels (784-d)"),
             ("random_init", "randomly initialised encoder (2048-d)"),
             ("encoder", "SimCLR encoder (2048-d)"))
FRACTIONS = (0.01, 1.0)
KS = (20, 200)
RESULTS_MD = os.path.join(ROOT, "RESULTS.md")


def linear_file(kind, fraction):
  from sslax.eval.evaluate import linear_name
  return linear_name(kind, fraction)


def knn_file(kind):
  return "knn" if kind == "encoder" else f"knn_{kind}"


def evaluations(name):
  """The (file name, kind, protocol, fraction) a run needs."""
  kinds = [k for k, _ in DEMO_ROWS] if name == "simclr" else ["encoder"]
  needed = []
  for kind in kinds:
    needed += [(linear_file(kind, f), kind, "linear", f) for f in FRACTIONS]
    needed.append((knn_file(kind), kind, "knn", None))
  return needed


def num_steps(config_spec):
  from sslax.config_loading import load_config_file
  return load_config_file(os.path.join(ROOT, config_spec)).num_steps


def read_eval(workdir, file_name):
  path = os.path.join(workdir, "eval", f"{file_name}.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def trained(workdir, steps):
  from sslax.train.checkpoint import latest_step
  return os.path.isdir(workdir) and latest_step(workdir) == steps


def finished(workdir, name, steps):
  return trained(workdir, steps) and all(
      (read_eval(workdir, f) or {}).get("step") == steps for f, *_ in evaluations(name))


def train(workdir, config_spec, log):
  """Trains (or resumes) in its own process; returns (seconds, peak GB)."""
  cmd = sslax_command() + ["train", "--config", os.path.join(ROOT, config_spec),
                           "--workdir", workdir, "--config.progress_bar=False"]
  print(f"results: sslax train --config {config_spec} --workdir {workdir} (log: {log})",
        flush=True)
  return run_measured(cmd, log)


def evaluate(workdir, name, steps):
  from sslax.eval.evaluate import evaluate_knn, evaluate_linear
  for file_name, kind, protocol, fraction in evaluations(name):
    if (read_eval(workdir, file_name) or {}).get("step") == steps:
      continue
    print(f"results: {name}: {protocol} on {kind} features"
          + (f" at {fraction:.0%} of the labels" if fraction else ""), flush=True)
    if protocol == "linear":
      evaluate_linear(workdir, fraction=fraction, kind=kind)
    else:
      evaluate_knn(workdir, ks=KS, kind=kind)


def machine():
  model = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      names = re.findall(r"^model name\s*:\s*(.+)$", f.read(), re.M)
    model = names[0].strip() if names else model
  except OSError:
    pass
  import jax
  devices = jax.devices()
  kind = devices[0].device_kind if devices[0].platform != "cpu" else model
  return {"device": f"{len(devices)} x {kind}" if devices[0].platform != "cpu"
                    else f"{os.cpu_count()}-core {model} CPU",
          "jax": jax.__version__, "python": platform.python_version(),
          "xla_flags": os.environ.get("XLA_FLAGS", "")}


def pct(result, key):
  return f"{100 * result[key]:.2f}"


def bold_best(rows, columns):
  """Marks each column's highest figure in bold (ties all bold)."""
  for c in columns:
    best = max(float(r[c]) for r in rows)
    for r in rows:
      if float(r[c]) == best:
        r[c] = f"**{r[c]}**"
  return rows


def markdown(header, rows):
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
  return "\n".join(lines)


def tables(workdir, record, methods=METHODS):
  """The Markdown for each RESULTS.md marker."""
  demo_dir = os.path.join(workdir, "simclr")
  demo = []
  knn = []
  for kind, label in DEMO_ROWS:
    lin = [read_eval(demo_dir, linear_file(kind, f)) for f in FRACTIONS]
    k = read_eval(demo_dir, knn_file(kind))
    demo.append([label, pct(lin[0], "top1"), pct(lin[1], "top1")])
    knn.append([label] + [pct(k, f"top1_k{n}") for n in KS])
  rows = []
  for name, label, _ in methods:
    run_dir = os.path.join(workdir, name)
    lin = [read_eval(run_dir, linear_file("encoder", f)) for f in FRACTIONS]
    k = read_eval(run_dir, knn_file("encoder"))
    r = record["runs"].get(name, {})
    rows.append([label, pct(lin[0], "top1"), pct(lin[1], "top1")]
                   + [pct(k, f"top1_k{n}") for n in KS]
                   + [f"{r['examples_per_second']:.0f}" if r.get("examples_per_second") else "–",
                      f"{r['peak_memory_gb']:.2f}" if r.get("peak_memory_gb") else "–"])
  m = record["machine"]
  total = sum(r.get("train_seconds", 0) + r.get("eval_seconds", 0)
              for r in record["runs"].values())
  provenance = (f"Produced by `make results` (`python launch/results.py`) on a {m['device']}, "
                f"JAX {m['jax']}, Python {m['python']}, XLA_FLAGS "
                f"`{m['xla_flags'] or '(none)'}`"
                + (", sslax's default (fast) XLA:CPU path" if "ynn" in m["xla_flags"] else "")
                + "; "
                f"{total / 60:.0f} min of training and evaluation in all.")
  return {
      "demo": markdown(["Fashion-MNIST, linear probe, test top-1", "1% labels (600)",
                        "100% labels (60,000)"], bold_best(demo, (1, 2))),
      "demo-knn": markdown(["Fashion-MNIST, kNN test top-1", "k = 20", "k = 200"],
                           bold_best(knn, (1, 2))),
      "methods": markdown(["method", "linear 1%", "linear 100%", "kNN k=20", "kNN k=200",
                           "examples/s", "peak memory (GB)"],
                          bold_best(rows, (1, 2, 3, 4))),
      "provenance": provenance,
  }


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


def main(argv=None, methods=METHODS, results_md=RESULTS_MD):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", default=os.path.join(ROOT, "runs", "results"))
  parser.add_argument("--only", action="append", metavar="NAME",
                      help="run only these (repeatable): " + ", ".join(n for n, *_ in methods))
  parser.add_argument("--list", action="store_true", help="say what is finished and stop")
  args = parser.parse_args(argv)
  names = [n for n, *_ in methods]
  unknown = sorted(set(args.only or ()) - set(names))
  if unknown:
    print(f"results: error: unknown run {', '.join(unknown)}; the runs are "
          f"{', '.join(names)}", file=sys.stderr)
    sys.exit(2)
  workdir = os.path.abspath(args.workdir)
  os.makedirs(workdir, exist_ok=True)
  record_path = os.path.join(workdir, "results.json")
  record = {"runs": {}}
  if os.path.exists(record_path):
    with open(record_path) as f:
      record = json.load(f)
  steps = {n: num_steps(c) for n, _, c in methods}
  done = [n for n in names if finished(os.path.join(workdir, n), n, steps[n])]
  left = [n for n in names if n not in done]
  print(f"results: {len(done)} of {len(names)} runs finished"
        + (f" ({', '.join(done)})" if done else "")
        + (f"; left: {', '.join(left)}" if left else ""), flush=True)
  if args.list:
    return
  record["machine"] = machine()
  for name, _, config_spec in methods:
    if name in done or (args.only and name not in args.only):
      continue
    run_dir = os.path.join(workdir, name)
    entry = record["runs"].setdefault(name, {"config": config_spec, "train_seconds": 0.0,
                                             "eval_seconds": 0.0, "peak_memory_gb": 0.0})
    if not trained(run_dir, steps[name]):
      seconds, peak = train(run_dir, config_spec, os.path.join(workdir, f"{name}.log"))
      entry["train_seconds"] += seconds
      entry["peak_memory_gb"] = max(entry["peak_memory_gb"], peak)
    entry["examples_per_second"] = examples_per_second(run_dir)
    start = time.perf_counter()
    evaluate(run_dir, name, steps[name])
    entry["eval_seconds"] += time.perf_counter() - start
    with open(record_path, "w") as f:
      json.dump(record, f, indent=2)
    done.append(name)
  left = [n for n in names if n not in done]
  if left:
    print(f"results: left: {', '.join(left)} (run `make results` again); RESULTS.md "
          "is rewritten when every run is finished")
    return
  blocks = tables(workdir, record, methods)
  rewrite_results_md(blocks, results_md)
  for name in ("demo", "demo-knn", "methods"):
    print(blocks[name] + "\n")
  print(blocks["provenance"])
  print(f"results: RESULTS.md rewritten; every figure is in {workdir}")


if __name__ == "__main__":
  main()
