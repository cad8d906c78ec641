"""MoCo v1 and v2: momentum contrast (He et al. 2020; Chen et al. 2020,
"Improved baselines with momentum contrastive learning").

The query encoder (+ head) is trained by gradient. The key encoder is an EMA
of it, ``theta_k <- m theta_k + (1 - m) theta_q``, held in the train state
with its own batch statistics. Keys of the whole global batch are enqueued
into a FIFO queue of K keys (oldest dequeued first); the InfoNCE loss
contrasts each query with its key and the K queued keys. v1 and v2 differ
only in config: v2 adds the MLP head, blur, and the cosine schedule.

Shuffling BN, under a mesh: MoCo shuffles the keys' sample order across GPUs
so that batch-norm statistics cannot reveal which key belongs to which query.
Here batch norm runs over ``config.moco.bn_groups`` equal sub-batches of the
global batch ("ghost" batch norm, each sub-batch normalised with its own
statistics, like per-GPU BN). Queries use the sub-batches in batch order;
the key encoder sees the batch rolled by one sub-batch, so every key is
normalised with statistics from a different sub-batch than its query.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from sslax import losses
from sslax.encoder import backbone_def
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.models import make_encoder


class MoCoState(NamedTuple):
  """The momentum key encoder and the queue of keys, in the train state."""
  key_params: Any
  key_model_state: Any
  queue: jax.Array       # [K, d], l2-normalised keys, oldest overwritten first
  queue_ptr: jax.Array   # int32: where the next batch of keys goes


def roll_groups(x, groups, direction=1):
  """Rolls the batch by one sub-batch of ``len(x) // groups`` rows."""
  return jnp.roll(x, direction * (x.shape[0] // groups), axis=0)


def enqueue(queue, ptr, keys):
  """FIFO: ``keys`` overwrite the oldest ``len(keys)`` entries, starting at
  ``ptr``; returns (queue, new ptr). ``len(queue)`` is a multiple of
  ``len(keys)``, so a batch never wraps around."""
  queue = jax.lax.dynamic_update_slice(queue, keys.astype(queue.dtype), (ptr, 0))
  return queue, (ptr + keys.shape[0]) % queue.shape[0]


def key_features(model, key_params, key_model_state, x, groups):
  """Key projections (no gradient) with the shuffled-BN equivalent: computed
  on the batch rolled by one BN sub-batch, then rolled back."""
  (_, k), new_state = common.apply_in_groups(
      model, key_params, key_model_state, roll_groups(x, groups), groups)
  k = roll_groups(k, groups, direction=-1)
  return jax.lax.stop_gradient(k), jax.lax.stop_gradient(new_state)


def build(config) -> Method:
  mc = config.moco
  groups = int(mc.bn_groups)
  batch = int(config.global_batch_size)
  if mc.temperature <= 0:
    raise UserError(f"config.moco.temperature must be positive, got {mc.temperature}")
  if not 0.0 <= mc.momentum <= 1.0:
    raise UserError(f"config.moco.momentum must be in [0, 1], got {mc.momentum}")
  if groups < 1 or batch % groups:
    raise UserError(f"config.moco.bn_groups={groups} must divide the global batch {batch}")
  if mc.queue_size % batch:
    raise UserError(f"config.moco.queue_size={mc.queue_size} must be a multiple of the "
                    f"global batch {batch}")
  encoder = make_encoder(config.model, config.compute_dtype)
  model = common.EncoderWithHead(encoder=encoder,
                                 head=common.make_head(config.head, config.compute_dtype))

  def init(key, examples):
    images = examples["image"]
    model_key, queue_key = jax.random.split(key)
    params, model_state = common.init_variables(model, model_key,
                                                common.center_input(images, config))
    queue = losses.l2_normalize(jax.random.normal(
        queue_key, (mc.queue_size, config.head.output_dim), jnp.float32))
    method_state = MoCoState(key_params=params, key_model_state=model_state,
                             queue=queue, queue_ptr=jnp.zeros((), jnp.int32))
    return params, model_state, method_state

  def loss_fn(params, model_state, method_state, batch_data, key):
    x_q, x_k = common.two_views(key, batch_data["image"], config)
    (h, q), new_model_state = common.apply_in_groups(model, params, model_state, x_q,
                                                     groups)
    k, new_key_state = key_features(model, method_state.key_params,
                                    method_state.key_model_state, x_k, groups)
    loss = losses.moco_infonce(q, k, method_state.queue, temperature=mc.temperature)
    queue, ptr = enqueue(method_state.queue, method_state.queue_ptr,
                         losses.l2_normalize(k))
    new_method_state = method_state._replace(key_model_state=new_key_state,
                                             queue=queue, queue_ptr=ptr)
    metrics = {"positive_cosine": jnp.mean(jnp.sum(
        losses.l2_normalize(q) * losses.l2_normalize(k), -1))}
    return loss, LossAux(new_model_state, new_method_state, metrics, h)

  def after_update(method_state, params, step):
    del step
    return method_state._replace(
        key_params=common.ema(method_state.key_params, params, mc.momentum))

  return Method(name=config.method, init=init, loss_fn=loss_fn,
                encoder=backbone_def(config), after_update=after_update)
