"""Evaluation of word embeddings (a ``table`` encoder: one vector per vocabulary
word), as numpy functions: the word analogies of Mikolov et al. 2013
("Efficient estimation of word representations in vector space", the Google
``questions-words.txt`` set), Spearman correlation with human similarity
judgements on WordSim-353 (Finkelstein et al. 2002, "Placing search in
context") and SimLex-999 (Hill et al. 2015, "SimLex-999: evaluating semantic
models with (genuine) similarity estimation"), and nearest neighbours.

The evaluation files are the copies shipped in gensim's wheel
(``gensim/test/test_data/``). Conventions follow gensim's
``KeyedVectors.evaluate_word_analogies`` and ``evaluate_word_pairs``: words
are compared upper-cased (a word with several case variants in the vocabulary
takes the vector of its first, most frequent, one), only the first
``restrict`` vocabulary words count, and questions or pairs with a word outside
them are skipped (reported as not covered), not counted as wrong.
"""

import importlib.util
import os

import numpy as np

from sslax.errors import UserError

QUESTIONS = "questions-words.txt"
WORDSIM353 = "wordsim353.tsv"
SIMLEX999 = "simlex999.txt"
SIMILARITY_FILES = (("wordsim353", WORDSIM353, "WordSim-353"),
                    ("simlex999", SIMLEX999, "SimLex-999"))
# The first five sections of the Google set are semantic, the rest (gram1-9)
# syntactic, as in word2vec's compute-accuracy.c.
SEMANTIC_SECTIONS = 5
NEIGHBOUR_WORDS = ("king", "france", "computer", "good", "three", "running")
_INSTALL = "install it with `make install` (pip install 'sslax[words]')"


def test_data_dir() -> str:
  """gensim's ``test/test_data`` directory (found without importing gensim)."""
  spec = importlib.util.find_spec("gensim")
  if spec is None or not spec.submodule_search_locations:
    raise UserError(f"the word evaluation files come with gensim, which is not installed; "
                    f"{_INSTALL}")
  path = os.path.join(list(spec.submodule_search_locations)[0], "test", "test_data")
  if not os.path.isfile(os.path.join(path, QUESTIONS)):
    raise UserError(f"gensim's test data ({path}) has no {QUESTIONS}; reinstall gensim: "
                    f"{_INSTALL}")
  return path


def _check_table(vocab, vectors):
  vectors = np.asarray(vectors)
  if vectors.ndim != 2 or vectors.shape[0] != len(vocab):
    raise ValueError(f"vectors of shape {vectors.shape} for a vocabulary of {len(vocab)} words; "
                     f"expected [{len(vocab)}, dim]")
  return vectors


class _Folded:
  """The first ``restrict`` words of ``vocab`` upper-cased, as gensim's ``ok_vocab``:
  ``index[WORD]`` is the first (most frequent) index with that upper-case form,
  ``rep[i]`` that first index for vocabulary entry i, ``extras[first]`` the other
  indices of case variants (only where there are some)."""

  def __init__(self, vocab, restrict=None):
    n = len(vocab) if restrict is None else min(int(restrict), len(vocab))
    self.size = n
    self.index = {}
    self.rep = np.empty(n, np.int64)
    extras = {}
    for i in range(n):
      first = self.index.setdefault(vocab[i].upper(), i)
      self.rep[i] = first
      if first != i:
        extras.setdefault(first, []).append(i)
    self.extras = {k: np.asarray(v) for k, v in extras.items()}


def _unit(vectors, dtype=np.float32):
  """Rows scaled to unit length (a zero row stays zero)."""
  vectors = np.asarray(vectors, dtype)
  norms = np.linalg.norm(vectors, axis=1, keepdims=True)
  return vectors / np.where(norms > 0, norms, 1).astype(dtype)


def _no_coverage(path, vocab_size, what):
  return UserError(f"{path}: the vocabulary ({vocab_size} words) covers none of its {what}; "
                   f"lower min_count or train on a larger corpus")


def read_questions(path):
  """``[(section, [(a, b, c, d), ...]), ...]`` from a file in the format of
  ``questions-words.txt``: ``: section`` header lines, then lines of 4 words
  (other lines are skipped, as gensim does)."""
  sections = []
  try:
    with open(path, encoding="utf-8") as f:
      for line_no, line in enumerate(f, 1):
        if line.startswith(": "):
          sections.append((line.lstrip(": ").strip(), []))
          continue
        words = line.split()
        if len(words) != 4:
          continue
        if not sections:
          raise UserError(f"{path}: line {line_no} is a question before any "
                          f"': section' header line")
        sections[-1][1].append(tuple(words))
  except OSError as e:
    raise UserError(f"cannot read the analogy questions {path}: {e.strerror}") from None
  return sections


def _totals(rows):
  correct = sum(r["correct"] for r in rows)
  covered = sum(r["covered"] for r in rows)
  return {"correct": correct, "covered": covered, "total": sum(r["total"] for r in rows),
          "accuracy": correct / covered if covered else None}


def analogies(vocab, vectors, path, restrict=None, batch=None) -> dict:
  """Accuracy on analogy questions a:b::c:d (Mikolov et al. 2013) by 3CosAdd:
  the answer is the word w maximising cos(w, b - a + c) over the unit-normalised
  vectors of the first ``restrict`` words (all of them when None), the three
  question words (and their case variants) excluded, as gensim's
  ``evaluate_word_analogies``.

  Returns ``{"sections": {name: {correct, covered, total, accuracy}}, "semantic":
  ..., "syntactic": ..., "total": ...}``: covered questions have all four words
  in the vocabulary, accuracy is correct / covered (None when none is), semantic
  sums the first five sections and syntactic the others.
  """
  vectors = _check_table(vocab, vectors)
  folded = _Folded(vocab, restrict)
  sections = read_questions(path)
  quads, section_of, file_words = [], [], set()
  rows = {}
  for s, (name, questions) in enumerate(sections):
    row = rows.setdefault(name, {"correct": 0, "covered": 0, "total": 0})
    row["total"] += len(questions)
    for q in questions:
      q = [w.upper() for w in q]
      file_words.update(q)
      idx = [folded.index.get(w) for w in q]
      if None not in idx:
        quads.append(idx)
        section_of.append(s)
        row["covered"] += 1
  if not sum(r["total"] for r in rows.values()):
    raise UserError(f"{path} has no analogy questions (lines of four words after "
                    f"': section' headers)")
  if not quads:
    hit = sum(w in folded.index for w in file_words)
    raise _no_coverage(path, folded.size, "words" if not hit else
                       f"questions in full (only {hit} of its {len(file_words)} words)")
  quads = np.asarray(quads, np.int64)
  section_of = np.asarray(section_of, np.int64)
  unit = _unit(vectors[:folded.size])
  if batch is None:  # about 64 MB of scores at a time
    batch = int(np.clip((1 << 24) // max(folded.size, 1), 1, 4096))
  correct = np.zeros(len(quads), bool)
  for start in range(0, len(quads), batch):
    a, b, c, d = quads[start:start + batch].T
    scores = unit[b] - unit[a] + unit[c]
    scores = scores @ unit.T
    rows_ = np.arange(len(a))
    for idx in (a, b, c):
      scores[rows_, idx] = -np.inf
    if folded.extras:
      for r in range(len(a)):
        for w in (a[r], b[r], c[r]):
          if w in folded.extras:
            scores[r, folded.extras[w]] = -np.inf
    correct[start:start + batch] = folded.rep[np.argmax(scores, axis=1)] == d
  per_section = np.bincount(section_of, weights=correct, minlength=len(sections))
  for s, (name, _) in enumerate(sections):
    rows[name]["correct"] += int(per_section[s])
  for row in rows.values():
    row["accuracy"] = row["correct"] / row["covered"] if row["covered"] else None
  names = list(dict.fromkeys(name for name, _ in sections))
  semantic = names[:SEMANTIC_SECTIONS]
  return {"sections": rows,
          "semantic": _totals([rows[n] for n in semantic]),
          "syntactic": _totals([rows[n] for n in names[SEMANTIC_SECTIONS:]]),
          "total": _totals(list(rows.values()))}


def read_pairs(path):
  """``[(word1, word2, score), ...]`` from a tab-separated file of human
  similarity judgements; ``#`` comment lines and malformed lines are skipped, as
  gensim's ``evaluate_word_pairs`` does."""
  pairs = []
  try:
    with open(path, encoding="utf-8") as f:
      for line in f:
        if line.startswith("#"):
          continue
        fields = line.split("\t")
        if len(fields) != 3:
          continue
        try:
          pairs.append((fields[0], fields[1], float(fields[2])))
        except ValueError:
          continue
  except OSError as e:
    raise UserError(f"cannot read the word pairs {path}: {e.strerror}") from None
  return pairs


def rank(x):
  """Ranks 1..n of ``x``, tied values sharing their average rank."""
  _, inverse, counts = np.unique(np.asarray(x), return_inverse=True, return_counts=True)
  ends = np.cumsum(counts)
  return ((ends - counts + 1 + ends) / 2.0)[inverse.reshape(-1)]


def spearman(x, y) -> float:
  """Spearman's rank correlation (Pearson's of the tie-averaged ranks); nan when
  either side is constant."""
  rx, ry = rank(x), rank(y)
  rx, ry = rx - rx.mean(), ry - ry.mean()
  denominator = np.sqrt((rx @ rx) * (ry @ ry))
  return float(rx @ ry / denominator) if denominator > 0 else float("nan")


def similarity(vocab, vectors, path, restrict=None):
  """``(spearman, pairs_covered, pairs_total)``: Spearman's correlation between
  the cosine of the two words' vectors and the human score, over the pairs with
  both words in the vocabulary (WordSim-353, Finkelstein et al. 2002; SimLex-999,
  Hill et al. 2015)."""
  vectors = _check_table(vocab, vectors)
  folded = _Folded(vocab, restrict)
  pairs = read_pairs(path)
  if not pairs:
    raise UserError(f"{path} has no word pairs (lines: word, word, score, tab-separated)")
  covered = [(folded.index[a.upper()], folded.index[b.upper()], score) for a, b, score in pairs
             if a.upper() in folded.index and b.upper() in folded.index]
  if not covered:
    hit = len({w.upper() for a, b, _ in pairs for w in (a, b)} & folded.index.keys())
    raise _no_coverage(path, folded.size, "words" if not hit else
                       f"pairs in full (only {hit} of its words)")
  i, j, human = (np.asarray(t) for t in zip(*covered))
  unit = _unit(vectors[:folded.size], np.float64)
  cosines = np.einsum("nd,nd->n", unit[i], unit[j])
  return spearman(cosines, human), len(covered), len(pairs)


def neighbours(vocab, vectors, words, k=8) -> dict:
  """``{word: [(neighbour, cosine), ...]}``: the ``k`` nearest words by cosine
  (the word itself and its case variants left out) for each of ``words`` in the
  vocabulary (looked up upper-cased; words outside it are left out)."""
  vectors = _check_table(vocab, vectors)
  folded = _Folded(vocab)
  found = [(w, folded.index[w.upper()]) for w in words if w.upper() in folded.index]
  if not found:
    return {}
  unit = _unit(vectors)
  scores = unit[[i for _, i in found]] @ unit.T
  result = {}
  for row, (word, i) in zip(scores, found):
    row[folded.rep == i] = -np.inf
    top = min(k, int(np.isfinite(row).sum()))
    best = np.argpartition(-row, top - 1)[:top] if top else np.zeros(0, np.int64)
    best = best[np.argsort(-row[best], kind="stable")]
    result[word] = [(vocab[n], float(row[n])) for n in best]
  return result


def evaluate(vocab, vectors, data_dir=None, words=NEIGHBOUR_WORDS, restrict=None) -> dict:
  """All of the above on the files in ``data_dir`` (gensim's test data when None):
  ``{"analogies": ..., "wordsim353": {spearman, covered, total}, "simlex999":
  ..., "neighbours": ..., "vocab_size", "dim"}`` (JSON-serialisable)."""
  vectors = _check_table(vocab, vectors)
  data_dir = test_data_dir() if data_dir is None else data_dir
  result = {"vocab_size": len(vocab), "dim": int(vectors.shape[1]),
            "analogies": analogies(vocab, vectors, os.path.join(data_dir, QUESTIONS), restrict)}
  for key, name, _ in SIMILARITY_FILES:
    rho, covered, total = similarity(vocab, vectors, os.path.join(data_dir, name), restrict)
    result[key] = {"spearman": rho, "covered": covered, "total": total}
  result["neighbours"] = neighbours(vocab, vectors, words)
  return result


def _accuracy_cell(row):
  if not row:
    return ""
  accuracy = "  -  " if row["covered"] == 0 else f"{100 * row['correct'] / row['covered']:5.1f}%"
  return f"{accuracy} ({row['covered']}/{row['total']})"


def _similarity_cell(row):
  return "" if not row else f"{row['spearman']:.3f} ({row['covered']}/{row['total']})"


def table_lines(results_by_name: dict) -> list:
  """A side-by-side table, one column per model (``{name: evaluate(...)}``, each
  optionally with ``"words_per_second"``): vocabulary size, analogy accuracy per section then
  semantic, syntactic and total (with covered/total questions), Spearman's
  correlation on WordSim-353 and SimLex-999 (with covered/total pairs), and
  training words/s where given."""
  names = list(results_by_name)
  results = [results_by_name[n] for n in names]
  sections = list(dict.fromkeys(s for r in results for s in r.get("analogies", {})
                                .get("sections", {})))
  rows = [("vocabulary x dim", ["" if "vocab_size" not in r else
                                f"{r['vocab_size']:,} x {r.get('dim', '?')}" for r in results]),
          ("analogy accuracy (covered/total)", [""] * len(names))]
  rows += [(f"  {s}", [_accuracy_cell(r.get("analogies", {}).get("sections", {}).get(s))
                       for r in results]) for s in sections]
  rows += [(label, [_accuracy_cell(r.get("analogies", {}).get(key)) for r in results])
           for key, label in (("semantic", "semantic"), ("syntactic", "syntactic"),
                              ("total", "total"))]
  rows += [(f"{label} Spearman", [_similarity_cell(r.get(key)) for r in results])
           for key, _, label in SIMILARITY_FILES]
  if any(r.get("words_per_second") is not None for r in results):
    rows.append(("training words/s", [
        "" if r.get("words_per_second") is None else f"{r['words_per_second']:,.0f}"
        for r in results]))
  first = max(len(label) for label, _ in rows)
  widths = [max([len(n)] + [len(cells[k]) for _, cells in rows]) for k, n in enumerate(names)]

  def line(label, cells):
    return "  ".join([label.ljust(first)] + [c.rjust(w) for c, w in zip(cells, widths)]).rstrip()

  return [line("", names)] + [line(label, cells) for label, cells in rows]


def neighbour_lines(results_by_name: dict) -> list:
  """``name  word: neighbour cosine, ...`` lines from ``evaluate``'s neighbours."""
  lines = []
  for name, result in results_by_name.items():
    for word, near in result.get("neighbours", {}).items():
      lines.append(f"{name}  {word}: " + ", ".join(f"{n} {c:.2f}" for n, c in near))
  return lines
