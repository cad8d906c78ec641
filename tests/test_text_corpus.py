"""The word2vec text corpus (sslax.data.text_corpus) on tiny files written
here: no Debian package is needed."""

import gzip
import itertools
import json
import os

import pytest

from sslax.data import text_corpus as tc
from sslax.errors import UserError

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64(n):
  digits = ""
  while True:
    digits = B64[n % 64] + digits
    n //= 64
    if not n:
      return digits


def write_dictd(directory, name, entries):
  """A dictd dictionary NAME.dict.dz + NAME.index of (headword, text) pairs;
  its path."""
  data, index = b"", []
  for headword, text in entries:
    raw = text.encode()
    index.append(f"{headword}\t{b64(len(data))}\t{b64(len(raw))}\n")
    data += raw
  with gzip.open(os.path.join(directory, f"{name}.dict.dz"), "wb") as f:
    f.write(data)
  with open(os.path.join(directory, f"{name}.index"), "w") as f:
    f.writelines(sorted(index))
  return os.path.join(directory, f"{name}.dict.dz")


def read_lines(path):
  with open(path, encoding="utf-8") as f:
    yield from f


def lines_source(tmp_path, lines, name="fake"):
  path = tmp_path / f"{name}.txt"
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  return tc.Source(name, f"{name}-package", str(path), read_lines)


def build(out, sources, **kwargs):
  return tc.build(str(out), sources=sources, workers=1, log=lambda *_: None, **kwargs)


def file_lines(path):
  with open(path, encoding="utf-8") as f:
    return f.read().splitlines()


# ------------------------------------------------------------ tokenising


def test_tokenize_keeps_words_with_inner_apostrophes_and_hyphens():
  text = tc.normalize("Don\u2019t STOP\u2014the \ufb01re-fly's 3 x2 1Jo 4:20 caf\u00e9 "
                      "'tis co\u00adop -dash- ok_go")
  assert tc.tokenize(text) == ["don't", "stop", "the", "fire-fly's", "café", "tis",
                               "coop", "dash", "ok", "go"]


def test_split_sentences_not_after_initials_or_abbreviations():
  text = ("Mr. Smith went home.  He slept!\nDid he? Yes, e.g. here. See C. S. Lewis "
          "and cf. Jones. \"Quoted.\" (Then) it ends")
  assert tc.split_sentences(text) == [
      "Mr. Smith went home.", "He slept!", "Did he?", "Yes, e.g. here.",
      "See C. S. Lewis and cf. Jones.", "\"Quoted.\"", "(Then) it ends"]


def test_looks_like_prose():
  assert tc.looks_like_prose("The function returns a list of names.")
  assert not tc.looks_like_prose("Return value")  # a heading
  assert not tc.looks_like_prose("the value is set.")  # no capital
  assert not tc.looks_like_prose("Set x = foo(bar, 3) + baz[2] * qux.")  # code


def test_paragraph_sentences_drops_short_sentences_and_urls():
  got = list(tc.paragraph_sentences(
      ["Too short. See http://example.org/a.html for the full text today.",
       "One two three."], min_tokens=3))
  assert got == [["see", "for", "the", "full", "text", "today"], ["one", "two", "three"]]


# --------------------------------------------------------------- formats


GCIDE_ENTRY = """Calorie \\Cal"o*rie\\ (k[a^]l"[-o]*r[i^]), n. [F., fr. L. calor
   heat.] (Physics)
   1. The unit of heat of the French standard; a caf['e] measure.
      [1913 Webster]

         Satisfactory calorimetric results were had.       --Nichol.
   [1913 Webster]

   Note: The {large calorie} is used by physiologists. -- v. t. To warm by degrees.
"""


def test_gcide_entry_keeps_definitions_and_quotations_only():
  got = list(tc.paragraph_sentences(tc.gcide_paragraphs(GCIDE_ENTRY), min_tokens=1))
  assert got == [
      "the unit of heat of the french standard a cafe measure".split(),
      "satisfactory calorimetric results were had".split(),
      "the large calorie is used by physiologists".split(),
      "to warm by degrees".split()]


def test_dictd_entries_each_once_in_file_order_without_database_info(tmp_path):
  path = write_dictd(tmp_path, "toy", [
      ("00-database-info", "This file was converted by someone.\n"),
      ("zebra", "Zebra\n\n   <animal> A striped {horse} of Africa [Details?].\n"),
      ("apple", "apple\n n.\n\n    1. n. A round fruit of a tree.\n"),
  ])
  index = (tmp_path / "toy.index").read_text()
  zebra = next(line for line in index.splitlines() if line.startswith("zebra"))
  (tmp_path / "toy.index").write_text(index + zebra.replace("zebra", "equus") + "\n")
  entries = list(tc.dictd_entries(path))
  assert len(entries) == 2 and entries[0].startswith("Zebra")
  got = list(tc.paragraph_sentences(tc.read_dictd(path), min_tokens=1))
  assert got == ["a striped horse of africa".split(), "a round fruit of a tree".split()]


def test_devil_head_is_dropped():
  got = list(tc.paragraph_sentences(tc.dictd_paragraphs(
      "CANNON, n.  An instrument employed in the rectification of\nboundaries.\n"), 1))
  assert got == ["an instrument employed in the rectification of boundaries".split()]


def test_wordnet_glosses(tmp_path):
  (tmp_path / "data.noun").write_text(
      "  1 This software and database is being provided to you, the LICENSEE\n"
      "00001740 03 n 01 entity 0 000 | that which is perceived; \"an entity exists\"; "
      "\"it is known\"  \n")
  (tmp_path / "data.verb").write_text("00002 29 v 01 run 0 000 | move fast  \n")
  got = list(tc.read_wordnet(str(tmp_path / "data.noun")))
  assert got == ["an entity exists", "it is known", "That which is perceived.", "Move fast."]


def test_osis_verses_to_paragraphs():
  verses = ['<w lemma="strong:H7225">In</w> the beginning<note placement="foot">1:1 a '
            'footnote</note> God created.', '<title>Psalm</title>And it <transChange>was'
            '</transChange> good, and', 'it was &amp; very good. <div eID="x" type="x-p"/>',
            'The end']
  got = [" ".join(p.split()) for p in tc.osis_paragraphs(verses)]
  assert got == ["In the beginning God created.", "And it was good, and it was & very good.",
                 "The end"]


RST = """.. SPDX-License-Identifier: GPL-2.0

=========
The title
=========

A paragraph with :func:`os.path.join` and ``literal`` text,
a `link <https://example.org>`_ and *emphasis*. Run this::

    $ make all
    Nothing here is prose.

.. code-block:: c

   int main(void) { return 0; }

.. note::

   Notes are prose too.

+------+------+
| cell | cell |
+------+------+

>>> print("doctest")
doctest
"""


def test_rst_drops_code_directives_and_tables():
  got = [" ".join(p.split()) for p in tc.rst_paragraphs(RST)]
  assert got == ["The title", "A paragraph with os.path.join and literal text, a link and "
                 "emphasis. Run this:", "Notes are prose too."]


POD = """=head1 NAME

perlfoo - a B<bold> and C<< code >> page

=head2 Usage

Call L<the manual|perlfunc/open> with I<care>, E<lt>okE<gt>.

    my $x = 1;  # verbatim code

=begin html

<p>Hidden.</p>

=end html

Last words.
"""


def test_pod_paragraphs():
  got = [" ".join(p.split()) for p in tc.pod_paragraphs(POD)]
  assert got == ["perlfoo - a bold and code page", "Call the manual with care, <ok>.",
                 "Last words."]


def test_html_paragraphs_without_code_or_tables():
  page = ("<html><head><title>T</title></head><body><p>Queries use <code>SELECT</code> "
          "&amp; more.</p><pre>SELECT 1;</pre><table><tr><td>x</td></tr></table>"
          "<ul><li>An item.</li></ul></body></html>")
  assert [p.strip() for p in tc.html_paragraphs(page)] == ["Queries use SELECT & more.",
                                                          "An item."]


def test_fortune_paragraphs_without_attributions():
  text = ("A classic is something that everyone wants to have read.\n"
          "\t\t-- Mark Twain, \"The Disappearance\n\t\tof Literature\"\n%\n"
          "Second fortune here.\n%\n")
  assert [p.strip() for p in tc.fortune_paragraphs(text)] == [
      "A classic is something that everyone wants to have read.", "Second fortune here."]


# ----------------------------------------------------------------- build


def test_build_dedups_and_counts_words(tmp_path):
  source = lines_source(tmp_path, [
      "The cat sat on the mat. The CAT  sat on the mat!",  # duplicates after normalising
      "A dog barked twice.", "Too short.", "The \u201ccat\u201d sat on the mat?"])
  meta = build(tmp_path / "out", [source], heldout_fraction=0.0)
  assert file_lines(tmp_path / "out" / "train.txt") == [
      "the cat sat on the mat", "a dog barked twice"] or file_lines(
          tmp_path / "out" / "train.txt") == ["a dog barked twice", "the cat sat on the mat"]
  assert file_lines(tmp_path / "out" / "heldout.txt") == []
  assert meta["splits"] == {"train": {"sentences": 2, "words": 10},
                            "heldout": {"sentences": 0, "words": 0}}
  assert [(s["name"], s["words"], s["duplicate_sentences"]) for s in meta["sources"]] == [
      ("fake", 10, 2)]
  with open(tmp_path / "out" / "meta.json") as f:
    assert json.load(f)["splits"] == meta["splits"]


def test_duplicates_across_sources_count_for_the_first(tmp_path):
  first = lines_source(tmp_path, ["Shared words appear here.", "Only the first one."], "one")
  second = lines_source(tmp_path, ["Shared words appear here!", "Only the second one."], "two")
  meta = build(tmp_path / "out", [first, second], heldout_fraction=0.0)
  assert [(s["name"], s["sentences"], s["words"], s["duplicate_sentences"])
          for s in meta["sources"]] == [("one", 2, 8, 0), ("two", 1, 4, 1)]


WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()


def many_sentences():
  """1320 different sentences of three words."""
  return [" ".join(w).capitalize() + "." for w in itertools.permutations(WORDS, 3)]


def test_heldout_split_is_deterministic_disjoint_and_sized(tmp_path):
  source = lines_source(tmp_path, many_sentences())
  metas = [build(tmp_path / name, [source], heldout_fraction=0.2, seed=seed)
           for name, seed in (("a", 0), ("b", 0), ("c", 1))]
  train = {n: file_lines(tmp_path / n / "train.txt") for n in "abc"}
  heldout = {n: file_lines(tmp_path / n / "heldout.txt") for n in "abc"}
  assert train["a"] == train["b"] and heldout["a"] == heldout["b"]
  assert set(heldout["a"]) != set(heldout["c"])
  for n in "abc":
    assert not set(train[n]) & set(heldout[n])
    assert len(train[n]) + len(heldout[n]) == 1320 == len(set(train[n] + heldout[n]))
    assert 200 < len(heldout[n]) < 330  # 20% of 1320 = 264, binomial sd 15
    words = {s: sum(len(line.split()) for line in lines)
             for s, lines in (("train", train[n]), ("heldout", heldout[n]))}
    assert words == {"train": 3 * len(train[n]), "heldout": 3 * len(heldout[n])}
    assert {s: metas["abc".index(n)]["splits"][s]["words"] for s in words} == words
  # The split is a function of the sentence, whatever the other sentences.
  small = lines_source(tmp_path, many_sentences()[:500], "small")
  build(tmp_path / "d", [small], heldout_fraction=0.2, seed=0)
  assert set(file_lines(tmp_path / "d" / "heldout.txt")) == {
      s for s in heldout["a"] if s.capitalize() + "." in many_sentences()[:500]}


def test_rebuild_same_settings_is_a_no_op_other_settings_refused(tmp_path):
  source = lines_source(tmp_path, many_sentences()[:50])
  build(tmp_path / "out", [source])
  train = tmp_path / "out" / "train.txt"
  os.utime(train, (1, 1))
  logged = []
  tc.build(str(tmp_path / "out"), sources=[source], workers=1, log=logged.append)
  assert os.stat(train).st_mtime == 1 and "already" in logged[0]
  with pytest.raises(UserError, match="other settings"):
    build(tmp_path / "out", [source], heldout_fraction=0.1)
  with pytest.raises(UserError, match="other settings"):
    build(tmp_path / "out", [source], seed=3)


def test_empty_corpus_names_make_text(tmp_path, monkeypatch):
  empty = lines_source(tmp_path, ["Hi.", "12 34 56 78.", ""])
  with pytest.raises(UserError, match="make text"):
    build(tmp_path / "out", [empty])
  assert not os.path.exists(tmp_path / "out" / "meta.json")
  missing = tc.Source("gone", "gone-package", str(tmp_path / "nothing" / "*"), read_lines)
  monkeypatch.setattr(tc, "SOURCES", {"gone": missing})
  with pytest.raises(UserError, match="make text"):
    build(tmp_path / "out", None)
  with pytest.raises(UserError, match="apt-get install gone-package"):
    build(tmp_path / "out", ["gone"])
  with pytest.raises(UserError, match="unknown text source"):
    build(tmp_path / "out", ["nope"])


def test_load_and_read_sentences(tmp_path):
  with pytest.raises(UserError, match=r"make text.*make-text --out"):
    tc.load(str(tmp_path / "none"))
  build(tmp_path / "out", [lines_source(tmp_path, ["One two three. Four five six seven."])],
        heldout_fraction=0.0)
  meta, train, heldout = tc.load(str(tmp_path / "out"))
  assert sorted(tc.read_sentences(train)) == [["four", "five", "six", "seven"],
                                              ["one", "two", "three"]]
  assert list(tc.read_sentences(heldout)) == [] and meta["splits"]["train"]["words"] == 7


def test_worker_processes_give_the_same_corpus(tmp_path):
  path = write_dictd(tmp_path, "toy", [(w, f"{w}\n\n   The {w} entry has words in it.\n")
                                       for w in WORDS])
  sources = [tc.Source("toy", "toy-package", path, tc.read_dictd),
             tc.Source("toy-again", "toy-package", path, tc.read_dictd)]
  one = tc.build(str(tmp_path / "one"), sources=sources, workers=1, log=lambda *_: None)
  two = tc.build(str(tmp_path / "two"), sources=sources, workers=2, log=lambda *_: None)
  assert [s["words"] for s in two["sources"]] == [7 * len(WORDS), 0]
  assert one["splits"] == two["splits"]
  assert file_lines(tmp_path / "one" / "train.txt") == file_lines(tmp_path / "two" / "train.txt")
