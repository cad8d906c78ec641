"""SimCLR: contrastive learning of visual representations (Chen et al. 2020).

Two augmented views of every image, an encoder and a projection head, and the
NT-Xent loss over the global batch: each device holds its rows of the logits
and gathers every device's projections as negatives.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from sslax import losses
from sslax.data import augment
from sslax.errors import UserError
from sslax.methods.base import LossAux, Method
from sslax.models import ProjectionHead, compute_dtype, make_encoder
from sslax.train.mesh import DATA_AXIS


class EncoderWithHead(nn.Module):
  """Returns (representation, projection)."""
  encoder: nn.Module
  head: nn.Module

  def __call__(self, x, train: bool = True):
    h = self.encoder(x, train=train)
    return h, self.head(h, train=train)


def make_head(config):
  if config.head.kind not in ("none", "linear", "mlp"):
    raise UserError(f"unknown config.head.kind {config.head.kind!r}; use none, "
                    "linear or mlp")
  return ProjectionHead(kind=config.head.kind, hidden_dim=config.head.hidden_dim,
                        output_dim=config.head.output_dim,
                        num_layers=config.head.num_layers,
                        dtype=compute_dtype(config.compute_dtype))


def two_views(key, images, config):
  """Two independently augmented, normalised views of a uint8 batch."""
  params = augment.AugmentParams.from_config(config.augment)
  out_hw = tuple(config.data.image_size)
  k1, k2 = jax.random.split(key)
  views = [augment.augment_batch(k, images, params, out_hw) for k in (k1, k2)]
  return [augment.normalize(v, config.data.mean, config.data.std) for v in views]


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
  model = EncoderWithHead(encoder=encoder, head=make_head(config))

  def init(key, images):
    x = augment.normalize(augment.center_view(images, config.data.image_size),
                          config.data.mean, config.data.std)
    variables = model.init(key, x, train=True)
    params = variables["params"]
    model_state = {k: v for k, v in variables.items() if k != "params"}
    return params, model_state, {}

  def loss_fn(params, model_state, method_state, batch, key, mesh):
    x1, x2 = two_views(key, batch["image"], config)
    n = x1.shape[0]
    # Interleave the views (rows 2i, 2i+1 are example i) so that each device's
    # rows stay on that device; batch norm sees both views, as in SimCLR.
    x = jnp.stack([x1, x2], axis=1).reshape(2 * n, *x1.shape[1:])
    (h, z), new_model_state = model.apply(
        {"params": params, **model_state}, x, train=True, mutable=list(model_state))
    z = z.reshape(n, 2, z.shape[-1])
    loss = sharded_nt_xent(z[:, 0], z[:, 1], temperature=config.loss.temperature,
                           mesh=mesh)
    features = h.reshape(n, 2, h.shape[-1])[:, 0]
    return loss, LossAux(new_model_state, method_state, {}, features)

  def encoder_variables(params, model_state):
    out = {"params": params["encoder"]}
    for collection, tree in model_state.items():
      if "encoder" in tree:
        out[collection] = tree["encoder"]
    return out

  return Method(name="simclr", init=init, loss_fn=loss_fn, encoder=encoder,
                encoder_variables=encoder_variables)
