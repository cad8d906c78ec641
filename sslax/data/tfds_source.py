"""Prepared TFDS datasets (``config.data.name``: any TFDS dataset name, e.g.
cifar10, stl10, imagenet2012), read in their random-access file format
(array_record) without TensorFlow. Never downloads.

A dataset gives whatever features it has: each image feature under its own
name (``"image"`` uint8 [H, W, C]), each class label as int32 (the feature
``label_key``, ``"label"`` by default, is the examples' label, with
``num_classes`` and ``class_names``), and any other numeric feature of fixed
shape. A dataset without a label feature trains, and label-based evaluation
refuses it in one line. Text and nested features are not read."""

import dataclasses
import functools
import io
import os
from typing import Optional

from etils import epath
import numpy as np

from sslax.data.images import resize_and_center_crop
from sslax.errors import UnknownSplit, UserError

TFDS_DEFAULT_DIR = os.path.expanduser("~/tensorflow_datasets")


@dataclasses.dataclass
class TFDSSource:
  """A split of a prepared TFDS dataset, as a source (``sslax.data.source``)."""
  name: str
  split: str
  data_dir: str
  label_key: str = "label"
  load_size: Optional[int] = None  # square side for datasets of mixed image sizes
  lazy_labels = True  # ``labels`` reads every record (``source.labelled`` samples)

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
      raise UserError(f"unknown dataset {self.name!r}; set config.data.name to one "
                      "of the local sources (fashion_mnist, image_folder, arrays, "
                      "espeak_speakers, wallpaper_photos, text_corpus) or a TFDS name "
                      "such as cifar10, cifar100, stl10, imagenet2012") from None
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
    features = builder.info.features
    self._images = {k: f.shape[-1] for k, f in features.items()
                    if isinstance(f, tfds.features.Image)}
    self._numbers = {k: f for k, f in features.items()
                     if not isinstance(f, tfds.features.Image) and
                     isinstance(f, (tfds.features.ClassLabel, tfds.features.Tensor)) and
                     None not in tuple(f.shape) and
                     np.dtype(f.np_dtype).kind in "iufb"}
    try:
      # Images come as their PNG/JPEG bytes and are decoded by _load: reading
      # labels decodes no image, and TFDS's decoder, which warns in every
      # process without OpenCV, is not used.
      self._source = builder.as_data_source(
          split=self.split,
          decoders={k: tfds.decode.SkipDecoding() for k in self._images})
    except NotImplementedError:
      raise UserError(f"{self.name} under {self.data_dir} is not in a "
                      f"random-access format; {how}") from None
    label = features[self.label_key] if self.label_key in self._numbers else None
    self.num_classes = getattr(label, "num_classes", 0) or 0
    self.class_names = tuple(label.names) if self.num_classes else ()
    first = self._source[0] if len(self._source) else {}
    spec = {k: (tuple(self._load(first[k], c).shape), "uint8")
            for k, c in self._images.items() if k in first}
    for k, f in self._numbers.items():
      name = "label" if k == self.label_key else k
      if name == "label" and not self.num_classes:
        continue
      dtype = "int32" if isinstance(f, tfds.features.ClassLabel) else np.dtype(
          f.np_dtype).name
      spec[name] = (tuple(f.shape), dtype)
    self.element_spec = spec

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

  def get(self, indices):
    records = self._source.__getitems__([int(i) for i in indices])
    out = {}
    for name, (shape, dtype) in self.element_spec.items():
      if name in self._images:
        try:
          out[name] = np.stack([self._load(r[name], self._images[name]) for r in records]
                               ) if records else np.zeros((0, *shape), np.uint8)
        except ValueError:
          raise UserError(f"{self.name} images differ in size; set "
                          "--config.data.load_size=256 (or another side)") from None
      else:
        key = self.label_key if name == "label" else name
        out[name] = np.asarray([r[key] for r in records], dtype).reshape(
            (len(records), *shape))
    return out

  def _load(self, image, channels):
    if isinstance(image, bytes):
      image = decode_image(image, channels)
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


def source(data_config, split: str) -> TFDSSource:
  return TFDSSource(name=data_config.name, split=split,
                    data_dir=data_config.get("data_dir") or TFDS_DEFAULT_DIR,
                    load_size=data_config.get("load_size") or None)
