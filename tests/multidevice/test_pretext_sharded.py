"""On 8 simulated devices, one training step of rotation, relative patch
location, jigsaw and exemplar networks (memory bank: the seed gather and the
bank scatter; the parametric variant differs only in its head) equals the
step on one device with the same global batch."""

import os

import jax
import numpy as np
import pytest

from sslax.config_loading import load_config_file
from sslax.data import pipeline
from sslax.data.sources import get_source
from sslax.methods import build_method
from sslax.train.loop import compile_step, init_state
from sslax.train.mesh import DATA_AXIS, data_sharding, make_mesh
from sslax.train.optim import make_optimizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _one_step(config, mesh):
  source = get_source(config.data, "train")
  method = build_method(config)
  tx, schedule = make_optimizer(config.optimizer, config.global_batch_size,
                                config.num_steps)
  state = init_state(method, tx, config, source, mesh)
  step = compile_step(method, tx, schedule, mesh, state, config)
  idx = pipeline.global_batch_indices(config.seed, 0, config.global_batch_size, len(source))
  images, labels = source.get(idx)
  batch = pipeline.to_global(data_sharding(mesh), {"image": images, "label": labels})
  return step(state, batch)


@pytest.mark.parametrize("name,exemplar_variant", [
    ("rotation", None), ("relative_patch", None), ("jigsaw", None),
    ("exemplar", "memory_bank")])
def test_one_step_on_eight_devices_equals_one_device(name, exemplar_variant):
  config = load_config_file(os.path.join(ROOT, "configs", f"{name}.py:smoke"))
  if exemplar_variant:
    config.exemplar.variant = exemplar_variant
  one = jax.make_mesh((1,), (DATA_AXIS,), devices=jax.devices()[:1],
                      axis_types=(jax.sharding.AxisType.Auto,))
  eight = make_mesh(config.global_batch_size)
  assert eight.size == 8
  state1, metrics1 = _one_step(config, one)
  state8, metrics8 = _one_step(config, eight)
  np.testing.assert_allclose(float(metrics8["loss"]), float(metrics1["loss"]), rtol=1e-5)
  np.testing.assert_allclose(float(metrics8["pretext_top1"]),
                             float(metrics1["pretext_top1"]))
  trees1 = (state1.params, state1.model_state, state1.method_state)
  trees8 = (state8.params, state8.model_state, state8.method_state)
  assert jax.tree.structure(trees1) == jax.tree.structure(trees8)
  for a, b in zip(jax.tree.leaves(trees1), jax.tree.leaves(trees8)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=2e-6)
