"""Fashion-MNIST (Xiao et al. 2017) from the IDX files of Debian's
``dataset-fashion-mnist`` package: ``"image"`` uint8 [28, 28, 1] and
``"label"`` (10 classes)."""

import gzip
import os
from typing import Optional

import numpy as np

from sslax.data.source import ArraySource
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


def source(data_config, split: str) -> ArraySource:
  return fashion_mnist(split, data_config.get("data_dir") or None)
