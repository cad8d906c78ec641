"""Synthetic images (``config.data.name = 'synthetic'``): uniform random
uint8 images at the config's read size (``load_size``, else ``image_size``)
with one channel per ``data.mean`` entry, and random labels of 10 classes;
example ``i`` is a function of ``i`` alone, so any split of any size reads
without data on disk. For measuring speed (``launch/throughput.py``), never
for figures of quality."""

import numpy as np

NUM_CLASSES = 10
NUM_EXAMPLES = 50_000  # every split's size


class SyntheticSource:
  """``"image"`` uint8 [H, W, C] and ``"label"`` int32, from the index."""

  def __init__(self, size, channels: int, num_examples: int = NUM_EXAMPLES, seed: int = 0):
    self.size = tuple(int(s) for s in size)
    self.channels, self.seed = int(channels), int(seed)
    self.num_examples = int(num_examples)
    self.num_classes = NUM_CLASSES
    self.class_names = tuple(str(i) for i in range(NUM_CLASSES))
    self.element_spec = {"image": ((*self.size, self.channels), "uint8"),
                         "label": ((), "int32")}
    self.labels = np.random.default_rng([self.seed, 1]).integers(
        0, NUM_CLASSES, self.num_examples).astype(np.int32)

  def __len__(self):
    return self.num_examples

  def get(self, indices):
    indices = np.asarray(indices, np.int64)
    shape = (*self.size, self.channels)
    images = np.stack([np.random.default_rng([self.seed, 2, int(i)]).integers(
        0, 256, shape, dtype=np.uint8) for i in indices]) if len(indices) else (
            np.zeros((0, *shape), np.uint8))
    return {"image": images, "label": self.labels[indices]}


def source(data_config, split):
  """Every split is the same kind of random images (``split`` only seeds them)."""
  size = data_config.get("load_size") or data_config.image_size
  size = (size, size) if np.ndim(size) == 0 else size
  return SyntheticSource(size, len(data_config.mean), seed=sum(map(ord, split)))
