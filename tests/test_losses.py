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
