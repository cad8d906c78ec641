"""Optimizers and the warmup + cosine schedule."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from sslax.errors import UserError
from sslax.config_base import base_config
from sslax.train.optim import make_optimizer


def _opt(name, **kw):
  c = base_config("test").optimizer.to_dict()  # every default, from one place
  c.update(name=name, learning_rate=0.4, lr_scaling="linear", warmup_steps=10,
           weight_decay=0.1, momentum=0.0, trust_coefficient=0.001)
  c.update(kw)
  return ml_collections.ConfigDict(c)


def test_schedule_warms_up_linearly_then_decays_to_zero():
  _, schedule = make_optimizer(_opt("sgd"), global_batch_size=512, num_steps=110)
  peak = 0.4 * 512 / 256
  np.testing.assert_allclose(float(schedule(0)), 0.0)
  np.testing.assert_allclose(float(schedule(5)), peak / 2, rtol=1e-6)
  np.testing.assert_allclose(float(schedule(10)), peak, rtol=1e-6)
  np.testing.assert_allclose(float(schedule(60)), peak / 2, rtol=1e-5)  # cosine midpoint
  np.testing.assert_allclose(float(schedule(110)), 0.0, atol=1e-7)


def test_lars_excludes_biases_from_decay_and_trust_ratio():
  tx, schedule = make_optimizer(_opt("lars", warmup_steps=0, lr_scaling="none"),
                                global_batch_size=256, num_steps=100)
  params = {"w": jnp.full((2, 3), 2.0), "b": jnp.full((3,), 2.0)}
  grads = {"w": jnp.full((2, 3), 0.5), "b": jnp.full((3,), 0.5)}
  updates, _ = tx.update(grads, tx.init(params), params)
  lr = float(schedule(0))
  # Bias: plain SGD, no decay, no trust ratio.
  np.testing.assert_allclose(np.asarray(updates["b"]), -lr * 0.5, rtol=1e-6)
  # Kernel: (g + wd * w) scaled by trust_coefficient * ||w|| / ||g + wd * w||.
  g = 0.5 + 0.1 * 2.0
  ratio = 0.001 * np.linalg.norm(np.full((2, 3), 2.0)) / np.linalg.norm(np.full((2, 3), g))
  np.testing.assert_allclose(np.asarray(updates["w"]), -lr * ratio * g, rtol=1e-5)


@pytest.mark.parametrize("name", ["sgd", "adamw", "lars"])
def test_each_optimizer_reduces_a_quadratic(name):
  tx, _ = make_optimizer(_opt(name, weight_decay=0.0, momentum=0.9, learning_rate=0.05,
                              warmup_steps=1, lr_scaling="none", trust_coefficient=1.0),
                         global_batch_size=256, num_steps=200)
  params = {"w": jnp.ones((3, 3))}
  state = tx.init(params)
  loss = lambda p: jnp.sum(jnp.square(p["w"] - 0.5))
  import jax  # pylint: disable=g-import-not-at-top
  for _ in range(100):
    updates, state = tx.update(jax.grad(loss)(params), state, params)
    params = optax.apply_updates(params, updates)
  assert float(loss(params)) < 0.1 * 9 * 0.25


def test_unknown_optimizer_is_a_user_error():
  with pytest.raises(UserError, match="lars"):
    make_optimizer(_opt("adagrad"), 256, 10)


def test_step_schedule_divides_by_ten_at_60_and_80_percent():
  from sslax.train.optim import learning_rate_schedule  # pylint: disable=g-import-not-at-top
  c = ml_collections.ConfigDict(dict(learning_rate=0.03, lr_scaling="linear",
                                     warmup_steps=0, schedule="step"))
  schedule = learning_rate_schedule(c, 512, 100)  # peak 0.06
  got = [float(schedule(s)) for s in (0, 59, 60, 79, 80, 99)]
  np.testing.assert_allclose(got, [0.06, 0.06, 0.006, 0.006, 0.0006, 0.0006], rtol=1e-5)
  c.warmup_steps = 10
  schedule = learning_rate_schedule(c, 256, 100)
  np.testing.assert_allclose([float(schedule(s)) for s in (0, 5, 10, 59, 60)],
                             [0.0, 0.015, 0.03, 0.03, 0.003], rtol=1e-5)
  c.schedule = "exponential"
  with pytest.raises(UserError, match="cosine or step"):
    learning_rate_schedule(c, 256, 100)
