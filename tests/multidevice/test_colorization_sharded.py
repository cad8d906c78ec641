"""On 8 simulated devices, one training step of colourisation and of
split-brain autoencoders (smoke configs, on a tiny fake photo corpus) equals
the step on one device with the same global batch."""

import os

import jax
import numpy as np
import pytest
from PIL import Image

from sslax.config_loading import load_config_file
from sslax.data import photos, pipeline
from sslax.data.sources import get_source
from sslax.methods import build_method
from sslax.train.loop import compile_step, init_state
from sslax.train.mesh import DATA_AXIS, data_sharding, make_mesh
from sslax.train.optim import make_optimizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  """Four allow-listed names holding smooth random colour fields."""
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


@pytest.mark.parametrize("name", ["colorization", "split_brain"])
def test_one_step_on_eight_devices_equals_one_device(name, corpus):
  config = load_config_file(os.path.join(ROOT, "configs", f"{name}.py:smoke"))
  config.data.data_dir = corpus
  config[name].rebalance = True  # split-brain's is off by default
  one = jax.make_mesh((1,), (DATA_AXIS,), devices=jax.devices()[:1],
                      axis_types=(jax.sharding.AxisType.Auto,))
  eight = make_mesh(config.global_batch_size)
  assert eight.size == 8
  state1, metrics1 = _one_step(config, one)
  state8, metrics8 = _one_step(config, eight)
  for key in metrics1:
    np.testing.assert_allclose(float(metrics8[key]), float(metrics1[key]), rtol=1e-5,
                               atol=1e-6, err_msg=key)
  trees1 = (state1.params, state1.model_state, state1.probe)
  trees8 = (state8.params, state8.model_state, state8.probe)
  for a, b in zip(jax.tree.leaves(trees1), jax.tree.leaves(trees8)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=2e-6)
