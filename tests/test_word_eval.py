"""sslax.eval.words (analogies, word-pair similarity, neighbours, the table)
against answers known by construction, naive loops, scipy and gensim; and the
gensim peer trainer of launch/words_peer.py."""

import importlib.util
import os

import numpy as np
import pytest
from scipy import stats

from conftest import ROOT, load_launch_script
from sslax.errors import UserError
from sslax.eval import words


def write(path, text):
  path.write_text(text)
  return str(path)


def unit(rng, n, dim):
  x = rng.normal(size=(n, dim))
  return x / np.linalg.norm(x, axis=1, keepdims=True)


def planted(rng, dim=16):
  """king:queen::man:woman and paris:france::rome:italy hold exactly (the answer's
  direction is that of b - a + c on unit vectors); ``tie`` is so close to ``good``
  that good:better::tie:? would answer ``better`` if the question words were not
  excluded."""
  names = ["king", "queen", "man", "woman", "paris", "france", "rome", "italy",
           "good", "better", "tie", "best", "noise1", "noise2"]
  v = dict(zip(names, unit(rng, len(names), dim)))
  v["woman"] = 3.0 * (v["queen"] - v["king"] + v["man"])
  v["italy"] = 0.5 * (v["france"] - v["paris"] + v["rome"])
  v["tie"] = v["good"] + 1e-3 * v["noise1"]
  v["best"] = v["better"] + 0.3 * v["noise2"]
  return names, np.stack([v[n] for n in names]).astype(np.float32)


QUESTIONS = """\
: capital-common-countries
Paris France Rome Italy
Paris France Rome noise1
Paris France Berlin Germany
: family
king queen man woman
KING QUEEN man WOMAN
man woman king princess
this line has five words
: currency
: city-in-state
: capital-world
: gram1-adjective-to-adverb
good better tie best
good better unknown best
"""


def test_planted_analogies_sections_and_coverage(tmp_path):
  names, vectors = planted(np.random.default_rng(0))
  got = words.analogies(names, vectors, write(tmp_path / "q.txt", QUESTIONS))
  sections = got["sections"]
  assert list(sections) == ["capital-common-countries", "family", "currency", "city-in-state",
                            "capital-world", "gram1-adjective-to-adverb"]
  # Upper-case questions match the lowercase vocabulary; Berlin, princess and
  # unknown are not in it (not covered); the five-word line is no question.
  assert sections["capital-common-countries"] == {"correct": 1, "covered": 2, "total": 3,
                                                  "accuracy": 0.5}
  assert sections["family"] == {"correct": 2, "covered": 2, "total": 3, "accuracy": 1.0}
  assert sections["currency"] == {"correct": 0, "covered": 0, "total": 0, "accuracy": None}
  # best, not better (a question word, excluded)
  assert sections["gram1-adjective-to-adverb"] == {"correct": 1, "covered": 1, "total": 2,
                                                   "accuracy": 1.0}
  assert got["semantic"] == {"correct": 3, "covered": 4, "total": 6, "accuracy": 0.75}
  assert got["syntactic"] == {"correct": 1, "covered": 1, "total": 2, "accuracy": 1.0}
  assert got["total"] == {"correct": 4, "covered": 5, "total": 8, "accuracy": 0.8}


def naive_correct(vocab, vectors, questions):
  """3CosAdd by a loop: for each covered question a:b::c:d, is d the word w not
  in {a, b, c} maximising cos(w, u_b - u_a + u_c) on unit vectors u?"""
  index = {w: i for i, w in enumerate(vocab)}
  u = [np.asarray(v, np.float64) / np.linalg.norm(v) for v in vectors]
  correct = covered = 0
  for q in questions:
    if not all(w in index for w in q):
      continue
    covered += 1
    a, b, c, d = (index[w] for w in q)
    target = u[b] - u[a] + u[c]
    best, best_cos = None, -np.inf
    for i, ui in enumerate(u):
      if i in (a, b, c):
        continue
      cos = ui @ target / np.linalg.norm(target)
      if cos > best_cos:
        best, best_cos = i, cos
    correct += best == d
  return correct, covered


def test_analogies_match_a_naive_loop_on_random_vectors(tmp_path):
  rng = np.random.default_rng(1)
  vocab = [f"w{i}" for i in range(20)]
  vectors = rng.normal(size=(20, 3)).astype(np.float32)  # few, low-dim: some right by chance
  pool = vocab + ["oov1", "oov2"]
  sections = {f"sec{s}": [tuple(rng.choice(pool, 4, replace=False)) for _ in range(60)]
              for s in range(7)}
  text = "".join(f": {name}\n" + "".join(" ".join(q) + "\n" for q in qs)
                 for name, qs in sections.items())
  path = write(tmp_path / "q.txt", text)
  for batch in (None, 7):
    got = words.analogies(vocab, vectors, path, batch=batch)
    right = 0
    for name, qs in sections.items():
      correct, covered = naive_correct(vocab, vectors, qs)
      assert got["sections"][name]["correct"] == correct, name
      assert got["sections"][name]["covered"] == covered
      assert got["sections"][name]["total"] == 60
      right += correct
    assert got["total"]["correct"] == right and right > 10
    assert got["semantic"]["total"] == 5 * 60 and got["syntactic"]["total"] == 2 * 60


def test_restrict_and_case_variants(tmp_path):
  """Only the first ``restrict`` words count; a word's first case variant gives
  its vector and every variant is excluded from the answer."""
  rng = np.random.default_rng(2)
  vocab = ["a", "b", "c", "d", "C", "far"]
  v = unit(rng, 6, 8)
  v[3] = v[1] - v[0] + v[2]
  v[4] = v[3]  # "C", a variant of "c": an exact answer, but excluded
  path = write(tmp_path / "q.txt", ": s\na b c d\na b c far\n")
  got = words.analogies(vocab, v, path)
  assert got["total"] == {"correct": 1, "covered": 2, "total": 2, "accuracy": 0.5}
  got = words.analogies(vocab, v, path, restrict=4)
  assert got["total"] == {"correct": 1, "covered": 1, "total": 2, "accuracy": 1.0}


def test_spearman_matches_scipy_with_ties():
  rng = np.random.default_rng(3)
  for _ in range(5):
    x, y = rng.integers(0, 6, size=50), rng.normal(size=50).round(1)
    assert words.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
  assert np.isnan(words.spearman([1, 1, 1], [1, 2, 3]))


def test_similarity_against_scipy_and_coverage(tmp_path):
  rng = np.random.default_rng(4)
  vocab = [f"w{i}" for i in range(30)]
  vectors = rng.normal(size=(30, 5))
  lines = ["# comment line", "# Word 1\tWord 2\tHuman (mean)"]
  expect_cos, expect_human = [], []
  for k in range(40):
    i, j = rng.integers(0, 30, size=2)
    human = float(rng.integers(0, 10))  # ties
    lines.append(f"W{i}\tw{j}\t{human}")
    v, w = vectors[i], vectors[j]
    expect_cos.append(v @ w / np.linalg.norm(v) / np.linalg.norm(w))
    expect_human.append(human)
  lines += ["w1\tunknown\t3.0", "malformed line", "w1\tw2\tnot-a-number", ""]
  path = write(tmp_path / "pairs.tsv", "\n".join(lines) + "\n")
  rho, covered, total = words.similarity(vocab, vectors, path)
  assert (covered, total) == (40, 41)
  assert rho == pytest.approx(stats.spearmanr(expect_cos, expect_human)[0], abs=1e-9)


def test_no_coverage_is_a_user_error_naming_the_file(tmp_path):
  vocab, vectors = ["x", "y"], np.eye(2)
  q = write(tmp_path / "q.txt", ": s\na b c d\n")
  p = write(tmp_path / "p.tsv", "a\tb\t1.0\n")
  for call in (lambda: words.analogies(vocab, vectors, q),
               lambda: words.similarity(vocab, vectors, p)):
    with pytest.raises(UserError, match="covers none of its words") as e:
      call()
    message = str(e.value)
    assert str(tmp_path) in message and "min_count" in message and "\n" not in message
  partial = write(tmp_path / "partial.txt", ": s\nx y c d\n")
  with pytest.raises(UserError, match="covers none of its questions"):
    words.analogies(vocab, vectors, partial)


def test_test_data_dir_without_gensim(monkeypatch):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "gensim" else real(name, *a))
  with pytest.raises(UserError, match=r"make install.*sslax\[words\]"):
    words.test_data_dir()


def test_neighbours():
  vocab = ["a", "b", "c", "A", "d"]
  vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [1, 0], [-1, 0]], np.float32)
  got = words.neighbours(vocab, vectors, ["a", "missing", "c"], k=2)
  assert list(got) == ["a", "c"]
  assert [n for n, _ in got["a"]] == ["b", "c"]  # a and its variant A left out
  assert got["a"][0][1] == pytest.approx(0.9 / np.hypot(0.9, 0.1))
  assert [n for n, _ in got["c"]] == ["b", "a"]
  assert len(words.neighbours(vocab, vectors, ["a"], k=10)["a"]) == 3


def test_evaluate_and_table(tmp_path):
  names, vectors = planted(np.random.default_rng(0))
  write(tmp_path / words.QUESTIONS, QUESTIONS)
  write(tmp_path / words.WORDSIM353, "# h\nking\tqueen\t8\nman\tparis\t1\ngood\tbest\t6\n")
  write(tmp_path / words.SIMLEX999, "king\tman\t5\nrome\titaly\t2\n")
  result = words.evaluate(names, vectors, str(tmp_path), words=("king",))
  assert result["wordsim353"]["covered"] == 3 and result["simlex999"]["total"] == 2
  assert list(result["neighbours"]) == ["king"]
  lines = words.table_lines({"sslax": result, "gensim": dict(result, words_per_second=1234.5)})
  assert lines[0].split() == ["sslax", "gensim"]
  table = "\n".join(lines)
  for label in ("capital-common-countries", "semantic", "syntactic", "total",
                "WordSim-353 Spearman", "SimLex-999 Spearman", "training words/s", "1,234"):
    assert label in table
  assert "100.0% (2/3)" in table
  assert "training words/s" not in "\n".join(words.table_lines({"sslax": result}))


def test_analogies_match_gensim(tmp_path):
  gensim_models = pytest.importorskip("gensim.models")
  data = words.test_data_dir()
  path = os.path.join(data, words.QUESTIONS)
  pool = sorted({w.lower() for _, qs in words.read_questions(path) for q in qs for w in q})
  rng = np.random.default_rng(5)
  # The words of the family section, with female = male + a shared offset +
  # noise so that about half its questions are right; random others; words of
  # the similarity files; case variants.
  family = [q for name, qs in words.read_questions(path) if name == "family" for q in qs]
  pairs = dict(p for q in family for p in ((q[0], q[1]), (q[2], q[3])))
  vocab = list(dict.fromkeys([w for p in pairs.items() for w in p] +
                             list(rng.choice(pool, 300, replace=False))))
  for name in (words.WORDSIM353, words.SIMLEX999):
    vocab += [w.lower() for a, b, _ in words.read_pairs(os.path.join(data, name))[:40]
              for w in (a, b)]
  vocab = list(dict.fromkeys(vocab)) + ["King", "QUEEN"]
  dim = 8
  vectors = rng.normal(size=(len(vocab), dim)).astype(np.float32)
  index = {w: i for i, w in enumerate(vocab)}
  offset = 2 * rng.normal(size=dim)
  for male, female in pairs.items():
    vectors[index[female]] = vectors[index[male]] + offset + 0.4 * rng.normal(size=dim)
  kv = gensim_models.KeyedVectors(dim)
  kv.add_vectors(vocab, vectors)
  for restrict in (None, 200):
    _, sections = kv.evaluate_word_analogies(path, restrict_vocab=restrict or 300000)
    theirs = {s["section"]: (len(s["correct"]), len(s["correct"]) + len(s["incorrect"]))
              for s in sections}
    ours = words.analogies(vocab, vectors, path, restrict=restrict)
    mine = {name: (s["correct"], s["covered"]) for name, s in ours["sections"].items()}
    mine["Total accuracy"] = (ours["total"]["correct"], ours["total"]["covered"])
    assert mine == theirs
    family = ours["sections"]["family"]
    assert 0.2 * family["covered"] < family["correct"] < 0.9 * family["covered"], family
  for _, name, _ in words.SIMILARITY_FILES:
    _, (rho, _), oov = kv.evaluate_word_pairs(os.path.join(data, name))
    got, covered, total = words.similarity(vocab, vectors, os.path.join(data, name))
    assert got == pytest.approx(rho, abs=1e-5)
    assert 100 * (total - covered) / total == pytest.approx(oov)


def test_train_gensim_peer(tmp_path):
  pytest.importorskip("gensim")
  peer = load_launch_script("words_peer")
  rng = np.random.default_rng(6)
  corpus = tmp_path / "train.txt"
  tokens = [f"t{i}" for i in range(30)]
  corpus.write_text("".join(" ".join(rng.choice(tokens, 12)) + "\n" for _ in range(300)))
  vocab, vectors, wps = peer.train_gensim(corpus, dim=8, window=2, negative=3, sample=0,
                                          min_count=1, epochs=2, workers=2, seed=0)
  assert sorted(vocab) == sorted(tokens) and vectors.shape == (30, 8)
  assert vectors.dtype == np.float32 and np.isfinite(vectors).all() and wps > 0
  with pytest.raises(UserError, match="min_count"):
    peer.train_gensim(corpus, dim=8, window=2, negative=3, sample=0, min_count=10**6,
                      epochs=1, workers=1, seed=0)


def test_sslax_peer_takes_its_batch_size_and_update_cap(tiny_text, monkeypatch):
  """`words_peer.py --batch-size B --update-cap C` trains sslax with B corpus
  positions a step and config.word2vec.update_cap C (the config's without it)."""
  from sslax.config_loading import load_config_file  # pylint: disable=g-import-not-at-top
  peer = load_launch_script("words_peer")
  default_cap = load_config_file(os.path.join(ROOT, "configs",
                                              "word2vec.py:text")).word2vec.update_cap
  seen = []

  class Trained(Exception):
    pass

  def train_and_evaluate(config, workdir):
    del workdir
    seen.append((config.global_batch_size, config.word2vec.update_cap, config.num_steps))
    raise Trained

  monkeypatch.setattr("sslax.train.loop.train_and_evaluate", train_and_evaluate)
  for extra in ([], ["--update-cap", "8"]):
    with pytest.raises(Trained):
      peer.main(["--corpus", tiny_text, "--models", "sslax", "--batch-size", "64",
                 "--epochs", "2"] + extra)
  from sslax.data import word_windows  # pylint: disable=g-import-not-at-top
  config = load_config_file(os.path.join(ROOT, "configs", "word2vec.py:text"))
  config.data.data_dir = tiny_text
  config.data.min_count = 5
  steps = -(-2 * len(word_windows.source(config.data, "train")) // 64)
  assert seen == [(64, default_cap, steps), (64, 8.0, steps)]
  assert default_cap != 8.0
