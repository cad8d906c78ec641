"""Barlow Twins: self-supervised learning via redundancy reduction (Zbontar
et al. 2021).

Two views through the same encoder and projector; the cross-correlation matrix
of their batch-standardised embeddings is pushed towards the identity. Under a
mesh the loss runs in ``jax.shard_map``: every device standardises and
correlates its own rows, and the batch statistics and the correlation matrix
are summed across devices, so the loss is that of the global batch.
"""

import functools

from sslax import losses
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import Method


def build(config) -> Method:
  if config.barlow_twins.lambd < 0:
    raise UserError(f"config.barlow_twins.lambd must be >= 0, got {config.barlow_twins.lambd}")
  return common.two_view_method(
      config, "barlow_twins", functools.partial(losses.barlow_twins,
                                                lambd=config.barlow_twins.lambd))
