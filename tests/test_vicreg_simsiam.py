"""VICReg and SimSiam: their losses against naive references written from the
papers' formulas (values and gradients), SimSiam's stop-gradient, both
methods' configs, a short SimSiam run that does not collapse, and both
``:smoke`` configs through the trainer. (On 8 devices:
tests/multidevice/test_vicreg_simsiam_sharded.py.)"""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT
from sslax import losses
from sslax.config_loading import load_config_file
from sslax.errors import UserError


# ------------------------------------------------------------ naive references

def naive_vicreg(z1, z2, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0, eps=1e-4):
  """Bardes et al. 2022, eq. 1-6, with the official code's halving of the
  variance term; Python loops in float64."""
  z1, z2 = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
  n, d = z1.shape
  s = sum((z1[i, j] - z2[i, j]) ** 2 for i in range(n) for j in range(d)) / (n * d)

  def cov_matrix(z):
    mean = [sum(z[i, j] for i in range(n)) / n for j in range(d)]
    return [[sum((z[i, a] - mean[a]) * (z[i, b] - mean[b]) for i in range(n)) / (n - 1)
             for b in range(d)] for a in range(d)]

  def v(z):  # eq. 1-2: hinge on the regularised standard deviation, gamma = 1
    c = cov_matrix(z)
    return sum(max(0.0, 1.0 - math.sqrt(c[j][j] + eps)) for j in range(d)) / d

  def c(z):  # eq. 3-4: squared off-diagonal covariances, over d
    m = cov_matrix(z)
    return sum(m[a][b] ** 2 for a in range(d) for b in range(d) if a != b) / d

  return (sim_coeff * s + std_coeff * (v(z1) + v(z2)) / 2
          + cov_coeff * (c(z1) + c(z2)))


def naive_simsiam(p, z):
  """D(p, z) = -p/||p|| . z/||z||, averaged over the batch (Chen & He 2021,
  eq. 1)."""
  p, z = np.asarray(p, np.float64), np.asarray(z, np.float64)
  total = 0.0
  for pi, zi in zip(p, z):
    dot = sum(a * b for a, b in zip(pi, zi))
    total += -dot / (math.sqrt(sum(a * a for a in pi)) * math.sqrt(sum(b * b for b in zi)))
  return total / len(p)


def _finite_difference(f, arrays, which, eps=1e-5):
  arrays = [np.asarray(a, np.float64) for a in arrays]
  out = np.zeros_like(arrays[which])
  for idx in np.ndindex(out.shape):
    plus = [a.copy() for a in arrays]
    minus = [a.copy() for a in arrays]
    plus[which][idx] += eps
    minus[which][idx] -= eps
    out[idx] = (f(*plus) - f(*minus)) / (2 * eps)
  return out


def _vicreg_inputs(n, d, seed):
  """Columns of varied scale, so some stds sit below 1 (variance hinge active)
  and some above (hinge off), none near the kink."""
  rng = np.random.default_rng(seed)
  scales = np.where(np.arange(d) % 2 == 0, 0.3, 2.5)
  z1 = rng.normal(size=(n, d)) * scales
  z2 = 0.7 * z1 + 0.5 * rng.normal(size=(n, d)) * scales
  z2[:, 0] += 0.4 * z2[:, 1]  # some correlation for the covariance term
  return z1, z2


# ------------------------------------------------------------------- VICReg loss

@pytest.mark.parametrize("n,d,coeffs", [
    (8, 3, {}),
    (6, 5, dict(sim_coeff=1.0, std_coeff=10.0, cov_coeff=4.0, eps=1e-3)),
    (16, 8, {})])
def test_vicreg_matches_naive_value(n, d, coeffs):
  z1, z2 = _vicreg_inputs(n, d, n * d)
  got = losses.vicreg(jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32), **coeffs)
  np.testing.assert_allclose(float(got), naive_vicreg(z1, z2, **coeffs), rtol=1e-5)


def test_vicreg_matches_naive_gradient():
  z1, z2 = _vicreg_inputs(7, 4, 1)
  coeffs = dict(sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0)
  g1, g2 = jax.grad(lambda a, b: losses.vicreg(a, b, **coeffs), argnums=(0, 1))(
      jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32))
  naive = lambda a, b: naive_vicreg(a, b, **coeffs)
  np.testing.assert_allclose(np.asarray(g1), _finite_difference(naive, [z1, z2], 0),
                             rtol=2e-3, atol=1e-4)
  np.testing.assert_allclose(np.asarray(g2), _finite_difference(naive, [z1, z2], 1),
                             rtol=2e-3, atol=1e-4)


def test_vicreg_terms_behave_as_the_paper_says():
  rng = np.random.default_rng(0)
  z = jnp.asarray(rng.normal(size=(4096, 6)) * 1.5, jnp.float32)
  # Identical, spread-out, roughly decorrelated views: invariance 0, variance
  # 0, only the sampling noise of the covariances is left.
  assert float(losses.vicreg(z, z)) < 0.1
  # A collapsed embedding pays the full variance term: std_coeff * (1 + 1) / 2.
  const = jnp.ones((16, 6))
  np.testing.assert_allclose(float(losses.vicreg(const, const)),
                             25.0 * (1 - math.sqrt(1e-4)), rtol=1e-5)
  # Invariance alone is the MSE over batch and dimensions.
  a, b = jnp.asarray(rng.normal(size=(4, 3))), jnp.asarray(rng.normal(size=(4, 3)))
  np.testing.assert_allclose(
      float(losses.vicreg(a, b, std_coeff=0.0, cov_coeff=0.0, sim_coeff=1.0)),
      float(jnp.mean((a - b) ** 2)), rtol=1e-5)


def test_vicreg_jits_and_rejects_mismatched_shapes():
  z = jnp.ones((4, 3))
  assert np.isfinite(float(jax.jit(losses.vicreg)(z, z + 1.0)))
  with pytest.raises(ValueError):
    losses.vicreg(jnp.ones((4, 3)), jnp.ones((5, 3)))


# ------------------------------------------------------------------ SimSiam loss

@pytest.mark.parametrize("n,d", [(6, 5), (3, 16)])
def test_simsiam_loss_matches_naive_value_and_gradient(n, d):
  rng = np.random.default_rng(n + d)
  p, z = rng.normal(size=(n, d)), rng.normal(size=(n, d))
  pj, zj = jnp.asarray(p, jnp.float32), jnp.asarray(z, jnp.float32)
  np.testing.assert_allclose(float(losses.simsiam_loss(pj, zj)), naive_simsiam(p, z),
                             rtol=1e-5)
  gp, gz = jax.grad(losses.simsiam_loss, argnums=(0, 1))(pj, zj)
  np.testing.assert_allclose(np.asarray(gp), _finite_difference(naive_simsiam, [p, z], 0),
                             rtol=1e-3, atol=1e-5)
  # The stop-gradient: nothing flows into z...
  assert float(jnp.abs(gz).max()) == 0.0
  # ...while the naive loss does depend on z.
  assert np.abs(_finite_difference(naive_simsiam, [p, z], 1)).max() > 1e-3


def test_simsiam_loss_range():
  z = jnp.asarray(np.random.default_rng(0).normal(size=(5, 4)), jnp.float32)
  np.testing.assert_allclose(float(losses.simsiam_loss(2.0 * z, z)), -1.0, rtol=1e-6)
  np.testing.assert_allclose(float(losses.simsiam_loss(-z, z)), 1.0, rtol=1e-6)
  with pytest.raises(ValueError):
    losses.simsiam_loss(jnp.ones((4, 3)), jnp.ones((4, 2)))


# ---------------------------------------------------------------- methods

def _config(name, variant="smoke"):
  c = load_config_file(os.path.join(ROOT, "configs", f"{name}.py:{variant}"))
  c.progress_bar = False
  return c


@pytest.mark.parametrize("name", ["vicreg", "simsiam"])
@pytest.mark.parametrize("variant", ["fashion_mnist", "cifar10", "imagenet", "smoke"])
def test_every_variant_builds(name, variant):
  from sslax.methods import build_method  # pylint: disable=g-import-not-at-top
  c = _config(name, variant)
  assert c.method == name
  build_method(c)


def test_configs_hold_the_papers_hyperparameters():
  v = _config("vicreg", "imagenet")
  assert (v.vicreg.sim_coeff, v.vicreg.std_coeff, v.vicreg.cov_coeff) == (25.0, 25.0, 1.0)
  assert (v.head.hidden_dim, v.head.output_dim, v.head.num_layers) == (8192, 8192, 3)
  assert (v.optimizer.name, v.optimizer.learning_rate, v.optimizer.weight_decay) == (
      "lars", 0.2, 1e-6)
  s = _config("simsiam", "imagenet")
  assert (s.head.output_dim, s.head.num_layers, s.head.output_bn) == (2048, 3, True)
  assert (s.predictor.hidden_dim, s.predictor.output_dim, s.predictor.output_bn) == (
      512, 2048, False)
  assert (s.optimizer.name, s.optimizer.learning_rate, s.optimizer.weight_decay,
          s.optimizer.momentum) == ("sgd", 0.05, 1e-4, 0.9)


def test_vicreg_negative_coefficient_is_a_user_error():
  from sslax.methods import build_method  # pylint: disable=g-import-not-at-top
  c = _config("vicreg")
  c.vicreg.cov_coeff = -1.0
  with pytest.raises(UserError, match="cov_coeff"):
    build_method(c)


def test_simsiam_gradient_stops_at_the_projections():
  """The method's gradient equals that of the symmetric loss with both
  projections frozen as constants (the stop-gradient branch carries
  nothing), and differs from the gradient without the stop-gradient."""
  from sslax.data.sources import get_source  # pylint: disable=g-import-not-at-top
  from sslax.methods import build_method, common, simsiam  # pylint: disable=g-import-not-at-top
  c = _config("simsiam")
  method = build_method(c)
  images = get_source(c.data, "train").get(np.arange(16))["image"]
  images = jnp.asarray(images)
  params, model_state, method_state = method.init(jax.random.PRNGKey(0), {"image": images[:2]})
  batch, key = {"image": images}, jax.random.PRNGKey(1)
  # (Eager, like the reference below, so both round alike.)
  got = jax.grad(lambda p: method.loss_fn(p, model_state, method_state, batch, key)[0])(
      params)

  model = common.EncoderHeadPredictor(encoder=method.encoder.module(),
                             head=common.make_head(c.head),
                             predictor=common.make_head(c.predictor))
  x = common.interleave(*common.two_views(key, batch["image"], c))
  (_, z, _), _ = common.apply_train(model, params, model_state, x)
  z1, z2 = common.deinterleave(z)

  def neg_cos(p, t):
    return -jnp.mean(jnp.sum(losses.l2_normalize(p) * losses.l2_normalize(t), -1))

  def reference(p, frozen):
    (_, zz, pp), _ = common.apply_train(model, p, model_state, x)
    p1, p2 = common.deinterleave(pp)
    t1, t2 = (z1, z2) if frozen else common.deinterleave(zz)
    return 0.5 * neg_cos(p1, t2) + 0.5 * neg_cos(p2, t1)

  want = jax.grad(lambda p: reference(p, True))(params)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-7)
  without_stop = jax.jit(jax.grad(lambda p: reference(p, False)))(params)
  assert max(float(jnp.abs(a - b).max()) for a, b in
             zip(jax.tree.leaves(got), jax.tree.leaves(without_stop))) > 1e-4


@pytest.mark.parametrize("name", ["vicreg", "simsiam"])
def test_smoke_config_trains_in_the_trainer(name, tmp_path):
  from sslax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  c = _config(name)
  c.update(num_steps=2, log_every=1, checkpoint_every=2, online_eval_every=2)
  workdir = str(tmp_path / "run")
  state = train_and_evaluate(c, workdir)
  assert int(state.step) == 2
  records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in records] == [1, 2]
  assert all(np.isfinite(r["loss"]) for r in records)
  assert any(k.startswith("online_knn_top1") for k in records[-1])
  if name == "simsiam":
    assert all(-1.0 <= r["loss"] <= 1.0 for r in records)
  assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(state.params))


def test_simsiam_short_run_does_not_collapse(tmp_path):
  """Collapse would make the l2-normalised projections constant (per-dimension
  std 0); a healthy run keeps it near 1 / sqrt(d) (Chen & He 2021, fig. 2)."""
  from sslax.data.sources import get_source  # pylint: disable=g-import-not-at-top
  from sslax.methods import build_method, common, simsiam  # pylint: disable=g-import-not-at-top
  from sslax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  c = _config("simsiam", "fashion_mnist")
  c.update(num_steps=40, global_batch_size=64, log_every=20, checkpoint_every=40,
           online_eval_every=0)
  c.model.widths = (16, 32, 64)
  c.head.update(hidden_dim=128, output_dim=128)
  c.predictor.update(hidden_dim=32, output_dim=128)
  state = train_and_evaluate(c, str(tmp_path))
  method = build_method(c)
  model = common.EncoderHeadPredictor(encoder=method.encoder.module(),
                             head=common.make_head(c.head),
                             predictor=common.make_head(c.predictor))
  images = get_source(c.data, "test").get(np.arange(512))["image"]
  x = common.center_input(jnp.asarray(images), c)
  _, z, _ = model.apply({"params": state.params, **state.model_state}, x, train=False)
  z = np.asarray(losses.l2_normalize(z))
  std = z.std(axis=0).mean()
  assert std > 0.5 / np.sqrt(z.shape[1]), (std, 0.5 / np.sqrt(z.shape[1]))
