"""The data sources sslax reads, listed by ``config.data.name``: one module
each, every one following the protocol of ``sslax.data.source``.

Which split a run reads is config: ``data.train_split`` (training),
``data.eval_train_split`` (the kNN bank, the probes' training set) and
``data.eval_split`` (what they are scored on); ``split_source`` and
``labelled_source`` read them."""

import numpy as np

from sslax.data import (arrays, folder, photos, speech, synthetic, tfds_source,
                        video_corpus, word_windows)
from sslax.data import fashion_mnist as fashion_mnist_idx
from sslax.data.source import labelled
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
}


# Datasets whose labels name where an example came from (a photograph), with
# different sources in train and test: labels that no probe can predict.
SOURCE_LABELLED = ("wallpaper_photos",)


def get_source(data_config, split: str):
  """Split ``split`` of the source ``data_config.name`` names (``SOURCES``;
  any other name is a prepared TFDS dataset under ``data_config.data_dir``)."""
  read = SOURCES.get(data_config.name, tfds_source.source)
  return read(data_config, split)


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
