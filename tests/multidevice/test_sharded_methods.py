"""On 8 simulated devices, each of two training steps of every registered
method (every config file's smoke variant, and the supervised method as
fine-tuning runs it) equals the step on one device from the same state with
the same global batch: every leaf of the whole TrainState and every metric;
and the sharded Barlow Twins and CPC losses equal the single-device ones.

Each eight-device step starts from the one-device state before it (the
second from a state the first step moved: queues, targets, optimizer
traces), so that a rounding difference is compared after the step that made
it rather than grown by the steps after it. The module runs on XLA's default
CPU path (``SSLAX_FAST_CPU=0``, tests/test_multidevice.py), see there why."""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image
from jax.sharding import NamedSharding, PartitionSpec as P

from sslax import losses
from sslax.config_loading import load_config_file
from sslax.data import photos, video_corpus
from sslax.eval.finetune import finetune_config
from sslax.methods import METHODS
from sslax.train import optim
from sslax.train.run import global_batch, init_state, setup
from sslax.train.step import compile_step
from sslax.sharding import DATA_AXIS, make_mesh, over_global_batch, replicated
import states

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Config file -> overrides that exercise a method's less common path.
STEP_CASES = {
    "simclr": {}, "moco_v1": {}, "moco_v2": {}, "byol": {}, "barlow_twins": {},
    "vicreg": {}, "simsiam": {}, "cpc_image": {}, "cpc_speech": {},
    "rotation": {}, "relative_patch": {}, "jigsaw": {},
    # the seed gather and the bank scatter; the parametric variant differs
    # only in its head
    "exemplar": {"exemplar": {"variant": "memory_bank"}},
    "denoising_ae": {},
    "context_encoder": {"context_encoder": {"adversarial_weight": 0.001}},
    "colorization": {"colorization": {"rebalance": True}},
    "split_brain": {"split_brain": {"rebalance": True}},
    "supervised": {},  # fine-tuning's classifier, from simclr.py:smoke
    "word2vec": {},  # skip-gram, negatives shared by a centre's pairs
    "word2vec_per_pair": {"word2vec": {"shared_negatives": False}},
    "word2vec_cbow": {"word2vec": {"cbow": True}},
    "video_colorization": {},  # attention over reference frames of each clip
    "shuffle_and_learn": {},  # the highest-motion tuple of each clip's draws
    "arrow_of_time": {},  # clips forwards or reversed
}
# Step cases of a config file under another name.
CONFIG_OF = {"word2vec_per_pair": "word2vec", "word2vec_cbow": "word2vec"}
COLOUR = ("colorization", "split_brain")
VIDEO = ("video_colorization", "shuffle_and_learn", "arrow_of_time")
# Method-state leaves that are constants computed from the data (the colour
# rebalancing weights): the only leaves a step must leave as they are.
CONSTANTS = {name: ("method_state.weights",) for name in COLOUR}
# ... and word2vec's counts, noise and subsampling tables.
CONSTANTS.update({name: ("method_state.counts", "method_state.noise", "method_state.keep")
                  for name in ("word2vec", "word2vec_per_pair", "word2vec_cbow")})
CONSTANTS["video_colorization"] = ("method_state.ab",)  # the k-means colour centres
STEPS = 2
# float32 leaves: the sharded step sums gradients and batch statistics in
# another order, a rounding of ~1e-7 relative per step (measured at most 3e-6
# on leaves of order 1 after two steps; 5e-4 on AdamW second moments of order
# 1e3); integers (step, counts, queue pointers) and keys are compared exactly.
FLOAT32 = (1e-4, 2e-6)
# ... but a pre-activation within rounding of ReLU's kink can fall on one side
# on one device and on the other on eight: every gradient upstream of it then
# differs by that one term. Measured on barlow_twins' second step (AMD
# family-25 EPYC): one of the 16 entries of the last encoder BatchNorm's bias
# off by 1.7e-4 in its LARS trace (1.4e-3 of the leaf's largest magnitude;
# the other 15 within 2e-7), and every earlier BatchNorm's scale and bias by
# up to 6.3e-5 (2.5e-4 of theirs); the metrics stay within 3e-6. Methods
# measured to cross a kink in the steps compared, and their tolerance:
KINK_CROSSED = {"barlow_twins": (1e-4, 1e-3)}


# Adam's eps for the steps compared (the same state trees as the configs'):
# with eps 1e-8 Adam's first update is lr * g / (|g| + eps), so an entry whose
# gradient is of the order of eps moves by anything in (-lr, lr) on rounding
# alone (measured 3.8e-6 on one GRU weight of cpc_speech, 7e-4 on the online
# probe's); with eps 1e-3 the update is a smooth function of the gradient.
ADAM_EPS = 1e-3


def _smooth_adam(run):
  """``run`` with the online probe's Adam, and the method's AdamW if it has
  one, at ``ADAM_EPS``."""
  c = run.config.optimizer
  if c.name == "adamw":
    run = run._replace(tx=optax.adamw(run.schedule, b1=c.b1, b2=c.b2, eps=ADAM_EPS,
                                      weight_decay=c.weight_decay, mask=optim.decay_mask))
  return run, optax.adam(run.config.online_probe.learning_rate, eps=ADAM_EPS)


def _copy(state, sharding=None):
  """A copy of ``state`` that a donating step cannot delete, on ``sharding``
  (its own when None)."""
  return jax.tree.map(lambda x: jax.device_put(x, sharding or x.sharding, may_alias=False),
                      state)


def _steps(config, mesh, starts=None):
  """(state before, states before each step, states after each step,
  metrics of each step) of STEPS steps from ``init_state``'s state. With
  ``starts`` (a state a step, from another mesh), each step starts from its
  state put onto ``mesh`` instead of from the step before it."""
  run, probe_tx = _smooth_adam(setup(config)._replace(mesh=mesh))
  state = init_state(run)
  before = states.leaves(state)
  step = compile_step(run, state, probe_tx=probe_tx)
  inputs, after, metrics = [], [], []
  for i in range(STEPS):
    if starts is not None:
      state = _copy(starts[i], replicated(mesh))
    inputs.append(_copy(state))
    state, m = step(state, global_batch(run, i))
    after.append(states.leaves(state))
    metrics.append(jax.device_get(m))
  return before, inputs, after, metrics


@pytest.fixture(scope="module")
def wallpapers(tmp_path_factory):
  """Four allow-listed wallpaper names holding smooth random colour fields."""
  root = tmp_path_factory.mktemp("wallpapers")
  rng = np.random.default_rng(0)
  for name in ("mate/nature/Aqua.jpg", "mate/nature/Dune.jpg", "mate/nature/Storm.jpg",
               "mate/nature/Wood.jpg"):
    field = rng.uniform(0, 255, (4, 6, 3)).astype(np.uint8)
    os.makedirs(os.path.dirname(root / name), exist_ok=True)
    Image.fromarray(field).resize((96, 64), Image.BICUBIC).save(root / name, quality=95)
  return str(root)


@pytest.fixture(scope="module")
def photo_corpus(tmp_path_factory, wallpapers):
  """A tiny photo corpus cut from ``wallpapers``."""
  out = str(tmp_path_factory.mktemp("photos") / "corpus")
  photos.make_corpus(out, size=32, crops_per_image=30, search_dirs=[wallpapers],
                     log=lambda *_: None)
  return out


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory, wallpapers):
  """A tiny video corpus (16 clips of 8 frames) over ``wallpapers``."""
  out = str(tmp_path_factory.mktemp("video") / "corpus")
  video_corpus.make_corpus(out, clips=(16, 2), frames=8, size=64, search_dirs=[wallpapers],
                           log=lambda *_: None)
  return out


def _config(name, request):
  if name == "supervised":
    base = load_config_file(os.path.join(ROOT, "configs", "simclr.py:smoke"))
    config = finetune_config(base, steps=base.num_steps, seed=0, num_classes=10)
  else:
    config = load_config_file(os.path.join(ROOT, "configs",
                                           f"{CONFIG_OF.get(name, name)}.py:smoke"))
  for group, values in STEP_CASES[name].items():
    config[group].update(values)
  if name in COLOUR:
    config.data.data_dir = request.getfixturevalue("photo_corpus")
  if name == "cpc_speech":
    config.data.data_dir = request.getfixturevalue("tiny_corpus")
  if name.startswith("word2vec"):
    config.data.data_dir = request.getfixturevalue("tiny_text")
  if name in VIDEO:
    config.data.data_dir = request.getfixturevalue("tiny_video")
  # The smoke configs warm up from a learning rate of 0: from the first step
  # here, so that the steps compared move every parameter.
  config.optimizer.warmup_steps = 0
  return config


def test_every_registered_method_has_a_step_case():
  covered = {"cpc_image": "cpc", "cpc_speech": "cpc", **CONFIG_OF}
  assert {covered.get(n, n) for n in STEP_CASES} == set(METHODS)


@pytest.mark.parametrize("name", sorted(STEP_CASES))
def test_steps_on_eight_devices_equal_one_device(name, request):
  """Every metric of each step, and every leaf of the TrainState after each:
  params, opt_state, model_state, method_state (queues, targets,
  discriminators and their optimizer, memory banks, constants), the online
  probe and the rng."""
  config = _config(name, request)
  one = jax.make_mesh((1,), (DATA_AXIS,), devices=jax.devices()[:1],
                      axis_types=(jax.sharding.AxisType.Auto,))
  eight = make_mesh(config.global_batch_size)
  assert eight.size == 8
  start1, inputs1, after1, metrics1 = _steps(config, one)
  start8, _, after8, metrics8 = _steps(config, eight, starts=inputs1)
  states.assert_states_equal(start8, start1, context=f"{name} at step 0:")
  state1 = after1[-1]
  # The steps moved every parameter, every non-constant method-state leaf
  # and the probe: the equality below is not that of two untouched states.
  states.assert_moved(start1, state1, "params")
  if name.startswith("word2vec") or name in VIDEO:  # no vector features
    assert not any(path.startswith("probe") for path in start1)
  else:
    states.assert_moved(start1, state1, "probe.params")
  changes = states.moved(start1, state1, "method_state")
  for path, change in changes.items():
    assert (change == 0.0) == (path in CONSTANTS.get(name, ())), (path, change)
  assert int(state1["step"]) == STEPS
  for i, (m1, m8) in enumerate(zip(metrics1, metrics8)):
    assert set(m1) == set(m8)
    for key in m1:
      np.testing.assert_allclose(float(m8[key]), float(m1[key]), rtol=1e-5,
                                 atol=1e-6, err_msg=f"step {i + 1}: {key}")
  for i, (s1, s8) in enumerate(zip(after1, after8)):
    count = states.assert_states_equal(s8, s1, float_tolerance=KINK_CROSSED.get(name, FLOAT32),
                                       context=f"{name} after step {i + 1}:")
  # (word2vec: step, rng, two tables, three constants; SGD keeps no state)
  assert count >= (7 if name.startswith("word2vec") or name in VIDEO else 11)


def test_sharded_barlow_twins_value_and_gradient_equal_single_device():
  n, d = 32, 12
  rng = np.random.default_rng(0)
  z1 = jnp.asarray(rng.normal(size=(n, d)), jnp.float32)
  z2 = jnp.asarray(rng.normal(size=(n, d)) + 0.5 * np.asarray(z1), jnp.float32)
  mesh = make_mesh(n)
  spec = NamedSharding(mesh, P(DATA_AXIS))
  single = jax.jit(jax.value_and_grad(
      lambda a, b: losses.barlow_twins(a, b, lambd=0.01), argnums=(0, 1)))
  loss = functools.partial(losses.barlow_twins, lambd=0.01)
  sharded = jax.jit(jax.value_and_grad(
      lambda a, b: over_global_batch(loss, a, b), argnums=(0, 1)))
  v1, g1 = single(z1, z2)
  with jax.set_mesh(mesh):
    v8, g8 = sharded(jax.device_put(z1, spec), jax.device_put(z2, spec))
  assert len(g8[0].sharding.device_set) == 8
  np.testing.assert_allclose(float(v8), float(v1), rtol=1e-5)
  for a, b in zip(g1, g8):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
  # The correlation matrix is d x d on each device and summed across devices.
  with jax.set_mesh(mesh):
    hlo = jax.jit(lambda a, b: over_global_batch(loss, a, b)).lower(
        jax.device_put(z1, spec), jax.device_put(z2, spec)).compile().as_text()
  assert "all-reduce" in hlo


def test_sharded_cpc_infonce_value_and_gradient_equal_single_device():
  n, steps, dim, offsets = 16, 5, 6, (1, 2, 3)
  rng = np.random.default_rng(0)
  codes = jnp.asarray(rng.normal(size=(n, steps, dim)), jnp.float32)
  preds = jnp.asarray(rng.normal(size=(n, steps, len(offsets), dim)), jnp.float32)
  mesh = make_mesh(n)
  spec = NamedSharding(mesh, P(DATA_AXIS))
  loss = functools.partial(losses.cpc_infonce, offsets=offsets)
  single = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
  sharded = jax.jit(jax.value_and_grad(
      lambda p, z: over_global_batch(loss, p, z), argnums=(0, 1)))
  v1, g1 = single(preds, codes)
  with jax.set_mesh(mesh):
    v8, g8 = sharded(jax.device_put(preds, spec), jax.device_put(codes, spec))
  assert len(g8[1].sharding.device_set) == 8
  np.testing.assert_allclose(float(v8), float(v1), rtol=1e-5)
  for a, b in zip(g1, g8):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
  # Candidates come from every device: the compiled program all-gathers codes.
  with jax.set_mesh(mesh):
    hlo = jax.jit(lambda p, z: over_global_batch(loss, p, z)).lower(
        jax.device_put(preds, spec), jax.device_put(codes, spec)).compile().as_text()
  assert "all-gather" in hlo
