"""SimCLR: contrastive learning of visual representations (Chen et al. 2020).

Two augmented views of every image, an encoder and a projection head, and the
NT-Xent loss over the global batch: each device holds its rows of the logits
and gathers every device's projections as negatives.
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


def sharded_nt_xent(z1, z2, *, temperature, mesh):
  """NT-Xent over the global batch, each device computing its own rows."""
  if mesh is None or mesh.size == 1:
    return losses.nt_xent(z1, z2, temperature=temperature)
  fn = functools.partial(losses.nt_xent, temperature=temperature, axis_name=DATA_AXIS)
  return jax.shard_map(fn, mesh=mesh, in_specs=(P(DATA_AXIS), P(DATA_AXIS)),
                       out_specs=P())(z1, z2)


def build(config) -> Method:
  if config.loss.temperature <= 0:
    raise UserError(f"config.loss.temperature must be positive, got "
                    f"{config.loss.temperature}")
  encoder = make_encoder(config.model, config.compute_dtype)
  model = common.EncoderWithHead(encoder=encoder,
                                 head=common.make_head(config.head, config.compute_dtype))

  def init(key, images):
    params, model_state = common.init_variables(model, key,
                                                common.center_input(images, config))
    return params, model_state, {}

  def loss_fn(params, model_state, method_state, batch, key, mesh):
    x1, x2 = common.two_views(key, batch["image"], config)
    # Batch norm sees both views, as in SimCLR.
    (h, z), new_model_state = common.apply_train(model, params, model_state,
                                                 common.interleave(x1, x2))
    z1, z2 = common.deinterleave(z)
    loss = sharded_nt_xent(z1, z2, temperature=config.loss.temperature, mesh=mesh)
    return loss, LossAux(new_model_state, method_state, {}, common.deinterleave(h)[0])

  return Method(name="simclr", init=init, loss_fn=loss_fn, encoder=encoder,
                encoder_variables=common.submodule_variables)
