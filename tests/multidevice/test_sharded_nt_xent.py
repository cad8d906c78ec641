"""On 8 simulated devices, sharded nt_xent equals the single-device one."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from sslax import losses
from sslax.sharding import DATA_AXIS, make_mesh, over_global_batch

N, D, T = 32, 16, 0.2


def sharded_nt_xent(z1, z2):
  """NT-Xent over the global batch, as SimCLR's step computes it under a mesh."""
  return over_global_batch(functools.partial(losses.nt_xent, temperature=T), z1, z2)


def _inputs():
  rng = np.random.default_rng(0)
  return (jnp.asarray(rng.normal(size=(N, D)), jnp.float32),
          jnp.asarray(rng.normal(size=(N, D)), jnp.float32))


def test_eight_devices():
  assert jax.device_count() == 8


def test_sharded_value_and_gradient_equal_single_device():
  mesh = make_mesh(N)
  z1, z2 = _inputs()
  single = jax.jit(jax.value_and_grad(
      lambda a, b: losses.nt_xent(a, b, temperature=T), argnums=(0, 1)))
  sharded = jax.jit(jax.value_and_grad(sharded_nt_xent, argnums=(0, 1)))
  spec = NamedSharding(mesh, P(DATA_AXIS))
  v1, (g1a, g1b) = single(z1, z2)
  with jax.set_mesh(mesh):
    v8, (g8a, g8b) = sharded(jax.device_put(z1, spec), jax.device_put(z2, spec))
  assert len(g8a.sharding.device_set) == 8
  np.testing.assert_allclose(float(v8), float(v1), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(g8a), np.asarray(g1a), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(np.asarray(g8b), np.asarray(g1b), rtol=1e-5, atol=1e-7)


def test_per_device_logits_are_local_rows_by_global_columns():
  mesh = make_mesh(N)
  z1, z2 = _inputs()
  spec = NamedSharding(mesh, P(DATA_AXIS))
  with jax.set_mesh(mesh):
    hlo = jax.jit(sharded_nt_xent).lower(
        jax.device_put(z1, spec), jax.device_put(z2, spec)).compile().as_text()
  n_local_anchors = 2 * N // 8
  # The similarity matmul produces [2n_local, 2N] on each device ...
  assert re.search(rf"f32\[{n_local_anchors},{2 * N}\]", hlo), "no 2n_local x 2N logits"
  # ... and nothing of the full 2N x 2N size exists anywhere.
  assert not re.search(rf"f32\[{2 * N},{2 * N}\]", hlo), "found 2N x 2N logits"


def test_unsharded_compilation_does_have_full_logits():
  """The HLO check above can fail: the single-device program has 2N x 2N."""
  z1, z2 = _inputs()
  hlo = jax.jit(functools.partial(losses.nt_xent, temperature=T)).lower(
      z1, z2).compile().as_text()
  assert re.search(rf"f32\[{2 * N},{2 * N}\]", hlo)
