"""Random-access image sources: local Fashion-MNIST IDX files, prepared TFDS
datasets, image folders and arrays. A source answers ``len``,
``image_shape``, ``num_classes`` and ``get(indices) -> (uint8 images [n, H, W,
C], int32 labels [n])``, and ``labels`` (every label of the split; -1 where an
example has none); optionally ``class_names`` and ``labelled`` (whether every
example has a label).

Which split a run reads is config: ``data.train_split`` (training),
``data.eval_train_split`` (the kNN bank, the probes' training set) and
``data.eval_split`` (what they are scored on); ``split_source`` and
``labelled_source`` read them."""

import dataclasses
import functools
import gzip
import io
import os
from typing import Optional

from etils import epath
import numpy as np

from sslax.data import arrays, folder, photos, speech
from sslax.data.arrays import ArraySource
from sslax.data.images import resize_and_center_crop
from sslax.errors import UnknownSplit, UserError

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
    raise UnknownSplit(f"fashion_mnist has splits {sorted(FASHION_MNIST_FILES)}, not {split!r}")
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
    if str(self.data_dir).startswith("gs://"):
      try:
        import gcsfs  # pylint: disable=g-import-not-at-top,unused-import
      except ImportError:
        raise UserError(f"reading {self.data_dir} needs gcsfs, which is not "
                        "installed; pip install gcsfs") from None
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    how = (f"prepare it with `tfds build {self.name} --data_dir {self.data_dir} "
           "--file_format array_record` (needs TensorFlow and internet access: "
           "pip install 'sslax[tfds-build]'), or write your own images with "
           "`sslax data make-tfds` (README: TFDS datasets)")
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
    try:  # a name, or TFDS split syntax: "train+unlabelled", "train[:10%]"
      builder.info.splits[self.split]
    except (KeyError, ValueError) as e:
      first_line = (str(e).strip().splitlines() or [""])[0]
      known = f"{self.name} has splits {sorted(builder.info.splits)}, not {self.split!r}"
      raise UnknownSplit(known if "Unknown split" in first_line or not first_line
                         else f"{known} ({first_line})") from None
    try:
      # Images come as their PNG/JPEG bytes and are decoded by _load: reading
      # labels decodes no image, and TFDS's decoder, which warns in every
      # process without OpenCV, is not used.
      self._source = builder.as_data_source(
          split=self.split, decoders={self.image_key: tfds.decode.SkipDecoding()})
      self._channels = builder.info.features[self.image_key].shape[-1]
    except NotImplementedError:
      raise UserError(f"{self.name} under {self.data_dir} is not in a "
                      f"random-access format; {how}") from None
    self.num_classes = builder.info.features[self.label_key].num_classes
    self.class_names = tuple(builder.info.features[self.label_key].names)
    first = self._load(self._source[0][self.image_key])
    self.image_shape = tuple(first.shape)

  def __len__(self):
    return len(self._source)

  @functools.cached_property
  def labels(self) -> np.ndarray:
    """Every label of the split (read once; parses the records but decodes
    no image)."""
    out = []
    for start in range(0, len(self), 1024):
      records = self._source.__getitems__(list(range(start, min(start + 1024, len(self)))))
      out.extend(r[self.label_key] for r in records)
    return np.asarray(out, np.int32)

  @functools.cached_property
  def labelled(self) -> bool:
    """Whether the split has labels: none of up to 64 records spread over it
    is -1 (imagenet2012's test split, stl10's unlabelled one). Reading every
    label decodes every record; evaluation checks them once it has them."""
    sample = np.unique(np.linspace(0, len(self) - 1, min(len(self), 64)).astype(int))
    records = self._source.__getitems__([int(i) for i in sample])
    return all(int(r[self.label_key]) >= 0 for r in records)

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
    if isinstance(image, bytes):
      image = decode_image(image, self._channels)
    image = np.asarray(image)
    if self.load_size is None:
      return image
    return resize_and_center_crop(image, self.load_size)


def decode_image(data: bytes, channels: Optional[int]) -> np.ndarray:
  """The PNG/JPEG bytes of a TFDS image -> uint8 [H, W, C], as TFDS's own
  decoder gives them with PIL (converted to ``channels``, 1 or 3, if they
  differ)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(io.BytesIO(data)) as pil:
    if channels == 3 and pil.mode != "RGB":
      pil = pil.convert("RGB")
    elif channels == 1 and pil.mode != "L":
      pil = pil.convert("L")
    array = np.asarray(pil)
  return array[..., None] if array.ndim == 2 else array


TFDS_DEFAULT_DIR = os.path.expanduser("~/tensorflow_datasets")


class SubsetSource:
  """The examples ``indices`` of a source, as a source of their own."""

  def __init__(self, source, indices):
    self.source, self.indices = source, np.asarray(indices)
    self.image_shape, self.num_classes = source.image_shape, source.num_classes
    self.class_names = getattr(source, "class_names", ())

  def __len__(self):
    return len(self.indices)

  @property
  def labels(self):
    return self.source.labels[self.indices]

  @property
  def labelled(self) -> bool:
    return bool(np.all(self.labels >= 0))

  def get(self, indices):
    return self.source.get(self.indices[np.asarray(indices)])


# Datasets whose labels name where an example came from (a photograph), with
# different sources in train and test: labels that no probe can predict.
SOURCE_LABELLED = ("wallpaper_photos",)


def get_source(data_config, split: str):
  """The source named by ``data_config.name``: 'fashion_mnist' reads local IDX
  files, 'espeak_speakers' the local speech corpus (``sslax data
  make-speech``), 'wallpaper_photos' the local photo corpus (``sslax data
  make-photos``), 'image_folder' a folder of images (``sslax.data.folder``),
  'arrays' .npz/.npy files (``sslax.data.arrays.load``); any other name is a
  TFDS dataset read from ``data_config.data_dir``."""
  name = data_config.name
  data_dir = data_config.get("data_dir") or None
  if name == "fashion_mnist":
    return fashion_mnist(split, data_dir)
  if name == "image_folder":
    size = data_config.get("load_size") or data_config.image_size
    return folder.FolderSource(data_dir, split, size=size,
                               channels=int(data_config.get("channels") or 0))
  if name == "arrays":
    return arrays.load(data_dir, split)
  if name == "espeak_speakers":
    return speech.load_split(data_dir, split)
  if name == "wallpaper_photos":
    return photos.load_split(data_dir, split)
  return TFDSSource(name=name, split=split, data_dir=data_dir or TFDS_DEFAULT_DIR,
                    load_size=data_config.get("load_size") or None)


# config.data keys naming splits, and their defaults (configs saved before
# these keys existed read the defaults).
SPLIT_KEYS = {"train_split": "train", "eval_train_split": "train", "eval_split": "test"}


def split_name(data_config, key: str) -> str:
  """The split ``config.data.<key>`` names."""
  return data_config.get(key) or SPLIT_KEYS[key]


def split_source(data_config, key: str, *, fix: str = ""):
  """The source of the split ``config.data.<key>`` names; a split the data
  does not have is one line listing those it has and naming the key."""
  try:
    return get_source(data_config, split_name(data_config, key))
  except UnknownSplit as e:
    raise UnknownSplit(f"{e}; set config.data.{key} to one of them{fix}") from None


def labelled_source(data_config, key: str, purpose: str, *, fix: str = ""):
  """``split_source``, refused with one line when the split has no labels
  (an unlabelled folder or array, imagenet2012's test split): ``purpose``
  (e.g. "the linear probe") needs them."""
  source = split_source(data_config, key, fix=fix)
  if not getattr(source, "labelled", True) or not source.num_classes:
    raise UserError(
        f"{purpose} needs labels but split {split_name(data_config, key)!r} of "
        f"{data_config.name} (config.data.{key}) has examples without one; set "
        f"--config.data.{key} to a labelled split (image folders: one subfolder "
        f"per class){fix}")
  return source


def require_labels(labels, data_config, key: str, purpose: str, *, fix: str = ""):
  """One line when some of a split's labels (read in full) are -1."""
  missing = int(np.sum(np.asarray(labels) < 0))
  if missing:
    raise UserError(
        f"{purpose} needs labels but {missing} of the {len(labels)} examples of split "
        f"{split_name(data_config, key)!r} of {data_config.name} "
        f"(config.data.{key}) have none (-1); set --config.data.{key} to a "
        f"labelled split{fix}")
