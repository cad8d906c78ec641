"""The data sources sslax reads, listed by ``config.data.name``: one module
each, every one following the protocol of ``sslax.data.source``.

Which split a run reads is config: ``data.train_split`` (training),
``data.eval_train_split`` (the kNN bank, the probes' training set) and
``data.eval_split`` (what they are scored on); ``split_source`` and
``labelled_source`` read them. ``data.validation_fraction`` carves a split
``validation`` out of ``train`` (``validation_indices``); ``data.tuning``
scores on it alone (``check_tuning``)."""

import numpy as np

from sslax.data import (arrays, folder, photos, speech, synthetic, tfds_source,
                        video_corpus, word_windows)
from sslax.data import fashion_mnist as fashion_mnist_idx
from sslax.data.source import LABEL, labelled
from sslax.errors import UnknownSplit, UserError

# The names users and older code import from here.
from sslax.data.source import ArraySource, SubsetSource  # pylint: disable=unused-import
fashion_mnist = fashion_mnist_idx.fashion_mnist


def _image_folder(data_config, split):
  size = data_config.get("load_size") or data_config.image_size
  return folder.FolderSource(data_config.get("data_dir") or None, split, size=size,
                             channels=int(data_config.get("channels") or 0))


# config.data.name -> source(data_config, split). A name not listed here is a
# TFDS dataset (``tfds_source``): cifar10, stl10, imagenet2012, your own.
SOURCES = {
    "fashion_mnist": fashion_mnist_idx.source,
    "image_folder": _image_folder,
    "arrays": lambda c, split: arrays.load(c.get("data_dir") or None, split),
    "espeak_speakers": lambda c, split: speech.load_split(c.get("data_dir") or None, split),
    "wallpaper_photos": lambda c, split: photos.load_split(c.get("data_dir") or None,
                                                           split),
    "text_corpus": word_windows.source,
    "synthetic": synthetic.source,
    "video_corpus": lambda c, split: video_corpus.load_split(c.get("data_dir") or None,
                                                             split),
    "video_frames": lambda c, split: video_corpus.load_frames(c.get("data_dir") or None,
                                                              split),
}


# Datasets whose labels name where an example came from (a photograph), with
# different sources in train and test: labels that no probe can predict.
SOURCE_LABELLED = ("wallpaper_photos",)


VALIDATION = "validation"


def validation_indices(labels, n: int, fraction: float, seed: int):
  """``(train_idx, val_idx)``, sorted and disjoint, together ``range(n)``:
  validation holds ``round(fraction * count)`` examples of each label value
  (``labels=None``: of all ``n``), drawn with ``default_rng(seed)``."""
  rng = np.random.default_rng(seed)
  if labels is None:
    groups = [np.arange(n)]
  else:
    labels = np.asarray(labels)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
  val = np.sort(np.concatenate(
      [rng.choice(g, round(fraction * len(g)), replace=False) for g in groups]
      + [np.zeros(0, np.int64)])).astype(np.int64)
  return np.setdiff1d(np.arange(n), val), val


def validation_fraction(data_config) -> float:
  """``config.data.validation_fraction`` (0: no validation split); one line
  outside (0, 1)."""
  fraction = data_config.get("validation_fraction", 0) or 0
  if fraction and not 0 < fraction < 1:
    raise UserError(f"config.data.validation_fraction is {fraction}, outside (0, 1); "
                    "set it to the share of split 'train' held out for validation "
                    "(e.g. 0.1), or 0 for none")
  return fraction


def _carve(read, data_config, split: str, fraction: float):
  """Split ``split`` ('train' or 'validation') of the train split carved by
  ``validation_indices``; one line where the data has its own validation."""
  try:
    read(data_config, VALIDATION)
    own = True
  except UserError:  # no such split (or unreadable data, which 'train' reports)
    own = False
  if own:
    raise UserError(
        f"{data_config.name} has a split of its own called 'validation', which "
        f"config.data.validation_fraction={fraction} would replace by one carved from "
        "'train'; set --config.data.validation_fraction=0 to read its own")
  train = read(data_config, "train")
  labels = np.asarray(train.labels) if LABEL in train.element_spec else None
  train_idx, val_idx = validation_indices(labels, len(train), fraction,
                                          int(data_config.get("validation_seed", 0) or 0))
  if not len(train_idx) or not len(val_idx):
    raise UserError(
        f"config.data.validation_fraction={fraction} of the {len(train)} examples of "
        f"split 'train' of {data_config.name} leaves "
        f"{'no validation' if not len(val_idx) else 'no training'} examples; set a "
        "fraction that leaves some in both")
  return SubsetSource(train, val_idx if split == VALIDATION else train_idx)


def _holds_train(split: str) -> bool:
  """Whether ``split`` joins or slices 'train' ("train+unlabelled", TFDS's
  "train[:10%]") without being 'train' itself."""
  return split != "train" and any(part.split("[")[0].strip() == "train"
                                  for part in split.split("+"))


def get_source(data_config, split: str):
  """Split ``split`` of the source ``data_config.name`` names (``SOURCES``;
  any other name is a prepared TFDS dataset under ``data_config.data_dir``).
  With ``validation_fraction`` > 0, 'validation' and 'train' are the two
  disjoint parts of the data's train split (``validation_indices``)."""
  read = SOURCES.get(data_config.name, tfds_source.source)
  fraction = validation_fraction(data_config)
  if fraction and split in ("train", VALIDATION):
    return _carve(read, data_config, split, fraction)
  if fraction and _holds_train(split):
    raise UserError(
        f"split {split!r} of {data_config.name} holds all of split 'train', part of "
        f"which config.data.validation_fraction={fraction} holds out for validation; "
        "read 'train' (the rest) instead, or set --config.data.validation_fraction=0")
  return read(data_config, split)


# config.data keys naming splits, and their defaults (configs saved before
# these keys existed read the defaults).
SPLIT_KEYS = {"train_split": "train", "eval_train_split": "train", "eval_split": "test"}


def split_name(data_config, key: str) -> str:
  """The split ``config.data.<key>`` names."""
  return data_config.get(key) or SPLIT_KEYS[key]


def check_tuning(data_config, split=None, given: str = "config.data.eval_split"):
  """One line when ``config.data.tuning`` is set and a run would be scored on
  ``split`` (``given`` names it; default ``eval_split``) other than the
  validation split carved from train."""
  if not data_config.get("tuning"):
    return
  split = split or split_name(data_config, "eval_split")
  fixes = []
  if split != VALIDATION:
    fixes.append(f"{given if given.startswith('--') else '--' + given}=validation")
  if not (data_config.get("validation_fraction", 0) or 0) > 0:
    fixes.append("--config.data.validation_fraction=0.1")
  if fixes:
    what = (f"{given} is {split!r}" if split != VALIDATION
            else "config.data.validation_fraction is 0")
    raise UserError(f"config.data.tuning is set (a tuning run is scored on validation "
                    f"only) but {what}; set {' and '.join(fixes)}")


def split_source(data_config, key: str, *, fix: str = ""):
  """The source of the split ``config.data.<key>`` names; a split the data
  does not have is one line listing those it has and naming the key; the
  evaluation split of a tuning run is ``check_tuning``'s."""
  if key == "eval_split":
    check_tuning(data_config)
  try:
    return get_source(data_config, split_name(data_config, key))
  except UnknownSplit as e:
    raise UnknownSplit(f"{e}; set config.data.{key} to one of them{fix}") from None


def probe_labels(data_config) -> bool:
  """Whether label-based evaluation applies to this data: both evaluation
  splits are labelled, and their labels say what an example shows (not
  ``SOURCE_LABELLED``). False where the data cannot be read."""
  if data_config.name in SOURCE_LABELLED:
    return False
  try:
    return all(labelled(split_source(data_config, key))
               for key in ("eval_train_split", "eval_split"))
  except UserError:
    return False


def labelled_source(data_config, key: str, purpose: str, *, fix: str = ""):
  """``split_source``, refused with one line when the split has no labels
  (an unlabelled folder or array, imagenet2012's test split): ``purpose``
  (e.g. "the linear probe") needs them."""
  source = split_source(data_config, key, fix=fix)
  if not labelled(source):
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
