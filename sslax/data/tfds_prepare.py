"""Prepares a TFDS dataset in the array_record file format, without
TensorFlow, from images sslax reads: an image folder, ``.npz``/``.npy``
arrays, or any source in memory (``sslax data make-tfds``, ``write_dataset``).

TFDS's catalogue builders (``tfds build cifar10``, ``stl10``,
``imagenet2012``) need TensorFlow to prepare data: they encode numpy images
with ``tf.image.encode_png`` and read files with ``tf.io.gfile``. The builder
here hands TFDS images already encoded as PNG (or JPEG) bytes, which TFDS
stores as they are, so writing needs only ``tensorflow_datasets``,
``array_record`` and Pillow. The result is an ordinary prepared TFDS dataset
(``DATA_DIR/NAME/1.0.0/``: ``dataset_info.json``, ``features.json``, the
class names, ``NAME-SPLIT.array_record-0000i-of-0000n``), read back by TFDS
itself (``tfds.builder(NAME, data_dir=DATA_DIR).as_data_source(SPLIT)``, as
``sslax.data.tfds_source.TFDSSource`` does) with no TensorFlow either.
"""

import contextlib
import io
import os
import re
import sys
import tempfile
import types
from typing import Mapping, Optional, Sequence

import numpy as np

from sslax.errors import UnknownSplit, UserError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
ENCODINGS = ("png", "jpeg")
CHUNK = 256  # examples read from a source at a time


def _encode(image: np.ndarray, encoding: str) -> bytes:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
  buffer = io.BytesIO()
  if encoding == "jpeg":
    pil.save(buffer, format="JPEG", quality=95)
  else:
    pil.save(buffer, format="PNG")
  return buffer.getvalue()


def _check_name(name: str):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  if not NAME_PATTERN.match(name):
    raise UserError(f"TFDS dataset name {name!r} must be lower_snake_case (letters, "
                    "digits, underscores, starting with a letter), e.g. my_photos")
  if name in tfds.list_builders(with_community_datasets=False):
    raise UserError(f"{name!r} is a dataset of the TFDS catalogue; give your data "
                    "another name, e.g. my_" + name)


def write_dataset(name: str, data_dir: str, splits: Mapping[str, object], *,
                  class_names: Optional[Sequence[str]] = None,
                  version: str = "1.0.0", encoding: str = "png",
                  description: str = "") -> str:
  """Writes ``splits`` ({split name: source}) as the TFDS dataset ``name``
  under ``data_dir``, in the array_record format, and returns its directory
  (``data_dir/name/version``).

  A source is anything sslax trains on (``sslax.data.source``) whose
  examples have an ``"image"`` (uint8 [H, W, C]) and optionally a
  ``"label"``, e.g. ``sslax.data.arrays.ArraySource`` of arrays in memory. Every split must have the same image shape; labels -1
  (unlabelled) are kept as TFDS's "no label". Class names are
  ``class_names``, or the first source's, or ``0 .. num_classes-1``.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from etils import epath  # pylint: disable=g-import-not-at-top
  _check_name(name)
  if encoding not in ENCODINGS:
    raise UserError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
  if not splits:
    raise UserError("no splits to write")
  for split, source in splits.items():
    if "image" not in source.element_spec:
      raise UserError(f"split {split!r} has no images ({sorted(source.element_spec)}); "
                      "sslax data make-tfds writes image datasets")
  shapes = {split: tuple(int(d) for d in source.element_spec["image"][0])
            for split, source in splits.items()}
  image_shape = next(iter(shapes.values()))
  if any(shape != image_shape for shape in shapes.values()):
    raise UserError(f"the splits' images differ in shape ({shapes}); give every "
                    "split the same size")
  if image_shape[-1] not in (1, 3):
    raise UserError(f"images must have 1 or 3 channels, got shape {image_shape}")
  if class_names is None:
    class_names = next((tuple(s.class_names) for s in splits.values()
                        if getattr(s, "class_names", ())), None)
  num_classes = max(int(getattr(s, "num_classes", 0)) for s in splits.values())
  if class_names is not None:
    class_names = [str(c) for c in class_names]
    if len(class_names) < num_classes:
      raise UserError(f"{len(class_names)} class names for {num_classes} classes")
    label = tfds.features.ClassLabel(names=class_names)
  else:
    label = tfds.features.ClassLabel(num_classes=num_classes)
  target = epath.Path(data_dir) / name / version
  if target.exists():
    raise UserError(f"{target} already exists; remove it to prepare {name} again, "
                    "or choose another name or data_dir")
  # Data without any label is written without a label feature.
  labelled = bool(num_classes) or class_names is not None
  features = tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=image_shape, encoding_format=encoding),
      **({"label": label} if labelled else {}),
  })

  def generate(source):
    for start in range(0, len(source), CHUNK):
      examples = source.get(np.arange(start, min(start + CHUNK, len(source))))
      labels = examples.get("label", np.full(len(examples["image"]), -1, np.int32))
      for i, (image, y) in enumerate(zip(examples["image"], np.asarray(labels))):
        example = {"image": _encode(np.asarray(image, np.uint8), encoding)}
        yield start + i, {**example, "label": int(y)} if labelled else example

  def body(ns):
    ns["__module__"] = __name__
    ns["code_path"] = None  # no checksums file or package metadata to look for
    ns["name"] = name
    ns["VERSION"] = tfds.core.Version(version)
    ns["RELEASE_NOTES"] = {version: "Prepared by sslax (sslax.data.tfds_prepare)."}
    ns["_info"] = lambda self: tfds.core.DatasetInfo(
        builder=self, description=description or f"{name}, prepared by sslax.",
        features=features, supervised_keys=("image", "label"))
    ns["_split_generators"] = lambda self, dl_manager: {
        split: self._generate_examples(source) for split, source in splits.items()}
    ns["_generate_examples"] = lambda self, source: generate(source)

  # Not registered: reading goes through the files alone (TFDS's
  # ReadOnlyBuilder), as it will in the training process.
  builder_cls = types.new_class("SslaxPreparedDataset", (tfds.core.GeneratorBasedBuilder,),
                                {"skip_registration": True}, body)
  if not sys.stderr.isatty():
    tfds.disable_progress_bar()
  builder = builder_cls(data_dir=data_dir, file_format="array_record")
  # Nothing is downloaded: TFDS's own lines ("Downloading and preparing
  # dataset Unknown size...", "...downloaded and prepared") would say it is.
  with tempfile.TemporaryDirectory() as downloads, \
      contextlib.redirect_stdout(io.StringIO()):
    builder.download_and_prepare(download_dir=downloads)
  return os.fspath(builder.data_dir)


def prepare_from(kind: str, source_dir: str, name: str, data_dir: str, *,
                 splits: Optional[Sequence[str]] = None, size: int = 0,
                 channels: int = 0, encoding: str = "png") -> str:
  """``sslax data make-tfds``: reads the splits of an image folder
  (``kind='image_folder'``: scaled to cover ``size`` x ``size`` and centre
  cropped) or of ``.npz``/``.npy`` files (``kind='arrays'``) with sslax's own
  readers and writes them with ``write_dataset``. ``splits`` default: train,
  and test where the data has it."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from sslax.data.sources import get_source  # pylint: disable=g-import-not-at-top
  if kind not in ("image_folder", "arrays"):
    raise UserError(f"--from must be image_folder or arrays, got {kind!r}")
  if kind == "image_folder" and size <= 0:
    raise UserError("--size is needed for an image folder: the side its images are "
                    "scaled and centre-cropped to, e.g. --size 256")
  config = ml_collections.ConfigDict(dict(
      name=kind, data_dir=source_dir, modality="image", image_size=(size, size),
      load_size=size, channels=channels))
  _check_name(name)  # before reading any data
  sources = {}
  for split in splits or ("train", "test"):
    try:
      sources[split] = get_source(config, split)
    except UnknownSplit:
      if splits or split == "train":
        raise
    except UserError as e:  # the folder's fixes, in this command's own flags
      raise UserError(str(e).replace("--config.data.channels=", "--channels ")) from None
  return write_dataset(name, data_dir, sources, encoding=encoding)
