"""Host-side image resizing shared by the sources of mixed-size images (TFDS
ImageNet, image folders). Kept apart from ``sources`` so that ``folder`` can
use it without importing ``sources``, which imports ``folder``."""

from typing import Sequence, Union

import numpy as np


def resize_and_center_crop(image: np.ndarray,
                           size: Union[int, Sequence[int]]) -> np.ndarray:
  """Scales ``image`` [H, W, C] (bicubic) until it covers ``size`` (a side, or
  (height, width)), then takes the central ``size`` rectangle; how images of
  mixed sizes (ImageNet, a folder of photos) become one batch on the host."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  out_h, out_w = (size, size) if np.ndim(size) == 0 else (int(size[0]), int(size[1]))
  h, w = image.shape[:2]
  if (h, w) == (out_h, out_w):
    return image
  scale = max(out_h / h, out_w / w)
  new_h, new_w = max(out_h, round(h * scale)), max(out_w, round(w * scale))
  squeeze = image.shape[-1] == 1
  pil = Image.fromarray(image[..., 0] if squeeze else image)
  resized = np.asarray(pil.resize((new_w, new_h), Image.BICUBIC))
  top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
  out = resized[top:top + out_h, left:left + out_w]
  return out[..., None] if squeeze else out
