"""Linear evaluation: a multinomial logistic regression on frozen features
(the linear protocol of Zhang et al. 2016 and SimCLR, Chen et al. 2020).

Features are standardised with the statistics of every training example
(they need no labels, so at 1% of the labels they are not those of a few
hundred examples, in which a feature can be constant; a feature constant over
the whole training set is only centred). The L2 penalty is the one of least
cross entropy on a stratified validation split of the labelled subset (the
penalties fitted from the strongest down, each from the one before), then the
classifier is refitted on the whole subset with L-BFGS, run until the
gradient's norm is below ``TOLERANCE`` (at most ``MAX_STEPS``); its steps,
final loss, gradient norm and whether it converged are reported.
Deterministic given the seed.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sslax.errors import UserError

WEIGHT_DECAYS = (1e-3, 1e-2, 1e-1)
# How features are standardised (written into each result).
STANDARDIZATION = "every training example's statistics; constant features centred"
# L-BFGS runs until the gradient's norm is below TOLERANCE (at most MAX_STEPS).
TOLERANCE = 1e-3
MAX_STEPS = 1000
# Written into each result and raised with every change that moves the
# probe's figures: a result of another version is not this probe's. (3: the
# penalty of least validation cross entropy; 2: of most validation accuracy,
# every training example's statistics, L-BFGS to TOLERANCE; 1, unrecorded:
# the labelled subset's statistics, 100 L-BFGS steps.)
VERSION = 3


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


def _mean_cross_entropy(params, x, y):
  """optax's ``softmax_cross_entropy_with_integer_labels``, averaged, with
  its label logit taken by a squeeze, not ``.take(0)``: the take's gradient
  is a scatter of the mean's constant cotangent, which XLA constant-folds
  for seconds at 48,000 rows (a "slow_operation_alarm" in the log). The
  same operations otherwise: bit for bit the same fits."""
  logits = x @ params["w"] + params["b"]
  label_logits = jnp.squeeze(jnp.take_along_axis(logits, y[:, None], axis=-1), -1)
  return (jax.nn.logsumexp(logits, axis=-1) - label_logits).mean()


def _loss(params, x, y, weight_decay):
  ce = _mean_cross_entropy(params, x, y)
  return ce + 0.5 * weight_decay * jnp.sum(jnp.square(params["w"]))


def zero_params(dim: int, num_classes: int):
  return {"w": jnp.zeros((dim, num_classes), jnp.float32),
          "b": jnp.zeros((num_classes,), jnp.float32)}


@functools.partial(jax.jit, static_argnames=("num_classes", "max_steps"))
def fit_logistic_regression(x, y, weight_decay, *, num_classes, init=None,
                            tolerance=TOLERANCE, max_steps=MAX_STEPS):
  """Minimises mean cross entropy + wd/2 ||W||^2 with L-BFGS from ``init``
  (zeros when None), until the gradient's norm is below ``tolerance`` or
  after ``max_steps``; returns (params, {steps, final_loss, gradient_norm}).
  With wd > 0 the minimum is unique: ``init`` changes how many steps reach
  it, and where within the tolerance they stop."""
  params = init if init is not None else zero_params(x.shape[1], num_classes)
  fun = functools.partial(_loss, x=x, y=y, weight_decay=weight_decay)
  opt = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(fun)

  def step(carry):
    params, opt_state = carry
    value, grad = value_and_grad(params, state=opt_state)
    updates, opt_state = opt.update(grad, opt_state, params, value=value,
                                    grad=grad, value_fn=fun)
    return optax.apply_updates(params, updates), opt_state

  def unconverged(carry):
    _, opt_state = carry
    steps = optax.tree.get(opt_state, "count")
    norm = optax.tree.norm(optax.tree.get(opt_state, "grad"))
    # (a NaN norm is not converged)
    return (steps == 0) | ((steps < max_steps) & ~(norm < tolerance))

  params, opt_state = jax.lax.while_loop(unconverged, step, (params, opt.init(params)))
  value, grad = jax.value_and_grad(fun)(params)
  return params, {"steps": optax.tree.get(opt_state, "count"), "final_loss": value,
                  "gradient_norm": optax.tree.norm(grad)}


def accuracy(params, x, y) -> float:
  predictions = jnp.argmax(x @ params["w"] + params["b"], axis=-1)
  return float(jnp.mean(predictions == y))


def cross_entropy(params, x, y) -> float:
  """Mean cross entropy of the labels ``y`` (no penalty)."""
  return float(_mean_cross_entropy(params, x, y))


def least_loss_penalty(losses: dict) -> float:
  """The penalty of least validation loss in ``{penalty: loss}`` (the
  stronger on a tie; a NaN loss is no choice: it sorts last)."""
  return min(losses, key=lambda wd: (np.nan_to_num(losses[wd], nan=np.inf), -wd))


def scale_of(mean, std):
  """The standard deviations ``std``, 1 where a feature is constant (to
  float32 rounding): such a feature is only centred, not divided by ~0."""
  constant = std <= 1e-6 * np.maximum(1.0, np.abs(mean))
  return np.where(constant, 1.0, std).astype(np.float32)


def feature_statistics(x, chunk=65536):
  """(mean, scale) of each column of ``x`` (``scale_of``), summed in float64
  a chunk of rows at a time (no copy of ``x``; a column constant over 60,000
  rows comes out constant)."""
  total = np.zeros(x.shape[1], np.float64)
  for start in range(0, len(x), chunk):
    total += np.asarray(x[start:start + chunk], np.float64).sum(0)
  mean = total / len(x)
  sq = np.zeros(x.shape[1], np.float64)
  for start in range(0, len(x), chunk):
    sq += np.square(np.asarray(x[start:start + chunk], np.float64) - mean).sum(0)
  return mean.astype(np.float32), scale_of(mean, np.sqrt(sq / len(x)))


def standardize(stats, x):
  mean, scale = stats
  out = np.asarray(x, np.float32) - mean
  out /= scale
  return jnp.asarray(out)


def linear_probe(train_x, train_y, test_x, test_y, *, fraction: float, seed: int = 0,
                 num_classes: int, weight_decays=WEIGHT_DECAYS, subset=None,
                 tolerance: float = TOLERANCE, max_steps: int = MAX_STEPS):
  """Top-1 test accuracy of a linear classifier trained on a stratified
  ``fraction`` of the training labels (or on the given ``subset`` indices).
  Returns a dict for the eval JSON."""
  if subset is None:
    subset = stratified_subset(train_y, fraction, seed)
  stats = feature_statistics(train_x)
  x, y = standardize(stats, np.asarray(train_x)[subset]), np.asarray(train_y)[subset]
  # Validation split for the L2 penalty: 20% of each class of the subset. With
  # fewer than 2 labels in some class there is nothing to validate on, and the
  # middle of the grid is used. The penalty is chosen by cross entropy, not
  # accuracy: on 120 validation examples (1% of Fashion-MNIST) accuracy moves
  # in steps of 0.83 points, and at 12,000 two penalties can tie to an
  # example (RESULTS.md, "The linear probe", measures what that cost).
  init = zero_params(x.shape[1], num_classes)  # (passed, not None: one compile less)
  val_acc, val_loss, solutions, steps = {}, {}, {}, {}
  if np.unique(y, return_counts=True)[1].min() < 2:
    best = weight_decays[len(weight_decays) // 2]
  else:
    val = stratified_subset(y, 0.2, seed + 1)
    fit = np.setdiff1d(np.arange(len(y)), val)
    x_fit, y_fit, x_val, y_val = x[fit], jnp.asarray(y[fit]), x[val], jnp.asarray(y[val])
    # The penalties from the strongest down, each fit started from the one
    # before (a regularisation path: fewer steps to the same minima).
    for wd in sorted(weight_decays, reverse=True):
      init, done = fit_logistic_regression(x_fit, y_fit, wd, num_classes=num_classes,
                                           init=init, tolerance=tolerance,
                                           max_steps=max_steps)
      solutions[wd], steps[wd] = init, int(done["steps"])
      val_acc[wd] = accuracy(init, x_val, y_val)
      val_loss[wd] = cross_entropy(init, x_val, y_val)
    best = least_loss_penalty(val_loss)
  y = jnp.asarray(y)
  params, final = fit_logistic_regression(x, y, best, num_classes=num_classes,
                                          init=solutions.get(best, init), tolerance=tolerance,
                                          max_steps=max_steps)
  return {
      "top1": accuracy(params, standardize(stats, test_x), jnp.asarray(test_y)),
      "train_top1": accuracy(params, x, y),
      "label_fraction": fraction,
      "num_labels": int(len(subset)),
      "weight_decay": best,
      "validation_top1": {str(k): v for k, v in val_acc.items()},
      "validation_cross_entropy": {str(k): v for k, v in val_loss.items()},
      "validation_lbfgs_steps": {str(k): v for k, v in steps.items()},
      "probe_version": VERSION,
      "standardization": STANDARDIZATION,
      "lbfgs_steps": int(final["steps"]),
      "lbfgs_tolerance": float(tolerance),
      "final_loss": float(final["final_loss"]),
      "gradient_norm": float(final["gradient_norm"]),
      "converged": bool(final["gradient_norm"] < tolerance),
      "seed": seed,
  }
