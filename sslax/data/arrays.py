"""A user's own arrays (``config.data.name = 'arrays'``): ``.npz`` and
``.npy`` files read into an ``ArraySource`` (``sslax.data.source``).

Unlabelled examples have label -1; data without any labels has
``num_classes`` 0 and no ``"label"``."""

import dataclasses
import os
import zipfile

import numpy as np

from sslax.data.source import ArraySource
from sslax.errors import UnknownSplit, UserError


EXPECTED = ("images uint8 [n, H, W, C] (C = 1 or 3; [n, H, W] is gray) and "
            "optional labels int [n] (-1: no label)")
NPZ_KEYS = ("images, labels, test_images, test_labels (any <split>_images and "
            "<split>_labels), class_names")


def _describe(shape, dtype) -> str:
  return f"{np.dtype(dtype).name} [{', '.join(str(d) for d in shape)}]"


def _npz_headers(path):
  """{key: (shape, dtype)} of the arrays of a .npz file, read from their
  headers (nothing decompressed)."""
  out = {}
  try:
    with zipfile.ZipFile(path) as z:
      for member in z.namelist():
        if not member.endswith(".npy"):
          continue
        with z.open(member) as f:
          version = np.lib.format.read_magic(f)
          read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)
          shape, _, dtype = read(f)
        out[member[:-len(".npy")]] = (shape, dtype)
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise UserError(f"cannot read {path} as a .npz file ({e}); write it with "
                    "numpy.savez(path, images=..., labels=...)") from None
  return out


def _npy_header(path):
  try:
    with open(path, "rb") as f:
      version = np.lib.format.read_magic(f)
      read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
              else np.lib.format.read_array_header_2_0)
      shape, _, dtype = read(f)
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read {path} as a .npy file ({e}); write it with "
                    "numpy.save(path, images)") from None
  return shape, dtype


@dataclasses.dataclass
class _Split:
  path: str                  # the .npz or .npy file
  images_key: str            # None: a .npy file
  labels_key: str            # None: unlabelled
  shape: tuple
  dtype: np.dtype


def _catalogue(data_dir: str):
  """({split: _Split}, class_names, found) of the arrays at ``data_dir``:
  one .npz (train and test arrays under their keys), one .npy (unlabelled
  images) or a directory of <split>.npz / <split>.npy files."""
  if not data_dir:
    raise UserError("config.data.name=arrays reads config.data.data_dir: set it to "
                    "a .npz or .npy file or a directory of <split>.npz files")
  if os.path.isdir(data_dir):
    files = sorted(f for f in os.listdir(data_dir)
                   if f.endswith((".npz", ".npy")) and not f.startswith("."))
    if not files:
      raise UserError(f"{data_dir} holds no .npz or .npy files; expected train.npz "
                      f"(and test.npz) with {EXPECTED}")
    splits, class_names = {}, ()
    for name in files:
      path = os.path.join(data_dir, name)
      split = name[:-4]
      if split in splits:
        raise UserError(f"{data_dir} holds both {split}.npz and {split}.npy; keep one")
      if name.endswith(".npy"):
        splits[split] = _Split(path, None, None, *_npy_header(path))
        continue
      headers = _npz_headers(path)
      unknown = sorted(set(headers) - {"images", "labels", "class_names"})
      if "images" not in headers or unknown:
        raise UserError(f"{path} has {_found(headers)}; expected {EXPECTED}"
                        " (and optionally class_names)")
      splits[split] = _Split(path, "images", "labels" if "labels" in headers else None,
                             *headers["images"])
      class_names = class_names or _class_names(path, headers)
    return splits, class_names
  if not os.path.exists(data_dir):
    raise UserError(f"{data_dir} does not exist; set config.data.data_dir to a .npz "
                    "or .npy file or a directory of <split>.npz files")
  if data_dir.endswith(".npy"):
    return {"train": _Split(data_dir, None, None, *_npy_header(data_dir))}, ()
  if not data_dir.endswith(".npz"):
    raise UserError(f"{data_dir} is neither .npz nor .npy; config.data.name=arrays "
                    "reads a .npz or .npy file or a directory of <split>.npz files")
  headers = _npz_headers(data_dir)
  splits, unknown = {}, []
  for key in sorted(headers):
    if key == "class_names" or key == "labels" or key.endswith("_labels"):
      continue
    if key != "images" and not key.endswith("_images"):
      unknown.append(key)
      continue
    split = "train" if key == "images" else key[:-len("_images")]
    labels_key = "labels" if key == "images" else f"{split}_labels"
    if split in splits:
      raise UserError(f"{data_dir} has both images and train_images; keep one")
    splits[split] = _Split(data_dir, key, labels_key if labels_key in headers else None,
                           *headers[key])
  orphans = sorted(k for k in headers if (k == "labels" or k.endswith("_labels")) and
                   k not in {s.labels_key for s in splits.values()})
  if "train" not in splits or unknown or orphans:
    raise UserError(f"{data_dir} has {_found(headers)}; expected {EXPECTED} under "
                    f"the keys {NPZ_KEYS}")
  return splits, _class_names(data_dir, headers)


def _found(headers) -> str:
  if not headers:
    return "no arrays"
  return "arrays " + ", ".join(f"{k} {_describe(*headers[k])}" for k in sorted(headers))


def _class_names(path, headers) -> tuple:
  if "class_names" not in headers:
    return ()
  with np.load(path) as data:
    names = data["class_names"]
  if names.ndim != 1 or names.dtype.kind not in "US":
    raise UserError(f"{path}: class_names is {_describe(*headers['class_names'])}; "
                    "expected strings [num_classes]")
  return tuple(str(n) for n in names)


def _check_images(split: _Split, name: str):
  shape, dtype = split.shape, np.dtype(split.dtype)
  ok_shape = len(shape) == 3 or (len(shape) == 4 and shape[-1] in (1, 3))
  if dtype != np.uint8 or not ok_shape or shape[0] == 0:
    found = f"{split.images_key or 'an array'} {_describe(shape, dtype)}"
    hint = ""
    if dtype.kind == "f":
      hint = " (floats in [0, 1]: save (x * 255).round().astype(numpy.uint8))"
    elif len(shape) == 4 and shape[-1] == 4:
      hint = " (RGBA: save images[..., :3])"
    elif len(shape) == 4 and shape[1] in (1, 3):
      hint = " (channels first: save images.transpose(0, 2, 3, 1))"
    elif len(shape) and shape[0] == 0:
      hint = " (no images)"
    raise UserError(f"{split.path}: split {name!r} has {found}; expected {EXPECTED}{hint}")


def _read_images(split: _Split, name: str) -> np.ndarray:
  """Images [n, H, W, C] of one split (a .npy file is memory-mapped)."""
  _check_images(split, name)
  if split.images_key is None:
    images = np.load(split.path, mmap_mode="r")
  else:
    with np.load(split.path) as data:
      images = data[split.images_key]
  return images[..., None] if images.ndim == 3 else images


def _read_labels(split: _Split, name: str):
  """Labels int32 [n] of one split, or None when it has none."""
  if split.labels_key is None:
    return None
  with np.load(split.path) as data:
    labels = data[split.labels_key]
  n = split.shape[0]
  integer = labels.dtype.kind in "iu"
  if labels.ndim != 1 or len(labels) != n or not integer or (n and labels.min() < -1):
    low = f" (smallest {labels.min()})" if integer and labels.size else ""
    raise UserError(f"{split.path}: split {name!r} has {split.labels_key} "
                    f"{_describe(labels.shape, labels.dtype)}{low} for {n} images; "
                    f"expected labels int [{n}] with values >= -1 (-1: no label)")
  return labels.astype(np.int32)


def load(data_dir: str, split: str) -> ArraySource:
  """Split ``split`` of the arrays at ``data_dir`` (``config.data.name =
  'arrays'``): a .npz file holding ``images`` (uint8 [n, H, W, C]) and
  optionally ``labels`` (int [n]) for split ``train``, ``test_images`` and
  ``test_labels`` (any ``<split>_images``) for the others, and optionally
  ``class_names``; a .npy file of unlabelled images (split ``train``); or a
  directory of ``<split>.npz`` (``images``, ``labels``) and ``<split>.npy``
  files. ``'a+b'`` concatenates splits. A split without labels has labels -1;
  ``num_classes`` counts the classes of every split (0: no labels)."""
  splits, class_names = _catalogue(data_dir)
  parts = split.split("+")
  missing = [p for p in parts if p not in splits]
  if missing:
    raise UnknownSplit(f"the arrays at {data_dir} have splits "
                       f"{', '.join(sorted(splits))}, not {missing[0]!r}")
  channels = {}
  for name, s in sorted(splits.items()):
    _check_images(s, name)
    channels[name] = 1 if len(s.shape) == 3 else s.shape[-1]
  if len(set(channels.values())) > 1:
    raise UserError(f"the arrays at {data_dir} mix channel counts "
                    f"({', '.join(f'{k}: {v}' for k, v in channels.items())}); save "
                    "every split with the same number of channels (1 or 3)")
  sizes = {tuple(splits[p].shape[1:3]) for p in parts}
  if len(sizes) > 1:
    raise UserError(f"the splits {split!r} of {data_dir} differ in image size "
                    f"({', '.join(str(s) for s in sorted(sizes))}); save them at one size")
  all_labels = {name: _read_labels(s, name) for name, s in splits.items()}
  # Classes: the names given, else one more than the largest label of any split.
  num_classes = len(class_names) or max(
      [int(lab.max()) + 1 for lab in all_labels.values() if lab is not None and lab.size]
      + [0])
  images = [_read_images(splits[p], p) for p in parts]
  labels = np.concatenate([
      all_labels[p] if all_labels[p] is not None else np.full(len(im), -1, np.int32)
      for p, im in zip(parts, images)])
  images = images[0] if len(images) == 1 else np.concatenate(images)
  if num_classes and len(labels) and labels.max() >= num_classes:
    raise UserError(f"{data_dir}: labels go up to {labels.max()} but class_names "
                    f"names {num_classes} classes; give one name per class")
  return ArraySource(images=images, labels=labels, num_classes=num_classes,
                     class_names=class_names)
