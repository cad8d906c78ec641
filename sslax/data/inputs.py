"""What an encoder sees at evaluation time, by the config's data modality:
``image`` (default) is the central view, normalised; ``audio`` is the whole
clip as standardised float samples."""

import jax
import jax.numpy as jnp

from sslax.data import augment
from sslax.errors import UserError

MODALITIES = ("image", "audio")


def modality(data_config) -> str:
  name = data_config.modality
  if name not in MODALITIES:
    raise UserError(f"unknown config.data.modality {name!r}; use one of "
                    f"{', '.join(MODALITIES)}")
  return name


def standardize_audio(waveforms: jax.Array) -> jax.Array:
  """int16 (or float) waveforms [n, samples] -> float32 with zero mean and unit
  variance per clip, so the encoder does not see recording gain."""
  x = waveforms.astype(jnp.float32)
  x = x - jnp.mean(x, axis=-1, keepdims=True)
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + 1e-8)


def random_windows(key, waveforms: jax.Array, length: int) -> jax.Array:
  """One random window of ``length`` samples from each clip [n, samples]."""
  n, samples = waveforms.shape
  starts = jax.random.randint(key, (n,), 0, samples - length + 1)
  return jax.vmap(lambda w, s: jax.lax.dynamic_slice(w, (s,), (length,)))(waveforms, starts)


def eval_input(x: jax.Array, data_config) -> jax.Array:
  if modality(data_config) == "audio":
    return standardize_audio(x)
  return augment.normalize(augment.center_view(x, data_config.image_size),
                           data_config.mean, data_config.std)
