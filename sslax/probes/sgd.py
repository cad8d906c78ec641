"""The linear evaluation protocol of SimCLR (Chen et al. 2020, appendix B.6)
and BYOL (Grill et al. 2020): a softmax classifier on frozen features trained
with mini-batch SGD with Nesterov momentum on the cross entropy, the learning
rate ``learning_rate * batch_size / 256`` decayed to 0 on a cosine, for a
number of epochs (90 on ImageNet).

It is the probe for datasets whose features do not fit one device, beside the
full-batch L-BFGS probe of ``linear``: features stay on the host, and each
global mini-batch is split over the data mesh of every device of every
process (each process feeds its own rows), with the classifier replicated.
Features are standardised with every training example's statistics, as in
``linear``. Optionally the training features are recomputed at every step
from augmented images (``Recompute``: random crops and flips, as SimCLR
trains its linear classifier). Deterministic given the seed, and the same
(to float rounding) on any number of devices.
"""

import collections
import concurrent.futures
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sslax.data import pipeline
from sslax.errors import UserError
from sslax.probes import sharded
from sslax.probes.linear import (STANDARDIZATION, check_fraction, feature_statistics,
                                 stratified_subset)
from sslax.sharding import replicated

LINEAR_PROBES = ("lbfgs", "sgd")


def check_probe(name) -> str:
  """``name`` if it is a linear probe (``config.eval.linear_probe``)."""
  if name not in LINEAR_PROBES:
    raise UserError(f"unknown linear probe {name!r} (config.eval.linear_probe); use "
                    f"one of {', '.join(LINEAR_PROBES)}")
  return name


class Recompute(NamedTuple):
  """Training features recomputed at every step instead of read from the
  features given: ``read(indices)`` gives the host inputs (images, an array)
  of those training examples, ``features(variables, inputs, key)`` their
  features [n, d] (traced under jit; ``key`` draws the augmentation),
  ``variables`` what ``features`` needs. ``threads`` read each batch in
  parts, a couple of steps ahead of the devices."""
  read: Callable[[np.ndarray], np.ndarray]
  features: Callable[[Any, Any, jax.Array], jax.Array]
  variables: Any
  threads: int = 1


def _read_ahead(read, rows_of_steps, threads, ahead=2):
  """``read(rows)`` of each step's rows, in order, computed up to ``ahead``
  steps in advance, each in ``threads`` parts on a thread pool."""

  def parts(rows):
    return [pool.submit(read, part)
            for part in np.array_split(rows, max(1, min(threads, len(rows))))]

  with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool:
    pending = collections.deque()
    for rows in rows_of_steps:
      pending.append(parts(rows))
      if len(pending) > ahead:
        yield np.concatenate([f.result() for f in pending.popleft()])
    while pending:
      yield np.concatenate([f.result() for f in pending.popleft()])


def sgd_optimizer(learning_rate: float, steps: int, momentum: float = 0.9,
                  weight_decay: float = 0.0):
  """Nesterov SGD, the rate decayed from ``learning_rate`` to 0 on a cosine
  over ``steps``; ``weight_decay`` (an L2 penalty) on the weights, not the
  bias."""
  schedule = optax.cosine_decay_schedule(learning_rate, max(int(steps), 1))
  return optax.chain(
      optax.add_decayed_weights(weight_decay, mask=lambda p: {"w": True, "b": False}),
      optax.sgd(schedule, momentum=momentum, nesterov=True))


def _logits(params, x, stats):
  mean, std = stats
  return ((x - mean) / std) @ params["w"] + params["b"]


def _batches(num_examples, batch_size, feeder):
  """(global indices padded to the feeder's size, weights) of each chunk of
  ``range(num_examples)``: the tail repeats the last example with weight 0."""
  for start in range(0, num_examples, batch_size):
    idx = np.minimum(np.arange(start, start + feeder.size), num_examples - 1)
    weights = ((np.arange(feeder.size) < batch_size) &
               (start + np.arange(feeder.size) < num_examples)).astype(np.float32)
    yield idx, weights


def accuracy(params, stats, x, y, indices=None, *, mesh=None, batch_size=4096) -> float:
  """Top-1 of the classifier on the rows ``indices`` (default all) of host
  features ``x`` (standardised by ``stats``), a sharded batch at a time."""
  mesh = mesh or sharded.eval_mesh()
  indices = np.arange(len(y)) if indices is None else np.asarray(indices)
  batch = min(int(batch_size), len(indices))
  feeder = sharded.Feeder(mesh, sharded.padded_size(batch, mesh))

  def correct(params, stats, x, y, w):
    return jnp.sum(w * (jnp.argmax(_logits(params, x, stats), -1) == y))

  correct = jax.jit(correct, out_shardings=replicated(mesh))
  params, stats = sharded.replicate((params, stats), mesh)
  total = 0.0
  for idx, w in _batches(len(indices), batch, feeder):
    rows = indices[feeder.local(idx)]
    total += float(sharded.gather(correct(
        params, stats, *feeder((x[rows], y[rows].astype(np.int32), feeder.local(w))))))
  return total / len(indices)


def fit_sgd(x, y, indices, stats, *, num_classes, epochs, batch_size, learning_rate,
            momentum=0.9, weight_decay=0.0, seed=0, mesh=None, recompute=None):
  """Trains the classifier on the rows ``indices`` of host features ``x``
  (standardised by ``stats``) and labels ``y``: ``epochs`` passes in global
  batches of ``batch_size`` (each epoch a new seed-fixed order), peak rate
  ``learning_rate * batch_size / 256``. With ``recompute``, the features of
  each batch are computed from ``recompute.read(indices)`` instead.
  Returns (params as host numpy, the last step's loss, the number of steps)."""
  mesh = mesh or sharded.eval_mesh()
  n = len(indices)
  batch = min(int(batch_size), n)
  feeder = sharded.Feeder(mesh, sharded.padded_size(batch, mesh))
  steps = max(1, math.ceil(epochs * n / batch))
  tx = sgd_optimizer(learning_rate * batch / 256, steps, momentum, weight_decay)
  rep = replicated(mesh)
  dim = int(x.shape[1])

  def init():
    params = {"w": jnp.zeros((dim, num_classes), jnp.float32),
              "b": jnp.zeros((num_classes,), jnp.float32)}
    return params, tx.init(params)

  def step(params, opt_state, aux, inputs, labels, weights, step_number):
    stats, variables = aux
    if recompute is not None:
      key = jax.random.fold_in(jax.random.PRNGKey(seed), step_number)
      inputs = recompute.features(variables, inputs, key)

    def loss_fn(p):
      ce = optax.softmax_cross_entropy_with_integer_labels(_logits(p, inputs, stats), labels)
      return jnp.sum(weights * ce) / jnp.sum(weights)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  params, opt_state = jax.jit(init, out_shardings=rep)()
  step = jax.jit(step, out_shardings=(rep, rep, rep), donate_argnums=(0, 1))
  aux = sharded.replicate((stats, None if recompute is None else recompute.variables),
                          mesh)
  weights = feeder.local((np.arange(feeder.size) < batch).astype(np.float32))

  def rows_of(s):
    """This process's rows (training-set indices) of global batch ``s``,
    padded with repeats of its last example."""
    order = pipeline.global_batch_indices(seed, s, batch, n)
    return indices[feeder.local(np.concatenate(
        [order, np.repeat(order[-1:], feeder.size - batch)]))]

  if recompute is None:
    inputs_of_steps = (x[rows_of(s)] for s in range(steps))
  else:
    inputs_of_steps = _read_ahead(recompute.read, (rows_of(s) for s in range(steps)),
                                  recompute.threads)
  loss = None
  for s, inputs in enumerate(inputs_of_steps):
    labels = y[rows_of(s)].astype(np.int32)
    params, opt_state, loss = step(params, opt_state, aux,
                                   *feeder((inputs, labels, weights)), np.int32(s))
  return jax.tree.map(sharded.gather, params), float(sharded.gather(loss)), steps


def sgd_linear_probe(train_x, train_y, test_x, test_y, *, fraction: float, seed: int = 0,
                     num_classes: int, subset=None, epochs: float = 90,
                     batch_size: int = 4096, learning_rate: float = 0.1,
                     momentum: float = 0.9, weight_decay: float = 0.0, mesh=None,
                     recompute=None):
  """Top-1 test accuracy of the SGD-trained linear classifier on a stratified
  ``fraction`` of the training labels (or the given ``subset`` indices of the
  training set; ``recompute.read`` gets indices of the training set too).
  Returns a dict for the eval JSON."""
  fraction = check_fraction(fraction)
  if epochs <= 0 or batch_size <= 0 or learning_rate <= 0:
    raise UserError(f"the SGD probe needs positive config.eval.sgd_epochs, sgd_batch_size "
                    f"and sgd_learning_rate, got {epochs}, {batch_size}, {learning_rate}")
  mesh = mesh or sharded.eval_mesh()
  train_y = np.asarray(train_y)
  if subset is None:
    subset = stratified_subset(train_y, fraction, seed)
  subset = np.asarray(subset)
  # Standardised by every training example (no labels needed), as the
  # L-BFGS probe does.
  stats = feature_statistics(train_x)
  params, loss, steps = fit_sgd(
      train_x, train_y, subset, stats, num_classes=num_classes, epochs=epochs,
      batch_size=batch_size, learning_rate=learning_rate, momentum=momentum,
      weight_decay=weight_decay, seed=seed, mesh=mesh, recompute=recompute)
  batch = min(int(batch_size), len(subset))
  return {
      "top1": accuracy(params, stats, test_x, np.asarray(test_y), mesh=mesh),
      "train_top1": accuracy(params, stats, train_x, train_y, subset, mesh=mesh),
      "label_fraction": fraction,
      "num_labels": int(len(subset)),
      "probe": "sgd",
      "epochs": float(epochs),
      "steps": steps,
      "batch_size": batch,
      "learning_rate": float(learning_rate * batch / 256),
      "momentum": float(momentum),
      "weight_decay": float(weight_decay),
      "augment": recompute is not None,
      "final_loss": loss,
      "standardization": STANDARDIZATION,
      "seed": seed,
  }
