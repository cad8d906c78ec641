"""Two networks on disjoint channel groups of one input, their features
concatenated: ``[first(x[..., :split]), second(x[..., split:])]`` (the
split-brain representation of Zhang et al. 2017 on scaled Lab, L | ab)."""

import flax.linen as nn
import jax.numpy as jnp


class ChannelSplit(nn.Module):
  """``first`` sees the leading ``split`` channels, ``second`` the rest; the
  output is their last axes concatenated."""
  first: nn.Module
  second: nn.Module
  split: int

  def __call__(self, x, train: bool = False):
    return jnp.concatenate([self.first(x[..., :self.split], train=train),
                            self.second(x[..., self.split:], train=train)], axis=-1)
