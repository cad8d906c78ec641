"""Barlow Twins: self-supervised learning via redundancy reduction (Zbontar
et al. 2021).

Two views through the same encoder and projector; the cross-correlation matrix
of their batch-standardised embeddings is pushed towards the identity. Under a
mesh the loss runs in ``jax.shard_map``: every device standardises and
correlates its own rows, and the batch statistics and the correlation matrix
are summed across devices, so the loss is that of the global batch.
"""

import functools

import jax
from jax.sharding import PartitionSpec as P

from sslax import losses
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.models import make_encoder
from sslax.train.mesh import DATA_AXIS


def sharded_barlow_twins(z1, z2, *, lambd, mesh):
  if mesh is None or mesh.size == 1:
    return losses.barlow_twins(z1, z2, lambd=lambd)
  fn = functools.partial(losses.barlow_twins, lambd=lambd, axis_name=DATA_AXIS)
  return jax.shard_map(fn, mesh=mesh, in_specs=(P(DATA_AXIS), P(DATA_AXIS)),
                       out_specs=P())(z1, z2)


def build(config) -> Method:
  if config.loss.lambd < 0:
    raise UserError(f"config.loss.lambd must be >= 0, got {config.loss.lambd}")
  encoder = make_encoder(config.model, config.compute_dtype)
  model = common.EncoderWithHead(encoder=encoder,
                                 head=common.make_head(config.head, config.compute_dtype))

  def init(key, images):
    params, model_state = common.init_variables(model, key,
                                                common.center_input(images, config))
    return params, model_state, {}

  def loss_fn(params, model_state, method_state, batch, key, mesh):
    x1, x2 = common.two_views(key, batch["image"], config)
    (h, z), new_model_state = common.apply_train(model, params, model_state,
                                                 common.interleave(x1, x2))
    z1, z2 = common.deinterleave(z)
    loss = sharded_barlow_twins(z1, z2, lambd=config.loss.lambd, mesh=mesh)
    return loss, LossAux(new_model_state, method_state, {}, common.deinterleave(h)[0])

  return Method(name="barlow_twins", init=init, loss_fn=loss_fn, encoder=encoder,
                encoder_variables=common.submodule_variables)
