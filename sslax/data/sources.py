"""Random-access image sources: local Fashion-MNIST IDX files and prepared TFDS
datasets. A source answers ``len``, ``image_shape``, ``num_classes`` and
``get(indices) -> (uint8 images [n, H, W, C], int32 labels [n])``, and
``labels`` (every label of the split)."""

import dataclasses
import functools
import gzip
import os
from typing import Optional

from etils import epath
import numpy as np

from sslax.data import photos, speech
from sslax.data.arrays import ArraySource
from sslax.errors import UserError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _open_maybe_gz(path):
  if os.path.exists(path):
    return open(path, "rb")
  if os.path.exists(path + ".gz"):
    return gzip.open(path + ".gz", "rb")
  raise FileNotFoundError(path)


def read_idx(path: str) -> np.ndarray:
  """Reads an IDX file (LeCun's MNIST format), gzipped or not."""
  with _open_maybe_gz(path) as f:
    data = f.read()
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
    raise UserError(f"{path} is not an unsigned-byte IDX file; reinstall the "
                    "data with `apt-get install --reinstall dataset-fashion-mnist`")
  ndim = data[3]
  shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
  array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
  if array.size != int(np.prod(shape)):
    raise UserError(f"{path} is truncated; reinstall the data with "
                    "`apt-get install --reinstall dataset-fashion-mnist`")
  return array.reshape(shape)


def fashion_mnist(split: str, data_dir: Optional[str] = None) -> ArraySource:
  """Fashion-MNIST (Xiao et al. 2017) from the IDX files of Debian's
  ``dataset-fashion-mnist`` package (or any directory holding the four files)."""
  data_dir = data_dir or FASHION_MNIST_DIR
  if split not in FASHION_MNIST_FILES:
    raise UserError(f"fashion_mnist has splits {sorted(FASHION_MNIST_FILES)}, not {split!r}")
  image_file, label_file = (os.path.join(data_dir, f) for f in FASHION_MNIST_FILES[split])
  try:
    images = read_idx(image_file)
    labels = read_idx(label_file)
  except FileNotFoundError:
    raise UserError(f"Fashion-MNIST not found in {data_dir}; install it with "
                    "`apt-get install dataset-fashion-mnist` (or run `make data`) "
                    "or set config.data.data_dir to a directory holding the IDX files")
  return ArraySource(images=images[..., None], labels=labels.astype(np.int32),
                     num_classes=10)


@dataclasses.dataclass
class TFDSSource:
  """A split of a TFDS dataset prepared in a random-access file format
  (array_record), read without TensorFlow. Never downloads."""
  name: str
  split: str
  data_dir: str
  image_key: str = "image"
  label_key: str = "label"
  load_size: Optional[int] = None  # square side for datasets of mixed image sizes

  def __post_init__(self):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    how = (f"prepare it with `tfds build {self.name} --data_dir {self.data_dir} "
           "--file_format array_record` on a machine with internet access")
    try:
      builder = tfds.builder(self.name, data_dir=self.data_dir)
    except tfds.core.registered.DatasetNotFoundError:
      raise UserError(f"unknown dataset {self.name!r}; set config.data.name to "
                      "fashion_mnist (local) or a TFDS name such as cifar10, "
                      "cifar100, stl10, imagenet2012") from None
    except Exception as e:  # pylint: disable=broad-except
      first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise UserError(f"TFDS cannot open {self.name!r} under {self.data_dir}: "
                      f"{first_line}; {how}") from None
    if not epath.Path(builder.data_dir).is_dir() or not builder.info.splits:
      raise UserError(f"TFDS dataset {self.name!r} is not prepared under "
                      f"{self.data_dir}; {how}")
    if self.split not in builder.info.splits:
      raise UserError(f"{self.name} has splits {sorted(builder.info.splits)}, "
                      f"not {self.split!r}")
    try:
      self._source = builder.as_data_source(split=self.split)
    except NotImplementedError:
      raise UserError(f"{self.name} under {self.data_dir} is not in a "
                      f"random-access format; {how}") from None
    self.num_classes = builder.info.features[self.label_key].num_classes
    first = self._load(self._source[0][self.image_key])
    self.image_shape = tuple(first.shape)

  def __len__(self):
    return len(self._source)

  @functools.cached_property
  def labels(self) -> np.ndarray:
    """Every label of the split (read once; decodes the records)."""
    out = []
    for start in range(0, len(self), 1024):
      records = self._source.__getitems__(list(range(start, min(start + 1024, len(self)))))
      out.extend(r[self.label_key] for r in records)
    return np.asarray(out, np.int32)

  def get(self, indices):
    records = self._source.__getitems__([int(i) for i in indices])
    try:
      images = np.stack([self._load(r[self.image_key]) for r in records])
    except ValueError:
      raise UserError(f"{self.name} images differ in size; set "
                      "--config.data.load_size=256 (or another side)") from None
    labels = np.asarray([r[self.label_key] for r in records], dtype=np.int32)
    return images, labels


  def _load(self, image):
    image = np.asarray(image)
    if self.load_size is None:
      return image
    return resize_and_center_crop(image, self.load_size)


def resize_and_center_crop(image: np.ndarray, size: int) -> np.ndarray:
  """Shorter side to ``size`` (bicubic), then the central size x size square;
  how images of mixed sizes (ImageNet) become one batch on the host."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  h, w = image.shape[:2]
  scale = size / min(h, w)
  new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
  squeeze = image.shape[-1] == 1
  pil = Image.fromarray(image[..., 0] if squeeze else image)
  resized = np.asarray(pil.resize((new_w, new_h), Image.BICUBIC))
  top, left = (new_h - size) // 2, (new_w - size) // 2
  out = resized[top:top + size, left:left + size]
  return out[..., None] if squeeze else out


TFDS_DEFAULT_DIR = os.path.expanduser("~/tensorflow_datasets")


class SubsetSource:
  """The examples ``indices`` of a source, as a source of their own."""

  def __init__(self, source, indices):
    self.source, self.indices = source, np.asarray(indices)
    self.image_shape, self.num_classes = source.image_shape, source.num_classes

  def __len__(self):
    return len(self.indices)

  @property
  def labels(self):
    return self.source.labels[self.indices]

  def get(self, indices):
    return self.source.get(self.indices[np.asarray(indices)])


# Datasets whose labels name where an example came from (a photograph), with
# different sources in train and test: labels that no probe can predict.
SOURCE_LABELLED = ("wallpaper_photos",)


def get_source(data_config, split: str):
  """The source named by ``data_config.name``: 'fashion_mnist' reads local IDX
  files, 'espeak_speakers' the local speech corpus (``sslax data
  make-speech``), 'wallpaper_photos' the local photo corpus (``sslax data
  make-photos``); any other name is a TFDS dataset read from
  ``data_config.data_dir``."""
  name = data_config.name
  data_dir = data_config.get("data_dir") or None
  if name == "fashion_mnist":
    return fashion_mnist(split, data_dir)
  if name == "espeak_speakers":
    return speech.load_split(data_dir, split)
  if name == "wallpaper_photos":
    return photos.load_split(data_dir, split)
  return TFDSSource(name=name, split=split, data_dir=data_dir or TFDS_DEFAULT_DIR,
                    load_size=data_config.get("load_size") or None)
