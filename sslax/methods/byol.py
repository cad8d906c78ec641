"""BYOL: bootstrap your own latent (Grill et al. 2020).

The online network (encoder, projector, predictor) regresses the target
network's projection of the other view. The target (encoder + projector) is
an EMA of the online one held in the train state; its decay rate rises from
``tau_base`` to 1 on a cosine schedule. The loss is symmetrised over the two
views, with a stop-gradient on the target, and the two views are augmented
asymmetrically (``config.view_augment``: blur always on view 1, rarely on
view 2; solarize only on view 2).
"""

from typing import Any, NamedTuple

import jax

from sslax import losses
from sslax.config_base import schedule_steps
from sslax.encoder import backbone_def
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.models import make_encoder


class TargetState(NamedTuple):
  """The target network (encoder + projector): an EMA of the online one."""
  params: Any
  model_state: Any


def target_part(tree):
  """The encoder and projector of an online parameter or state tree."""
  return {name: tree[name] for name in ("encoder", "head") if name in tree}


def build(config) -> Method:
  bc = config.byol
  if not 0.0 <= bc.tau_base <= 1.0:
    raise UserError(f"config.byol.tau_base must be in [0, 1], got {bc.tau_base}")
  encoder = make_encoder(config.model, config.compute_dtype)
  head = common.make_head(config.head, config.compute_dtype)
  online = common.EncoderHeadPredictor(encoder=encoder, head=head,
                  predictor=common.make_head(config.predictor, config.compute_dtype,
                                            "predictor"))
  target = common.EncoderWithHead(encoder=encoder, head=head)

  def init(key, examples):
    images = examples["image"]
    params, model_state = common.init_variables(online, key,
                                                common.center_input(images, config))
    method_state = TargetState(
        params=target_part(params),
        model_state={c: target_part(t) for c, t in model_state.items()})
    return params, model_state, method_state

  def loss_fn(params, model_state, method_state, batch, key):
    x1, x2 = common.two_views(key, batch["image"], config)
    x = common.interleave(x1, x2)
    (h, _, p), new_model_state = common.apply_train(online, params, model_state, x)
    (_, z), new_target_state = common.apply_train(
        target, method_state.params, method_state.model_state, x)
    p1, p2 = common.deinterleave(p)
    z1, z2 = common.deinterleave(jax.lax.stop_gradient(z))
    loss = losses.byol_loss(p1, z2) + losses.byol_loss(p2, z1)
    new_method_state = method_state._replace(
        model_state=jax.lax.stop_gradient(new_target_state))
    return loss, LossAux(new_model_state, new_method_state, {},
                         common.deinterleave(h)[0])

  def after_update(method_state, params, step):
    tau = common.cosine_momentum(step, schedule_steps(config), bc.tau_base)
    return method_state._replace(
        params=common.ema(method_state.params, target_part(params), tau))

  return Method(name="byol", init=init, loss_fn=loss_fn, encoder=backbone_def(config),
                after_update=after_update)
