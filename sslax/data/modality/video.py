"""Video: examples ``{"clip": uint8 [T, H, W, 3], ...}`` (the video corpus
adds ``masks``, ``keypoints`` and ``visible``). A video method's encoder sees
single frames, so its preprocessing is an image kind (``lab_l``) and it
applies to any image; nothing here is preprocessing."""

from sslax.errors import UserError

NAME = "video"
KEY = "clip"

PREPROCESSING = {}


def accepts(element_spec) -> bool:
  """Whether examples with this ``{name: (shape, dtype)}`` are clips."""
  return KEY in element_spec and len(element_spec[KEY][0]) == 4


def check_config(config, source):
  """One line for clips that are not [T, H, W, 3] or frames that are not
  ``config.data.image_size``."""
  shape = tuple(source.element_spec[KEY][0])
  if shape[-1] != 3:
    raise UserError(f"{config.data.name} clips have {shape[-1]} channels per frame; "
                    "video methods take RGB frames [T, H, W, 3]")
  if tuple(config.data.image_size) != shape[1:3]:
    raise UserError(f"{config.data.name} frames are {shape[1]}x{shape[2]} but "
                    f"config.data.image_size is {tuple(config.data.image_size)}; set "
                    f"--config.data.image_size={shape[1]},{shape[2]}")


def notes(config, source):
  del config, source
  return []


def check_input(examples, definition):
  del examples, definition
  raise UserError("video encoders take frames: give them images")


def eval_input(x, data_config):
  del data_config
  return x


RAW_FEATURES = {}
