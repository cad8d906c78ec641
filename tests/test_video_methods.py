"""Video colourisation (sslax/methods/video_colorization.py): the attention
loss against a naive loop over target and reference positions (values and
gradients), the k-means colour centres, and the Lab round trip its colours
go through."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sslax.data.color import lab_to_rgb, rgb_to_lab
from sslax.methods import video_colorization as vc


def _naive_loss(target_f, ref_f, ref_colour, target_colour, k, temperature):
  """-mean_i log sum_j softmax_j(f_i . f_j / T) [c_j == c_i], one position at a time."""
  total, count = 0.0, 0
  for b in range(target_f.shape[0]):
    for i in range(target_f.shape[1]):
      logits = jnp.stack([jnp.dot(target_f[b, i], ref_f[b, j]) / temperature
                          for j in range(ref_f.shape[1])])
      weights = jnp.exp(logits - jnp.max(logits))
      weights = weights / jnp.sum(weights)
      p = sum(weights[j] for j in range(ref_f.shape[1]) if ref_colour[b, j] == target_colour[b, i])
      total = total - jnp.log(jnp.maximum(p, 1e-8))
      count += 1
  return total / count


def test_attention_colour_loss_equals_the_naive_loop_values_and_gradients():
  rng = np.random.default_rng(0)
  b, n, m, d, k = 2, 5, 7, 4, 3
  tf = jnp.asarray(rng.normal(size=(b, n, d)), jnp.float32)
  rf = jnp.asarray(rng.normal(size=(b, m, d)), jnp.float32)
  rc = rng.integers(0, k, (b, m))
  tc = rng.integers(0, k, (b, n))
  loss = lambda t, r: vc.attention_colour_loss(t, r, jnp.asarray(rc), jnp.asarray(tc), k,
                                               0.5)[0]
  naive = lambda t, r: _naive_loss(t, r, rc, tc, k, 0.5)
  np.testing.assert_allclose(float(loss(tf, rf)), float(naive(tf, rf)), rtol=1e-5)
  g = jax.grad(loss, argnums=(0, 1))(tf, rf)
  g_naive = jax.grad(naive, argnums=(0, 1))(tf, rf)
  for a, e in zip(g, g_naive):
    np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=1e-4, atol=1e-6)
  # a target whose colour no reference has: the loss is capped, not infinite
  assert np.isfinite(float(vc.attention_colour_loss(tf, rf, jnp.zeros((b, m), int),
                                                    jnp.ones((b, n), int), k, 0.5)[0]))


def test_kmeans_finds_separated_colour_clusters():
  rng = np.random.default_rng(1)
  truth = np.array([[-40.0, 20.0], [0.0, 0.0], [30.0, -50.0], [60.0, 60.0]])
  points = np.concatenate([c + rng.normal(0, 2, (500, 2)) for c in truth])
  centres = vc.kmeans(points, 4, seed=0)
  order = np.lexsort((truth[:, 1], truth[:, 0]))
  np.testing.assert_allclose(centres, truth[order], atol=0.5)
  assert np.array_equal(np.asarray(vc.nearest_centre(jnp.asarray(truth[order]),
                                                     jnp.asarray(centres))), np.arange(4))
  with pytest.raises(Exception, match="fewer distinct colours than"):
    vc.kmeans(np.zeros((10, 2)), 4, seed=0)


def test_lab_round_trip():
  rgb = np.random.default_rng(2).uniform(0, 1, (64, 3)).astype(np.float32)
  back = np.asarray(lab_to_rgb(rgb_to_lab(jnp.asarray(rgb))))
  np.testing.assert_allclose(back, rgb, atol=2e-4)
