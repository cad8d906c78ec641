"""Denoising autoencoder (Vincent et al. 2010).

Each training image x (in [0, 1], after the mild ``config.augment``) is
corrupted by ``config.denoising_ae.corruption`` (sec. 4.2):

* ``gaussian``: x + N(0, sigma^2) on every component;
* ``masking``: each component set to 0 with probability ``rate``;
* ``salt_and_pepper``: each component set to 0 or 1 with probability ``rate``.

The encoder sees the corrupted image normalised with the dataset mean and std;
the decoder (``sslax.models.decoder``) reconstructs the clean normalised image.
The loss is the emphasised squared error of sec. 4.3
(``sslax.losses.weighted_reconstruction_loss``): ``alpha`` on the corrupted
components, ``beta`` on the others, summed over components, mean over images.

Batch norm and the online probe's features: a second, stop-gradient pass of
the encoder on the clean central view (train mode, the clean batch's
statistics) gives ``LossAux.features``, and its running statistics are the
encoder's in ``model_state``; the corrupted pass normalises the training
forward with its own batch statistics and keeps running statistics only for
the decoder. So the encoder at evaluation (clean images, running statistics)
is normalised by statistics of clean images, not of corrupted ones.
"""

import functools
from typing import Tuple

import jax
import jax.numpy as jnp

from sslax.data import augment
from sslax.encoder import backbone_def
from sslax.errors import UserError
from sslax.losses import weighted_reconstruction_loss
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.methods.pretext_common import (autoencoder, center_pass, normalize,
                                          to_pixels, training_images,
                                          with_encoder_state)

# ------------------------------------------ corruptions (Vincent et al. 2010, sec. 4.2)

def gaussian_noise(key: jax.Array, x: jax.Array,
                   sigma: float) -> Tuple[jax.Array, jax.Array]:
  """Additive isotropic Gaussian noise N(0, sigma^2) (Vincent et al. 2010).
  Returns (corrupted, mask); the mask is all ones: every component is corrupted."""
  noise = sigma * jax.random.normal(key, x.shape, x.dtype)
  return x + noise, jnp.ones(x.shape, jnp.float32)


def masking_noise(key: jax.Array, x: jax.Array,
                  rate: float) -> Tuple[jax.Array, jax.Array]:
  """Masking noise (Vincent et al. 2010): each component independently set to 0
  with probability ``rate``. Returns (corrupted, float32 {0,1} mask of the
  components chosen, including those that were already 0)."""
  mask = jax.random.bernoulli(key, rate, x.shape)
  return jnp.where(mask, jnp.zeros_like(x), x), mask.astype(jnp.float32)


def salt_and_pepper(key: jax.Array, x: jax.Array, rate: float, low: float = 0.0,
                    high: float = 1.0) -> Tuple[jax.Array, jax.Array]:
  """Salt-and-pepper noise (Vincent et al. 2010): each component independently
  chosen with probability ``rate`` and set to ``low`` or ``high`` with equal
  chance. Returns (corrupted, float32 {0,1} mask of the chosen components)."""
  k_mask, k_salt = jax.random.split(key)
  mask = jax.random.bernoulli(k_mask, rate, x.shape)
  salt = jax.random.bernoulli(k_salt, 0.5, x.shape)
  value = jnp.where(salt, jnp.asarray(high, x.dtype), jnp.asarray(low, x.dtype))
  return jnp.where(mask, value, x), mask.astype(jnp.float32)


CORRUPTIONS = {
    "gaussian": lambda key, x, c: gaussian_noise(key, x, float(c.sigma)),
    "masking": lambda key, x, c: masking_noise(key, x, float(c.rate)),
    "salt_and_pepper": lambda key, x, c: salt_and_pepper(key, x, float(c.rate)),
}


# --------------------------------------------------------------------- the method

def check_config(config):
  dc = config.denoising_ae
  if dc.corruption not in CORRUPTIONS:
    raise UserError(f"unknown config.denoising_ae.corruption {dc.corruption!r}; use one of "
                    f"{', '.join(CORRUPTIONS)}")
  if dc.corruption == "gaussian" and not float(dc.sigma) > 0:
    raise UserError(f"config.denoising_ae.sigma must be > 0 for gaussian noise, got {dc.sigma}")
  if dc.corruption != "gaussian" and not 0.0 < float(dc.rate) < 1.0:
    raise UserError(f"config.denoising_ae.rate must be in (0, 1) for {dc.corruption} noise, "
                    f"got {dc.rate}")
  if min(float(dc.alpha), float(dc.beta)) < 0 or float(dc.alpha) + float(dc.beta) <= 0:
    raise UserError(f"config.denoising_ae.alpha and beta must be >= 0 and not both 0, got "
                    f"alpha={dc.alpha}, beta={dc.beta}")


def corrupt(key, x, config):
  """``(corrupted, mask)`` of images ``x`` in [0, 1] by ``config.denoising_ae``; the
  mask is 1 on the corrupted components."""
  return CORRUPTIONS[config.denoising_ae.corruption](key, x, config.denoising_ae)


def reconstruction_loss(recon, clean, mask, config):
  """Vincent et al.'s emphasised squared error (normalised images)."""
  return weighted_reconstruction_loss(recon, clean, mask, float(config.denoising_ae.alpha),
                                      float(config.denoising_ae.beta))


def build(config) -> Method:
  check_config(config)
  model, encoder = autoencoder(config)

  init = common.stateless_init(model, config)

  def loss_fn(params, model_state, method_state, batch, key):
    k_aug, k_noise = jax.random.split(key)
    x = training_images(k_aug, batch["image"], config)
    corrupted, mask = corrupt(k_noise, x, config)
    (_, recon), new_state = common.apply_train(model, params, model_state,
                                               normalize(corrupted, config))
    loss = reconstruction_loss(recon, normalize(x, config), mask, config)
    features, encoder_state = center_pass(encoder, params, model_state,
                                          batch["image"], config)
    sq = jnp.square(to_pixels(recon, config) - x)
    metrics = {"reconstruction_mse": jnp.mean(sq),
               "corrupted_mse": jnp.sum(mask * sq) / jnp.maximum(jnp.sum(mask), 1.0)}
    return loss, LossAux(with_encoder_state(new_state, encoder_state), method_state,
                         metrics, features)

  return Method(name="denoising_ae", init=init, loss_fn=loss_fn, encoder=backbone_def(config),
                pictures=functools.partial(_pictures, config))


def _pictures(config, params, model_state, images, key):
  x = augment.center_view(jnp.asarray(images), tuple(config.data.image_size))
  corrupted, recon = reconstruct(config, params, model_state, images, key)
  return {"reconstruction": ((("original", x), ("input", corrupted), ("output", recon)),
                             "test images, input, output")}


def reconstruct(config, params, model_state, images, key):
  """``(corrupted input, reconstruction)`` in [0, 1] of the central views of
  ``images`` [N, H, W, C] (uint8, or float in [0, 1]), for pictures. Batch
  norm uses the batch's statistics, as in training: pass a few hundred images."""
  check_config(config)
  model, _ = autoencoder(config)

  @jax.jit
  def run(params, model_state, images, key):
    x = augment.center_view(images, tuple(config.data.image_size))
    corrupted, _ = corrupt(key, x, config)
    (_, recon), _ = common.apply_train(model, params, model_state,
                                       normalize(corrupted, config))
    return (jnp.clip(corrupted, 0.0, 1.0),
            jnp.clip(to_pixels(recon, config), 0.0, 1.0))

  return run(params, model_state, jnp.asarray(images), key)
