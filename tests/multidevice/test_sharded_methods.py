"""On 8 simulated devices, one training step of every method with extra state
or collectives (MoCo v2, Barlow Twins, BYOL, VICReg, SimSiam, image CPC) and of every pretext
task equals the step on one device with the same global batch, and the sharded
Barlow Twins and CPC losses equal the single-device ones."""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from jax.sharding import NamedSharding, PartitionSpec as P

from sslax import losses
from sslax.config_loading import load_config_file
from sslax.data import photos
from sslax.train.loop import compile_step, global_batch, init_state, setup
from sslax.sharding import DATA_AXIS, make_mesh, over_global_batch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _one_step(config, mesh):
  run = setup(config)._replace(mesh=mesh)
  state = init_state(run)
  return compile_step(run, state)(state, global_batch(run, 0))


# Config overrides that exercise a method's less common path.
STEP_CASES = {
    "moco_v2": {}, "barlow_twins": {}, "byol": {}, "cpc_image": {}, "vicreg": {},
    "simsiam": {},
    "rotation": {}, "relative_patch": {}, "jigsaw": {},
    # the seed gather and the bank scatter; the parametric variant differs
    # only in its head
    "exemplar": {"exemplar": {"variant": "memory_bank"}},
    "denoising_ae": {},
    "context_encoder": {"context_encoder": {"adversarial_weight": 0.001}},
    "colorization": {"colorization": {"rebalance": True}},
    "split_brain": {"split_brain": {"rebalance": True}},
}
COLOUR = ("colorization", "split_brain")


@pytest.fixture(scope="module")
def photo_corpus(tmp_path_factory):
  """A tiny photo corpus: four allow-listed names holding smooth random colour
  fields."""
  root = tmp_path_factory.mktemp("wallpapers")
  rng = np.random.default_rng(0)
  for name in ("mate/nature/Aqua.jpg", "mate/nature/Dune.jpg", "mate/nature/Storm.jpg",
               "mate/nature/Wood.jpg"):
    field = rng.uniform(0, 255, (4, 6, 3)).astype(np.uint8)
    os.makedirs(os.path.dirname(root / name), exist_ok=True)
    Image.fromarray(field).resize((96, 64), Image.BICUBIC).save(root / name, quality=95)
  out = str(tmp_path_factory.mktemp("photos") / "corpus")
  photos.make_corpus(out, size=32, crops_per_image=30, search_dirs=[str(root)],
                     log=lambda *_: None)
  return out


@pytest.mark.parametrize("name", sorted(STEP_CASES))
def test_one_step_on_eight_devices_equals_one_device(name, request):
  """Loss, every metric, and every parameter, statistic and method-state leaf
  (queues, targets, discriminators, memory banks) after one step."""
  config = load_config_file(os.path.join(ROOT, "configs", f"{name}.py:smoke"))
  for group, values in STEP_CASES[name].items():
    config[group].update(values)
  if name in COLOUR:
    config.data.data_dir = request.getfixturevalue("photo_corpus")
  one = jax.make_mesh((1,), (DATA_AXIS,), devices=jax.devices()[:1],
                      axis_types=(jax.sharding.AxisType.Auto,))
  eight = make_mesh(config.global_batch_size)
  assert eight.size == 8
  state1, metrics1 = _one_step(config, one)
  state8, metrics8 = _one_step(config, eight)
  assert set(metrics1) == set(metrics8)
  for key in metrics1:
    np.testing.assert_allclose(float(metrics8[key]), float(metrics1[key]), rtol=1e-5,
                               atol=1e-6, err_msg=key)
  # (Not the online probe: Adam's first step is sign-like, so its gradients'
  # rounding flips near-zero entries; test_online covers the probe.)
  trees1 = (state1.params, state1.model_state, state1.method_state)
  trees8 = (state8.params, state8.model_state, state8.method_state)
  assert jax.tree.structure(trees1) == jax.tree.structure(trees8)
  for a, b in zip(jax.tree.leaves(trees1), jax.tree.leaves(trees8)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=2e-6)


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
