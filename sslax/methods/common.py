"""Pieces the two-view methods share: encoder + head modules, augmented views,
variable bookkeeping, EMA target updates and batch norm over sub-batches."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from sslax.data import augment, modality
from sslax.encoder import backbone_def, feature_map_def
from sslax.errors import UserError
from sslax.methods.base import LossAux, Method
from sslax.models import ProjectionHead, compute_dtype, make_encoder
from sslax.sharding import over_global_batch


class EncoderWithHead(nn.Module):
  """Returns (representation, projection)."""
  encoder: nn.Module
  head: nn.Module

  def __call__(self, x, train: bool = True):
    h = self.encoder(x, train=train)
    return h, self.head(h, train=train)


class EncoderHeadPredictor(nn.Module):
  """Returns (representation, projection, prediction): the online network of
  BYOL and of SimSiam."""
  encoder: nn.Module
  head: nn.Module  # the projector (config.head)
  predictor: nn.Module

  def __call__(self, x, train: bool = True):
    h = self.encoder(x, train=train)
    z = self.head(h, train=train)
    return h, z, self.predictor(z, train=train)


def make_head(head_config, dtype_name="float32", name="head") -> ProjectionHead:
  """A ProjectionHead from the config group ``config.<name>`` (kind,
  hidden_dim, output_dim, num_layers, and optionally hidden_bn, output_bn)."""
  if head_config.kind not in ("none", "linear", "mlp"):
    raise UserError(f"unknown config.{name}.kind {head_config.kind!r}; use none, "
                    "linear or mlp")
  return ProjectionHead(kind=head_config.kind, hidden_dim=head_config.hidden_dim,
                        output_dim=head_config.output_dim,
                        num_layers=head_config.num_layers,
                        hidden_bn=head_config.hidden_bn,
                        output_bn=head_config.output_bn,
                        dtype=compute_dtype(dtype_name))


def view_params(config, view: int) -> augment.AugmentParams:
  """``config.augment``, updated by ``config.view_augment.view<view>`` where a
  method augments its two views differently (BYOL)."""
  values = dict(config.augment)
  overrides = config.get("view_augment", None)
  if overrides is not None and f"view{view}" in overrides:
    values.update(dict(overrides[f"view{view}"]))
  return augment.AugmentParams.from_config(values)


def augmented_view(key, images, config, params=None):
  """One view of a uint8 batch, the way every method makes one: augmented on
  the device (``params``, default ``config.augment``) at
  ``config.data.image_size``, then normalised with the data's mean and std."""
  params = params if params is not None else view_params(config, 1)
  x = augment.augment_batch(key, images, params, tuple(config.data.image_size))
  return augment.normalize(x, config.data.mean, config.data.std)


def two_views(key, images, config):
  """Two independently augmented, normalised views of a uint8 batch."""
  keys = jax.random.split(key)
  return [augmented_view(k, images, config, view_params(config, v + 1))
          for v, k in enumerate(keys)]


def center_input(images, config):
  """The eval-mode input: central view, normalised."""
  return modality.of_config(config.data).eval_input(images, config.data)


def interleave(x1, x2):
  """Rows 2i and 2i+1 are example i's two views, so a device's rows of the
  batch stay on that device."""
  return jnp.stack([x1, x2], axis=1).reshape(2 * x1.shape[0], *x1.shape[1:])


def deinterleave(y):
  y = y.reshape(y.shape[0] // 2, 2, *y.shape[1:])
  return y[:, 0], y[:, 1]


def init_variables(model, key, x):
  """``(params, model_state)`` of a Linen model initialised on ``x``."""
  variables = model.init(key, x, train=True)
  return variables["params"], {k: v for k, v in variables.items() if k != "params"}


def stateless_init(model, config):
  """``Method.init`` of a method whose only state is ``model``'s variables,
  initialised on the batch's central views."""
  def init(key, examples):
    images = examples["image"]
    params, model_state = init_variables(model, key, center_input(images, config))
    return params, model_state, {}
  return init


def submodule_variables(params, model_state, name="encoder"):
  """The variables of submodule ``name`` (every collection)."""
  out = {"params": params[name]}
  for collection, tree in model_state.items():
    if name in tree:
      out[collection] = tree[name]
  return out


def apply_train(model, params, model_state, x, **kwargs):
  """Train-mode apply; returns (outputs, new model_state)."""
  return model.apply({"params": params, **model_state}, x, train=True,
                     mutable=list(model_state), **kwargs)


def apply_in_groups(model, params, model_state, x, groups: int):
  """Train-mode apply with batch norm over ``groups`` equal sub-batches ("ghost"
  batch norm): each sub-batch is normalised with its own statistics, and the
  running statistics are the mean over sub-batches."""
  if groups == 1:
    return apply_train(model, params, model_state, x)
  n = x.shape[0]
  if n % groups:
    raise UserError(f"batch {n} does not split into {groups} batch-norm groups")
  xg = x.reshape(groups, n // groups, *x.shape[1:])
  out, new_state = jax.vmap(lambda xs: apply_train(model, params, model_state, xs))(xg)
  out = jax.tree.map(lambda y: y.reshape(n, *y.shape[2:]), out)
  return out, jax.tree.map(lambda s: s.mean(axis=0), new_state)


def ema(target, online, momentum):
  """``target <- momentum * target + (1 - momentum) * online``, leaf by leaf
  (MoCo's momentum encoder, He et al. 2020; BYOL's target, Grill et al. 2020)."""
  return jax.tree.map(lambda t, o: momentum * t + (1.0 - momentum) * o, target, online)


def cosine_momentum(step, num_steps, base):
  """BYOL's target decay rate: ``1 - (1 - base) * (cos(pi k / K) + 1) / 2``,
  rising from ``base`` at step 0 to 1 at step K."""
  progress = jnp.minimum(step / max(num_steps, 1), 1.0)
  return 1.0 - (1.0 - base) * (jnp.cos(math.pi * progress) + 1.0) / 2.0


def two_view_method(config, name, pair_loss) -> Method:
  """A method whose loss is ``pair_loss`` of the projections of two views,
  through one encoder and head (SimCLR, Barlow Twins). Batch norm sees both
  views, as in SimCLR."""
  encoder = make_encoder(config.model, config.compute_dtype)
  model = EncoderWithHead(encoder=encoder, head=make_head(config.head, config.compute_dtype))

  init = stateless_init(model, config)

  def loss_fn(params, model_state, method_state, batch, key):
    x1, x2 = two_views(key, batch["image"], config)
    (h, z), new_model_state = apply_train(model, params, model_state, interleave(x1, x2))
    z1, z2 = deinterleave(z)
    loss = over_global_batch(pair_loss, z1, z2)
    return loss, LossAux(new_model_state, method_state, {}, deinterleave(h)[0])

  feature_map = feature_map_def(config)
  return Method(name=name, init=init, loss_fn=loss_fn, encoder=backbone_def(config),
                other_encoders={"feature_map": feature_map} if feature_map else {})
