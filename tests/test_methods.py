"""MoCo, BYOL and Barlow Twins: EMA targets, the MoCo queue, shuffled batch
norm, and BYOL not collapsing."""

import collections
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT
from sslax import losses
from sslax.config_loading import load_config_file
from sslax.data import pipeline
from sslax.data.sources import get_source
from sslax.methods import build_method, common, moco
from sslax.train.run import init_state, setup
from sslax.train.step import compile_step


def _config(name):
  c = load_config_file(os.path.join(ROOT, "configs", f"{name}.py:smoke"))
  c.progress_bar = False
  return c


def _batch(config, source, step):
  idx = pipeline.global_batch_indices(config.seed, step, config.global_batch_size,
                                      len(source))
  _examples = source.get(idx)
  images, labels = _examples["image"], _examples["label"]
  return {"image": jnp.asarray(images), "label": jnp.asarray(labels)}


def _setup(config):
  run = setup(config)
  state = init_state(run)
  return run.source, run.method, state, compile_step(run, state)


def test_ema_matches_its_formula():
  rng = np.random.default_rng(0)
  target = {"a": rng.normal(size=(3, 4)), "b": {"c": rng.normal(size=5)}}
  online_tree = {"a": rng.normal(size=(3, 4)), "b": {"c": rng.normal(size=5)}}
  out = common.ema(target, online_tree, 0.9)
  np.testing.assert_allclose(out["a"], 0.9 * target["a"] + 0.1 * online_tree["a"])
  np.testing.assert_allclose(out["b"]["c"], 0.9 * target["b"]["c"] + 0.1 * online_tree["b"]["c"])


def test_byol_momentum_rises_from_base_to_one_on_a_cosine():
  assert float(common.cosine_momentum(0, 100, 0.99)) == pytest.approx(0.99)
  assert float(common.cosine_momentum(50, 100, 0.99)) == pytest.approx(0.995)
  assert float(common.cosine_momentum(100, 100, 0.99)) == pytest.approx(1.0)


@pytest.mark.parametrize("name,target_key,momentum", [
    ("moco_v2", "key_params", lambda c, step: c.moco.momentum),
    ("byol", "params",
     lambda c, step: float(common.cosine_momentum(step, c.num_steps, c.byol.tau_base))),
])
def test_target_is_the_ema_of_the_trained_parameters(name, target_key, momentum):
  config = _config(name)
  source, _, state, step = _setup(config)
  for s in range(2):
    before = jax.device_get(getattr(state.method_state, target_key))  # state is donated
    state, _ = step(state, _batch(config, source, s))
    m = momentum(config, s)
    want = jax.tree.map(lambda t, o: m * t + (1 - m) * o, before,
                        {k: state.params[k] for k in before})
    for got, exp in zip(jax.tree.leaves(getattr(state.method_state, target_key)),
                        jax.tree.leaves(want)):
      np.testing.assert_allclose(np.asarray(got), np.asarray(exp), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name,target_key", [("moco_v1", "key_params"),
                                             ("byol", "params")])
def test_target_tree_gets_no_gradient(name, target_key):
  config = _config(name)
  source, method, state, _ = _setup(config)
  batch = _batch(config, source, 0)

  def loss_of_target(target):
    method_state = state.method_state._replace(**{target_key: target})
    return method.loss_fn(state.params, state.model_state, method_state, batch,
                          jax.random.PRNGKey(0))[0]

  grads = jax.jit(jax.grad(loss_of_target))(getattr(state.method_state, target_key))
  assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads))
  # ...while the trained parameters do get one.
  grads = jax.jit(jax.grad(lambda p: method.loss_fn(p, state.model_state,
                                                    state.method_state, batch,
                                                    jax.random.PRNGKey(0))[0]))(state.params)
  assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)) > 0


def test_enqueue_is_a_fifo():
  k_size, n = 12, 4
  queue = jnp.zeros((k_size, 2))
  ptr = jnp.zeros((), jnp.int32)
  fifo = collections.deque(maxlen=k_size)
  for _ in range(k_size):
    fifo.append((0.0, 0.0))
  for step in range(7):  # wraps around twice
    keys = jnp.asarray([[step, i] for i in range(n)], jnp.float32)
    queue, ptr = moco.enqueue(queue, ptr, keys)
    fifo.extend(map(tuple, np.asarray(keys)))
    # The queue is a ring buffer whose oldest entry sits at ptr.
    ring = np.roll(np.asarray(queue), -int(ptr), axis=0)
    np.testing.assert_array_equal(ring, np.asarray(list(fifo)))


def test_moco_queue_holds_the_last_keys_of_training():
  config = _config("moco_v1")  # queue of 64 keys, batch 32
  source, method, state, _ = _setup(config)
  model_keys = []
  method_state = state.method_state
  params = state.params
  for s in range(3):
    batch = _batch(config, source, s)
    key = jax.random.fold_in(state.rng, s)
    _, aux = method.loss_fn(params, state.model_state, method_state, batch, key)
    # The keys, computed independently of the loss: key encoder on view 2.
    _, x_k = common.two_views(key, batch["image"], config)
    model = common.EncoderWithHead(encoder=method.encoder.module(),
                                   head=common.make_head(config.head))
    k, _ = moco.key_features(model, method_state.key_params,
                             method_state.key_model_state, x_k,
                             config.moco.bn_groups)
    model_keys.append(np.asarray(losses.l2_normalize(k)))
    method_state = aux.method_state
  assert int(method_state.queue_ptr) == (3 * 32) % 64
  # Step 2's keys overwrote the oldest (step 0's) slots 0..31; step 1's are in 32..63.
  np.testing.assert_allclose(np.asarray(method_state.queue[:32]), model_keys[2],
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(method_state.queue[32:]), model_keys[1],
                             rtol=1e-5, atol=1e-6)


def test_shuffled_bn_keys_use_another_sub_batch_than_their_queries():
  config = _config("moco_v1")
  _, method, state, _ = _setup(config)
  groups = 4
  model = common.EncoderWithHead(encoder=method.encoder.module(), head=common.make_head(config.head))
  x = jax.random.normal(jax.random.PRNGKey(1), (32, 28, 28, 1))
  params, model_state = state.method_state.key_params, state.method_state.key_model_state
  k, _ = moco.key_features(model, params, model_state, x, groups)
  # Reference: normalise each sub-batch of the rolled batch on its own.
  rolled = jnp.roll(x, 8, axis=0)
  parts = [common.apply_train(model, params, model_state, rolled[g * 8:(g + 1) * 8])[0][1]
           for g in range(groups)]
  want = jnp.roll(jnp.concatenate(parts), -8, axis=0)
  np.testing.assert_allclose(np.asarray(k), np.asarray(want), rtol=1e-4, atol=1e-5)
  # Example i's key is normalised with group (i // 8 + 1) % 4: never its query's.
  query_group = np.arange(32) // 8
  key_group = (np.arange(32) + 8) % 32 // 8
  assert np.all(query_group != key_group)
  # And it is on: with one group (no shuffling) the keys differ.
  k1, _ = moco.key_features(model, params, model_state, x, 1)
  assert float(jnp.abs(k1 - k).max()) > 1e-3


def test_byol_short_run_does_not_collapse(tmp_path):
  from sslax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  config = load_config_file(os.path.join(ROOT, "configs", "byol.py:fashion_mnist"))
  config.update(num_steps=60, global_batch_size=64, log_every=20, checkpoint_every=60,
                online_eval_every=0, progress_bar=False)
  config.model.widths = (16, 32, 64)
  config.optimizer.warmup_steps = 10
  state = train_and_evaluate(config, str(tmp_path))
  method = build_method(config)
  test = get_source(config.data, "test")
  images = test.get(np.arange(512))["image"]
  x = common.center_input(jnp.asarray(images), config)
  _, z, _ = method_online_apply(method, config, state, x)
  z = np.asarray(losses.l2_normalize(z))
  d = z.shape[1]
  std = z.std(axis=0).mean()
  assert std > 0.5 / np.sqrt(d), (std, 0.5 / np.sqrt(d))


def method_online_apply(method, config, state, x):
  from sslax.methods import byol  # pylint: disable=g-import-not-at-top
  online_model = common.EncoderHeadPredictor(encoder=method.encoder.module(), head=common.make_head(config.head),
                             predictor=common.make_head(config.predictor))
  return online_model.apply({"params": state.params, **state.model_state}, x, train=False)
