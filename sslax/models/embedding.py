"""A table of token vectors: ``TokenEmbedding(ids) -> vectors [..., dim]``."""

import flax.linen as nn
import jax
import jax.numpy as jnp


def uniform_init(scale: float):
  """U(-scale, scale)."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)
  return init


class TokenEmbedding(nn.Module):
  """One vector per id of a ``vocab_size`` vocabulary. ``init_scale`` 0:
  zeros (word2vec's output vectors); else U(-init_scale, init_scale)."""
  vocab_size: int
  dim: int
  init_scale: float = 0.0

  @nn.compact
  def __call__(self, ids, train: bool = False):
    del train
    init = uniform_init(self.init_scale) if self.init_scale else nn.initializers.zeros
    table = self.param("embedding", init, (self.vocab_size, self.dim), jnp.float32)
    return jnp.take(table, jnp.asarray(ids, jnp.int32), axis=0)
