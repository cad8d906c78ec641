"""VICReg: variance-invariance-covariance regularization (Bardes, Ponce &
LeCun, ICLR 2022).

Two views through the same encoder and expander; the loss pulls the two
embeddings of an example together (invariance), keeps every embedding
dimension's standard deviation over the batch above 1 (variance) and
decorrelates the dimensions (covariance). No negatives, no stop-gradient, no
momentum encoder. Under a mesh the loss runs in ``jax.shard_map``
(``sslax.sharding.over_global_batch``): the batch means, variances and
covariance matrices are summed across devices, so the loss is that of the
global batch.
"""

import functools

from sslax import losses
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import Method


def build(config) -> Method:
  vc = config.vicreg
  for key in ("sim_coeff", "std_coeff", "cov_coeff"):
    if vc[key] < 0:
      raise UserError(f"config.vicreg.{key} must be >= 0, got {vc[key]}")
  return common.two_view_method(
      config, "vicreg", functools.partial(losses.vicreg, sim_coeff=vc.sim_coeff,
                                          std_coeff=vc.std_coeff,
                                          cov_coeff=vc.cov_coeff))
