"""Classic metric-learning losses against naive references written from the
papers' formulas, with Python loops in float64."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sslax.losses import classic

# ----------------------------------------------------------------------------
# Naive float64 references, one per loss, straight from the formulas.
# ----------------------------------------------------------------------------


def _sq(u, v):
  return float(np.sum((np.asarray(u, np.float64) - np.asarray(v, np.float64)) ** 2))


def _logsumexp(values):
  m = max(values)
  return m + math.log(sum(math.exp(v - m) for v in values))


def naive_contrastive_pair(x1, x2, same, margin):
  total = 0.0
  for a, b, s in zip(x1, x2, same):
    d = math.sqrt(_sq(a, b))
    total += s * d * d / 2 + (1 - s) * max(0.0, margin - d) ** 2 / 2
  return total / len(x1)


def naive_triplet(a, p, n, margin):
  return sum(max(0.0, _sq(a[i], p[i]) - _sq(a[i], n[i]) + margin)
             for i in range(len(a))) / len(a)


def naive_semi_hard(x, labels, margin):
  n = len(x)
  terms = []
  for i in range(n):
    negs = [k for k in range(n) if labels[k] != labels[i]]
    if not negs:
      continue
    for j in range(n):
      if j == i or labels[j] != labels[i]:
        continue
      d_ap = _sq(x[i], x[j])
      farther = [_sq(x[i], x[k]) for k in negs if _sq(x[i], x[k]) > d_ap]
      d_an = min(farther) if farther else max(_sq(x[i], x[k]) for k in negs)
      terms.append(max(0.0, d_ap - d_an + margin))
  return sum(terms) / len(terms) if terms else 0.0


def naive_lifted(x, labels, margin):
  n = len(x)
  dist = lambda i, j: math.sqrt(_sq(x[i], x[j]))
  total, num_pos = 0.0, 0
  for i in range(n):
    for j in range(i + 1, n):
      if labels[i] != labels[j]:
        continue
      num_pos += 1
      terms = ([margin - dist(i, k) for k in range(n) if labels[k] != labels[i]]
               + [margin - dist(j, l) for l in range(n) if labels[l] != labels[j]])
      if not terms:
        continue
      jij = _logsumexp(terms) + dist(i, j)
      total += max(0.0, jij) ** 2
  return total / (2 * num_pos) if num_pos else 0.0


def naive_n_pair(f, fp, l2_reg):
  n = len(f)
  dot = lambda u, v: float(np.dot(np.asarray(u, np.float64), np.asarray(v, np.float64)))
  total = 0.0
  for i in range(n):
    total += math.log(1 + sum(math.exp(dot(f[i], fp[j]) - dot(f[i], fp[i]))
                              for j in range(n) if j != i))
  reg = sum(float(np.sum(np.square(f[i], dtype=np.float64)))
            + float(np.sum(np.square(fp[i], dtype=np.float64))) for i in range(n)) / n
  return total / n + l2_reg * reg


def naive_nce(lm_data, lm_noise, ln_data, ln_noise, num_noise):
  sigmoid = lambda u: 1 / (1 + math.exp(-u))
  total = 0.0
  for i in range(len(lm_data)):
    g = lm_data[i] - math.log(num_noise) - ln_data[i]
    term = math.log(sigmoid(g))
    for k in range(num_noise):
      g = lm_noise[i][k] - math.log(num_noise) - ln_noise[i][k]
      term += math.log(1 - sigmoid(g))
    total -= term
  return total / len(lm_data)


def naive_infonce(q, p, negs, temperature):
  negs = np.asarray(negs, np.float64)
  s = lambda u, v: float(np.dot(np.asarray(u, np.float64), v)) / temperature
  total = 0.0
  for i in range(len(q)):
    own = negs if negs.ndim == 2 else negs[i]
    num = math.exp(s(q[i], p[i]))
    total -= math.log(num / (num + sum(math.exp(s(q[i], nk)) for nk in own)))
  return total / len(q)


def naive_snn(x, labels, temperature):
  n = len(x)
  terms = []
  for i in range(n):
    num = sum(math.exp(-_sq(x[i], x[j]) / temperature)
              for j in range(n) if j != i and labels[j] == labels[i])
    if num == 0.0:
      continue  # No same-class partner: excluded, as the library documents.
    den = sum(math.exp(-_sq(x[i], x[k]) / temperature) for k in range(n) if k != i)
    terms.append(-math.log(num / den))
  return sum(terms) / len(terms) if terms else 0.0


# ----------------------------------------------------------------------------
# Each case: the library call, the naive reference, and a maker of float64
# inputs (the differentiable arrays first, then the fixed ones).
# ----------------------------------------------------------------------------


def _labels(rng, n, classes):
  # Every class twice at least, then random; shuffled.
  base = np.repeat(np.arange(classes), 2)[:n]
  rest = rng.integers(0, classes, size=n - len(base))
  return rng.permutation(np.concatenate([base, rest])).astype(np.int32)


def _make(name, rng, n, d):
  """(differentiable float64 arrays, fixed args, static kwargs)."""
  if name == "contrastive_pair":
    same = (np.arange(n) % 2).astype(np.float64)
    return [rng.normal(size=(n, d)), rng.normal(size=(n, d))], [same], {"margin": 1.5 * math.sqrt(d)}
  if name == "triplet":
    return [rng.normal(size=(n, d)) for _ in range(3)], [], {"margin": 1.0}
  if name in ("semi_hard", "lifted", "snn"):
    kw = {"margin": 1.0} if name != "snn" else {"temperature": 2.0}
    return [rng.normal(size=(n, d))], [_labels(rng, n, max(2, n // 3))], kw
  if name == "n_pair":
    return [0.5 * rng.normal(size=(n, d)), 0.5 * rng.normal(size=(n, d))], [], {"l2_reg": 0.01}
  if name == "nce":
    k = d
    return [rng.normal(size=n), rng.normal(size=(n, k)),
            rng.normal(size=n), rng.normal(size=(n, k))], [], {"num_noise": k}
  if name == "infonce_shared":
    return [rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.normal(size=(n + 2, d))], [], {"temperature": 0.7}
  if name == "infonce_per_query":
    return [rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.normal(size=(n, 3, d))], [], {"temperature": 0.7}
  raise KeyError(name)


CASES = {
    "contrastive_pair": (classic.contrastive_pair_loss,
                         lambda x1, x2, s, **kw: naive_contrastive_pair(x1, x2, s, kw["margin"])),
    "triplet": (classic.triplet_loss,
                lambda a, p, n, **kw: naive_triplet(a, p, n, kw["margin"])),
    "semi_hard": (classic.semi_hard_triplet_loss,
                  lambda x, y, **kw: naive_semi_hard(x, y, kw["margin"])),
    "lifted": (classic.lifted_structured_loss,
               lambda x, y, **kw: naive_lifted(x, y, kw["margin"])),
    "n_pair": (classic.n_pair_loss,
               lambda a, p, **kw: naive_n_pair(a, p, kw["l2_reg"])),
    "nce": (classic.nce_loss,
            lambda a, b, c, d, **kw: naive_nce(a, b, c, d, kw["num_noise"])),
    "infonce_shared": (classic.infonce,
                       lambda q, p, n, **kw: naive_infonce(q, p, n, kw["temperature"])),
    "infonce_per_query": (classic.infonce,
                          lambda q, p, n, **kw: naive_infonce(q, p, n, kw["temperature"])),
    "snn": (classic.soft_nearest_neighbour_loss,
            lambda x, y, **kw: naive_snn(x, y, kw["temperature"])),
}


def _lib(name, diff, fixed, kw):
  # Jitted: one compilation is faster here than dispatching every op eagerly.
  fn = jax.jit(functools.partial(CASES[name][0], **kw))
  return fn(*[jnp.asarray(a, jnp.float32) for a in diff],
            *[jnp.asarray(a) for a in fixed])


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("n,d", [(4, 3), (9, 5), (16, 8)])
def test_matches_naive_value(name, n, d):
  rng = np.random.default_rng(1000 * n + d)
  diff, fixed, kw = _make(name, rng, n, d)
  got = float(_lib(name, diff, fixed, kw))
  want = CASES[name][1](*diff, *fixed, **kw)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_naive_gradient(name):
  rng = np.random.default_rng(7)
  diff, fixed, kw = _make(name, rng, 6, 3)
  naive = CASES[name][1]
  grads = jax.jit(jax.grad(lambda args: _lib(name, args, fixed, kw)))(
      [jnp.asarray(a, jnp.float32) for a in diff])
  eps = 1e-6
  for which, got in enumerate(grads):
    want = np.zeros(diff[which].shape)
    for idx in np.ndindex(*diff[which].shape):
      plus = [a.copy() for a in diff]
      minus = [a.copy() for a in diff]
      plus[which][idx] += eps
      minus[which][idx] -= eps
      want[idx] = (naive(*plus, *fixed, **kw) - naive(*minus, *fixed, **kw)) / (2 * eps)
    assert np.any(want != 0.0), f"{name}: degenerate gradient check for input {which}"
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_jits(name):
  # One compiled function serves two batches of the same shape, and matches
  # the naive reference on both.
  fn = jax.jit(functools.partial(CASES[name][0], **_make(name, np.random.default_rng(0), 8, 4)[2]))
  for seed in (3, 4):
    diff, fixed, kw = _make(name, np.random.default_rng(seed), 8, 4)
    args = [jnp.asarray(a, jnp.float32) for a in diff] + [jnp.asarray(a) for a in fixed]
    np.testing.assert_allclose(float(fn(*args)), CASES[name][1](*diff, *fixed, **kw),
                               rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------
# Properties.
# ----------------------------------------------------------------------------


def test_contrastive_pair_gradient_finite_at_zero_distance():
  x = jnp.asarray([[1.0, 2.0], [0.5, -1.0]])
  for same in ([1.0, 1.0], [0.0, 0.0]):
    g = jax.jit(jax.grad(lambda a, s: classic.contrastive_pair_loss(a, x, s, margin=1.0)))(
        x, jnp.asarray(same))
    assert np.all(np.isfinite(np.asarray(g)))
  # Dissimilar pairs farther apart than the margin cost nothing.
  far = classic.contrastive_pair_loss(x, x + 10.0, jnp.zeros(2), margin=1.0)
  assert float(far) == 0.0


def test_triplet_loss_zero_when_margin_satisfied():
  a = jnp.zeros((3, 2))
  p = jnp.asarray([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])           # d_ap <= 1
  n = jnp.asarray([[2.0, 0.0], [0.0, -3.0], [-2.0, 1.0]])         # d_an >= 4
  assert float(classic.triplet_loss(a, p, n, margin=3.0)) == 0.0
  # One unit more margin than the tightest triplet allows: (1 - 4 + 4) / 3.
  np.testing.assert_allclose(float(classic.triplet_loss(a, p, n, margin=4.0)), 1.0 / 3, rtol=1e-6)


def test_semi_hard_picks_the_semi_hard_negative():
  # 1-D. Class 0 at 0 and 1; singleton negatives at 0.5, 1.5 and 3.
  # Anchor 0 (positive 1, d_ap = 1): negatives at d = 0.25 (hard), 2.25, 9;
  #   semi-hard = 2.25, term max(0, 1 - 2.25 + 2) = 0.75.
  # Anchor 1 (positive 0, d_ap = 1): negatives at d = 0.25, 0.25, 4;
  #   semi-hard = 4, term max(0, 1 - 4 + 2) = 0.
  # The singletons have no positive, so the loss is (0.75 + 0) / 2.
  x = jnp.asarray([[0.0], [1.0], [0.5], [1.5], [3.0]])
  y = jnp.asarray([0, 0, 1, 2, 3])
  loss = jax.jit(functools.partial(classic.semi_hard_triplet_loss, margin=2.0))
  np.testing.assert_allclose(float(loss(x, y)), 0.375, rtol=1e-6)
  # Hardest-negative mining would give ((1 - .25 + 2) + (1 - .25 + 2)) / 2 = 2.75.


def test_semi_hard_falls_back_to_the_largest_negative_distance():
  # Class 0 at 0 and 3 (d_ap = 9), negatives inside at 1 and 2: no negative is
  # farther than the positive, so each anchor uses its farthest negative (d = 4):
  # term 9 - 4 + 1 = 6 for both pairs. (The nearest, d = 1, would give 9.)
  x = jnp.asarray([[0.0], [3.0], [1.0], [2.0]])
  y = jnp.asarray([0, 0, 1, 2])
  loss = jax.jit(functools.partial(classic.semi_hard_triplet_loss, margin=1.0))
  np.testing.assert_allclose(float(loss(x, y)), 6.0, rtol=1e-6)


def test_batch_losses_without_pairs_or_negatives_are_zero_and_finite():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)
  distinct, single = jnp.arange(4), jnp.zeros(4, jnp.int32)
  for fn, kw in ((classic.semi_hard_triplet_loss, {"margin": 1.0}),
                 (classic.lifted_structured_loss, {"margin": 1.0}),
                 (classic.soft_nearest_neighbour_loss, {"temperature": 1.0})):
    value_and_grad = jax.jit(jax.value_and_grad(functools.partial(fn, **kw)))
    for y in (distinct, single):
      value, g = value_and_grad(x, y)
      assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(g)))
      if fn is not classic.soft_nearest_neighbour_loss or y is distinct:
        assert float(value) == 0.0


def test_soft_nearest_neighbour_excludes_examples_without_partner():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(5, 2))
  y = np.asarray([0, 0, 1, 1, 2])                     # example 4 has no partner
  snn = jax.jit(functools.partial(classic.soft_nearest_neighbour_loss, temperature=1.0))
  got = snn(jnp.asarray(x, jnp.float32), jnp.asarray(y))
  assert np.isfinite(float(got))
  np.testing.assert_allclose(float(got), naive_snn(x, y, 1.0), rtol=1e-5)
  # Well-separated classes: loss near 0; mixed classes: loss near log 2.
  sep = np.concatenate([rng.normal(size=(4, 2)) * 0.1, 10.0 + rng.normal(size=(4, 2)) * 0.1])
  ysep = jnp.asarray([0] * 4 + [1] * 4)
  assert float(snn(jnp.asarray(sep, jnp.float32), ysep)) < 1e-3


def test_infonce_shared_negatives_equal_broadcast_per_query():
  rng = np.random.default_rng(5)
  q, p = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
  negs = rng.normal(size=(10, 4))
  shared = classic.infonce(jnp.asarray(q), jnp.asarray(p), jnp.asarray(negs), temperature=0.5)
  per_query = classic.infonce(jnp.asarray(q), jnp.asarray(p),
                              jnp.broadcast_to(jnp.asarray(negs), (6, 10, 4)), temperature=0.5)
  np.testing.assert_allclose(float(shared), float(per_query), rtol=1e-6)


def test_n_pair_equals_infonce_with_other_positives_as_negatives():
  rng = np.random.default_rng(6)
  a = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
  p = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
  others = p[_others_index(5)]                                        # [5, 4, 3]
  np.testing.assert_allclose(float(classic.n_pair_loss(a, p)),
                             float(classic.infonce(a, p, others)), rtol=1e-6)


def test_nce_checks_num_noise_and_shapes():
  with pytest.raises(ValueError):
    classic.nce_loss(jnp.zeros(3), jnp.zeros((3, 4)), jnp.zeros(3), jnp.zeros((3, 4)), num_noise=5)
  with pytest.raises(ValueError):
    classic.nce_loss(jnp.zeros(3), jnp.zeros((2, 4)), jnp.zeros(3), jnp.zeros((2, 4)), num_noise=4)


def test_rejects_wrong_shapes():
  x = jnp.ones((4, 3))
  with pytest.raises(ValueError):
    classic.contrastive_pair_loss(x, jnp.ones((5, 3)), jnp.ones(4), margin=1.0)
  with pytest.raises(ValueError):
    classic.triplet_loss(x, x, jnp.ones((4, 2)), margin=1.0)
  with pytest.raises(ValueError):
    classic.semi_hard_triplet_loss(x, jnp.zeros(5), margin=1.0)
  with pytest.raises(ValueError):
    classic.lifted_structured_loss(jnp.ones(4), jnp.zeros(4), margin=1.0)
  with pytest.raises(ValueError):
    classic.n_pair_loss(x, jnp.ones((3, 3)))
  with pytest.raises(ValueError):
    classic.infonce(x, x, jnp.ones((5, 7, 3)))
  with pytest.raises(ValueError):
    classic.soft_nearest_neighbour_loss(x, jnp.zeros((4, 1)), temperature=1.0)


# ----------------------------------------------------------------------------
# InfoNCE as a lower bound on mutual information (van den Oord et al. 2018;
# Poole et al. 2019): for a batch of N pairs, I(X; Y) >= log N - L_InfoNCE.
# ----------------------------------------------------------------------------


def _others_index(n):
  """[n, n-1]: row i lists every j != i."""
  return np.asarray([[j for j in range(n) if j != i] for i in range(n)])


def _gaussian_pairs(key, n, d, rho):
  kx, ke = jax.random.split(key)
  x = jax.random.normal(kx, (n, d))
  y = rho * x + jnp.sqrt(1 - rho ** 2) * jax.random.normal(ke, (n, d))
  return x, y


def _make_infonce_mi_estimator(n, d, steps):
  """A jitted function (key, rho) -> mean InfoNCE loss L on fresh batches of N
  Gaussian pairs, after training a critic for ``steps`` Adam steps with
  ``classic.infonce``. rho is traced, so one compilation serves every rho.

  Critic: f(x, y) = y^T W x + c ||y||^2, written as the dot product of the
  separable embeddings g(x) = [W x, 1] and h(y) = [y, c ||y||^2]. For
  y = rho x + sqrt(1 - rho^2) e, log p(y|x) / p(y) = rho/(1-rho^2) y.x
  - rho^2 / (2 (1 - rho^2)) ||y||^2 + (terms in x alone), and the terms in x
  cancel in the softmax over candidates y_j, so the optimal InfoNCE critic lies
  in this family (W = rho/(1-rho^2) I, c = -rho^2/(2(1-rho^2))). Each query's
  negatives are the other N - 1 positives of the batch: negatives [N, N-1, D+1].
  """
  others = jnp.asarray(_others_index(n))
  opt = optax.adam(0.05)

  def loss_fn(params, key, rho):
    x, y = _gaussian_pairs(key, n, d, rho)
    g = jnp.concatenate([x @ params["w"].T, jnp.ones((n, 1))], axis=1)
    h = jnp.concatenate([y, params["c"] * jnp.sum(y * y, axis=1, keepdims=True)], axis=1)
    return classic.infonce(g, h, h[others])

  @jax.jit
  def train_then_evaluate(key, rho):
    init_key, train_key, eval_key = jax.random.split(key, 3)
    params = {"w": 0.01 * jax.random.normal(init_key, (d, d)), "c": jnp.zeros(())}

    def step(carry, k):  # One Adam step on a fresh batch.
      params, state = carry
      grads = jax.grad(loss_fn)(params, k, rho)
      updates, state = opt.update(grads, state, params)
      return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)),
                                  jax.random.split(train_key, steps))
    # The bound is on an expectation: average L over 400 fresh batches.
    eval_keys = jax.random.split(eval_key, 400)
    return jnp.mean(jax.vmap(lambda k: loss_fn(params, k, rho))(eval_keys))

  return train_then_evaluate


def test_infonce_lower_bounds_mutual_information():
  n, d = 32, 4                                                # log N = 3.47
  estimate = _make_infonce_mi_estimator(n, d, steps=1000)
  def bound(rho, seed):
    return math.log(n) - float(estimate(jax.random.PRNGKey(seed), rho))
  def true_mi(rho):
    return -(d / 2) * math.log(1 - rho ** 2)
  # I well below log N: the bound holds and is tight to within 25%.
  mi = true_mi(0.6)                                           # 0.89 nats
  est = bound(0.6, seed=0)
  assert est <= mi + 0.02, (est, mi)
  assert est >= 0.75 * mi, (est, mi)
  # I above log N: the bound saturates just below log N (and stays below I).
  mi = true_mi(0.97)                                          # 5.66 nats
  est = bound(0.97, seed=1)
  assert est <= math.log(n) and est <= mi, (est, mi)
  assert est >= 0.9 * math.log(n), (est, math.log(n))
