"""SimCLR: contrastive learning of visual representations (Chen et al. 2020).

Two augmented views of every image, an encoder and a projection head, and the
NT-Xent loss over the global batch: each device holds its rows of the logits
and gathers every device's projections as negatives.
"""

import functools

from sslax import losses
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import Method


def build(config) -> Method:
  if config.simclr.temperature <= 0:
    raise UserError(f"config.simclr.temperature must be positive, got "
                    f"{config.simclr.temperature}")
  return common.two_view_method(
      config, "simclr", functools.partial(losses.nt_xent,
                                          temperature=config.simclr.temperature))
