"""A folder of images as a source (``config.data.name = 'image_folder'``,
``config.data.data_dir = DIR``).

Layouts:

* ``DIR/<class>/...``: one subfolder per class (labels from the sorted folder
  names, images found at any depth below it); the folder is split ``train``;
* ``DIR/*.jpg``: a flat folder of unlabelled images (labels -1, no classes);
* ``DIR/train/...``, ``DIR/test/...``: when ``DIR/train`` exists, every
  subfolder of ``DIR`` is a split, itself a class-per-subfolder or a flat
  folder. Labels come from the union of the class names of every split, so a
  class has the same label in each.

``'a+b'`` concatenates splits. The files are listed when the source is made;
``get(indices)`` reads and decodes only those files (PIL; JPEGs are decoded at
a reduced scale when they are much larger than needed), scales them to cover
``size`` and cuts its centre. Images are converted to RGB, or to gray when the
data is gray: with ``channels`` 0 (auto) the first training image decides and
an image of the other kind is a one-line error naming it; 1 or 3 converts
every image.
"""

import os
from typing import Optional, Sequence

import numpy as np

from sslax.data.images import resize_and_center_crop
from sslax.errors import UnknownSplit, UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
# PIL modes of one-channel images; every other mode becomes RGB.
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
CHANNELS = (0, 1, 3)  # config.data.channels: auto, gray, RGB
HEADER_CHECKS = 256   # files whose headers are read when the source is made


def _is_image(name: str) -> bool:
  return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _subdirs(path: str):
  with os.scandir(path) as entries:
    return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def _loose_images(path: str):
  with os.scandir(path) as entries:
    return sorted(e.name for e in entries if e.is_file() and _is_image(e.name))


def _images_below(path: str):
  """Every image file at any depth below ``path``, in sorted order."""
  out = []
  for root, dirs, files in os.walk(path, followlinks=True):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    out.extend(os.path.join(root, f) for f in sorted(files) if _is_image(f))
  return out


def _first_image(path: str) -> Optional[str]:
  for root, dirs, files in os.walk(path, followlinks=True):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    images = sorted(f for f in files if _is_image(f))
    if images:
      return os.path.join(root, images[0])
  return None


def split_dirs(data_dir: str) -> dict:
  """{split: folder} of an image folder."""
  if not data_dir:
    raise UserError("config.data.name=image_folder reads config.data.data_dir: set it "
                    "to a folder of images (one subfolder per class)")
  if not os.path.isdir(data_dir):
    what = "is not a folder" if os.path.exists(data_dir) else "does not exist"
    raise UserError(f"image folder {data_dir} {what}; set config.data.data_dir to a "
                    "folder of images (one subfolder per class)")
  if os.path.isdir(os.path.join(data_dir, "train")):
    return {d: os.path.join(data_dir, d) for d in _subdirs(data_dir)}
  return {"train": data_dir}


def _classes(split_dir: str) -> Sequence[str]:
  """The class subfolders of a split's folder; () for a flat folder."""
  subdirs, loose = _subdirs(split_dir), _loose_images(split_dir)
  if subdirs and loose:
    raise UserError(f"{split_dir} holds both images ({loose[0]}) and subfolders "
                    f"({subdirs[0]}/); put every image in a class subfolder (or keep "
                    "only images, for unlabelled training)")
  return tuple(subdirs)


def _channels_of(mode: str) -> int:
  return 1 if mode in GRAY_MODES else 3


def _kind(channels: int) -> str:
  return "gray" if channels == 1 else "colour"


class FileSource:
  """Image files as a source (``sslax.data.source``): ``"image"`` uint8
  [*size, C], each file scaled to cover ``size`` and centre-cropped, in RGB
  or gray (``channels`` 3 or 1; 0: as ``reference``, default the first file,
  is); with ``labels`` (int [n], -1: none) and ``class_names``, ``"label"``."""

  def __init__(self, files, *, size, channels: int = 0, labels=None, class_names=(),
               data_dir=None, reference=None):
    if channels not in CHANNELS:
      raise UserError(f"config.data.channels must be 0 (as the images are), 1 (gray) "
                      f"or 3 (RGB), got {channels}")
    if not files:
      raise UserError("no image files given")
    self.files = list(files)
    self.data_dir = data_dir or os.path.dirname(self.files[0])
    self.class_names = tuple(class_names)
    self.num_classes = len(self.class_names)
    self.labels = (np.asarray(labels, np.int32) if labels is not None
                   else np.full(len(files), -1, np.int32))
    self.size = (int(size), int(size)) if np.ndim(size) == 0 else tuple(int(s) for s in size)
    self.auto_channels = channels == 0
    if self.auto_channels:
      self.reference = reference or self.files[0]
      self.channels = _channels_of(self._mode(self.reference))
    else:
      self.reference, self.channels = None, channels
    # The headers of a sample: a corrupt or other-channel file found now
    # rather than in the middle of training.
    for i in np.unique(np.linspace(0, len(files) - 1, min(len(files), HEADER_CHECKS))
                       .astype(int)):
      self._check_mode(self.files[i], self._mode(self.files[i]))
    self.element_spec = {"image": ((*self.size, self.channels), "uint8")}
    if self.num_classes:
      self.element_spec["label"] = ((), "int32")

  def __len__(self):
    return len(self.files)

  def get(self, indices):
    indices = np.asarray(indices, np.int64)
    images = np.stack([self._load(self.files[i]) for i in indices]) if len(indices) else (
        np.zeros((0, *self.size, self.channels), np.uint8))
    if not self.num_classes:
      return {"image": images}
    return {"image": images, "label": self.labels[indices]}

  @staticmethod
  def _unreadable(path, error):
    message = str(error).strip().splitlines()
    reason = message[0] if message else type(error).__name__
    return UserError(f"cannot read image {path}: {reason}; remove or replace the file")

  def _mode(self, path) -> str:
    from PIL import Image  # pylint: disable=g-import-not-at-top
    try:
      with Image.open(path) as image:
        return image.mode
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
      raise self._unreadable(path, e) from None

  def _check_mode(self, path, mode):
    if self.auto_channels and _channels_of(mode) != self.channels:
      raise UserError(
          f"image folder {self.data_dir} mixes gray and colour images: {path} is "
          f"{_kind(_channels_of(mode))} but {self.reference} is "
          f"{_kind(self.channels)}; set --config.data.channels=3 (convert all to RGB) "
          "or 1 (gray)")

  def _load(self, path) -> np.ndarray:
    from PIL import Image, ImageOps  # pylint: disable=g-import-not-at-top
    try:
      with Image.open(path) as image:
        self._check_mode(path, image.mode)
        side = max(self.size)
        image.draft(None, (side, side))  # JPEG: decode at 1/2, 1/4, 1/8 scale
        image = ImageOps.exif_transpose(image)
        if self.channels == 3:
          array = np.asarray(image.convert("RGB"))
        elif image.mode.startswith("I;16"):
          array = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
        elif image.mode in ("I", "F"):
          array = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
        else:
          array = np.asarray(image.convert("L"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
      raise self._unreadable(path, e) from None
    if array.ndim == 2:
      array = array[..., None]
    return resize_and_center_crop(array, self.size)


class FolderSource(FileSource):
  """A split of an image folder as a source (``sslax.data.source``):
  ``"image"`` uint8 [H, W, C] and, when the folder has class subfolders,
  ``"label"`` (-1 for loose images); ``class_names``, ``labels``."""

  def __init__(self, data_dir: str, split: str, *, size, channels: int = 0):
    if channels not in CHANNELS:
      raise UserError(f"config.data.channels must be 0 (as the images are), 1 (gray) "
                      f"or 3 (RGB), got {channels}")
    dirs = split_dirs(data_dir)
    parts = split.split("+")
    for part in parts:
      if part not in dirs:
        raise UnknownSplit(f"image folder {data_dir} has splits {', '.join(dirs)}, "
                           f"not {part!r}")
    classes = {name: _classes(path) for name, path in dirs.items()}
    self.split = split
    class_names = tuple(sorted(set().union(*classes.values())))
    index = {name: i for i, name in enumerate(class_names)}
    files, labels = [], []
    for part in parts:
      before = len(files)
      if classes[part]:
        for name in classes[part]:
          found = _images_below(os.path.join(dirs[part], name))
          files.extend(found)
          labels.extend([index[name]] * len(found))
      else:
        found = [os.path.join(dirs[part], f) for f in _loose_images(dirs[part])]
        files.extend(found)
        labels.extend([-1] * len(found))
      if len(files) == before:
        raise UserError(f"{dirs[part]} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                        "put images in it, one subfolder per class")
    reference = (_first_image(dirs["train"]) if "train" in dirs else None) or files[0]
    super().__init__(files, size=size, channels=channels, labels=labels,
                     class_names=class_names, data_dir=data_dir, reference=reference)
