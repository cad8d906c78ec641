"""A whole split held in memory: the source type of Fashion-MNIST and of the
local corpora (speech, photos). Kept apart from ``sources`` so the corpus
modules can build one without importing ``sources``, which imports them."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ArraySource:
  """A whole split held in memory."""
  images: np.ndarray  # uint8 [n, H, W, C]
  labels: np.ndarray  # int32 [n]
  num_classes: int

  def __len__(self):
    return len(self.labels)

  @property
  def image_shape(self):
    return tuple(self.images.shape[1:])

  def get(self, indices):
    indices = np.asarray(indices)
    return self.images[indices], self.labels[indices]
