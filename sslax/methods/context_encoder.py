"""Context encoder (Pathak et al. 2016): inpainting as a pretext task.

Regions of each training image are masked (``config.context_encoder.mask``: the
``central`` block of ``side_fraction`` of each side, or the union of
``num_blocks`` ``random_blocks`` of ``block_size`` pixels); the encoder sees
the image with the masked pixels set to the dataset mean (0 after
normalisation), and the decoder (``sslax.models.decoder``) predicts the image.
The reconstruction loss is the mean squared error over the masked components,
plus ``outside_weight`` times that over the others (0 in the paper).

Adversarial loss (optional, ``adversarial_weight`` w > 0; the paper's joint
loss is 0.999 L2 + 0.001 adversarial, i.e. w = 0.001): the loss is
``(1 - w) L2 + w L_adv``. A small conv discriminator D tells real images from
the context with the prediction pasted into the masked region;
``L_adv = -log D(fake)`` (the non-saturating generator loss).

Two optimizers in one train state: the trainer's optimizer is over ``params``
(encoder + decoder); D's parameters and its own optax (Adam) state are the
method state (``Discriminator``), and D's step is the method's
``side_update``, which the trainer runs after the loss: ``loss_fn`` hands the
real and the composited images over in ``LossAux.outputs`` (the trainer puts
them behind a stop-gradient), and ``side_update`` takes ``jax.grad`` of D's
loss (real vs. fake) and one Adam step. The generator's ``L_adv`` uses D's
parameters of the start of the step behind a stop-gradient, so the gradient
reaches only the encoder and decoder: both players step simultaneously from
the same point. D has no batch norm, so it carries no other state.

Batch norm and the online probe's features: as in ``denoising_ae``, a
stop-gradient pass of the encoder on the clean central view gives the
features and the encoder's running statistics.
"""

import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from sslax.data import augment
from sslax.encoder import backbone_def
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.methods.pretext_common import (autoencoder, center_pass, image_shape,
                                          normalize, to_pixels, training_images,
                                          with_encoder_state)

MASKS = ("central", "random_blocks")


def central_block_mask(h: int, w: int, side_fraction: float = 0.5) -> jax.Array:
  """Central-region mask of context encoders (Pathak et al. 2016): float32
  [h, w, 1], 1 on the centred block of ``round(side_fraction * side)`` pixels a
  side (0.5: a quarter of the area, 64x64 of 128x128), 0 elsewhere."""
  bh, bw = int(round(side_fraction * h)), int(round(side_fraction * w))
  if not (0 <= bh <= h and 0 <= bw <= w):
    raise ValueError(f"central_block_mask needs side_fraction in [0, 1], got "
                     f"{side_fraction}")
  top, left = (h - bh) // 2, (w - bw) // 2
  rows = (jnp.arange(h) >= top) & (jnp.arange(h) < top + bh)
  cols = (jnp.arange(w) >= left) & (jnp.arange(w) < left + bw)
  return (rows[:, None] & cols[None, :]).astype(jnp.float32)[..., None]


def random_block_masks(key: jax.Array, n: int, h: int, w: int, num_blocks: int,
                       block_size: int) -> jax.Array:
  """Random-block masks of context encoders (Pathak et al. 2016): float32
  [n, h, w, 1], the union of ``num_blocks`` squares of side ``block_size``,
  each placed uniformly at random wholly inside the image; 1 = to inpaint."""
  if not 1 <= block_size <= min(h, w):
    raise ValueError(f"random_block_masks: block_size {block_size} must be in "
                     f"[1, {min(h, w)}] for {h}x{w} images")
  k_top, k_left = jax.random.split(key)
  top = jax.random.randint(k_top, (n, num_blocks, 1), 0, h - block_size + 1)
  left = jax.random.randint(k_left, (n, num_blocks, 1), 0, w - block_size + 1)
  rows = (jnp.arange(h) >= top) & (jnp.arange(h) < top + block_size)
  cols = (jnp.arange(w) >= left) & (jnp.arange(w) < left + block_size)
  blocks = rows[..., :, None] & cols[..., None, :]  # [n, num_blocks, h, w]
  return jnp.any(blocks, axis=1).astype(jnp.float32)[..., None]


class Discriminator(nn.Module):
  """DCGAN-style: (4x4 stride-2 convolution, leaky ReLU) per width, then one
  logit per image; no batch norm."""
  widths: tuple = (32, 64)

  @nn.compact
  def __call__(self, x):
    for width in self.widths:
      x = nn.leaky_relu(nn.Conv(width, (4, 4), (2, 2), padding=1)(x), 0.2)
    return nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0].astype(jnp.float32)


def check_config(config):
  cc = config.context_encoder
  h, w, _ = image_shape(config)
  if cc.mask not in MASKS:
    raise UserError(f"unknown config.context_encoder.mask {cc.mask!r}; use one of "
                    f"{', '.join(MASKS)}")
  if cc.mask == "central" and not 0.0 < float(cc.side_fraction) < 1.0:
    raise UserError(f"config.context_encoder.side_fraction must be in (0, 1), got "
                    f"{cc.side_fraction}")
  if cc.mask == "random_blocks":
    if int(cc.num_blocks) < 1:
      raise UserError(f"config.context_encoder.num_blocks must be >= 1, got {cc.num_blocks}")
    if not 1 <= int(cc.block_size) < min(h, w):
      raise UserError(f"config.context_encoder.block_size must be in [1, {min(h, w) - 1}] for "
                      f"{h}x{w} images, got {cc.block_size}")
  if float(cc.outside_weight) < 0:
    raise UserError(f"config.context_encoder.outside_weight must be >= 0, got {cc.outside_weight}")
  if not 0.0 <= float(cc.adversarial_weight) < 1.0:
    raise UserError(f"config.context_encoder.adversarial_weight must be in [0, 1) (0 turns the "
                    f"adversarial loss off), got {cc.adversarial_weight}")
  if float(cc.adversarial_weight) > 0:
    dc = cc.discriminator
    if not dc.widths or min(int(x) for x in dc.widths) < 1:
      raise UserError(f"config.context_encoder.discriminator.widths must be positive, got "
                      f"{tuple(dc.widths)}")
    if not float(dc.learning_rate) > 0:
      raise UserError(f"config.context_encoder.discriminator.learning_rate must be > 0, got "
                      f"{dc.learning_rate}")


def masks(key, n, config):
  """float32 [n, H, W, 1], 1 on the pixels to inpaint."""
  cc = config.context_encoder
  h, w, _ = image_shape(config)
  if cc.mask == "central":
    return jnp.broadcast_to(central_block_mask(h, w, float(cc.side_fraction)),
                            (n, h, w, 1))
  return random_block_masks(key, n, h, w, int(cc.num_blocks), int(cc.block_size))


def masked_input(x, mask):
  """Normalised images with the masked pixels set to 0 (the dataset mean): the
  encoder's input carries nothing of the original masked pixels."""
  return jnp.where(mask > 0, jnp.zeros_like(x), x)


def reconstruction_loss(recon, x, mask, outside_weight):
  """Mean squared error over the masked components, plus ``outside_weight``
  times the mean over the others; ``mask`` [N, H, W, 1] broadcasts over
  channels."""
  m = jnp.broadcast_to(mask, x.shape)
  sq = jnp.square(recon.astype(jnp.float32) - x.astype(jnp.float32))
  inside = jnp.sum(m * sq) / jnp.maximum(jnp.sum(m), 1.0)
  if outside_weight == 0:
    return inside
  outside = jnp.sum((1 - m) * sq) / jnp.maximum(jnp.sum(1 - m), 1.0)
  return inside + outside_weight * outside


def paste(recon, x, mask):
  """The context ``x`` with the prediction in the masked region."""
  return jnp.where(mask > 0, recon, x)


def discriminator_optimizer(config):
  dc = config.context_encoder.discriminator
  return optax.adam(float(dc.learning_rate), b1=float(dc.b1))


def build(config) -> Method:
  check_config(config)
  model, encoder = autoencoder(config)
  outside_weight = float(config.context_encoder.outside_weight)
  adv_weight = float(config.context_encoder.adversarial_weight)
  disc = Discriminator(widths=tuple(int(w) for w in config.context_encoder.discriminator.widths))
  d_tx = discriminator_optimizer(config)

  def init(key, examples):
    images = examples["image"]
    k_model, k_disc = jax.random.split(key)
    x = common.center_input(images, config)
    params, model_state = common.init_variables(model, k_model, x)
    method_state = {}
    if adv_weight > 0:
      d_params = disc.init(k_disc, x)["params"]
      method_state = DiscriminatorState(params=d_params, opt_state=d_tx.init(d_params))
    return params, model_state, method_state

  def discriminator_step(d, outputs):
    """One Adam step of D on real vs. fake (composited) images."""
    real, fake = outputs

    def d_loss_fn(d_params):
      real_logits = disc.apply({"params": d_params}, real)
      fake_logits = disc.apply({"params": d_params}, fake)
      loss = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
      accuracy = 0.5 * (jnp.mean(real_logits > 0) + jnp.mean(fake_logits < 0))
      return loss, accuracy

    (d_loss, accuracy), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d.params)
    updates, opt_state = d_tx.update(grads, d.opt_state, d.params)
    new_d = DiscriminatorState(params=optax.apply_updates(d.params, updates),
                               opt_state=opt_state)
    return new_d, {"discriminator_loss": d_loss, "discriminator_accuracy": accuracy}

  def loss_fn(params, model_state, method_state, batch, key):
    k_aug, k_mask = jax.random.split(key)
    x01 = training_images(k_aug, batch["image"], config)
    x = normalize(x01, config)
    mask = masks(k_mask, x.shape[0], config)
    (_, recon), new_state = common.apply_train(model, params, model_state,
                                               masked_input(x, mask))
    loss = reconstruction_loss(recon, x, mask, outside_weight)
    m = jnp.broadcast_to(mask, x.shape)
    metrics = {"reconstruction_mse": jnp.sum(
        m * jnp.square(to_pixels(recon, config) - x01)) / jnp.maximum(jnp.sum(m), 1.0)}
    outputs = None
    if adv_weight > 0:
      fake = paste(recon, x, mask)
      d_params = jax.lax.stop_gradient(method_state.params)
      adversarial = jnp.mean(jax.nn.softplus(-disc.apply({"params": d_params}, fake)))
      metrics.update(reconstruction_loss=loss, adversarial_loss=adversarial)
      loss = (1.0 - adv_weight) * loss + adv_weight * adversarial
      outputs = (x, fake)  # for the discriminator's step
    features, encoder_state = center_pass(encoder, params, model_state,
                                          batch["image"], config)
    return loss, LossAux(with_encoder_state(new_state, encoder_state), method_state,
                         metrics, features, outputs)

  return Method(name="context_encoder", init=init, loss_fn=loss_fn,
                encoder=backbone_def(config),
                side_update=discriminator_step if adv_weight > 0 else None,
                pictures=functools.partial(_pictures, config))


class DiscriminatorState(NamedTuple):
  """D's parameters and its own Adam state."""
  params: Any
  opt_state: Any


def _pictures(config, params, model_state, images, key):
  x = augment.center_view(jnp.asarray(images), tuple(config.data.image_size))
  masked, inpainted = reconstruct(config, params, model_state, images, key)
  return {"reconstruction": ((("original", x), ("input", masked), ("output", inpainted)),
                             "test images, input, output")}


def reconstruct(config, params, model_state, images, key):
  """``(masked input, inpainted image)`` in [0, 1] of the central views of
  ``images`` [N, H, W, C] (uint8, or float in [0, 1]), for pictures: the
  encoder's input (masked pixels at the dataset mean) and the context with the
  decoder's prediction pasted into the masked region. Batch norm uses the
  batch's statistics, as in training: pass a few hundred images."""
  check_config(config)
  model, _ = autoencoder(config)

  @jax.jit
  def run(params, model_state, images, key):
    x01 = augment.center_view(images, tuple(config.data.image_size))
    x = normalize(x01, config)
    mask = masks(key, x.shape[0], config)
    inputs = masked_input(x, mask)
    (_, recon), _ = common.apply_train(model, params, model_state, inputs)
    return (jnp.clip(to_pixels(inputs, config), 0.0, 1.0),
            jnp.clip(to_pixels(paste(recon, x, mask), config), 0.0, 1.0))

  return run(params, model_state, jnp.asarray(images), key)
