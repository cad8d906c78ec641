"""launch/step_benchmark.py: the sslax side's table line, the one-line refusal
without PyTorch, and (with PyTorch) that its twin of the step matches sslax's
model size, NT-Xent and LARS."""

import importlib.util
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import ROOT
from sslax import losses
from sslax.train.optim import decay_mask

SMOKE = os.path.join(ROOT, "configs", "simclr.py:smoke")
RATE = r"\d+"


def _load():
  spec = importlib.util.spec_from_file_location(
      "step_benchmark", os.path.join(ROOT, "launch", "step_benchmark.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


bench = _load()


def _row(out, *cells):
  pattern = r"^\| " + r" \| ".join(cells) + r" \|$"
  rows = [line for line in out.splitlines() if re.match(pattern, line)]
  assert len(rows) == 1, out
  return rows[0]


def test_sslax_side_prints_its_table_line_and_profile(capsys):
  bench.main(["--only", "sslax", "--configs", SMOKE, "--batch", "8", "--dtypes",
              "float32", "--steps", "1", "--warmup", "1", "--profile"])
  out = capsys.readouterr().out
  assert out.startswith("CPU: ") and "XLA_FLAGS=" in out and f"jax {jax.__version__}" in out
  assert ("| config | dtype | batch | sslax images/s | PyTorch images/s | sslax / PyTorch |"
          in out)
  _row(out, re.escape(SMOKE), "float32", "8", RATE, "-", "-")
  share = r"-?\d+\.\d \(-?\d+%\)"
  _row(out, "sslax", re.escape(SMOKE), "float32", "8", share, share, share, share,
       r"\d+\.\d")


def test_without_pytorch_it_says_how_to_install_it(capsys, monkeypatch):
  monkeypatch.setattr(bench, "torch", None)
  with pytest.raises(SystemExit) as exit_info:
    bench.main(["--configs", SMOKE, "--batch", "8"])
  assert exit_info.value.code == 2
  assert capsys.readouterr().err == bench.NO_TORCH + "\n"


@pytest.mark.parametrize("variant", ["fashion_mnist", "cifar10", "smoke"])
def test_torch_model_has_sslax_parameter_count(variant):
  pytest.importorskip("torch")
  config = bench.load_config(os.path.join(ROOT, "configs", f"simclr.py:{variant}"), 8,
                             "float32")
  model = bench.torch_model(config)
  assert bench.torch_param_count(model) == bench.sslax_param_count(config)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_torch_nt_xent_equals_sslax(temperature):
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(0)
  z1, z2 = rng.normal(size=(2, 24, 16)).astype(np.float32)
  ours = losses.nt_xent(jnp.asarray(z1), jnp.asarray(z2), temperature=temperature)
  theirs = bench.torch_nt_xent(torch.from_numpy(z1), torch.from_numpy(z2), temperature)
  np.testing.assert_allclose(float(theirs), float(ours), rtol=1e-5, atol=1e-5)


def test_torch_lars_follows_optax_lars():
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(1)
  params = {"kernel": rng.normal(size=(3, 3, 2, 4)), "bias": rng.normal(size=(4,)),
            "zero": np.zeros((2, 2))}
  params = {k: v.astype(np.float32) for k, v in params.items()}
  wd, momentum, tc = 0.1, 0.9, 0.5
  tx = optax.lars(0.3, weight_decay=wd, weight_decay_mask=decay_mask, trust_coefficient=tc,
                  trust_ratio_mask=decay_mask, momentum=momentum)
  ours, state = jax.tree.map(jnp.asarray, params), None
  state = tx.init(ours)
  theirs = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
  lars = bench.TorchLARS(theirs.values(), wd, momentum, tc)
  for _ in range(3):
    grads = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}
    updates, state = tx.update(jax.tree.map(jnp.asarray, grads), state, ours)
    ours = optax.apply_updates(ours, updates)
    for k, p in theirs.items():
      p.grad = torch.from_numpy(grads[k])
    lars.step(0.3)
  for k in params:
    assert not np.allclose(np.asarray(ours[k]), params[k])
    np.testing.assert_allclose(theirs[k].detach().numpy(), np.asarray(ours[k]), rtol=1e-5,
                               atol=1e-6)


def test_both_sides_in_one_table(capsys):
  pytest.importorskip("torch")
  bench.main(["--configs", SMOKE, "--batch", "8", "--dtypes", "bfloat16", "--steps", "1",
              "--warmup", "1"])
  out = capsys.readouterr().out
  _row(out, re.escape(SMOKE), "bfloat16", "8", RATE, RATE, r"\d+\.\d\d")
