"""SimSiam: exploring simple Siamese representation learning (Chen & He,
CVPR 2021).

Two views through one encoder and projector (3-layer MLP with BN on every
layer, the output included); a 2-layer bottleneck predictor maps one view's
projection onto the other's. The loss is the symmetrised negative cosine
similarity ``D(p1, stopgrad(z2)) / 2 + D(p2, stopgrad(z1)) / 2``: BYOL without
the momentum encoder, the stop-gradient alone preventing collapse. Nothing
lives in the method state. The loss is per-example, so under a mesh it needs
no collective; batch norm sees both views of the global batch.
"""


from sslax import losses
from sslax.encoder import backbone_def
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.models import make_encoder


def build(config) -> Method:
  encoder = make_encoder(config.model, config.compute_dtype)
  model = common.EncoderHeadPredictor(
      encoder=encoder, head=common.make_head(config.head, config.compute_dtype),
      predictor=common.make_head(config.predictor, config.compute_dtype, "predictor"))

  def loss_fn(params, model_state, method_state, batch, key):
    x1, x2 = common.two_views(key, batch["image"], config)
    (h, z, p), new_model_state = common.apply_train(model, params, model_state,
                                                    common.interleave(x1, x2))
    z1, z2 = common.deinterleave(z)
    p1, p2 = common.deinterleave(p)
    # simsiam_loss puts the stop-gradient on its second argument.
    loss = 0.5 * losses.simsiam_loss(p1, z2) + 0.5 * losses.simsiam_loss(p2, z1)
    return loss, LossAux(new_model_state, method_state, {}, common.deinterleave(h)[0])

  return Method(name="simsiam", init=common.stateless_init(model, config),
                loss_fn=loss_fn, encoder=backbone_def(config))
