"""Word2vec's data (Mikolov et al. 2013), with gensim's semantics: a
vocabulary, the noise and subsampling tables, a text corpus as token ids, a
source of windows around every corpus position, and the on-device draw of
which (centre, context) pairs an epoch trains on.

The host reads the corpus once (``encode_corpus``) into the token ids of the
in-vocabulary words and the sentence each is in; ``WindowSource`` example i is
corpus position i with the ``reach`` raw positions either side. On the device,
``sample_pairs`` applies gensim's per-epoch randomness: frequent-word
subsampling (drop each word with probability ``1 - keep``, before the window
is laid), then the dynamic window (each centre draws b in 1..window and sees
the b nearest kept words on each side within its sentence).

Conventions matched (gensim 4.4 ``Word2Vec``, ``LineSentence`` and
``word2vec_inner.pyx``):

- the vocabulary keeps words with ``count >= min_count``; ``max_size`` is
  gensim's ``max_final_vocab`` (the words tied at the cut are all dropped);
- words out of the vocabulary are dropped before windowing (they shorten the
  sentence, widening the window), and so are subsampled words;
- a line of the corpus file is a sentence, split on whitespace, cut into
  sentences of ``max_sentence_length`` (10000) raw tokens; windows never cross
  sentences;
- keep probabilities and noise weights are gensim's (and word2vec.c's), from
  the counts of the kept vocabulary.

Not matched: gensim breaks ties in the vocabulary's order by reverse order of
first appearance, here alphabetically (reproducible whatever the corpus
order); gensim draws each corpus token's subsampling coin once per epoch and
shares it between the windows the token is in, here each example draws its
own (the same distribution per centre, independent across centres); and a
context more than ``reach`` raw positions from its centre is never seen.
"""

import collections
import dataclasses
import itertools
import json
import math
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

CENTRE = "centre"
CONTEXT = "context"
CONTEXT_VALID = "context_valid"
PAD_ID = 0  # the id padded context slots hold (any valid id: they are masked)
MAX_SENTENCE_LENGTH = 10000  # gensim's MAX_WORDS_IN_BATCH, LineSentence's cut


# ----------------------------------------------------------------------------
# Vocabulary and per-word tables (host).
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Vocabulary:
  """Words (tuple, by descending count, ties alphabetically by code point)
  and their corpus counts (int64); id of a word = its position (``index``:
  ``{word: id}``)."""
  words: Tuple[str, ...]
  counts: np.ndarray

  def __post_init__(self):
    words = tuple(self.words)
    counts = np.asarray(self.counts, np.int64).reshape(-1)
    if len(words) != len(counts):
      raise ValueError(f"Vocabulary has {len(words)} words but {len(counts)} counts")
    if not all(isinstance(w, str) and w and not w.isspace() and w.split() == [w]
               for w in words):
      raise ValueError("Vocabulary words must be non-empty strings without whitespace")
    if len(words) and counts.min() < 1:
      raise ValueError("Vocabulary counts must be positive")
    order = sorted(range(len(words)), key=lambda i: (-counts[i], words[i]))
    if order != list(range(len(words))):
      raise ValueError("Vocabulary words must be ordered by descending count, "
                       "ties alphabetically; build it with Vocabulary.build")
    index = {w: i for i, w in enumerate(words)}
    if len(index) != len(words):
      raise ValueError("Vocabulary words must be unique")
    counts.setflags(write=False)
    object.__setattr__(self, "words", words)
    object.__setattr__(self, "counts", counts)
    object.__setattr__(self, "index", index)

  @classmethod
  def build(cls, sentences: Iterable[Sequence[str]], min_count: int = 5,
            max_size: Optional[int] = None) -> "Vocabulary":
    """The words of ``sentences`` (iterables of tokens) seen at least
    ``min_count`` times; with ``max_size``, at most that many: gensim's
    ``max_final_vocab`` raises the minimum count to one more than the count
    of the first word past the cut, so the words tied there all go."""
    counter = collections.Counter()
    for sentence in sentences:
      counter.update(sentence)
    return cls.from_counts(counter, min_count, max_size)

  @classmethod
  def from_counts(cls, counts: Mapping[str, int], min_count: int = 5,
                  max_size: Optional[int] = None) -> "Vocabulary":
    """``build`` from a ``{word: count}`` mapping."""
    if min_count < 1:
      raise ValueError(f"min_count must be at least 1, got {min_count}")
    ranked = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))
    if max_size is not None:
      if max_size < 1:
        raise ValueError(f"max_size must be at least 1, got {max_size}")
      if len(ranked) > max_size:
        min_count = max(min_count, ranked[max_size][1] + 1)
    kept = [(w, c) for w, c in ranked if c >= min_count]
    return cls(tuple(w for w, _ in kept), np.asarray([c for _, c in kept], np.int64))

  def __len__(self):
    return len(self.words)

  def __eq__(self, other):
    return (isinstance(other, Vocabulary) and self.words == other.words
            and np.array_equal(self.counts, other.counts))

  def __hash__(self):
    return hash(self.words)

  @property
  def total(self) -> int:
    """The number of in-vocabulary tokens of the corpus it was counted on."""
    return int(self.counts.sum())

  def ids(self, tokens) -> np.ndarray:
    """int32 ids of ``tokens`` (a sequence of words, or one string split on
    whitespace); -1 for a word out of the vocabulary."""
    if isinstance(tokens, str):
      tokens = tokens.split()
    return np.fromiter(map(self.index.get, tokens, itertools.repeat(-1)),
                       np.int32, count=len(tokens))

  def to_json(self) -> str:
    return json.dumps({"words": list(self.words), "counts": self.counts.tolist()})

  @classmethod
  def from_json(cls, text: str) -> "Vocabulary":
    data = json.loads(text)
    if not isinstance(data, dict) or set(data) != {"words", "counts"}:
      raise ValueError("a Vocabulary's JSON is an object with words and counts")
    return cls(tuple(data["words"]), np.asarray(data["counts"], np.int64))


def noise_distribution(counts, power: float = 0.75) -> np.ndarray:
  """float32 probabilities of drawing each word as a negative: count ** power,
  normalised (gensim's ``ns_exponent``, word2vec.c's unigram table)."""
  counts = np.asarray(counts, np.float64)
  with np.errstate(divide="ignore"):
    weights = counts ** power
  total = weights.sum()
  if counts.ndim != 1 or not np.all(np.isfinite(weights)) or not total > 0:
    raise ValueError("noise_distribution needs a 1-D array of counts whose "
                     f"powers {power} are finite with a positive sum")
  return (weights / total).astype(np.float32)


def keep_probabilities(counts, sample: float = 1e-3) -> np.ndarray:
  """float32 probability that subsampling keeps each occurrence of a word:
  with ``t = sample * sum(counts)`` (``sample`` < 1), ``(sqrt(c / t) + 1) * t
  / c`` clipped to 1: gensim 4.4's ``prepare_vocab`` and word2vec.c's
  ``(sqrt(cn / (sample * train_words)) + 1) * (sample * train_words) / cn``.
  As in gensim, ``sample`` >= 1 sets ``t = int(sample * (3 + sqrt 5) / 2)``
  and ``sample`` 0 keeps every word."""
  counts = np.asarray(counts, np.float64)
  if counts.ndim != 1 or (counts.size and counts.min() < 0):
    raise ValueError("keep_probabilities needs a 1-D array of non-negative counts")
  if sample < 0:
    raise ValueError(f"sample must be non-negative, got {sample}")
  if not sample:
    return np.ones(counts.shape, np.float32)
  threshold = sample * counts.sum() if sample < 1 else int(sample * (3 + math.sqrt(5)) / 2)
  with np.errstate(divide="ignore", invalid="ignore"):
    keep = (np.sqrt(counts / threshold) + 1) * (threshold / counts)
  return np.where(counts > 0, np.minimum(keep, 1.0), 1.0).astype(np.float32)


def truncated_fraction(counts, keep_prob, window: int, reach: int) -> float:
  """Estimated fraction of gensim's (centre, context) pairs that windows of
  ``reach`` raw positions miss: those whose context is among the b nearest
  kept words but more than ``reach`` positions away. Assumes each word is
  kept independently with the corpus' mean keep rate and ignores sentence
  ends (which cut gensim's windows as well as these)."""
  counts = np.asarray(counts, np.float64)
  rate = float(np.sum(counts * np.asarray(keep_prob, np.float64)) / counts.sum())
  kept = np.asarray([math.comb(reach, j) * rate ** j * (1 - rate) ** (reach - j)
                     for j in range(reach + 1)])
  seen = sum(float(np.sum(kept * np.minimum(np.arange(reach + 1), b)))
             for b in range(1, window + 1))
  wanted = sum(range(1, window + 1))
  return 1.0 - seen / wanted


# ----------------------------------------------------------------------------
# The corpus (host).
# ----------------------------------------------------------------------------


def read_sentences(path: str, max_sentence_length: int = MAX_SENTENCE_LENGTH
                   ) -> Iterator[List[str]]:
  """The sentences of a text file as gensim's ``LineSentence`` reads them: a
  line (ended by ``\\n``) split on whitespace (``str.split``), cut into
  pieces of ``max_sentence_length`` tokens."""
  with open(path, "rb") as f:
    for line in f:
      tokens = line.decode("utf-8").split()
      for start in range(0, len(tokens), max_sentence_length):
        yield tokens[start:start + max_sentence_length]


# The file is read in blocks that end at a line end. A block is split into
# tokens in numpy, as ``str.split`` would: ASCII whitespace and \x1c-\x1f
# separate tokens (a block holding other Unicode whitespace goes the slow,
# pure-Python way). A token of up to 16 bytes is its two little-endian 8-byte
# words and its length, looked up exactly (hash, then compare); longer ones
# go through a dict.
_SEPARATORS = np.zeros(256, bool)
_SEPARATORS[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True
_OTHER_SPACES = tuple(chr(c) for c in (0x85, 0xa0, 0x1680, *range(0x2000, 0x200b),
                                       0x2028, 0x2029, 0x202f, 0x205f, 0x3000))
_SHORT = 16
_LOW_BYTES = np.asarray([(1 << (8 * n)) - 1 for n in range(9)], np.uint64)
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F),
        np.uint64(0x165667B19E3779F9))


def _blocks(path: str, chunk_bytes: int) -> Iterator[bytes]:
  """The file in blocks of about ``chunk_bytes`` that end with an ASCII
  whitespace byte (or the file), so that no token or character is cut."""
  with open(path, "rb") as f:
    tail = b""
    while True:
      block = f.read(chunk_bytes)
      if not block:
        if tail:
          yield tail
        return
      block = tail + block
      data = np.frombuffer(block, np.uint8)
      end = np.flatnonzero(_SEPARATORS[data[-65536:]])
      if not len(end):
        end = np.flatnonzero(_SEPARATORS[data])
      cut = (len(block) - len(data[-65536:]) + int(end[-1]) + 1) if len(end) else 0
      if cut:
        yield block[:cut]
      tail = block[cut:]


def _keys(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray):
  """(low word, high word, hash) of the tokens ``data[s:s + l]`` of at most
  16 bytes; ``data`` is padded with 16 zero bytes."""
  words = np.ndarray(buffer=data, dtype="<u8", shape=(len(data) - 7,), strides=(1,))
  low = words[starts] & _LOW_BYTES[np.minimum(lengths, 8)]
  high = words[starts + 8] & _LOW_BYTES[np.clip(lengths - 8, 0, 8)]
  with np.errstate(over="ignore"):
    mixed = low * _MIX[0] + high * _MIX[1] + lengths.astype(np.uint64) * _MIX[2]
  return low, high, mixed ^ (mixed >> np.uint64(29))


def _split_block(block: bytes):
  """``(data, starts, lengths, lines)`` of the tokens of a block (``lines``:
  the line of each, 0-based), or None when only ``str.split`` splits it
  right (Unicode whitespace beyond ASCII). Raises on invalid UTF-8."""
  data = np.frombuffer(block + bytes(_SHORT), np.uint8)
  text = data[:len(block)]
  if np.any(text >= 0x80):
    decoded = block.decode("utf-8")  # strict, like gensim
    if any(space in decoded for space in _OTHER_SPACES):
      return None
  word = np.concatenate([[False], ~_SEPARATORS[text], [False]]).view(np.int8)
  edges = np.diff(word)
  starts = np.flatnonzero(edges == 1)
  lengths = np.flatnonzero(edges == -1) - starts
  lines = np.searchsorted(np.flatnonzero(text == 10), starts)
  return data, starts, lengths, lines


class _Lookup:
  """A vocabulary's ids by exact byte keys: a direct-address table on the
  hash's top bits (the one word of a slot, or -2 where several share it,
  looked up by binary search), then an exact comparison."""

  def __init__(self, vocab: Vocabulary):
    encoded = [w.encode("utf-8") for w in vocab.words]
    lengths = np.asarray([len(b) for b in encoded], np.int64)
    short = np.flatnonzero(lengths <= _SHORT)
    joined = b"".join(encoded[i] for i in short)
    starts = np.cumsum(lengths[short]) - lengths[short]
    low, high, hashed = _keys(np.frombuffer(joined + bytes(_SHORT), np.uint8),
                              starts, lengths[short])
    order = np.argsort(hashed, kind="stable")
    self.hashes, self.ids = hashed[order], short[order].astype(np.int32)
    self.unique = bool(np.all(self.hashes[1:] != self.hashes[:-1]))
    self.low = np.zeros(len(vocab) + 1, np.uint64)
    self.high = np.zeros(len(vocab) + 1, np.uint64)
    self.lengths = np.zeros(len(vocab) + 1, np.int64)  # row -1: no word
    self.low[short], self.high[short], self.lengths[short] = low, high, lengths[short]
    self.shift = np.uint64(64 - max(16, int(8 * len(vocab)).bit_length()))
    slots = (hashed >> self.shift).astype(np.int64)
    self.table = np.full(1 << (64 - int(self.shift)), -1, np.int32)
    shared = np.bincount(slots, minlength=len(self.table)) > 1
    self.table[slots] = short.astype(np.int32)
    self.table[shared] = -2
    self.long = {encoded[i]: i for i in np.flatnonzero(lengths > _SHORT)}

  def __call__(self, data, starts, lengths) -> np.ndarray:
    ids = np.full(len(starts), -1, np.int32)
    short = np.flatnonzero(lengths <= _SHORT)
    s, l = starts[short], lengths[short]
    low, high, hashed = _keys(data, s, l)
    found = self.table[(hashed >> self.shift).astype(np.int64)]
    shared = np.flatnonzero(found == -2)
    if len(shared):
      at = np.minimum(np.searchsorted(self.hashes, hashed[shared]), len(self.hashes) - 1)
      found[shared] = np.where(self.hashes[at] == hashed[shared], self.ids[at], -1)
    same = ((self.low[found] == low) & (self.high[found] == high)
            & (self.lengths[found] == l))
    ids[short] = np.where(same, found, -1)
    if self.long:
      raw = data.tobytes()
      for i in np.flatnonzero(lengths > _SHORT).tolist():
        start = int(starts[i])
        ids[i] = self.long.get(raw[start:start + int(lengths[i])], -1)
    return ids


def count_words(path: str, chunk_bytes: int = 1 << 23) -> collections.Counter:
  """``{word: count}`` of a text file's tokens (split as ``read_sentences``
  splits them), for ``Vocabulary.from_counts``."""
  counter = collections.Counter()
  lows, highs, counts = [], [], []
  for block in _blocks(path, chunk_bytes):
    split = _split_block(block) if b"\0" not in block else None
    if split is None:
      counter.update(block.decode("utf-8").split())
      continue
    # Without NUL bytes a token of up to 16 bytes is exactly its two words.
    data, starts, lengths, _ = split
    short = lengths <= _SHORT
    low, high, _ = _keys(data, starts[short], lengths[short])
    for part in _count_keys(low, high):
      lows.append(part[0]), highs.append(part[1]), counts.append(part[2])
    counter.update(block[b:b + n].decode("utf-8")
                   for b, n in zip(starts[~short].tolist(), lengths[~short].tolist()))
  if lows:
    for low, high, count in _count_keys(np.concatenate(lows), np.concatenate(highs),
                                        np.concatenate(counts)):
      rows = np.stack([low, high], axis=1).astype("<u8").view(np.uint8).reshape(-1, 16)
      counter.update({bytes(row).rstrip(b"\0").decode("utf-8"): c
                      for row, c in zip(rows, count.tolist())})
  return counter


def _count_keys(low, high, weights=None):
  """The distinct (low, high) pairs and their total weights (default 1):
  tokens of up to 8 bytes (``high`` 0) by ``low`` alone, longer ones by
  both."""
  parts = []
  for rows in (high == 0, high != 0):
    l, h = low[rows], high[rows]
    if not len(l):
      continue
    if weights is None and not np.any(h):
      l = np.sort(l)
      first = np.flatnonzero(np.concatenate([[True], l[1:] != l[:-1]]))
      parts.append((l[first], h[first], np.diff(np.append(first, len(l)))))
      continue
    w = np.ones(len(l), np.int64) if weights is None else weights[rows]
    order = np.lexsort((l, h))
    l, h, w = l[order], h[order], w[order]
    first = np.flatnonzero(np.concatenate([[True], (l[1:] != l[:-1]) | (h[1:] != h[:-1])]))
    parts.append((l[first], h[first], np.add.reduceat(w, first)))
  return parts


def _encode_block_slow(block: bytes, vocab: Vocabulary):
  """(ids, lines, positions in line) of a block's tokens, by ``str.split``."""
  tokens, lengths = [], []
  for line in block.decode("utf-8").split("\n"):
    words = line.split()
    tokens += words
    lengths.append(len(words))
  lengths = np.asarray(lengths, np.int64)
  lines = np.repeat(np.arange(len(lengths)), lengths)
  return vocab.ids(tokens), lines, np.arange(len(tokens)) - (np.cumsum(lengths) - lengths)[lines]


def encode_corpus(path: str, vocab: Vocabulary,
                  max_sentence_length: int = MAX_SENTENCE_LENGTH,
                  chunk_bytes: int = 1 << 23, _fast: bool = True
                  ) -> Tuple[np.ndarray, np.ndarray]:
  """The in-vocabulary tokens of a text file (one sentence per line, split
  as ``read_sentences`` splits it) as int32 ids ``[T]`` and the int32
  sentence of each ``[T]``: sentences numbered 0, 1, ... in file order,
  counting only those left with a word; a line longer than
  ``max_sentence_length`` raw tokens is several sentences (``LineSentence``).
  Reads ``chunk_bytes`` at a time (a line may span blocks: text8 is one
  line); invalid UTF-8 raises."""
  if max_sentence_length < 1:
    raise ValueError(f"max_sentence_length must be at least 1, got {max_sentence_length}")
  lookup = _Lookup(vocab) if _fast else None
  fast = _fast and lookup.unique
  pieces_per_line = 1 + 2**31 // max_sentence_length
  token_parts, sentence_parts = [], []
  line_offset, carried, last_key, last_sentence = 0, 0, -1, -1
  for block in _blocks(path, chunk_bytes):
    split = _split_block(block) if fast else None
    if split is None:
      ids, lines, position = _encode_block_slow(block, vocab)
    else:
      data, starts, lengths, lines = split
      ids = lookup(data, starts, lengths)
      line_start = np.concatenate([[0], np.flatnonzero(np.diff(lines)) + 1])
      first = np.repeat(line_start, np.diff(np.concatenate([line_start, [len(lines)]])))
      position = np.arange(len(lines)) - first if len(lines) else lines
    position = position + np.where(lines == 0, carried, 0)  # the line goes on
    newlines = block.count(b"\n")
    carried = 0 if block.endswith(b"\n") else (
        int(np.sum(lines == newlines)) + (carried if newlines == 0 else 0))
    keep = ids >= 0
    key = ((lines + line_offset) * pieces_per_line + position // max_sentence_length)[keep]
    line_offset += newlines
    ids = ids[keep]
    if not len(ids):
      continue
    new = np.concatenate([[key[0] != last_key], key[1:] != key[:-1]])
    sentence = last_sentence + np.cumsum(new)
    last_key, last_sentence = int(key[-1]), int(sentence[-1])
    token_parts.append(ids)
    sentence_parts.append(sentence.astype(np.int32))
  if not token_parts:
    return np.zeros(0, np.int32), np.zeros(0, np.int32)
  return np.concatenate(token_parts), np.concatenate(sentence_parts)


class WindowSource:
  """Corpus positions with their windows, as a source: example i is
  ``{"centre": int32 [], "context": int32 [2 * reach], "context_valid": bool
  [2 * reach]}``, the context being the ``reach`` tokens before position i
  (farthest first) then the ``reach`` after (nearest first), valid where they
  are in i's sentence; invalid slots hold ``PAD_ID``."""

  def __init__(self, token_ids, sentence_ids, reach: int):
    self.token_ids = np.asarray(token_ids, np.int32)
    self.sentence_ids = np.asarray(sentence_ids, np.int32)
    if self.token_ids.ndim != 1 or self.token_ids.shape != self.sentence_ids.shape:
      raise ValueError(f"WindowSource needs token_ids and sentence_ids of one "
                       f"shape [T], got {self.token_ids.shape} and {self.sentence_ids.shape}")
    if reach < 1:
      raise ValueError(f"reach must be at least 1, got {reach}")
    self.reach = int(reach)
    self.offsets = np.concatenate([np.arange(-reach, 0), np.arange(1, reach + 1)])
    self.element_spec = {CENTRE: ((), "int32"), CONTEXT: ((2 * reach,), "int32"),
                         CONTEXT_VALID: ((2 * reach,), "bool")}

  def __len__(self):
    return len(self.token_ids)

  def get(self, indices) -> Dict[str, np.ndarray]:
    i = np.asarray(indices, np.int64).reshape(-1)
    if i.size and (i.min() < 0 or i.max() >= len(self)):
      raise IndexError(f"WindowSource has {len(self)} positions, asked for "
                       f"{i.min()}..{i.max()}")
    at = i[:, None] + self.offsets[None, :]
    inside = (at >= 0) & (at < len(self))
    at = np.clip(at, 0, max(len(self) - 1, 0))
    valid = inside & (self.sentence_ids[at] == self.sentence_ids[i][:, None])
    return {CENTRE: self.token_ids[i],
            CONTEXT: np.where(valid, self.token_ids[at], PAD_ID).astype(np.int32),
            CONTEXT_VALID: valid}


# ----------------------------------------------------------------------------
# Per-epoch randomness (device).
# ----------------------------------------------------------------------------


def sample_pairs(key: jax.Array, centre: jax.Array, context: jax.Array,
                 context_valid: jax.Array, keep_prob: jax.Array, window: int,
                 shrink_windows: bool = True) -> Tuple[jax.Array, jax.Array]:
  """Which pairs of a batch of ``WindowSource`` examples gensim would train
  on: ``(centre_keep bool [n], context_mask bool [n, 2 * reach])``.

  Each centre and each valid context token is kept with probability
  ``keep_prob[id]`` (subsampling removes words from the sentence before the
  window is laid); each centre draws b uniformly in 1..``window``
  (``shrink_windows=False``: b = window) and its pairs are the kept tokens
  that are among the first b kept on each side, counted outward. A row whose
  centre is dropped has no pair. ``window`` <= reach; a kept word more than
  ``reach`` raw positions away is never reached, so make ``reach`` larger
  than ``window`` when subsampling (``truncated_fraction`` estimates the
  pairs lost)."""
  n, width = context.shape
  reach = width // 2
  if width != 2 * reach or centre.shape != (n,) or context_valid.shape != (n, width):
    raise ValueError(f"sample_pairs needs centre [n], context and context_valid "
                     f"[n, 2 * reach], got {centre.shape}, {context.shape}, "
                     f"{context_valid.shape}")
  if not 1 <= window <= reach:
    raise ValueError(f"window must be in 1..reach ({reach}), got {window}")
  k_centre, k_context, k_window = jax.random.split(key, 3)
  keep_prob = jnp.asarray(keep_prob, jnp.float32)
  centre_keep = jax.random.uniform(k_centre, (n,)) < keep_prob[centre]
  kept = (context_valid
          & (jax.random.uniform(k_context, (n, width)) < keep_prob[context]))
  if shrink_windows:
    b = jax.random.randint(k_window, (n, 1), 1, window + 1)
  else:
    b = jnp.full((n, 1), window)
  left = kept[:, :reach][:, ::-1]  # nearest first
  right = kept[:, reach:]
  left = left & (jnp.cumsum(left, axis=1) <= b)
  right = right & (jnp.cumsum(right, axis=1) <= b)
  mask = jnp.concatenate([left[:, ::-1], right], axis=1) & centre_keep[:, None]
  return centre_keep, mask
