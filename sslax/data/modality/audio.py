"""Speech: ``"audio"`` int16 (or float) waveforms [samples]. Encoders see
the clip standardised to zero mean and unit variance (``waveform``); the raw
baseline is MFCC statistics (``sslax.data.speech.mfcc_features``)."""

import jax
import jax.numpy as jnp

from sslax.data import speech
from sslax.errors import UserError

NAME = "audio"
KEY = "audio"


def standardize(waveforms: jax.Array) -> jax.Array:
  """int16 (or float) waveforms [n, samples] -> float32 with zero mean and unit
  variance per clip, so the encoder does not see recording gain."""
  x = jnp.asarray(waveforms).astype(jnp.float32)
  x = x - jnp.mean(x, axis=-1, keepdims=True)
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + 1e-8)


def random_windows(key, waveforms: jax.Array, length: int) -> jax.Array:
  """One random window of ``length`` samples from each clip [n, samples]."""
  n, samples = waveforms.shape
  starts = jax.random.randint(key, (n,), 0, samples - length + 1)
  return jax.vmap(lambda w, s: jax.lax.dynamic_slice(w, (s,), (length,)))(waveforms, starts)


PREPROCESSING = {"waveform": lambda examples, preprocess: standardize(examples)}


def accepts(element_spec) -> bool:
  """Whether examples with this ``{name: (shape, dtype)}`` are waveforms."""
  return KEY in element_spec


def check_config(config, source):
  del config, source  # nothing beyond accepts()


def notes(config, source):
  """What training says once about this data: nothing."""
  del config, source
  return []


def check_input(examples, definition):
  """One line when raw examples do not fit an encoder's input."""
  del definition  # clips of any length
  if examples.ndim != 2:
    raise UserError(f"inputs of shape {tuple(examples.shape)} are not clips "
                    "[n, samples]; give the encoder a batch of waveforms")


def eval_input(x, data_config):
  del data_config
  return standardize(x)


RAW_FEATURES = {"mfcc": speech.mfcc_features}
