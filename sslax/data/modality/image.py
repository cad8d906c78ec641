"""Images: ``"image"`` uint8 [H, W, C]. Encoders see the central view at
``config.data.image_size``, normalised per channel (``normalize``), as the
scaled L channel of CIE Lab (``lab_l``) or as scaled Lab (``lab``); the raw
baseline is the pixels."""

import jax.numpy as jnp
import numpy as np

from sslax.data import augment, color
from sslax.errors import UserError

NAME = "image"
KEY = "image"


def _normalize(examples, preprocess):
  images = augment.center_view(jnp.asarray(examples), tuple(preprocess["image_size"]))
  return augment.normalize(images, preprocess["mean"], preprocess["std"])


def _lab_l(examples, preprocess):
  return color.l_input(augment.center_view(jnp.asarray(examples),
                                           tuple(preprocess["image_size"])))


def _lab(examples, preprocess):
  return color.lab_input(augment.center_view(jnp.asarray(examples),
                                             tuple(preprocess["image_size"])))


# preprocess["kind"] -> prepare(examples, preprocess): uint8 or [0, 1] float
# images [n, H, W, C] (resized to image_size if they differ) -> network input.
PREPROCESSING = {"normalize": _normalize, "lab_l": _lab_l, "lab": _lab}


def _per_channel(value: float, channels: int) -> str:
  """``value`` per channel as an override's tuple: ``0.5,`` or ``0.5,0.5,0.5``."""
  return ",".join([str(value)] * channels) + ("," if channels == 1 else "")


def accepts(element_spec) -> bool:
  """Whether examples with this ``{name: (shape, dtype)}`` are images."""
  return KEY in element_spec


def check_config(config, source):
  """One-line errors for image settings that would fail deep inside."""
  if len(config.data.image_size) != 2:
    raise UserError(f"config.data.image_size must be (height, width), got "
                    f"{tuple(config.data.image_size)}")
  channels = source.element_spec[KEY][0][-1]
  for key in ("mean", "std"):
    if len(config.data[key]) != channels:
      raise UserError(f"config.data.{key} has {len(config.data[key])} values but "
                      f"{config.data.name} images have {channels} channels; set "
                      f"--config.data.mean={_per_channel(0.5, channels)} "
                      f"--config.data.std={_per_channel(0.25, channels)} (or the "
                      "data's own per-channel mean and std)")


def notes(config, source):
  """A line when the images are not at ``config.data.image_size`` (and no
  ``load_size`` resizes them on reading): every view is resized to it, and
  so is the encoder's input at evaluation and export."""
  have = tuple(source.element_spec[KEY][0][:2])
  want = tuple(int(n) for n in config.data.image_size)
  if have == want or config.data.get("load_size"):
    return []
  return [f"the training images are {have[0]}x{have[1]} and config.data.image_size is "
          f"{want[0]}x{want[1]}: every view is resized to {want[0]}x{want[1]}, and so is "
          "the encoder's input at evaluation and export; add "
          f"--config.data.image_size={have[0]},{have[1]} to train at their own size"]


def input_channels(definition) -> tuple:
  """The channel counts of raw images an encoder takes: gray or RGB for the
  Lab kinds (L is computed from either), else its input's own; the last is
  what a folder of mixed images is converted to."""
  lab = definition.preprocess["kind"] in ("lab_l", "lab")
  return (1, 3) if lab else (int(definition.input_shape[-1]),)


def check_input(images, definition):
  """One line when raw images do not fit an encoder's input."""
  height, width, channels = definition.input_shape
  ok_channels = input_channels(definition)
  lab = len(ok_channels) == 2
  if images.ndim != 4 or tuple(images.shape[1:3]) != (height, width) or \
      images.shape[-1] not in ok_channels:
    want = (f"({height}, {width}, 3) RGB or ({height}, {width}, 1) gray" if lab
            else str((height, width, channels)))
    raise UserError(f"inputs of shape {tuple(images.shape[1:])} do not match the "
                    f"exported encoder's input {want}; resize them first")


def eval_input(x, data_config):
  """What an encoder trained by a method sees at evaluation: the central
  view, normalised."""
  return augment.normalize(augment.center_view(x, data_config.image_size),
                           data_config.mean, data_config.std)


def raw_pixels(arrays: np.ndarray) -> np.ndarray:
  """Flattened pixels in [0, 1] (only sensible for small images)."""
  arrays = np.asarray(arrays)
  return arrays.reshape(len(arrays), -1).astype(np.float32) / 255.0


# Baselines without any training: --features NAME of `sslax eval linear|knn`.
RAW_FEATURES = {"raw_pixels": raw_pixels}
