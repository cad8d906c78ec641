"""On 8 simulated devices: the sharded VICReg loss equals the single-device
loss on the same global batch (values and gradients). One training step of
VICReg and of SimSiam on 8 devices against 1: test_sharded_methods.py."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from sslax import losses
from sslax.sharding import DATA_AXIS, make_mesh, over_global_batch


def _embeddings(n, d):
  rng = np.random.default_rng(0)
  scales = np.where(np.arange(d) % 2 == 0, 0.3, 2.5)
  z1 = rng.normal(size=(n, d)) * scales
  z2 = 0.7 * z1 + 0.5 * rng.normal(size=(n, d)) * scales
  return jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32)


def test_sharded_vicreg_value_and_gradient_equal_single_device():
  n, d = 32, 12
  z1, z2 = _embeddings(n, d)
  mesh = make_mesh(n)
  spec = NamedSharding(mesh, P(DATA_AXIS))
  coeffs = dict(sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0)
  single = jax.jit(jax.value_and_grad(lambda a, b: losses.vicreg(a, b, **coeffs),
                                      argnums=(0, 1)))

  def sharded_loss(a, b):
    return jax.shard_map(lambda x, y: losses.vicreg(x, y, axis_name=DATA_AXIS, **coeffs),
                         mesh=mesh, in_specs=(P(DATA_AXIS), P(DATA_AXIS)),
                         out_specs=P())(a, b)

  sharded = jax.jit(jax.value_and_grad(sharded_loss, argnums=(0, 1)))
  v1, g1 = single(z1, z2)
  x1, x2 = jax.device_put(z1, spec), jax.device_put(z2, spec)
  v8, g8 = sharded(x1, x2)
  assert len(g8[0].sharding.device_set) == 8
  np.testing.assert_allclose(float(v8), float(v1), rtol=1e-5)
  for a, b in zip(g1, g8):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
  # Each device holds 4 rows: a per-device loss (no psum) would differ.
  local = float(losses.vicreg(z1[:4], z2[:4], **coeffs))
  assert abs(local - float(v1)) > 1e-2
  # The batch statistics and covariance matrices are summed across devices.
  hlo = jax.jit(sharded_loss).lower(x1, x2).compile().as_text()
  assert "all-reduce" in hlo


def test_vicreg_through_over_global_batch_equals_single_device():
  """The path the method takes: ``over_global_batch`` under the ambient mesh."""
  n, d = 32, 12
  z1, z2 = _embeddings(n, d)
  mesh = make_mesh(n)
  spec = NamedSharding(mesh, P(DATA_AXIS))
  f = jax.value_and_grad(lambda a, b: over_global_batch(losses.vicreg, a, b),
                         argnums=(0, 1))
  v1, g1 = jax.jit(f)(z1, z2)  # no mesh: one call on the whole batch
  with jax.set_mesh(mesh):
    v8, g8 = jax.jit(f)(jax.device_put(z1, spec), jax.device_put(z2, spec))
  np.testing.assert_allclose(float(v8), float(v1), rtol=1e-5)
  for a, b in zip(g1, g8):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
