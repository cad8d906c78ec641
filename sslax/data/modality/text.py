"""Text: token ids (int32) under ``"centre"``/``"context"`` (word windows)
or ``"tokens"`` with a ``"tokens_mask"`` (padded sequences). Encoders take
token ids as they are (``token_ids``); a vocabulary travels with the encoder
as an asset. There is no raw baseline without a vocabulary model."""

import jax.numpy as jnp

from sslax.errors import UserError

NAME = "text"
KEY = "centre"

PREPROCESSING = {"token_ids": lambda examples, preprocess: jnp.asarray(examples, jnp.int32)}


def accepts(element_spec) -> bool:
  """Whether examples with this ``{name: (shape, dtype)}`` are token ids."""
  return any(str(d).startswith("int") and k != "label" for k, (_, d) in element_spec.items())


def check_config(config, source):
  del config, source  # nothing beyond accepts()


def notes(config, source):
  """What training says once about this data: nothing."""
  del config, source
  return []


def check_input(examples, definition):
  """One line when raw examples do not fit an encoder's input."""
  want = tuple(definition.input_shape)
  if tuple(examples.shape[1:]) != want:
    raise UserError(f"inputs of shape {tuple(examples.shape[1:])} do not match the "
                    f"encoder's input {want} (token ids [n, ...])")


def eval_input(x, data_config):
  del data_config
  return jnp.asarray(x, jnp.int32)


RAW_FEATURES = {}
