"""Denoising autoencoder (Vincent et al. 2010).

Each training image x (in [0, 1], after the mild ``config.augment``) is
corrupted by ``config.dae.corruption`` (sec. 4.2):

* ``gaussian``: x + N(0, sigma^2) on every component;
* ``masking``: each component set to 0 with probability ``rate``;
* ``salt_and_pepper``: each component set to 0 or 1 with probability ``rate``.

The encoder sees the corrupted image normalised with the dataset mean and std;
the decoder (``sslax.models.decoder``) reconstructs the clean normalised image.
The loss is the emphasised squared error of sec. 4.3
(``pretext.weighted_reconstruction_loss``): ``alpha`` on the corrupted
components, ``beta`` on the others, summed over components, mean over images.

Batch norm and the online probe's features: a second, stop-gradient pass of
the encoder on the clean central view (train mode, the clean batch's
statistics) gives ``LossAux.features``, and its running statistics are the
encoder's in ``model_state``; the corrupted pass normalises the training
forward with its own batch statistics and keeps running statistics only for
the decoder. So the encoder at evaluation (clean images, running statistics)
is normalised by statistics of clean images, not of corrupted ones.
"""

import jax
import jax.numpy as jnp

from sslax.data import augment, pretext
from sslax.errors import UserError
from sslax.methods import common
from sslax.methods.base import LossAux, Method
from sslax.models.decoder import make_autoencoder

CORRUPTIONS = {
    "gaussian": lambda key, x, c: pretext.gaussian_noise(key, x, float(c.sigma)),
    "masking": lambda key, x, c: pretext.masking_noise(key, x, float(c.rate)),
    "salt_and_pepper": lambda key, x, c: pretext.salt_and_pepper(key, x, float(c.rate)),
}


# ------------------------------------------------------ shared with context_encoder

def image_shape(config):
  """(H, W, C) of the training images (C from ``config.data.mean``)."""
  h, w = config.data.image_size
  return (int(h), int(w), len(config.data.mean))


def autoencoder(config):
  """``(Autoencoder, encoder)`` of ``config.model`` and ``config.decoder``."""
  return make_autoencoder(config.model, config.decoder, image_shape(config),
                          config.compute_dtype)


def training_images(key, images, config):
  """The batch's training view in [0, 1]: ``config.augment`` (mild crops and
  flips in this method's configs) at ``config.data.image_size``."""
  return augment.augment_batch(key, images, common.view_params(config, 1),
                               tuple(config.data.image_size))


def normalize(x, config):
  return augment.normalize(x, config.data.mean, config.data.std)


def to_pixels(x, config):
  """Normalised images back to pixel values (not clipped)."""
  return (x * jnp.asarray(config.data.std, jnp.float32)
          + jnp.asarray(config.data.mean, jnp.float32))


def clean_features(encoder, params, model_state, images, config):
  """``(features, encoder state)`` of the clean central view: train-mode batch
  norm over the batch, behind a stop-gradient (no backward pass)."""
  variables = jax.lax.stop_gradient(
      common.submodule_variables(params, model_state, "encoder"))
  h, state = encoder.apply(variables, common.center_input(images, config), train=True,
                           mutable=[c for c in variables if c != "params"])
  return h, state


def with_encoder_state(model_state, encoder_state):
  """``model_state`` with the encoder's collections replaced by ``encoder_state``."""
  return {c: {**tree, **({"encoder": encoder_state[c]} if c in encoder_state else {})}
          for c, tree in model_state.items()}


# --------------------------------------------------------------------- the method

def check_config(config):
  dc = config.dae
  if dc.corruption not in CORRUPTIONS:
    raise UserError(f"unknown config.dae.corruption {dc.corruption!r}; use one of "
                    f"{', '.join(CORRUPTIONS)}")
  if dc.corruption == "gaussian" and not float(dc.sigma) > 0:
    raise UserError(f"config.dae.sigma must be > 0 for gaussian noise, got {dc.sigma}")
  if dc.corruption != "gaussian" and not 0.0 < float(dc.rate) < 1.0:
    raise UserError(f"config.dae.rate must be in (0, 1) for {dc.corruption} noise, "
                    f"got {dc.rate}")
  if min(float(dc.alpha), float(dc.beta)) < 0 or float(dc.alpha) + float(dc.beta) <= 0:
    raise UserError(f"config.dae.alpha and beta must be >= 0 and not both 0, got "
                    f"alpha={dc.alpha}, beta={dc.beta}")


def corrupt(key, x, config):
  """``(corrupted, mask)`` of images ``x`` in [0, 1] by ``config.dae``; the
  mask is 1 on the corrupted components."""
  return CORRUPTIONS[config.dae.corruption](key, x, config.dae)


def reconstruction_loss(recon, clean, mask, config):
  """Vincent et al.'s emphasised squared error (normalised images)."""
  return pretext.weighted_reconstruction_loss(recon, clean, mask, float(config.dae.alpha),
                                              float(config.dae.beta))


def build(config) -> Method:
  check_config(config)
  model, encoder = autoencoder(config)

  init = common.stateless_init(model, config)

  def loss_fn(params, model_state, method_state, batch, key, mesh):
    del mesh  # every reduction is a mean over the global batch
    k_aug, k_noise = jax.random.split(key)
    x = training_images(k_aug, batch["image"], config)
    corrupted, mask = corrupt(k_noise, x, config)
    (_, recon), new_state = common.apply_train(model, params, model_state,
                                               normalize(corrupted, config))
    loss = reconstruction_loss(recon, normalize(x, config), mask, config)
    features, encoder_state = clean_features(encoder, params, model_state,
                                             batch["image"], config)
    sq = jnp.square(to_pixels(recon, config) - x)
    metrics = {"reconstruction_mse": jnp.mean(sq),
               "corrupted_mse": jnp.sum(mask * sq) / jnp.maximum(jnp.sum(mask), 1.0)}
    return loss, LossAux(with_encoder_state(new_state, encoder_state), method_state,
                         metrics, features)

  return Method(name="denoising_ae", init=init, loss_fn=loss_fn, encoder=encoder,
                encoder_variables=common.submodule_variables)


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
