"""The non-finite guard: a NaN loss or gradient norm stops training with one
line and exit status 3, nothing non-finite is saved (the finite checkpoints
are kept), and eval/export refuse a checkpoint with non-finite parameters."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import ROOT, xla_flags
from sslax.errors import NonFinite, UserError
from sslax.train import artifact, checkpoint
from sslax.train.loop import check_finite

SMOKE = os.path.join(ROOT, "configs", "simclr.py:smoke")


def _sslax(*argv):
  env = dict(os.environ, XLA_FLAGS=xla_flags(), JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", "sslax", *argv], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def _error_line(proc):
  assert "Traceback" not in proc.stderr, proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.startswith("sslax: error")]
  assert len(lines) == 1, proc.stderr
  return lines[0]


def _steps(workdir):
  return sorted(ocp.step.checkpoint_steps(checkpoint.checkpoint_dir(str(workdir))))


def _finite(tree):
  return all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(tree)
             if np.issubdtype(np.asarray(x).dtype, np.inexact))


def test_check_finite_names_what_went_non_finite(smoke_config):
  check_finite(4, {"loss": np.float32(1.0), "grad_norm": np.float32(2.0)}, smoke_config)
  with pytest.raises(NonFinite, match="step 7: the gradient norm went non-finite") as e:
    check_finite(7, {"loss": np.float32(1.0), "grad_norm": np.float32(np.inf)},
                 smoke_config)
  assert e.value.exit_code == 3 and "\n" not in str(e.value)
  assert "learning_rate" in str(e.value)
  with pytest.raises(NonFinite, match="step 9: the loss and the gradient norm"):
    check_finite(9, {"loss": np.float32(np.nan), "grad_norm": np.float32(np.nan)},
                 smoke_config)
  assert UserError("x").exit_code == 2


def test_huge_learning_rate_stops_with_status_3_and_keeps_finite_checkpoints(tmp_path):
  # On the smoke config (LARS, lr 1e6) the BatchNorm running variance
  # overflows by step 8 and the gradient norm goes NaN at step 9: the run stops
  # at the first checked (logged or about-to-be-saved) step that shows either.
  workdir = tmp_path / "run"
  proc = _sslax("train", "--config", SMOKE, "--workdir", str(workdir),
                "--config.optimizer.learning_rate=1e6", "--config.num_steps=24",
                "--config.checkpoint_every=2", "--config.keep_checkpoints=2",
                "--config.online_eval_every=0", "--config.progress_bar=False")
  assert proc.returncode == 3, proc.stderr
  line = _error_line(proc)
  assert "non-finite" in line, line
  assert any(w in line for w in ("loss", "gradient", "parameters", "state")), line
  stopped = int(line.split("step ")[1].split(":")[0])
  steps = _steps(workdir)
  # Nothing at or after the non-finite step; the last finite ones are kept.
  assert steps and max(steps) < stopped and len(steps) == 2, (steps, line)
  assert max(steps) >= stopped - 2, (steps, line)
  for step in steps:
    params, model_state = checkpoint.restore_model(str(workdir), step)
    assert _finite(params) and _finite(model_state), step
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert all(r["step"] <= stopped for r in rows)
  assert all(np.isfinite(r["loss"]) and np.isfinite(r["grad_norm"]) for r in rows)


@pytest.fixture(scope="module")
def nan_workdir(tmp_path_factory):
  """A smoke run of 2 steps whose newest checkpoint (step 3) has NaN
  parameters, written directly with ``checkpoint.save``."""
  from sslax.config_loading import load_config_file  # pylint: disable=g-import-not-at-top
  from sslax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path_factory.mktemp("nan") / "run")
  config = load_config_file(SMOKE)
  config.num_steps, config.log_every, config.checkpoint_every = 2, 1, 2
  config.online_eval_every, config.progress_bar = 0, False
  state = train_and_evaluate(config, workdir)
  nan_state = state.replace(step=state.step + 1,
                            params=jax.tree.map(lambda p: jnp.full_like(p, jnp.nan),
                                                state.params))
  mngr = checkpoint.manager(workdir, keep=3)
  try:
    with pytest.raises(NonFinite, match="step 3: the parameters"):
      checkpoint.save(mngr, nan_state)  # the guard every save goes through
    assert mngr.latest_step() == 2
    checkpoint.save(mngr, nan_state, check_finite=False)
    mngr.wait_until_finished()
  finally:
    mngr.close()
  assert _steps(workdir) == [2, 3]
  return workdir


def test_grad_norm_is_logged(nan_workdir):
  rows = [json.loads(l) for l in open(os.path.join(nan_workdir, "metrics.jsonl"))]
  assert [r["step"] for r in rows] == [1, 2]
  assert all(np.isfinite(r["grad_norm"]) and r["grad_norm"] > 0 for r in rows)


@pytest.mark.parametrize("argv", [["export", "--out", "OUT"], ["eval", "knn"]])
def test_eval_and_export_refuse_non_finite_checkpoint(nan_workdir, tmp_path, argv):
  argv = [str(tmp_path / "encoder") if a == "OUT" else a for a in argv]
  proc = _sslax(*argv, "--workdir", nan_workdir)
  assert proc.returncode == 2, proc.stderr
  line = _error_line(proc)
  assert "step 3" in line and "non-finite" in line and "earlier checkpoint" in line, line
  assert not (tmp_path / "encoder").exists()
  # The finite checkpoint before it still restores.
  encoder = artifact.restore_encoder(nan_workdir, step=2)
  assert _finite(encoder.variables)
