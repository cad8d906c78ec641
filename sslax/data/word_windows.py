"""The text corpus (``sslax data make-text``) as word windows: the source of
``config.data.name = 'text_corpus'``. Split ``train`` or ``heldout`` of the
corpus in ``config.data.data_dir``, its words mapped to ids by the vocabulary
of the train split (words seen ``config.data.min_count`` times or more, at
most ``config.data.max_vocab``), each example a corpus position with the
``config.data.reach`` words either side (``skipgram.WindowSource``)."""

import functools
import os

from sslax.data import skipgram, text_corpus
from sslax.errors import UnknownSplit, UserError

SPLITS = ("train", "heldout")


@functools.lru_cache(maxsize=4)
def _vocabulary(path: str, mtime: float, min_count: int, max_size) -> skipgram.Vocabulary:
  del mtime  # (part of the cache key: a rebuilt corpus is counted again)
  counts = skipgram.count_words(path)
  return skipgram.Vocabulary.from_counts(counts, min_count=min_count, max_size=max_size)


@functools.lru_cache(maxsize=4)
def _encoded(path: str, mtime: float, vocab: skipgram.Vocabulary):
  del mtime
  return skipgram.encode_corpus(path, vocab)


def vocabulary(data_config) -> skipgram.Vocabulary:
  """The vocabulary of the corpus's train split under ``data_config``."""
  _, train_path, _ = text_corpus.load(data_config.get("data_dir") or None)
  min_count = int(data_config.get("min_count", 5))
  if min_count < 1:
    raise UserError(f"config.data.min_count must be at least 1, got {min_count}")
  max_size = int(data_config.get("max_vocab", 0))
  if max_size < 0:
    raise UserError(f"config.data.max_vocab must be >= 0 (0: no limit), got {max_size}")
  max_size = max_size or None
  vocab = _vocabulary(train_path, os.path.getmtime(train_path), min_count, max_size)
  if not len(vocab):
    raise UserError(f"no word of {train_path} occurs {min_count} times or more; lower "
                    "--config.data.min_count or build a larger corpus with `make text`")
  return vocab


def source(data_config, split: str) -> skipgram.WindowSource:
  if split not in SPLITS:
    raise UnknownSplit(f"the text corpus has splits {', '.join(SPLITS)}, not {split!r}")
  _, train_path, heldout_path = text_corpus.load(data_config.get("data_dir") or None)
  path = train_path if split == "train" else heldout_path
  reach = int(data_config.get("reach", 10))
  if reach < 1:
    raise UserError(f"config.data.reach must be positive, got {reach}")
  vocab = vocabulary(data_config)
  ids, sentences = _encoded(path, os.path.getmtime(path), vocab)
  if not len(ids):
    raise UserError(f"{path} holds no word of the vocabulary; rebuild the corpus "
                    "with `make text`")
  windows = skipgram.WindowSource(ids, sentences, reach)
  windows.vocabulary = vocab
  return windows
