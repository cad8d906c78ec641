"""What every picture of ``sslax viz`` is written with: PNGs of matplotlib
figures (the object API, no pyplot state), animated GIFs of frames, and
colours that never repeat. Files go through ``etils.epath``, so a ``gs://``
workdir gets its pictures in the bucket."""

import io

from etils import epath
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg


def save_png(fig, path):
  """Writes ``fig`` as a PNG to ``path`` (a local path or a URL such as
  ``gs://...``); returns ``path``."""
  FigureCanvasAgg(fig)
  buffer = io.BytesIO()  # rendered in memory: remote files may not seek
  fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
  epath.Path(path).write_bytes(buffer.getvalue())
  return path


def save_image(image, path, **options):
  """Writes the Pillow ``image`` to ``path`` in the format its suffix names
  (``options`` go to ``Image.save``); returns ``path``."""
  buffer = io.BytesIO()
  image.save(buffer, format=epath.Path(path).suffix[1:].upper(), **options)
  epath.Path(path).write_bytes(buffer.getvalue())
  return path


def save_gif(frames, path, *, frame_ms: int = 250):
  """Writes uint8 ``frames`` [T, H, W, 3] as an animated GIF that loops, one
  frame every ``frame_ms`` milliseconds; returns ``path``."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
  return save_image(images[0], path, save_all=True, append_images=images[1:],
                    duration=frame_ms, loop=0)


def class_colours(num_classes: int) -> list:
  """One colour per class, none repeated: tab10, tab20, then evenly spaced
  hues (``num_classes`` of them)."""
  from matplotlib import colormaps  # pylint: disable=g-import-not-at-top
  if num_classes <= 10:
    return [colormaps["tab10"](i) for i in range(num_classes)]
  if num_classes <= 20:
    return [colormaps["tab20"](i) for i in range(num_classes)]
  return [colormaps["hsv"](i / num_classes) for i in range(num_classes)]
