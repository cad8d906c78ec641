"""Linear evaluation: a multinomial logistic regression on frozen features
(the linear protocol of Zhang et al. 2016 and SimCLR, Chen et al. 2020).

Features are standardised with the labelled subset's statistics; the L2
penalty is chosen on a stratified validation split of that subset, then the
classifier is refitted on the whole subset with L-BFGS. Deterministic given
the seed.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sslax.errors import UserError

WEIGHT_DECAYS = (1e-3, 1e-2, 1e-1)


def check_fraction(fraction: float) -> float:
  fraction = float(fraction)
  if not 0.0 < fraction <= 1.0:
    raise UserError(f"label fraction {fraction} is outside (0, 1]; use e.g. 0.01, "
                    "0.1 or 1.0")
  return fraction


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
  """Sorted indices of a seed-fixed ``fraction`` of each class (at least one
  example per class)."""
  fraction = check_fraction(fraction)
  rng = np.random.default_rng(seed)
  chosen = []
  for c in np.unique(labels):
    members = np.flatnonzero(labels == c)
    take = max(1, int(round(fraction * len(members))))
    chosen.append(rng.permutation(members)[:take])
  return np.sort(np.concatenate(chosen))


def _loss(params, x, y, weight_decay):
  logits = x @ params["w"] + params["b"]
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
  return ce + 0.5 * weight_decay * jnp.sum(jnp.square(params["w"]))


@functools.partial(jax.jit, static_argnames=("num_classes", "steps"))
def fit_logistic_regression(x, y, weight_decay, *, num_classes, steps=200):
  """Minimises mean cross entropy + wd/2 ||W||^2 with L-BFGS; returns params."""
  params = {"w": jnp.zeros((x.shape[1], num_classes), jnp.float32),
            "b": jnp.zeros((num_classes,), jnp.float32)}
  fun = functools.partial(_loss, x=x, y=y, weight_decay=weight_decay)
  opt = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(fun)

  def step(carry, _):
    params, opt_state = carry
    value, grad = value_and_grad(params, state=opt_state)
    updates, opt_state = opt.update(grad, opt_state, params, value=value,
                                    grad=grad, value_fn=fun)
    return (optax.apply_updates(params, updates), opt_state), value

  (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), length=steps)
  return params


def accuracy(params, x, y) -> float:
  predictions = jnp.argmax(x @ params["w"] + params["b"], axis=-1)
  return float(jnp.mean(predictions == y))


def standardize(train_x, *others):
  mean = train_x.mean(0)
  std = train_x.std(0) + 1e-6
  return [(a - mean) / std for a in (train_x, *others)]


def linear_probe(train_x, train_y, test_x, test_y, *, fraction: float, seed: int = 0,
                 num_classes: int, weight_decays=WEIGHT_DECAYS, steps: int = 100,
                 subset=None):
  """Top-1 test accuracy of a linear classifier trained on a stratified
  ``fraction`` of the training labels (or on the given ``subset`` indices).
  Returns a dict for the eval JSON."""
  if subset is None:
    subset = stratified_subset(train_y, fraction, seed)
  x, y = np.asarray(train_x)[subset], np.asarray(train_y)[subset]
  # Validation split for the L2 penalty: 20% of each class of the subset. With
  # fewer than 2 labels in some class there is nothing to validate on, and the
  # middle of the grid is used.
  val_acc = {}
  if np.unique(y, return_counts=True)[1].min() < 2:
    best = weight_decays[len(weight_decays) // 2]
  else:
    val = stratified_subset(y, 0.2, seed + 1)
    fit = np.setdiff1d(np.arange(len(y)), val)
    x_fit, x_val = standardize(x[fit], x[val])
    for wd in weight_decays:
      params = fit_logistic_regression(jnp.asarray(x_fit), jnp.asarray(y[fit]), wd,
                                       num_classes=num_classes, steps=steps)
      val_acc[wd] = accuracy(params, jnp.asarray(x_val), jnp.asarray(y[val]))
    best = max(weight_decays, key=lambda wd: (val_acc[wd], wd))
  x_all, x_test = standardize(x, np.asarray(test_x))
  params = fit_logistic_regression(jnp.asarray(x_all), jnp.asarray(y), best,
                                   num_classes=num_classes, steps=steps)
  return {
      "top1": accuracy(params, jnp.asarray(x_test), jnp.asarray(test_y)),
      "train_top1": accuracy(params, jnp.asarray(x_all), jnp.asarray(y)),
      "label_fraction": fraction,
      "num_labels": int(len(subset)),
      "weight_decay": best,
      "validation_top1": {str(k): v for k, v in val_acc.items()},
      "seed": seed,
  }
