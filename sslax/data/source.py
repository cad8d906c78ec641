"""What a data source is: the one definition of the protocol every source of
sslax follows, and the in-memory sources.

A source is a random-access split of a dataset:

- ``len(source)``: its number of examples;
- ``source.element_spec``: ``{name: (shape, dtype)}`` of one example, a fixed
  shape per name (``"image": ((28, 28, 1), "uint8")``,
  ``"audio": ((16000,), "int16")``, ``"tokens": ((64,), "int32")``);
- ``source.get(indices) -> {name: array [n, *shape]}``, exactly the names,
  shapes and dtypes of ``element_spec``.

Labels are the name ``"label"`` (int32, shape ``()``), present only when the
split has labels; such a source also has ``num_classes``, ``class_names``
and ``labels`` (every label of the split, -1 for an example without one).
Content of variable length (a sentence, a clip of any duration) is padded to
the fixed shape and comes with a boolean mask or an int32 length under its
own name (``"tokens"`` and ``"tokens_mask"``): the one rule that keeps every
array's shape fixed under ``jit``.

The pipeline hands ``get``'s dict to the method unchanged, adding
``"index"`` (int32, each example's index in the source).
"""

from typing import Dict, Mapping, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np

from sslax.errors import UserError

LABEL = "label"
INDEX = "index"

# (shape of one example, numpy dtype name)
Spec = Tuple[Tuple[int, ...], str]


@runtime_checkable
class Source(Protocol):
  """A random-access split of a dataset (see the module docstring)."""

  @property
  def element_spec(self) -> Mapping[str, Spec]:
    ...

  def __len__(self) -> int:
    ...

  def get(self, indices: Sequence[int]) -> Dict[str, np.ndarray]:
    ...


def spec_of(arrays: Mapping[str, np.ndarray]) -> Dict[str, Spec]:
  """The element spec of batched arrays ``{name: [n, *shape]}``."""
  return {k: (tuple(int(d) for d in np.shape(v)[1:]), np.asarray(v).dtype.name)
          for k, v in arrays.items()}


def describe(spec: Mapping[str, Spec]) -> str:
  """``image uint8 [28, 28, 1], label int32 []``."""
  return ", ".join(f"{k} {np.dtype(d).name} [{', '.join(str(n) for n in s)}]"
                   for k, (s, d) in sorted(spec.items()))


def check_examples(source, examples, count: Optional[int] = None) -> dict:
  """``examples`` (what ``source.get`` returned for ``count`` indices) when
  they are what ``source.element_spec`` says; else one line naming both."""
  want = {k: (tuple(s), np.dtype(d).name) for k, (s, d) in source.element_spec.items()}
  got = spec_of(examples) if isinstance(examples, Mapping) else None
  rows = {len(v) for v in examples.values()} if got is not None else set()
  if got != want or (count is not None and rows != {count}):
    found = (describe(got) if got is not None else type(examples).__name__)
    raise UserError(
        f"{type(source).__name__}.get returned {found}"
        f"{f' for {count} indices' if count is not None else ''} but its element_spec "
        f"says {describe(want)}; make get return one array per element_spec name, "
        "with that shape and dtype after the batch axis")
  return dict(examples)


def has_labels(source) -> bool:
  """Whether the split has labels at all (the ``"label"`` name)."""
  return LABEL in source.element_spec and bool(getattr(source, "num_classes", 0))


def labelled(source, sample: int = 256) -> bool:
  """Whether every example has a label: the split has labels and none is -1.
  A source whose ``labels`` are read from every record (``lazy_labels``:
  TFDS, where that reads the whole split) is judged by up to ``sample``
  examples spread over it (imagenet2012's test split is -1 throughout);
  evaluation checks the labels it reads (``sources.require_labels``)."""
  if not has_labels(source) or not len(source):
    return False
  if not getattr(source, "lazy_labels", False):
    return bool(np.all(np.asarray(source.labels) >= 0))
  rows = np.unique(np.linspace(0, len(source) - 1, min(len(source), sample)).astype(int))
  return bool(np.all(np.asarray(source.get(rows)[LABEL]) >= 0))


class ArraySource:
  """A whole split held in memory: ``ArraySource(images, labels,
  num_classes)`` (uint8 images [n, H, W, C], int labels [n] with -1 for an
  example without one), or ``ArraySource(arrays={name: [n, ...]},
  num_classes=...)`` for any named arrays (``"audio"``, ``"tokens"``, ...).
  ``labels=None`` (or ``num_classes=0``): unlabelled data, no ``"label"``."""

  def __init__(self, images=None, labels=None, num_classes: int = 0,
               class_names: tuple = (), *, arrays: Optional[Mapping] = None):
    arrays = dict(arrays or {})
    if images is not None:
      arrays["image"] = images
    if labels is not None:
      arrays[LABEL] = np.asarray(labels, np.int32)
    if LABEL in arrays and not int(num_classes):
      if np.any(np.asarray(arrays[LABEL]) >= 0):
        raise UserError("ArraySource was given labels but num_classes=0; pass "
                        "num_classes (the number of classes)")
      del arrays[LABEL]  # every label -1: unlabelled data
    if not arrays:
      raise UserError("ArraySource needs arrays: images=uint8 [n, H, W, C] or "
                      "arrays={name: array [n, ...]}")
    sizes = {k: len(v) for k, v in arrays.items()}
    if len(set(sizes.values())) != 1:
      raise UserError(f"ArraySource arrays differ in length ({sizes}); give one "
                      "entry per example in each (labels: -1 for none)")
    self.arrays = arrays
    self.num_classes = int(num_classes) if LABEL in arrays else 0
    self.class_names = tuple(class_names) if LABEL in arrays else ()
    self.element_spec = spec_of(arrays)

  def __len__(self):
    return len(next(iter(self.arrays.values())))

  @property
  def images(self) -> np.ndarray:
    return self.arrays["image"]

  @property
  def labels(self) -> np.ndarray:
    return self.arrays[LABEL]

  def get(self, indices):
    indices = np.asarray(indices, np.int64)
    return {k: v[indices] for k, v in self.arrays.items()}


class SubsetSource:
  """The examples ``indices`` of a source, as a source of their own."""

  def __init__(self, source, indices):
    self.source, self.indices = source, np.asarray(indices)
    self.element_spec = source.element_spec
    self.num_classes = getattr(source, "num_classes", 0)
    self.class_names = getattr(source, "class_names", ())

  def __len__(self):
    return len(self.indices)

  @property
  def labels(self):
    return np.asarray(self.source.labels)[self.indices]

  def get(self, indices):
    return self.source.get(self.indices[np.asarray(indices)])
