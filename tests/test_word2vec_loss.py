"""Word2vec's losses (sslax.losses.word2vec) against naive references written
from the formulas with Python loops over scalars: values, and gradients by
jax.grad of both; gensim's update rules where they are options; and the
negatives' distribution."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from sslax.losses import word2vec as w2v


def log_sigmoid(x):
  return -jnp.log1p(jnp.exp(-x))


def dot(a, b):
  return sum(a[i] * b[i] for i in range(a.shape[0]))


def naive_sgns(u, v, mask, neg, neg_mask=None, against="centre", reduction="mean"):
  mask = np.asarray(mask)
  neg_mask = None if neg_mask is None else np.asarray(neg_mask)
  total, pairs = 0.0, 0
  n, c, k, _ = neg.shape
  for i in range(n):
    for j in range(c):
      if not mask[i, j]:
        continue
      w = u[i] if against == "centre" else v[i, j]
      loss = -log_sigmoid(dot(u[i], v[i, j]))
      for m in range(k):
        if neg_mask is None or neg_mask[i, j, m]:
          loss = loss - log_sigmoid(-dot(w, neg[i, j, m]))
      total, pairs = total + loss, pairs + 1
  return total / max(pairs, 1) if reduction == "mean" else total


def naive_cbow(u, v, mask, neg, neg_mask=None, cbow_mean=True, reduction="mean"):
  mask = np.asarray(mask)
  neg_mask = None if neg_mask is None else np.asarray(neg_mask)
  total, centres = 0.0, 0
  n, c, _ = v.shape
  for i in range(n):
    contexts = [v[i, j] for j in range(c) if mask[i, j]]
    if not contexts:
      continue
    h = sum(contexts[1:], contexts[0])
    if cbow_mean:
      h = h / len(contexts)
    loss = -log_sigmoid(dot(h, u[i]))
    for m in range(neg.shape[1]):
      if neg_mask is None or neg_mask[i, m]:
        loss = loss - log_sigmoid(-dot(h, neg[i, m]))
    total, centres = total + loss, centres + 1
  return total / max(centres, 1) if reduction == "mean" else total


def arrays(seed, n=3, c=4, k=2, d=5, scale=0.7):
  rng = np.random.default_rng(seed)
  u = jnp.asarray(rng.normal(size=(n, d)) * scale, jnp.float32)
  v = jnp.asarray(rng.normal(size=(n, c, d)) * scale, jnp.float32)
  neg = jnp.asarray(rng.normal(size=(n, c, k, d)) * scale, jnp.float32)
  mask = np.ones((n, c), bool)
  mask[0, 1] = mask[1, :] = mask[2, 3] = False  # row 1 has no pair at all
  neg_mask = rng.random((n, c, k)) < 0.7
  return u, v, jnp.asarray(mask), neg, jnp.asarray(neg_mask)


def assert_close_with_grads(fast, naive, args, argnums):
  np.testing.assert_allclose(fast(*args), naive(*args), rtol=1e-5, atol=1e-6)
  got = jax.grad(fast, argnums=argnums)(*args)
  want = jax.grad(naive, argnums=argnums)(*args)
  for g, h in zip(got, want):
    assert np.any(np.asarray(h) != 0)
    np.testing.assert_allclose(g, h, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("against, reduction, with_negative_mask", [
    ("centre", "mean", False), ("centre", "sum", True), ("context", "mean", True),
    ("context", "sum", False)])
def test_sgns_loss_against_the_formula(against, reduction, with_negative_mask):
  u, v, mask, neg, neg_mask = arrays(0)
  neg_mask = neg_mask if with_negative_mask else None
  kwargs = dict(negative_mask=neg_mask, score_negatives_with=against, reduction=reduction)
  fast = jax.jit(lambda u, v, neg: w2v.sgns_loss(u, v, mask, neg, **kwargs))
  naive = lambda u, v, neg: naive_sgns(u, v, mask, neg, neg_mask, against, reduction)
  assert_close_with_grads(fast, naive, (u, v, neg), (0, 1, 2))
  # padded pairs get no gradient at all
  g_v = jax.grad(fast, argnums=1)(u, v, neg)
  assert not np.any(np.asarray(g_v)[~np.asarray(mask)])


def test_sgns_mean_is_the_sum_over_the_number_of_pairs():
  u, v, mask, neg, _ = arrays(1)
  total = w2v.sgns_loss(u, v, mask, neg, reduction="sum")
  assert float(w2v.sgns_loss(u, v, mask, neg)) == pytest.approx(float(total) / 6, rel=1e-6)  # 6 valid pairs


@pytest.mark.parametrize("cbow_mean, reduction", [(True, "mean"), (False, "sum")])
def test_cbow_loss_against_the_formula(cbow_mean, reduction):
  u, v, mask, neg, neg_mask = arrays(2, scale=0.5)
  neg, neg_mask = neg[:, 0], neg_mask[:, 0]
  fast = jax.jit(lambda u, v, neg: w2v.cbow_loss(u, v, mask, neg, negative_mask=neg_mask,
                                                 cbow_mean=cbow_mean, reduction=reduction))
  naive = lambda u, v, neg: naive_cbow(u, v, mask, neg, neg_mask, cbow_mean, reduction)
  assert_close_with_grads(fast, naive, (u, v, neg), (0, 1, 2))


@pytest.mark.parametrize("cbow_mean", [True, False])
def test_cbow_gensim_gradient_is_gensims_update(cbow_mean):
  u, v, mask, neg, _ = arrays(3, scale=0.5)
  neg = neg[:, 0]
  true = lambda v: w2v.cbow_loss(u, v, mask, neg, cbow_mean=cbow_mean, reduction="sum")
  gensim = lambda v: w2v.cbow_loss(u, v, mask, neg, cbow_mean=cbow_mean,
                                   gensim_gradient=True, reduction="sum")
  assert float(gensim(v)) == pytest.approx(float(true(v)), rel=1e-6)
  # gensim: neu1e = sum over targets of (label - sigmoid(h . out)) * out, added
  # to every context vector as it is (cbow_mean) or divided by their number.
  counts = np.sum(np.asarray(mask), axis=1)
  g = np.asarray(jax.grad(gensim)(v))
  for i in range(3):
    h = np.sum(np.asarray(v)[i][np.asarray(mask)[i]], axis=0)
    h = h / max(counts[i], 1) if cbow_mean else h
    neu1e = np.zeros(5)
    for out, label in [(np.asarray(u)[i], 1.0)] + [(np.asarray(neg)[i, m], 0.0) for m in range(2)]:
      neu1e += (label - 1 / (1 + np.exp(-h @ out))) * out
    update = neu1e if cbow_mean else neu1e / max(counts[i], 1)
    for j in range(4):
      want = -update if mask[i, j] else np.zeros(5)
      np.testing.assert_allclose(g[i, j], want, rtol=1e-4, atol=1e-6)


def test_saturated_terms_get_no_gradient():
  u = jnp.asarray([[1.0, 0.0]])
  v = jnp.asarray([[[8.0, 0.0], [0.5, 0.0]]])  # logits 8 and 0.5
  neg = jnp.asarray([[[[-7.0, 0.0]], [[1.0, 0.0]]]])  # negative logits -7 and 1
  mask = jnp.ones((1, 2), bool)
  loss = lambda v, neg, s: w2v.sgns_loss(u, v, mask, neg, saturate_at=s)
  assert float(loss(v, neg, 6.0)) == pytest.approx(float(loss(v, neg, None)))
  g_v, g_neg = jax.grad(loss, argnums=(0, 1))(v, neg, 6.0)
  h_v, h_neg = jax.grad(loss, argnums=(0, 1))(v, neg, None)
  assert float(g_v[0, 0, 0]) == 0.0 and float(h_v[0, 0, 0]) != 0.0
  assert float(g_neg[0, 0, 0, 0]) == 0.0 and float(h_neg[0, 0, 0, 0]) != 0.0
  np.testing.assert_allclose(g_v[0, 1], h_v[0, 1])
  np.testing.assert_allclose(g_neg[0, 1], h_neg[0, 1])


def test_no_pairs_is_zero_with_zero_gradients():
  u, v, _, neg, _ = arrays(4)
  none = jnp.zeros((3, 4), bool)
  assert float(w2v.sgns_loss(u, v, none, neg)) == 0.0
  grads = jax.grad(lambda u, v, neg: w2v.sgns_loss(u, v, none, neg), argnums=(0, 1, 2))(u, v, neg)
  assert all(not np.any(np.asarray(g)) for g in grads)
  assert float(w2v.cbow_loss(u, v, none, neg[:, 0])) == 0.0


def test_shape_errors():
  u, v, mask, neg, _ = arrays(5)
  with pytest.raises(ValueError, match="sgns_loss needs"):
    w2v.sgns_loss(u, v, mask, neg[:, 0])
  with pytest.raises(ValueError, match="sgns_loss needs"):
    w2v.sgns_loss(u, v, mask[:, :2], neg)
  with pytest.raises(ValueError, match="cbow_loss needs"):
    w2v.cbow_loss(u, v, mask, neg)
  with pytest.raises(ValueError, match="reduction"):
    w2v.sgns_loss(u, v, mask, neg, reduction="max")
  with pytest.raises(ValueError, match="score_negatives_with"):
    w2v.sgns_loss(u, v, mask, neg, score_negatives_with="both")


def test_negatives_follow_the_noise_distribution():
  counts = np.asarray([500, 200, 100, 50, 20, 10, 5, 3, 2, 1, 0, 1], np.float64)
  probs = counts ** 0.75 / np.sum(counts ** 0.75)
  draws = jax.jit(w2v.draw_negatives, static_argnums=2)(
      jax.random.key(0), jnp.asarray(probs, jnp.float32), (400, 50, 5))
  assert draws.dtype == jnp.int32 and draws.shape == (400, 50, 5)
  seen = np.bincount(np.asarray(draws).ravel(), minlength=len(probs))
  assert len(seen) == len(probs) and seen[10] == 0  # a zero-count word never comes
  expected = probs * draws.size
  live = expected > 0
  chi2 = np.sum((seen[live] - expected[live]) ** 2 / expected[live])
  assert chi2 < stats.chi2.ppf(0.999, df=live.sum() - 1), chi2
  # rare words too: within 5 standard deviations each
  z = (seen[live] - expected[live]) / np.sqrt(expected[live] * (1 - probs[live]))
  assert np.all(np.abs(z) < 5), z
  # and the draw is far from a uniform one: it is the table that is read
  assert seen[0] > 50 * seen[9]


def test_negatives_from_a_large_skewed_vocabulary():
  # float32 cumulative sums lose the rare words of a 100k vocabulary; the
  # integer table does not.
  vocab = 100_000
  counts = np.full(vocab, 5.0)
  counts[:10] = 1e7
  probs = counts ** 0.75 / np.sum(counts ** 0.75)
  draws = np.asarray(w2v.draw_negatives(jax.random.key(1), jnp.asarray(probs, jnp.float32),
                                        (2_000_000,)))
  assert draws.min() >= 0 and draws.max() < vocab
  rare = np.mean(draws >= 10)
  want = probs[10:].sum()
  assert rare == pytest.approx(want, abs=5 * math.sqrt(want * (1 - want) / draws.size))
  tail = np.mean(draws >= vocab - 10_000)
  assert tail == pytest.approx(probs[-10_000:].sum(), rel=0.05)


def test_shared_negatives_equal_the_per_pair_loss_with_repeated_negatives():
  """The shared-negative SGNS is the per-pair loss whose negatives are the
  centre's for every context: values and gradients, both reductions."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from sslax.losses import word2vec as w2v  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(3)
  n, c, k, d = 5, 6, 4, 7
  u = rng.normal(size=(n, d)).astype(np.float32)
  v = rng.normal(size=(n, c, d)).astype(np.float32)
  neg = rng.normal(size=(n, k, d)).astype(np.float32)
  mask = rng.random((n, c)) < 0.5
  mask[0] = False  # a centre without pairs
  for reduction in ("mean", "sum"):
    shared = lambda a, b, m: w2v.sgns_loss_shared_negatives(a, b, mask, m,
                                                            reduction=reduction)
    per_pair = lambda a, b, m: w2v.sgns_loss(
        a, b, mask, np.broadcast_to(m[:, None], (n, c, k, d)) if isinstance(m, np.ndarray)
        else jax.numpy.broadcast_to(m[:, None], (n, c, k, d)), reduction=reduction)
    np.testing.assert_allclose(float(shared(u, v, neg)), float(per_pair(u, v, neg)),
                               rtol=1e-5)
    for g1, g2 in zip(jax.grad(shared, argnums=(0, 1, 2))(u, v, neg),
                      jax.grad(per_pair, argnums=(0, 1, 2))(u, v, neg)):
      np.testing.assert_allclose(np.asarray(g1), np.asarray(g2), rtol=1e-4, atol=1e-6)
