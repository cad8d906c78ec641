"""The modalities sslax trains on, one module each: its examples' key, its
encoders' preprocessing kinds, its input checks (``check_config`` raises,
``notes(config, source)`` lists what training says once in its log), what an
encoder sees at evaluation time and its raw baselines. Nothing else branches on the
modality: it asks the module named by ``config.data.modality`` (or the one
owning an encoder's preprocessing kind)."""

from sslax.data.modality import audio, image, text
from sslax.errors import UserError

MODALITIES = {"image": image, "audio": audio, "text": text}


def of_config(data_config):
  """The module of ``config.data.modality``."""
  name = data_config.get("modality") or "image"
  if name not in MODALITIES:
    raise UserError(f"unknown config.data.modality {name!r}; use one of "
                    f"{', '.join(MODALITIES)}")
  return MODALITIES[name]


def owning(preprocess_kind: str):
  """The module whose encoders take the preprocessing ``preprocess_kind``."""
  for module in MODALITIES.values():
    if preprocess_kind in module.PREPROCESSING:
      return module
  kinds = [k for m in MODALITIES.values() for k in m.PREPROCESSING]
  raise UserError(f"unknown encoder preprocessing {preprocess_kind!r}; use one of "
                  f"{', '.join(kinds)}")


def preprocessing_kinds():
  return tuple(k for m in MODALITIES.values() for k in m.PREPROCESSING)
