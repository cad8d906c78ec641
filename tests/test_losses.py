"""nt_xent against a naive reference written from SimCLR's Algorithm 1."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sslax import losses


def naive_nt_xent(z1, z2, temperature):
  """Algorithm 1 of Chen et al. 2020, with Python loops over the 2N views."""
  z = [np.asarray(v, np.float64) for v in list(z1) + list(z2)]
  n = len(z1)

  def sim(u, v):
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))

  def ell(i, j):
    num = math.exp(sim(z[i], z[j]) / temperature)
    den = sum(math.exp(sim(z[i], z[k]) / temperature) for k in range(2 * n) if k != i)
    return -math.log(num / den)

  return sum(ell(k, k + n) + ell(k + n, k) for k in range(n)) / (2 * n)


@pytest.mark.parametrize("n,d,temperature", [(4, 3, 0.5), (7, 16, 0.1), (2, 5, 1.0)])
def test_nt_xent_matches_naive_value(n, d, temperature):
  rng = np.random.default_rng(n * 100 + d)
  z1, z2 = rng.normal(size=(n, d)), rng.normal(size=(n, d))
  got = losses.nt_xent(jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32),
                       temperature=temperature)
  np.testing.assert_allclose(float(got), naive_nt_xent(z1, z2, temperature), rtol=1e-5)


def test_nt_xent_matches_naive_gradient():
  rng = np.random.default_rng(0)
  n, d, t = 5, 4, 0.3
  z1, z2 = rng.normal(size=(n, d)), rng.normal(size=(n, d))
  g1, g2 = jax.grad(lambda a, b: losses.nt_xent(a, b, temperature=t), argnums=(0, 1))(
      jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32))
  # Central finite differences of the naive reference, in float64.
  eps = 1e-5
  for got, which in ((g1, 0), (g2, 1)):
    want = np.zeros((n, d))
    for i in range(n):
      for j in range(d):
        plus = [z1.copy(), z2.copy()]
        minus = [z1.copy(), z2.copy()]
        plus[which][i, j] += eps
        minus[which][i, j] -= eps
        want[i, j] = (naive_nt_xent(*plus, t) - naive_nt_xent(*minus, t)) / (2 * eps)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-3, atol=1e-5)


def test_nt_xent_is_scale_invariant_and_jits():
  rng = np.random.default_rng(1)
  z1 = jnp.asarray(rng.normal(size=(6, 8)), jnp.float32)
  z2 = jnp.asarray(rng.normal(size=(6, 8)), jnp.float32)
  f = jax.jit(lambda a, b: losses.nt_xent(a, b, temperature=0.2))
  chex.assert_trees_all_close(f(z1, z2), f(3.0 * z1, 0.5 * z2), rtol=1e-5)


def test_nt_xent_perfect_alignment_beats_random():
  rng = np.random.default_rng(2)
  z = jnp.asarray(rng.normal(size=(16, 32)), jnp.float32)
  aligned = losses.nt_xent(z, z, temperature=0.1)
  shuffled = losses.nt_xent(z, z[::-1], temperature=0.1)
  assert float(aligned) < float(shuffled)


def test_nt_xent_rejects_mismatched_shapes():
  with pytest.raises(ValueError):
    losses.nt_xent(jnp.ones((4, 3)), jnp.ones((5, 3)), temperature=0.1)


def _finite_difference(naive, arrays, which, eps=1e-5):
  """Central differences of ``naive(*arrays)`` w.r.t. ``arrays[which]`` (float64)."""
  arrays = [np.asarray(a, np.float64) for a in arrays]
  grad = np.zeros_like(arrays[which])
  for idx in np.ndindex(*grad.shape):
    plus = [a.copy() for a in arrays]
    minus = [a.copy() for a in arrays]
    plus[which][idx] += eps
    minus[which][idx] -= eps
    grad[idx] = (naive(*plus) - naive(*minus)) / (2 * eps)
  return grad


def naive_moco_infonce(q, k, queue, temperature):
  """He et al. 2020, eq. 1, one query at a time."""
  def unit(v):
    return v / np.linalg.norm(v)
  total = 0.0
  for i in range(len(q)):
    qi = unit(q[i])
    pos = math.exp(qi @ unit(k[i]) / temperature)
    neg = sum(math.exp(qi @ unit(queue[j]) / temperature) for j in range(len(queue)))
    total += -math.log(pos / (pos + neg))
  return total / len(q)


def naive_byol(p, z):
  total = 0.0
  for i in range(len(p)):
    pi, zi = p[i] / np.linalg.norm(p[i]), z[i] / np.linalg.norm(z[i])
    total += float(np.sum((pi - zi) ** 2))
  return total / len(p)


def naive_barlow_twins(z1, z2, lambd, eps=1e-5):
  n, d = z1.shape
  def standardise(z):
    out = np.zeros_like(z)
    for j in range(d):
      mean = sum(z[:, j]) / n
      var = sum((z[b, j] - mean) ** 2 for b in range(n)) / n
      out[:, j] = (z[:, j] - mean) / math.sqrt(var + eps)
    return out
  a, b = standardise(z1), standardise(z2)
  loss = 0.0
  for i in range(d):
    for j in range(d):
      c = sum(a[k, i] * b[k, j] for k in range(n)) / n
      loss += (1 - c) ** 2 if i == j else lambd * c ** 2
  return loss


@pytest.mark.parametrize("n,d,k,t", [(4, 3, 6, 0.2), (5, 8, 16, 0.07)])
def test_moco_infonce_matches_naive(n, d, k, t):
  rng = np.random.default_rng(n + d + k)
  q, key, queue = rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.normal(size=(k, d))
  queue /= np.linalg.norm(queue, axis=1, keepdims=True)  # the queue holds unit keys
  f = lambda a, b, c: losses.moco_infonce(a, b, c, temperature=t)
  got = f(*(jnp.asarray(a, jnp.float32) for a in (q, key, queue)))
  np.testing.assert_allclose(float(got), naive_moco_infonce(q, key, queue, t), rtol=1e-5)
  gq, gk = jax.grad(f, argnums=(0, 1))(*(jnp.asarray(a, jnp.float32) for a in (q, key, queue)))
  want = _finite_difference(lambda a, b, c: naive_moco_infonce(a, b, c, t), [q, key, queue], 0)
  np.testing.assert_allclose(np.asarray(gq), want, rtol=1e-3, atol=1e-5)
  assert float(jnp.abs(gk).max()) == 0.0  # no gradient through the keys


def test_byol_loss_matches_naive():
  rng = np.random.default_rng(3)
  p, z = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
  got = losses.byol_loss(jnp.asarray(p, jnp.float32), jnp.asarray(z, jnp.float32))
  np.testing.assert_allclose(float(got), naive_byol(p, z), rtol=1e-5)
  gp, gz = jax.grad(losses.byol_loss, argnums=(0, 1))(jnp.asarray(p, jnp.float32),
                                                      jnp.asarray(z, jnp.float32))
  np.testing.assert_allclose(np.asarray(gp), _finite_difference(naive_byol, [p, z], 0),
                             rtol=1e-3, atol=1e-5)
  assert float(jnp.abs(gz).max()) == 0.0  # stop-gradient on the target
  # 2 - 2 cos: zero for parallel vectors, 4 for opposite ones.
  assert float(losses.byol_loss(jnp.ones((2, 3)), 2 * jnp.ones((2, 3)))) == pytest.approx(0.0, abs=1e-6)
  assert float(losses.byol_loss(jnp.ones((2, 3)), -jnp.ones((2, 3)))) == pytest.approx(4.0)


@pytest.mark.parametrize("n,d,lambd", [(8, 3, 0.1), (6, 5, 5e-3)])
def test_barlow_twins_matches_naive(n, d, lambd):
  rng = np.random.default_rng(n * d)
  z1 = rng.normal(size=(n, d))
  z2 = rng.normal(size=(n, d)) + z1
  f = lambda a, b: losses.barlow_twins(a, b, lambd=lambd)
  got = f(jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32))
  np.testing.assert_allclose(float(got), naive_barlow_twins(z1, z2, lambd), rtol=1e-5)
  g1, g2 = jax.grad(f, argnums=(0, 1))(jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32))
  naive = lambda a, b: naive_barlow_twins(a, b, lambd)
  np.testing.assert_allclose(np.asarray(g1), _finite_difference(naive, [z1, z2], 0),
                             rtol=2e-3, atol=1e-4)
  np.testing.assert_allclose(np.asarray(g2), _finite_difference(naive, [z1, z2], 1),
                             rtol=2e-3, atol=1e-4)
