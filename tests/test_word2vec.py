"""word2vec end to end on a tiny topical corpus (``tiny_text``): training on
the trainer learns that words of a topic share contexts, the vocabulary and
tables travel as named ``table`` encoders with their asset, a resumed run is
bitwise the uninterrupted one with its constants restored (not recomputed),
`sslax eval words` scores it, and users' mistakes are one line."""

import json
import os

import numpy as np
import pytest

import states
from conftest import ROOT, TINY_TEXT_TOPICS, fails_cleanly
from sslax import cli
from sslax.config_loading import load_config_file
from sslax.data import word_windows
from sslax.eval.protocols import words as words_eval
from sslax.train import artifact
from sslax.train.loop import train_and_evaluate


def _config(tiny_text, **w2v):
  config = load_config_file(os.path.join(ROOT, "configs", "word2vec.py:smoke"))
  config.data.data_dir = tiny_text
  config.word2vec.update(w2v)
  config.update(num_steps=6, checkpoint_every=3, log_every=3, progress_bar=False)
  return config


def _unit(x):
  return x / np.linalg.norm(x, axis=1, keepdims=True)


# (update_cap, learning rate): every word of this corpus is in every batch
# many times over, so a step moves each by its cap's worth of pairs' updates:
# at a cap of 1, one, at a rate forty times word2vec's; at the configs' cap
# of 32, up to 32, at a sixteenth of that rate (in 400 steps CBOW separates
# the topics from a rate of 1/16 up, not at 1/32 or below).
@pytest.mark.parametrize("cap,rate", [(1.0, 1.0), (32.0, 1.0 / 16)])
@pytest.mark.parametrize("cbow", [False, True])
def test_words_of_a_topic_end_up_closer_than_words_of_others(tmp_path, tiny_text, cbow, cap,
                                                             rate):
  config = _config(tiny_text, cbow=cbow, update_cap=cap)
  config.update(num_steps=400, global_batch_size=256, checkpoint_every=400, log_every=100)
  config.optimizer.learning_rate = rate
  train_and_evaluate(config, str(tmp_path))
  encoder = artifact.restore_encoder(str(tmp_path))
  vocab = words_eval.vocabulary(encoder, str(tmp_path))
  vectors = _unit(words_eval.table(encoder))
  index = {w: i for i, w in enumerate(vocab)}
  topic = {w: t for t, words in enumerate(TINY_TEXT_TOPICS) for w in words}
  ids = [index[w] for w in topic]
  sims = vectors[ids] @ vectors[ids].T
  same = np.equal.outer([topic[vocab[i]] for i in ids], [topic[vocab[i]] for i in ids])
  off_diagonal = ~np.eye(len(ids), dtype=bool)
  within, across = sims[same & off_diagonal].mean(), sims[~same].mean()
  # At initialisation both are about 0; learnt, the topics separate.
  assert within > across + 0.3, (within, across)


def test_resumed_equals_uninterrupted_with_constants_restored(tmp_path, tiny_text,
                                                              monkeypatch):
  config = _config(tiny_text)
  full = states.leaves(train_and_evaluate(config, str(tmp_path / "full")))
  partial = states.leaves(train_and_evaluate(config, str(tmp_path / "resumed"), stop_at=3))
  states.assert_moved(partial, full, "params")
  # The resumed run restores the tables from the checkpoint: what it would
  # compute now is replaced (a changed corpus cannot change them).
  real = word_windows.source

  def with_other_counts(data_config, split):
    source = real(data_config, split)
    source.vocabulary = type(source.vocabulary)(
        source.vocabulary.words, source.vocabulary.counts + 1000)
    return source

  monkeypatch.setitem(__import__("sslax.data.sources", fromlist=["SOURCES"]).SOURCES,
                      "text_corpus", with_other_counts)
  resumed = train_and_evaluate(config, str(tmp_path / "resumed"))
  states.assert_states_equal(resumed, full, context="word2vec")
  assert not any(k.startswith("probe") for k in full)


def test_encoders_and_vocabulary_are_saved_and_exported(tmp_path, tiny_text, capsys):
  workdir = tmp_path / "run"
  train_and_evaluate(_config(tiny_text), str(workdir))
  assert artifact.encoder_names(str(workdir)) == ["words", "context"]
  described = json.loads((workdir / "encoders" / "words.json").read_text())
  assert (described["output"], described["input_key"], described["input_dtype"]) == (
      "table", "centre", "int32")
  assert described["assets"] == ["vocab.json"] and described["primary"]
  assert json.loads((workdir / "encoder.json").read_text())["name"] == "words"
  vocab = json.loads((workdir / "encoders" / "words" / "vocab.json").read_text())["words"]
  assert set(vocab) == {w for t in TINY_TEXT_TOPICS for w in t} | {
      "the", "a", "and", "of", "is", "was", "to", "in"}
  words = artifact.restore_encoder(str(workdir))
  context = artifact.restore_encoder(str(workdir), name="context")
  assert words_eval.table(words).shape == words_eval.table(context).shape == (len(vocab), 16)
  assert not np.allclose(words_eval.table(words), words_eval.table(context))
  cli.run(["export", "--workdir", str(workdir), "--out", str(tmp_path / "export")])
  capsys.readouterr()
  from sslax.export import load_encoder  # pylint: disable=g-import-not-at-top
  _, variables, info = load_encoder(str(tmp_path / "export"), name="context")
  np.testing.assert_array_equal(np.asarray(variables["params"]["embedding"]),
                                words_eval.table(context))
  assert info["name"] == "context" and (tmp_path / "export/encoders/context/vocab.json").exists()


def test_eval_words_scores_the_table_and_refuses_other_protocols(tmp_path, tiny_text,
                                                                 capsys):
  workdir = tmp_path / "run"
  train_and_evaluate(_config(tiny_text), str(workdir))
  files = tmp_path / "evalfiles"
  files.mkdir()
  (files / "questions-words.txt").write_text(
      ": capital-common-countries\nking queen cat dog\n: gram1-adjective-to-adverb\n"
      "red blue one two\nred blue one unknownword\n")
  for name in ("wordsim353.tsv", "simlex999.txt"):
    (files / name).write_text("# w1\tw2\tscore\nking\tqueen\t9\ncat\tdog\t8\nred\tone\t1\n")
  cli.run(["eval", "words", "--json", "--workdir", str(workdir), "--data-dir", str(files)])
  result = json.loads(capsys.readouterr().out)
  assert result["analogies"]["total"]["covered"] == 2
  assert result["analogies"]["total"]["total"] == 3
  assert result["wordsim353"]["covered"] == 3
  assert (workdir / "eval" / "words.json").exists()
  fails_cleanly(capsys, ["eval", "linear", "--workdir", str(workdir)],
                "needs a vector encoder but the primary encoder")
  fails_cleanly(capsys, ["eval", "words", "--workdir", str(workdir), "--encoder", "nope"],
                "has no encoder 'nope'; its encoders are words, context")
  for name in ("questions-words.txt", "wordsim353.tsv", "simlex999.txt"):
    (files / name).write_text(": s\nzzz yyy xxx www\n" if name.startswith("q")
                              else "zzz\tyyy\t3\n")
  fails_cleanly(capsys, ["eval", "words", "--workdir", str(workdir), "--data-dir",
                         str(files)], "covers none of its words")


@pytest.mark.parametrize("override, match", [
    ("--config.word2vec.window=0", "config.word2vec.window must be positive"),
    ("--config.word2vec.negatives=0", "config.word2vec.negatives must be positive"),
    ("--config.word2vec.window=12", "exceeds config.data.reach"),
    ("--config.word2vec.update_cap=0.5", "config.word2vec.update_cap must be at least 1"),
    ("--config.data.min_count=100000", "occurs 100000 times or more"),
])
def test_bad_settings_are_one_line(tmp_path, tiny_text, capsys, override, match):
  fails_cleanly(capsys, ["train", "--config", os.path.join(ROOT, "configs/word2vec.py:smoke"),
                         "--workdir", str(tmp_path / "run"),
                         f"--config.data.data_dir={tiny_text}", override], match)
  assert not (tmp_path / "run").exists()


def test_an_empty_or_missing_corpus_is_one_line(tmp_path, capsys):
  empty = tmp_path / "empty"
  empty.mkdir()
  for name in ("train.txt", "heldout.txt"):
    (empty / name).write_text("\n\n")
  (empty / "meta.json").write_text("{}")
  config = os.path.join(ROOT, "configs/word2vec.py:smoke")
  fails_cleanly(capsys, ["train", "--config", config, "--workdir", str(tmp_path / "a"),
                         f"--config.data.data_dir={empty}"], "lower --config.data.min_count")
  fails_cleanly(capsys, ["train", "--config", config, "--workdir", str(tmp_path / "b"),
                         f"--config.data.data_dir={tmp_path / 'nothing'}"], "make text")


def test_compacting_keeps_every_chosen_pair():
  import jax  # pylint: disable=g-import-not-at-top
  from sslax.methods.word2vec import compact  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  ids = rng.integers(0, 50, (64, 20)).astype(np.int32)
  mask = rng.random((64, 20)) < 0.3
  mask[:, 10:] &= np.cumsum(mask, axis=1)[:, 10:] <= 10  # at most 10 a row
  got_ids, got_mask = jax.device_get(compact(ids, mask, 10))
  for row in range(64):
    assert sorted(got_ids[row][got_mask[row]]) == sorted(ids[row][mask[row]])


@pytest.mark.parametrize("cap", [1, 2, 100])
def test_a_word_moves_by_the_sum_of_up_to_cap_occurrences_gradients(cap):
  """``lookup``'s gradient to a row is the sum of the row's occurrences'
  gradients (counted over every lookup of the step) times cap / their count
  where they are more than ``cap``: their mean at cap 1, their sum at a cap
  above every count; the values unchanged."""
  import jax  # pylint: disable=g-import-not-at-top
  from sslax.methods.word2vec import lookup, occurrences  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  table = rng.normal(size=(6, 3)).astype(np.float32)
  a, b = np.array([0, 2, 2, 5], np.int32), np.array([[2, 6], [0, 6]], np.int32)  # 6: none
  wa, wb = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(2, 2, 3)).astype(
      np.float32)

  def f(t):
    counts = occurrences(6, a, b, cap=cap)
    return (jax.numpy.sum(lookup(t, a, counts) * wa) +
            jax.numpy.sum(lookup(t, np.minimum(b, 5), counts) * wb * (b < 6)[..., None]))

  want = np.zeros_like(table)
  uses = {}
  for i, row in enumerate(a):
    uses.setdefault(int(row), []).append(wa[i])
  for i, j in np.ndindex(b.shape):
    if b[i, j] < 6:
      uses.setdefault(int(b[i, j]), []).append(wb[i, j])
  for row, grads in uses.items():
    want[row] = np.sum(grads, axis=0) * min(1.0, cap / len(grads))
  np.testing.assert_allclose(np.asarray(jax.grad(f)(table)), want, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(lookup(table, a, occurrences(6, a))), table[a])
