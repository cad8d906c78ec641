"""launch/step_benchmark.py: the sslax side's table line, the ratio column
against the two rates, the one-line refusal without PyTorch, and (with
PyTorch) that its twin of the step matches sslax's model size, NT-Xent and
LARS."""

import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import ROOT, load_launch_script
from sslax import losses
from sslax.train.optim import decay_mask

SMOKE = os.path.join(ROOT, "configs", "simclr.py:smoke")
RATE = r"\d+"


bench = load_launch_script("step_benchmark")


def _row(out, *cells):
  pattern = r"^\| " + r" \| ".join(cells) + r" \|$"
  rows = [line for line in out.splitlines() if re.match(pattern, line)]
  assert len(rows) == 1, out
  return rows[0]


def _check_ratio(row):
  """The row's last cell is its sslax rate over its PyTorch rate: the rates
  are printed to units and the ratio to hundredths, so the ratio lies within
  those roundings of the printed rates' quotient."""
  ours, theirs, ratio = row.strip("|").split("|")[3:6]
  ours, theirs, ratio = float(ours), float(theirs), float(ratio)
  low, high = (ours - 0.5) / (theirs + 0.5), (ours + 0.5) / (theirs - 0.5)
  assert low - 0.005 <= ratio <= high + 0.005, row


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


# Rates (images/s) the stand-in sides below run at, by (side, dtype, batch):
# a ratio above 1, one below, and one whose printed rates' quotient (100 / 100)
# rounds otherwise than the rates' (1.0080...).
RATES = {("sslax", "float32", 8): 1234.4, ("PyTorch", "float32", 8): 567.6,
         ("sslax", "float32", 16): 250.0, ("PyTorch", "float32", 16): 1003.0,
         ("sslax", "bfloat16", 8): 100.4, ("PyTorch", "bfloat16", 8): 99.6,
         ("sslax", "bfloat16", 16): 3000.0, ("PyTorch", "bfloat16", 16): 7.0}


def test_ratio_column_is_sslax_rate_over_pytorch_rate(capsys, monkeypatch):
  """The table of main() from stand-in sides whose timed steps take
  batch / RATES seconds (no PyTorch, nothing trained or timed)."""
  trained = []

  class Side:
    def __init__(self, name, config):
      self.name, self.config = name, config

    def train(self, steps):
      trained.append(self)

    def seconds(self):
      c = self.config
      return c.global_batch_size / RATES[(self.name, c.compute_dtype, c.global_batch_size)]

  class SslaxSide(Side):
    def __init__(self, config, compile_now=True):
      super().__init__("sslax", config)

    def learning_rates(self, count):
      return np.zeros(count)

    def numpy_batches(self):
      return []

  class TorchSide(Side):
    def __init__(self, config, batches, learning_rates, **kwargs):
      super().__init__("PyTorch", config)

  def timed(fn, count):
    fn()
    return trained[-1].seconds()

  stub = type("torch", (), dict(__version__="stub", get_num_threads=staticmethod(lambda: 1),
                                set_num_threads=staticmethod(lambda n: None)))
  monkeypatch.setattr(bench, "torch", stub)
  monkeypatch.setattr(bench, "SslaxSide", SslaxSide)
  monkeypatch.setattr(bench, "TorchSide", TorchSide)
  monkeypatch.setattr(bench, "timed", timed)
  bench.main(["--configs", SMOKE, "--batch", "8,16", "--dtypes", "float32,bfloat16",
              "--steps", "1", "--warmup", "1"])
  out = capsys.readouterr().out
  for dtype in ("float32", "bfloat16"):
    for batch in (8, 16):
      ours, theirs = RATES[("sslax", dtype, batch)], RATES[("PyTorch", dtype, batch)]
      row = _row(out, re.escape(SMOKE), dtype, str(batch), f"{ours:.0f}", f"{theirs:.0f}",
                 re.escape(f"{ours / theirs:.2f}"))
      _check_ratio(row)


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
  _check_ratio(_row(out, re.escape(SMOKE), "bfloat16", "8", RATE, RATE, r"\d+\.\d\d"))
