"""Word2vec's data (sslax.data.skipgram): the vocabulary and its tables
against gensim's formulas computed by hand, the corpus encoder against a
plain Python reading of the file, the window source, and the on-device pair
draw against a pure-Python rendering of gensim's training loop."""

import collections
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sslax.data import skipgram as sg
from sslax.data import source as source_lib

# ----------------------------------------------------------------------------
# Vocabulary and tables.
# ----------------------------------------------------------------------------

SENTENCES = [["b", "a", "c", "a"], ["d", "b", "a"], [], ["c", "e", "b", "d", "f"]]
# counts: a 3, b 3, c 2, d 2, e 1, f 1


def test_vocabulary_min_count_and_order():
  vocab = sg.Vocabulary.build(SENTENCES, min_count=2)
  assert vocab.words == ("a", "b", "c", "d")  # by count, ties alphabetically
  assert vocab.counts.dtype == np.int64
  assert vocab.counts.tolist() == [3, 3, 2, 2]
  assert vocab.total == 10
  assert len(vocab) == 4
  everything = sg.Vocabulary.build(SENTENCES, min_count=1)
  assert everything.words == ("a", "b", "c", "d", "e", "f")


def test_vocabulary_max_size_drops_the_ties_at_the_cut():
  # gensim's max_final_vocab: the minimum count becomes one more than the
  # count of the first word past the cut.
  assert sg.Vocabulary.build(SENTENCES, min_count=1, max_size=3).words == ("a", "b")
  assert sg.Vocabulary.build(SENTENCES, min_count=1, max_size=4).words == ("a", "b", "c", "d")
  assert sg.Vocabulary.build(SENTENCES, min_count=1, max_size=100).words == tuple("abcdef")
  assert sg.Vocabulary.build(SENTENCES, min_count=3, max_size=4).words == ("a", "b")


def test_vocabulary_ids_json_and_checks():
  vocab = sg.Vocabulary.build(SENTENCES, min_count=2)
  ids = vocab.ids(["d", "zzz", "a"])
  assert ids.dtype == np.int32 and ids.tolist() == [3, -1, 0]
  assert vocab.ids("a  b\tq").tolist() == [0, 1, -1]
  assert vocab.ids([]).shape == (0,)
  text = vocab.to_json()
  assert json.loads(text) == {"words": ["a", "b", "c", "d"], "counts": [3, 3, 2, 2]}
  again = sg.Vocabulary.from_json(text)
  assert again == vocab and hash(again) == hash(vocab)
  assert again.ids(["c"]).tolist() == [2]
  assert sg.Vocabulary.from_json(sg.Vocabulary((), []).to_json()) == sg.Vocabulary((), [])
  with pytest.raises(ValueError, match="ordered"):
    sg.Vocabulary(("b", "a"), [3, 3])
  with pytest.raises(ValueError, match="ordered"):
    sg.Vocabulary(("a", "b"), [1, 3])
  with pytest.raises(ValueError, match="whitespace"):
    sg.Vocabulary(("a b",), [3])
  with pytest.raises(ValueError, match="counts"):
    sg.Vocabulary(("a",), [3, 2])
  with pytest.raises(ValueError):
    sg.Vocabulary.from_json('{"words": ["a"]}')


def test_keep_probabilities_by_hand():
  counts = [1000, 100, 10, 1, 0]
  sample = 0.01
  t = sample * 1111  # the threshold: sample times the vocabulary's total count
  want = [min(1.0, (math.sqrt(c / t) + 1) * t / c) if c else 1.0 for c in counts]
  # By hand: 1000 -> (sqrt(1000 / 11.11) + 1) * 11.11 / 1000 = 10.4873 * 0.01111,
  # 100 -> (3.00015 + 1) * 0.1111; 10 -> (0.9487 + 1) * 1.111 > 1.
  np.testing.assert_allclose(want, [0.116514, 0.444417, 1, 1, 1], atol=1e-6)
  got = sg.keep_probabilities(counts, sample)
  assert got.dtype == np.float32
  np.testing.assert_allclose(got, want, rtol=1e-6)
  assert got[2] == got[3] == 1.0  # rare words are always kept
  np.testing.assert_array_equal(sg.keep_probabilities(counts, 0), 1.0)
  # gensim's shorthand: sample >= 1 is a count, t = int(sample * (3 + sqrt 5) / 2)
  t = int(20 * (3 + math.sqrt(5)) / 2)
  np.testing.assert_allclose(sg.keep_probabilities([1000, 10], 20),
                             [(math.sqrt(1000 / t) + 1) * t / 1000, 1.0], rtol=1e-6)


def test_noise_distribution():
  counts = np.asarray([16, 81, 1, 0])
  got = sg.noise_distribution(counts)
  weights = np.asarray([8.0, 27.0, 1.0, 0.0])  # count ** 0.75
  assert got.dtype == np.float32
  np.testing.assert_allclose(got, weights / weights.sum(), rtol=1e-6)
  np.testing.assert_allclose(sg.noise_distribution(counts, power=0.0), 0.25)
  with pytest.raises(ValueError):
    sg.noise_distribution(np.zeros(3))


def test_tables_match_gensim(tmp_path):
  gensim = pytest.importorskip("gensim.models")
  rng = np.random.default_rng(1)
  words = [f"w{i}" for i in range(200)]
  p = 1 / np.arange(1, 201)
  path = tmp_path / "zipf.txt"
  path.write_text("".join(
      " ".join(rng.choice(words, size=rng.integers(0, 30), p=p / p.sum())) + "\n"
      for _ in range(600)))
  model = gensim.Word2Vec(min_count=3, sample=1e-3, vector_size=4, workers=1)
  model.build_vocab(corpus_iterable=gensim.word2vec.LineSentence(str(path)))
  vocab = sg.Vocabulary.build(sg.read_sentences(str(path)), min_count=3)
  assert set(vocab.words) == set(model.wv.index_to_key)
  assert [model.wv.get_vecattr(w, "count") for w in vocab.words] == vocab.counts.tolist()
  sample_int = np.asarray([model.wv.get_vecattr(w, "sample_int") for w in vocab.words])
  np.testing.assert_allclose(sg.keep_probabilities(vocab.counts, 1e-3), sample_int / 2**32,
                             atol=1e-7)
  cum = model.cum_table.astype(np.float64)
  gensim_noise = np.diff(np.concatenate([[0.0], cum])) / cum[-1]
  at = [model.wv.key_to_index[w] for w in vocab.words]
  np.testing.assert_allclose(sg.noise_distribution(vocab.counts), gensim_noise[at], rtol=1e-5)
  for size in (40, 41):
    capped = gensim.Word2Vec(min_count=3, max_final_vocab=size, vector_size=4, workers=1)
    capped.build_vocab(corpus_iterable=gensim.word2vec.LineSentence(str(path)))
    ours = sg.Vocabulary.build(sg.read_sentences(str(path)), min_count=3, max_size=size)
    assert set(ours.words) == set(capped.wv.index_to_key)


# ----------------------------------------------------------------------------
# The corpus.
# ----------------------------------------------------------------------------


def reference_encoding(path, vocab, max_sentence_length=sg.MAX_SENTENCE_LENGTH):
  """The encoding by read_sentences (gensim's LineSentence), word by word."""
  ids, sentences = [], []
  for sentence in sg.read_sentences(str(path), max_sentence_length):
    kept = [vocab.index[w] for w in sentence if w in vocab.index]
    if kept:
      sentences += [sentences[-1] + 1 if sentences else 0] * len(kept)
      ids += kept
  return np.asarray(ids, np.int32), np.asarray(sentences, np.int32)


def test_encode_corpus_tiny_file(tmp_path):
  path = tmp_path / "tiny.txt"
  path.write_text("the cat sat\n\nqqq zzz\nthe  dog\tsat the\r\ncat\n  \nthe end")
  vocab = sg.Vocabulary.build([["the", "cat", "sat", "dog"]], min_count=1)
  assert vocab.words == ("cat", "dog", "sat", "the")
  tokens, sentences = sg.encode_corpus(str(path), vocab)
  assert tokens.dtype == np.int32 and sentences.dtype == np.int32
  # "qqq zzz" and the blank lines leave no sentence; "end" is dropped.
  assert tokens.tolist() == [3, 0, 2, 3, 1, 2, 3, 0, 3]
  assert sentences.tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 3]
  cut, cut_sentences = sg.encode_corpus(str(path), vocab, max_sentence_length=2)
  # LineSentence cuts lines into pieces of 2 raw tokens (before dropping).
  assert cut.tolist() == tokens.tolist()
  assert cut_sentences.tolist() == [0, 0, 1, 2, 2, 3, 3, 4, 5]
  for got, want in zip((cut, cut_sentences), reference_encoding(path, vocab, 2)):
    np.testing.assert_array_equal(got, want)
  empty = tmp_path / "empty.txt"
  empty.write_text("\n\nqqq\n")
  tokens, sentences = sg.encode_corpus(str(empty), vocab)
  assert tokens.shape == sentences.shape == (0,)


def tricky_corpus(path, rng):
  """Lines of words with long words, non-ASCII words, NUL bytes, \\x1c, \\r
  and runs of blanks; some lines with Unicode spaces; a long line."""
  words = (["a", "bb", "ccc", "dddddddd", "eeeeeeeee", "f" * 16, "g" * 17, "été",
            "日本語", "x\x00y", "h" * 40, "oov", "oov2", "éé" * 5]
           + [f"w{i}" for i in range(50)])
  seps = [" ", " ", " ", "  ", "\t", "\r", "\x1c"]
  lines = []
  for i in range(400):
    n = int(rng.integers(0, 25))
    line = "".join(words[int(rng.integers(len(words)))] + seps[int(rng.integers(len(seps)))]
                   for _ in range(n))
    if i % 97 == 5:
      line += "\u3000w1\xa0w2"  # Unicode whitespace: str.split splits there
    lines.append(line)
  lines.append(" ".join(["a", "bb"] * 300))  # a long line
  path.write_bytes(("\n".join(lines)).encode("utf-8"))


def test_encode_corpus_matches_line_sentence_whatever_the_blocks(tmp_path):
  rng = np.random.default_rng(0)
  path = tmp_path / "tricky.txt"
  tricky_corpus(path, rng)
  counts = collections.Counter(w for s in sg.read_sentences(str(path)) for w in s)
  assert counts["日本語"] and counts["x\x00y"] and counts["g" * 17]
  assert counts == sg.count_words(str(path)) == sg.count_words(str(path), chunk_bytes=333)
  vocab = sg.Vocabulary.from_counts(
      {w: c for w, c in counts.items() if not w.startswith("oov")}, min_count=1)
  assert "h" * 40 in vocab.index and "w1" in vocab.index
  for length in (sg.MAX_SENTENCE_LENGTH, 7):
    want = reference_encoding(path, vocab, length)
    assert len(want[0]) > 1000
    for chunk in (1 << 20, 1000, 97):
      for fast in (True, False):
        got = sg.encode_corpus(str(path), vocab, length, chunk_bytes=chunk, _fast=fast)
        np.testing.assert_array_equal(got[0], want[0], err_msg=f"{length} {chunk} {fast}")
        np.testing.assert_array_equal(got[1], want[1], err_msg=f"{length} {chunk} {fast}")


def test_encode_corpus_one_long_line_in_many_blocks(tmp_path):
  path = tmp_path / "text8.txt"  # text8 is one line of 17M words
  rng = np.random.default_rng(3)
  path.write_text(" " + " ".join(rng.choice(["a", "bb", "oov"], size=5000)))
  vocab = sg.Vocabulary.from_counts({"a": 2, "bb": 1}, min_count=1)
  for length in (10000, 64):
    want = reference_encoding(path, vocab, length)
    got = sg.encode_corpus(str(path), vocab, length, chunk_bytes=100)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
  assert got[1].max() == 5000 // 64


def test_encode_corpus_rejects_invalid_utf8(tmp_path):
  path = tmp_path / "bad.txt"
  path.write_bytes(b"a b\n\xff\xfe c\n")
  vocab = sg.Vocabulary.from_counts({"a": 1}, min_count=1)
  with pytest.raises(UnicodeDecodeError):
    sg.encode_corpus(str(path), vocab)


# ----------------------------------------------------------------------------
# The window source.
# ----------------------------------------------------------------------------


def test_window_source_respects_sentences_and_pads():
  tokens = np.asarray([10, 11, 12, 13, 14, 15, 16], np.int32)
  sentences = np.asarray([0, 0, 0, 1, 1, 2, 2], np.int32)
  source = sg.WindowSource(tokens, sentences, reach=2)
  assert isinstance(source, source_lib.Source)
  assert len(source) == 7
  assert source.element_spec == {"centre": ((), "int32"), "context": ((4,), "int32"),
                                 "context_valid": ((4,), "bool")}
  batch = source_lib.check_examples(source, source.get([0, 2, 3, 6, 1]), count=5)
  pad = sg.PAD_ID
  # context: positions i-2, i-1, i+1, i+2 when in i's sentence
  assert batch["centre"].tolist() == [10, 12, 13, 16, 11]
  assert batch["context"].tolist() == [[pad, pad, 11, 12], [10, 11, pad, pad],
                                       [pad, pad, 14, pad], [pad, 15, pad, pad],
                                       [pad, 10, 12, pad]]
  assert batch["context_valid"].tolist() == [[0, 0, 1, 1], [1, 1, 0, 0], [0, 0, 1, 0],
                                             [0, 1, 0, 0], [0, 1, 1, 0]]
  assert source.get(np.zeros(0, int))["context"].shape == (0, 4)
  with pytest.raises(IndexError):
    source.get([7])
  with pytest.raises(ValueError):
    sg.WindowSource(tokens, sentences[:3], reach=2)


# ----------------------------------------------------------------------------
# The pair draw.
# ----------------------------------------------------------------------------


def test_sample_pairs_without_subsampling_or_shrinking_is_the_window():
  source = sg.WindowSource(np.arange(30) % 7, np.arange(30) // 8, reach=3)
  batch = source.get(np.arange(30))
  keep = jnp.ones(7)
  centre_keep, mask = sg.sample_pairs(jax.random.key(0), batch["centre"], batch["context"],
                                      batch["context_valid"], keep, window=3,
                                      shrink_windows=False)
  assert centre_keep.dtype == jnp.bool_ and mask.dtype == jnp.bool_
  assert bool(jnp.all(centre_keep))
  np.testing.assert_array_equal(mask, batch["context_valid"])
  _, shrunk = sg.sample_pairs(jax.random.key(1), batch["centre"], batch["context"],
                              batch["context_valid"], keep, window=3)
  assert not np.any(np.asarray(shrunk) & ~batch["context_valid"])
  with pytest.raises(ValueError, match="window"):
    sg.sample_pairs(jax.random.key(0), batch["centre"], batch["context"],
                    batch["context_valid"], keep, window=4)


def test_dynamic_window_mean_number_of_contexts():
  window, reach, n = 4, 6, 40000
  # one long sentence and a short one: the exact expectation counts the ends
  sentences = np.concatenate([np.zeros(n - 3, int), np.ones(3, int)])
  source = sg.WindowSource(np.zeros(n, np.int32), sentences, reach)
  batch = source.get(np.arange(n))
  left = np.sum(batch["context_valid"][:, :reach], axis=1)
  right = np.sum(batch["context_valid"][:, reach:], axis=1)
  per_centre = np.mean([np.minimum(b, left) + np.minimum(b, right)
                        for b in range(1, window + 1)], axis=0)
  want = per_centre.mean()
  assert want == pytest.approx(window + 1, abs=0.01)  # 2 * mean(1..window)
  draw = jax.jit(sg.sample_pairs, static_argnames=("window",))
  _, mask = draw(jax.random.key(2), batch["centre"], batch["context"],
                 batch["context_valid"], jnp.ones(1), window=window)
  counts = np.sum(np.asarray(mask), axis=1)
  se = counts.std() / math.sqrt(n)
  assert abs(counts.mean() - want) < 4 * se, (counts.mean(), want, se)
  # b is uniform on 1..window: rows of the long sentence see 2, 4, 6, 8
  interior = counts[reach:n - 3 - reach]
  frequencies = np.bincount(interior, minlength=9)[[2, 4, 6, 8]] / len(interior)
  np.testing.assert_allclose(frequencies, 0.25, atol=0.015)
  assert np.all(np.isin(interior, [2, 4, 6, 8]))


def test_subsampled_words_do_not_count_towards_the_window():
  # ids: 0 is always dropped, 1 always kept
  keep = jnp.asarray([0.0, 1.0])
  context = jnp.asarray([[1, 1, 0, 0, 0, 0, 1, 1],    # left: far..near, right: near..far
                         [1, 0, 1, 0, 1, 0, 0, 1]], jnp.int32)
  valid = jnp.ones((2, 8), bool).at[1, 0].set(False)
  centre = jnp.asarray([1, 1], jnp.int32)
  _, mask = sg.sample_pairs(jax.random.key(0), centre, context, valid, keep, window=2,
                            shrink_windows=False)
  # Row 0: the two nearest kept words each side sit beyond two dropped ones.
  # Row 1: left kept words at distances 2 and 4 (distance 4 not valid: the
  # sentence starts there), right at 1 and 4.
  assert np.asarray(mask).astype(int).tolist() == [[1, 1, 0, 0, 0, 0, 1, 1],
                                                   [0, 0, 1, 0, 1, 0, 0, 1]]
  _, one = sg.sample_pairs(jax.random.key(0), centre, context, valid, keep, window=1,
                           shrink_windows=False)
  assert np.asarray(one).astype(int).tolist() == [[0, 1, 0, 0, 0, 0, 1, 0],
                                                  [0, 0, 1, 0, 1, 0, 0, 0]]
  # A dropped centre has no pairs.
  kept, mask = sg.sample_pairs(jax.random.key(0), jnp.asarray([0, 1]), context, valid,
                               keep, window=2)
  assert np.asarray(kept).tolist() == [False, True]
  assert not np.any(np.asarray(mask)[0])


def gensim_pairs(tokens, sentences, keep, window, rng):
  """The (centre position, context position) pairs of one epoch of gensim's
  ``train_batch_sg``: drop words with probability 1 - keep, then each kept
  word draws reduced_window in 0..window-1 over its sentence's kept words."""
  pairs = []
  for s in np.unique(sentences):
    kept = [i for i in np.flatnonzero(sentences == s) if rng.random() < keep[tokens[i]]]
    for a, i in enumerate(kept):
      b = window - int(rng.integers(0, window))
      pairs += [(i, kept[j]) for j in range(max(0, a - b), min(len(kept), a + b + 1))
                if j != a]
  return pairs


def test_sample_pairs_matches_gensims_loop():
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, 4, size=40)
  sentences = np.repeat([0, 1, 2], [18, 5, 17])
  keep = np.asarray([0.3, 0.6, 1.0, 0.8])
  window, reach, epochs = 3, 18, 3000  # reach >= sentence length: nothing truncated
  want = np.zeros((40, 40))
  for _ in range(epochs):
    for i, j in gensim_pairs(tokens, sentences, keep, window, rng):
      want[i, j] += 1
  source = sg.WindowSource(tokens, sentences, reach)
  batch = source.get(np.tile(np.arange(40), epochs))
  _, mask = sg.sample_pairs(jax.random.key(5), batch["centre"], batch["context"],
                            batch["context_valid"], jnp.asarray(keep), window)
  got = np.zeros((40, 40))
  rows = np.repeat(np.tile(np.arange(40), epochs)[:, None], 2 * reach, axis=1)
  cols = rows + source.offsets[None, :]
  np.add.at(got, (rows[np.asarray(mask)], cols[np.asarray(mask)]), 1)
  assert got.sum() > 20000
  # Each entry is a count of epochs (Binomial(epochs, p)); compare as such.
  p = (want + got) / (2 * epochs)
  z = np.abs(want - got) / np.sqrt(np.maximum(2 * epochs * p * (1 - p), 1.0))
  assert z.max() < 5, z.max()
  same_sentence = sentences[:, None] == sentences[None, :]
  assert not np.any(got[~same_sentence]) and not np.any(np.diag(got))


def test_truncated_fraction_estimates_the_pairs_reach_misses():
  window, reach, n, rate = 5, 7, 20000, 0.5
  assert sg.truncated_fraction([1], [1.0], window, window) == pytest.approx(0.0)
  estimate = sg.truncated_fraction([1, 1], [rate, rate], window, reach)
  assert 0.05 < estimate < 0.5
  source = sg.WindowSource(np.zeros(n, np.int32), np.zeros(n, np.int32), reach)
  batch = source.get(np.arange(reach, n - reach))
  keep = jnp.asarray([rate])
  kept, mask = sg.sample_pairs(jax.random.key(3), batch["centre"], batch["context"],
                               batch["context_valid"], keep, window)
  seen = np.sum(np.asarray(mask)) / np.sum(np.asarray(kept))  # pairs per kept centre
  assert seen / (window + 1) == pytest.approx(1 - estimate, abs=0.02)
