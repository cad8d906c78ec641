"""The modalities sslax trains on, one module each: its examples' key, its
encoders' preprocessing kinds, its input checks (``accepts(element_spec)``
says whether a source's examples are its kind, ``check_config`` raises,
``notes(config, source)`` lists what training says once in its log), what an
encoder sees at evaluation time and its raw baselines. Nothing else branches on the
modality: it asks the module named by ``config.data.modality`` (or the one
owning an encoder's preprocessing kind)."""

from sslax.data.modality import audio, image, text, video
from sslax.errors import UserError

MODALITIES = {"image": image, "audio": audio, "text": text, "video": video}


def of_config(data_config):
  """The module of ``config.data.modality``."""
  name = data_config.get("modality") or "image"
  if name not in MODALITIES:
    raise UserError(f"unknown config.data.modality {name!r}; use one of "
                    f"{', '.join(MODALITIES)}")
  return MODALITIES[name]


def check_config(config, source):
  """The modality module's checks of the config against the training data,
  after refusing data of another modality with the override that fits it."""
  module = of_config(config.data)
  spec = source.element_spec
  if not module.accepts(spec):
    fits = [name for name, m in MODALITIES.items() if m.accepts(spec)]
    fix = (f"set --config.data.modality={fits[0]}" if fits else
           f"give {module.NAME} data (examples with {module.KEY!r})")
    raise UserError(f"config.data.modality is {module.NAME} but {config.data.name} "
                    f"examples have {', '.join(sorted(spec))}; {fix}")
  module.check_config(config, source)


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
