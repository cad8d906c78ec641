"""Encoders and heads: output shapes, known parameter counts, dtypes."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from sslax.models import ConvNet, ProjectionHead, make_encoder, resnet18, resnet34, resnet50
from sslax.train.optim import decay_mask


def _param_count(module, shape):
  variables = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros(shape)))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(variables["params"]))


@pytest.mark.parametrize("factory,count", [
    (resnet18, 11_176_512), (resnet34, 21_284_672), (resnet50, 23_508_032)])
def test_resnet_parameter_counts_match_the_paper_architectures(factory, count):
  """torchvision's ResNet counts minus the 1000-way classifier."""
  assert _param_count(factory(stem="imagenet"), (1, 64, 64, 3)) == count


@pytest.mark.parametrize("stem,size,dim", [("cifar", 32, 512), ("imagenet", 64, 512)])
def test_resnet18_features(stem, size, dim):
  model = resnet18(stem=stem)
  x = jnp.ones((2, size, size, 3))
  variables = model.init(jax.random.key(0), x, train=False)
  out = model.apply(variables, x, train=False)
  assert out.shape == (2, dim) and out.dtype == jnp.float32


def test_resnet50_feature_dim():
  out = jax.eval_shape(lambda: resnet50(stem="cifar").init_with_output(
      jax.random.key(0), jnp.ones((2, 32, 32, 3)), train=False)[0])
  assert out.shape == (2, 2048)


def test_cifar_stem_keeps_resolution():
  """The CIFAR stem has no stride-2 conv or pooling: the first stage runs at 32x32."""
  cifar = jax.eval_shape(lambda: resnet18(stem="cifar").init(
      jax.random.key(0), jnp.ones((1, 32, 32, 3))))
  assert cifar["params"]["Conv_0"]["kernel"].shape == (3, 3, 3, 64)
  imagenet = jax.eval_shape(lambda: resnet18(stem="imagenet").init(
      jax.random.key(0), jnp.ones((1, 32, 32, 3))))
  assert imagenet["params"]["Conv_0"]["kernel"].shape == (7, 7, 3, 64)


@pytest.mark.parametrize("pool,dim", [("avg", 64), ("flatten", 7 * 7 * 64)])
def test_convnet_on_28x28(pool, dim):
  model = ConvNet(widths=(16, 32, 64), stem_stride=1, pool=pool)
  x = jnp.ones((3, 28, 28, 1))
  variables = model.init(jax.random.key(0), x)
  out, _ = model.apply(variables, x, mutable=["batch_stats"])
  assert out.shape == (3, dim)


def test_bfloat16_compute_keeps_float32_parameters():
  encoder = make_encoder(ml_collections.ConfigDict(
      {"encoder": "convnet", "widths": (8, 16), "stem_stride": 2, "pool": "avg"}), "bfloat16")
  variables = encoder.init(jax.random.key(0), jnp.ones((2, 28, 28, 1)))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables["params"]))
  out, _ = encoder.apply(variables, jnp.ones((2, 28, 28, 1)), mutable=["batch_stats"])
  assert out.dtype == jnp.float32  # features come back in float32


@pytest.mark.parametrize("kind,layers,dim", [("none", 2, 20), ("linear", 2, 7),
                                             ("mlp", 2, 7), ("mlp", 3, 7)])
def test_projection_heads(kind, layers, dim):
  head = ProjectionHead(kind=kind, hidden_dim=11, output_dim=7, num_layers=layers)
  x = jnp.ones((4, 20))
  variables = head.init(jax.random.key(0), x)
  out, _ = head.apply(variables, x, mutable=["batch_stats"])
  assert out.shape == (4, dim)
  dense = [k for k in variables.get("params", {}) if k.startswith("Dense")]
  assert len(dense) == {"none": 0, "linear": 1, "mlp": layers}[kind]


def test_lars_and_adamw_mask_leaves_out_biases_and_norms():
  variables = resnet18(stem="cifar").init(jax.random.key(0), jnp.ones((1, 32, 32, 3)))
  mask = decay_mask(variables["params"])
  flat = jax.tree_util.tree_flatten_with_path(mask)[0]
  for path, decayed in flat:
    name = jax.tree_util.keystr(path)
    if "BatchNorm" in name:
      assert not decayed, name
    if name.endswith("['kernel']"):
      assert decayed, name
  assert any(d for _, d in flat) and not all(d for _, d in flat)
