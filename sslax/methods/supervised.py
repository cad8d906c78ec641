"""Supervised training of the encoder with a linear head on labelled images.

Started from a pretrained encoder it is fine-tuning with a fraction of the
labels (SimCLR, Chen et al. 2020, section 6 and Table 7); started from the
encoder at its initialisation it is the supervised-from-scratch baseline on
the same labelled subset and budget. The trainer runs it like any method
(``sslax eval finetune`` sets it up); the starting encoder variables are its
``constants``, placed into the parameters at ``init``.

Config group ``config.supervised``: ``num_classes`` and ``crop_scale`` (random
resized crops and horizontal flips; no colour jitter).
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from sslax.data import augment
from sslax.encoder import backbone_def
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.models import make_encoder


class Classifier(nn.Module):
  """Returns (representation, logits of a linear head on it)."""
  encoder: nn.Module
  num_classes: int

  @nn.compact
  def __call__(self, x, train: bool = False):
    h = self.encoder(x, train=train)
    return h, nn.Dense(self.num_classes, name="head")(h.astype(jnp.float32))


def _model(config):
  return Classifier(encoder=make_encoder(config.model, config.compute_dtype),
                    num_classes=int(config.supervised.num_classes))


def build(config, start: Optional[Any] = None) -> Method:
  """``start``: the encoder's variables to begin from (every collection);
  None starts from the classifier's own initialisation."""
  model = _model(config)
  aug = augment.AugmentParams(crop_scale=tuple(config.supervised.crop_scale),
                              flip_prob=0.5, jitter_prob=0.0, grayscale_prob=0.0)

  def init(key, examples, constants=None):
    images = examples["image"]
    variables = model.init(key, common.center_input(images, config), train=False)
    params = dict(variables["params"])
    model_state = {k: v for k, v in variables.items() if k != "params"}
    if constants is not None:
      params["encoder"] = constants["params"]
      model_state = {k: {"encoder": v} for k, v in constants.items() if k != "params"}
    return params, model_state, {}

  def loss_fn(params, model_state, method_state, batch, key):
    (h, logits), new_state = common.apply_train(
        model, params, model_state, common.augmented_view(key, batch["image"], config, aug))
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
    metrics = {"train_top1": jnp.mean(jnp.argmax(logits, -1) == batch["label"])}
    return loss, LossAux(new_state, method_state, metrics, h)

  return Method(name="supervised", init=init, loss_fn=loss_fn,
                encoder=backbone_def(config),
                constants=None if start is None else (lambda source: start))


def predict_fn(config):
  """``predict(params, model_state, images) -> labels`` (eval mode, the
  central view)."""
  model = _model(config)

  @jax.jit
  def predict(params, model_state, images):
    _, logits = model.apply({"params": params, **model_state},
                            common.center_input(images, config), train=False)
    return jnp.argmax(logits, -1)

  return predict
