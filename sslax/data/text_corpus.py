"""A local English text corpus for word2vec (Mikolov et al. 2013) where
Wikipedia or news text cannot be downloaded, built from Debian packages: the
GCIDE dictionary (Webster's 1913 with its quotations), WordNet's glosses, two
public-domain Bibles and three commentaries (SWORD modules, read with
pysword), three more dictd dictionaries (FOLDOC, the Jargon File, The Devil's
Dictionary) and the prose of the Python, Perl and Linux kernel manuals.

Each source's markup is stripped (dictd headword lines, pronunciations,
etymologies and source tags; OSIS tags and footnotes; reStructuredText and POD
markup, code and tables), the text is NFKC-normalised and split into sentences
at ``.``, ``!`` or ``?`` before a capital (not after an initial or a common
abbreviation), and lowercased. A token is a word of letters with inner
apostrophes or hyphens ("don't", "self-evident"); numbers, and words with
digits in them (verse references, "1jo"), are dropped, as the analogy and
similarity test sets hold none. From the manuals only sentences that look like
prose are kept (a capital first, a full stop last, few code-like words).
Sentences of fewer than ``min_tokens`` tokens are dropped, and exact duplicates
are kept once (the first, in source order). A sentence is held out when a hash
of it and the seed falls below ``heldout_fraction``: the split does not depend
on the sources' order, and duplicates can never straddle it. Both files list
their sentences in a seeded random order, so that one pass of word2vec, whose
learning rate decays over the pass, does not learn the last source least.

``sslax data make-text --out DIR`` (or ``make text``) writes ``DIR/train.txt``
and ``DIR/heldout.txt`` (one sentence a line, tokens separated by single
spaces, the format of ``gensim.models.word2vec.LineSentence``) and
``DIR/meta.json`` (the settings, the sources with their Debian package
versions and word counts, the sentences and words of each split).
"""

import concurrent.futures
import dataclasses
import glob
import gzip
import hashlib
import html
import json
import multiprocessing
import os
import re
import subprocess
import time
import unicodedata
from typing import Callable, Iterator, List, Optional, Sequence, Union

import numpy as np

from sslax.data import corpus
from sslax.errors import UserError

VERSION = 1  # of cleaning and tokenising: a corpus built by another is refused, not reused
MIN_TOKENS = 3
BUILD_HINT = "run `make text` or `sslax data make-text --out DIR`"
WORDS_EXTRA = "pip install -c constraints.txt -e '.[words]'"
TRAIN_FILE, HELDOUT_FILE = "train.txt", "heldout.txt"


def default_corpus_dir() -> str:
  return os.path.join("data", "text")


# ---------------------------------------------------------------- normalising

_CHAR_MAP = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201b": "'", "\u02bc": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": " ", "\u2013": " ", "\u2014": " ",
    "\u2015": " ", "\u00ad": None})


def normalize(text: str) -> str:
  """NFKC, one apostrophe, one double quote and one hyphen; dashes become
  spaces and soft hyphens vanish."""
  return unicodedata.normalize("NFKC", text).translate(_CHAR_MAP)


_TOKEN = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
_DIGIT = re.compile(r"\d")


def tokenize(sentence: str) -> List[str]:
  """Lowercase words of letters with inner apostrophes or hyphens; words
  with digits are dropped."""
  return [t for t in _TOKEN.findall(sentence.lower()) if not _DIGIT.search(t)]


# No sentence ends after these (lowercased, without their full stop), nor after
# a single letter (an initial) or a word with an inner full stop ("e.g", "u.s").
ABBREVIATIONS = frozenset("""
mr mrs ms messrs dr st jr sr prof rev hon capt lt sgt gov fig figs cf viz vs
esp ed eds vol vols ch chap pp sect approx ca al inc ltd co corp dept univ jan
feb apr jun jul aug sep sept oct nov dec
""".split())

_BOUNDARY = re.compile(r"[.!?]+[\"')\]]*\s+(?=[\"'(\[]*[A-Z])")


def split_sentences(text: str) -> List[str]:
  """The sentences of a paragraph, whitespace collapsed."""
  text = " ".join(text.split())
  out, start = [], 0
  for m in _BOUNDARY.finditer(text):
    if text[m.start()] == ".":
      space = text.rfind(" ", start, m.start())
      word = text[space + 1 if space >= 0 else start:m.start()].lstrip("\"'([").lower()
      if len(word) == 1 or "." in word or word in ABBREVIATIONS:
        continue
    out.append(text[start:m.end()].strip())
    start = m.end()
  if start < len(text):
    out.append(text[start:].strip())
  return [s for s in out if s]


_PROSE_WORD = re.compile(r"[\"'(\[]*[A-Za-z][A-Za-z'-]*[\"')\].,;:!?]*")


def looks_like_prose(sentence: str) -> bool:
  """A capital first, a full stop (or ! ?) last, and at least 85% of its
  whitespace-separated pieces plain words: not code, a heading or a table."""
  s = sentence.lstrip("\"'(")
  if not s or not s[0].isupper() or not sentence.rstrip("\"')").endswith((".", "!", "?")):
    return False
  pieces = sentence.split()
  return sum(bool(_PROSE_WORD.fullmatch(p)) for p in pieces) >= 0.85 * len(pieces)


_URL = re.compile(r"\b(?:https?|ftp|file)://\S+|\bwww\.\S+|\S+@\S+\.\w+")


def paragraph_sentences(paragraphs: Iterator[str], min_tokens: int,
                        prose_only=False) -> Iterator[List[str]]:
  """Token lists of the sentences (``min_tokens`` tokens or more) of
  markup-free paragraphs."""
  for paragraph in paragraphs:
    for sentence in split_sentences(_URL.sub(" ", normalize(paragraph))):
      if prose_only and not looks_like_prose(sentence):
        continue
      tokens = tokenize(sentence)
      if len(tokens) >= min_tokens:
        yield tokens


# ------------------------------------------------------------------ dictd


def _b64(s: str) -> int:
  n = 0
  for ch in s:
    n = n * 64 + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".index(ch)
  return n


def _decode(data: bytes) -> str:
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError:
    return data.decode("cp1252", errors="replace")


def dictd_entries(dict_path: str) -> Iterator[str]:
  """The entries of a dictd dictionary (``NAME.dict.dz`` or ``NAME.dict``
  beside ``NAME.index``) in file order, each once, without the
  ``00-database-*`` ones."""
  base = re.sub(r"\.dict(\.dz)?$", "", dict_path)
  spans = set()
  with open(base + ".index", encoding="utf-8", errors="replace") as f:
    for line in f:
      parts = line.rstrip("\n").split("\t")
      if len(parts) >= 3 and not parts[0].startswith("00"):
        spans.add((_b64(parts[1]), _b64(parts[2])))
  opener = gzip.open if dict_path.endswith(".dz") else open
  with opener(dict_path, "rb") as f:
    data = f.read()
  for offset, length in sorted(spans):
    yield _decode(data[offset:offset + length])


_BLANK = re.compile(r"\n[ \t]*\n")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_BRACES = re.compile(r"[{}]")


def _drop_brackets(text: str) -> str:
  while True:
    text, n = _BRACKETS.subn(" ", text)
    if not n:
      return text


# GCIDE's character codes: [`e] [=a] [a^] [ae] [imac] ... stand for letters.
_GCIDE_LETTER = re.compile(r"\[[`'=.^\"~,*-]?([A-Za-z]{1,2})[`'=.^\"~,*-]?\](?<!\[[A-Za-z]\])")
_GCIDE_NAMED = {"imac": "i", "aum": "a", "eum": "e", "ium": "i", "oum": "o", "uum": "u",
                "eth": "th", "thorn": "th", "yogh": "y", "add": "a", "asl": "a", "udd": "u",
                "edh": "th", "cced": "c", "ccedil": "c", "ntil": "n"}
_GCIDE_CODE = re.compile(r"\[([a-z]{2,8})\d*\]")
_GCIDE_PRON = re.compile(r"\\[^\\\n]*\\")
_GCIDE_PRON_LINE = re.compile(r"[ \t]*(?:\\|\([^\s()]*[\[*\"`'][^\s()]*\))")
_GCIDE_SAID_BY = re.compile(r"--(?=[A-Z(])[^\n]*")
_LABEL = re.compile(r"\((?:[A-Z][a-z]*\.?|[a-z]\.?|[A-Za-z]+\.)"
                    r"(?:\s+(?:&\s+)?[A-Z][A-Za-z]*\.)*\)")
_GCIDE_NOTE = re.compile(r"(?m)^\s*(?:Note:|Syn\s*[:.])(?:\s*Syn\s*[:.]?)?\s*-*")
# Parts of speech that open a paragraph ("3. n. A feature") or, after "--", a
# sense of another one ("-- v. t. To search for").
_POS = (r"(?:(?:n|a|v|t|i|adj|adv|prep|pl|p|pr|imp|interj|conj|pron|vb|vt|vi|sing|"
        r"superl|compar|excl|abbrev|f|m)\.[\s,&]*)+")
_POS_START = re.compile(r"^\s*(?:\d+\.\s*)?" + _POS)
_POS_DASHED = re.compile(r"--\s*" + _POS)


def _gcide_head_end(text: str) -> int:
  """Where the headword lines (headwords, pronunciations, parts of speech,
  etymology) of a GCIDE entry end."""
  depth, i = 0, 0
  while True:
    j = text.find("\n", i)
    if j < 0:
      return len(text)
    depth += text.count("[", i, j) - text.count("]", i, j)
    i = j + 1
    if depth <= 0 and not _GCIDE_PRON_LINE.match(text, i):
      return i


def _gcide_letter(m):
  return m.group(1)


def gcide_paragraphs(entry: str) -> List[str]:
  """The definitions, notes and quotations of a GCIDE entry as paragraphs:
  without its headword lines, pronunciations, etymologies, source tags
  ("[1913 Webster]"), field labels ("(Zool.)") and quotation attributions."""
  body = entry[_gcide_head_end(entry):]
  body = _GCIDE_LETTER.sub(_gcide_letter, body)
  body = _GCIDE_CODE.sub(lambda m: _GCIDE_NAMED.get(m.group(1), " "), body)
  body = _GCIDE_PRON.sub(" ", body)
  body = _drop_brackets(body)
  body = _GCIDE_SAID_BY.sub(" ", body)
  body = _LABEL.sub(" ", body)
  body = _GCIDE_NOTE.sub(" ", _POS_DASHED.sub(" ", _BRACES.sub("", body)))
  return [_POS_START.sub("", p) for p in _BLANK.split(body)]


def read_gcide(path: str) -> Iterator[str]:
  for entry in dictd_entries(path):
    yield from gcide_paragraphs(entry)


_DICTD_TAG = re.compile(r"<[a-z][a-z ,/-]*>")
_DEVIL_HEAD = re.compile(r"^\s*[^a-z\n]+?,\s*(?:[a-z]{1,5}\.\s*(?:(?:and|or|&)\s*)?)+")


def dictd_paragraphs(entry: str) -> List[str]:
  """An entry of FOLDOC, the Jargon File or The Devil's Dictionary as
  paragraphs: without its headword paragraph (or the Devil's "WORD, n."),
  subject tags ("<hardware>"), bracketed notes and cross-reference braces."""
  paragraphs = _BLANK.split(entry.strip("\n"))
  m = _DEVIL_HEAD.match(paragraphs[0])
  if m and len(paragraphs[0]) > m.end():
    paragraphs[0] = paragraphs[0][m.end():]  # The Devil's Dictionary
  else:
    paragraphs = paragraphs[1:]
  text = _BRACES.sub("", _drop_brackets(_DICTD_TAG.sub(" ", "\n\n".join(paragraphs))))
  return [_POS_START.sub("", p) for p in _BLANK.split(text)]


def read_dictd(path: str) -> Iterator[str]:
  for entry in dictd_entries(path):
    yield from dictd_paragraphs(entry)


# ---------------------------------------------------------------- WordNet

_QUOTED = re.compile(r'"([^"]*)"')


def wordnet_glosses(data_file: str) -> Iterator[str]:
  """A WordNet ``data.*`` file's glosses: each definition and each quoted
  example a paragraph."""
  with open(data_file, encoding="utf-8", errors="replace") as f:
    for line in f:
      if line.startswith(" ") or " | " not in line:
        continue  # the licence header
      gloss = line.split(" | ", 1)[1].strip()
      for example in _QUOTED.findall(gloss):
        yield example
      definition = _QUOTED.sub(" ", gloss).strip(" ;")
      if definition:
        yield definition[0].upper() + definition[1:] + "."


def read_wordnet(path: str) -> Iterator[str]:
  directory = os.path.dirname(path)
  for part in ("noun", "verb", "adj", "adv"):
    data_file = os.path.join(directory, f"data.{part}")
    if os.path.exists(data_file):
      yield from wordnet_glosses(data_file)


# ------------------------------------------------------------------ SWORD

_OSIS_DROP = re.compile(r"<(note|title)\b[^>]*?(?<!/)>.*?</\1>", re.DOTALL)
_OSIS_BREAK = re.compile(r"</?(?:div|p|lg|title|chapter|list|item|head|br|lb)\b[^>]*>")
_TAG = re.compile(r"<[^>]*>")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s*$")


def osis_text(raw: str) -> str:
  """OSIS markup to text: footnotes and titles dropped, paragraph and
  division tags as line breaks, other tags (word tags) removed."""
  text = _OSIS_DROP.sub(" ", raw)
  text = _OSIS_BREAK.sub("\n", text)
  return html.unescape(_TAG.sub("", text))


def osis_paragraphs(units: Iterator[str]) -> Iterator[str]:
  """Paragraphs of a sequence of OSIS verses or commentary entries: a line
  break ends one, and so does a verse that ends a sentence."""
  pending = ""
  for raw in units:
    lines = (pending + " " + osis_text(raw)).split("\n")
    yield from lines[:-1]
    pending = lines[-1]
    if _SENTENCE_END.search(pending):
      yield pending
      pending = ""
  if pending.strip():
    yield pending


def sword_units(conf_path: str) -> Iterator[str]:
  """The raw OSIS text of each verse of a SWORD Bible, or each entry of a
  commentary (once, though it is linked from every verse it covers), read
  with pysword."""
  try:
    from pysword.bible import SwordBible  # pylint: disable=g-import-not-at-top
    from pysword.modules import SwordModules  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise UserError("pysword is not installed; install sslax's words extra: "
                    f"{WORDS_EXTRA} (or run `make text`)") from None
  with open(conf_path, encoding="utf-8", errors="replace") as f:
    key = next(line.strip()[1:-1] for line in f if line.strip().startswith("["))
  root = os.path.dirname(os.path.dirname(conf_path))
  conf = SwordModules(root).parse_modules()[key]
  driver = conf["moddrv"].lower().replace("zcom", "ztext").replace("rawcom", "rawtext")
  module_path = os.path.join(root, conf["datapath"])
  if driver in ("ztext", "ztext4"):
    # Verse records of 10 bytes (zText) or 12 (zText4); some modules' conf
    # files name the wrong one (sword-comm-mhcc 2.0: zCom4 with 10-byte ones).
    index = glob.glob(os.path.join(module_path, "[on]t.?zv"))
    size = os.path.getsize(index[0]) if index else 0
    if driver == "ztext4" and size % 12 and not size % 10:
      driver = "ztext"
    elif driver == "ztext" and size % 10 and not size % 12:
      driver = "ztext4"
  bible = SwordBible(module_path, driver,
                     conf.get("versification", "kjv").lower(),
                     conf.get("encoding", "utf-8").lower(), conf.get("sourcetype", "OSIS"),
                     conf.get("blocktype", "BOOK"), conf.get("compresstype", "ZIP"))
  if hasattr(bible, "_decompressed_text"):
    # pysword decompresses a verse's whole block (a book) for each verse.
    cache = {}

    def decompressed(testament, buf_num, _read=bible._decompressed_text):  # pylint: disable=protected-access
      if (testament, buf_num) not in cache:
        cache.clear()
        cache[testament, buf_num] = _read(testament, buf_num)
      return cache[testament, buf_num]
    bible._decompressed_text = decompressed  # pylint: disable=protected-access
  seen = set()
  for raw in bible.get_iter(clean=False):
    if raw and raw not in seen:
      seen.add(raw)
      yield raw


def read_sword(path: str) -> Iterator[str]:
  return osis_paragraphs(sword_units(path))


# ------------------------------------------------------- reStructuredText

# Directives whose body is code, a table or a list of files, not prose.
_RST_CODE_BODIES = frozenset("""
code-block code sourcecode literalinclude highlight productionlist testcode
testoutput testsetup testcleanup doctest math csv-table list-table flat-table
table toctree raw graphviz kernel-doc kernel-abi kernel-feat kernel-figure
parsed-literal ditaa image figure include only tabularcolumns digraph
""".split())
_RST_DIRECTIVE = re.compile(r"\s*\.\.(?:\s+([\w:.-]+)::|\s|$)")
_RST_OPTION = re.compile(r"\s+:[\w -]+:")
_RST_RULE = re.compile(r"([=\-~^*+#`'\".:_<>])\1{2,}|[=\s]*=[=\s]+|\+[-=+]+\+?")
_RST_ROLE = re.compile(r":[\w:+.-]+:`([^`]*)`")
_RST_REF = re.compile(r"`([^`<]*?)\s*(?:<[^>`]*>)?`_{0,2}")
_RST_LITERAL = re.compile(r"``(.*?)``")
_RST_EMPHASIS = re.compile(r"\*{1,2}([^*\s][^*]*?)\*{1,2}")
_RST_FOOTNOTE = re.compile(r"\[(?:#\w*|\*|\d+)\]_|\|[\w -]+\|")


def rst_paragraphs(text: str) -> List[str]:
  """The paragraphs of a reStructuredText file without its directives,
  comments, code and literal blocks, tables, section rules and inline markup."""
  kept: List[str] = []
  skip_indent = None  # skip the lines indented more than this (a block's body)
  skip_paragraph = options = False
  for line in text.split("\n"):
    stripped = line.strip()
    indent = len(line) - len(line.lstrip())
    if skip_paragraph:
      if stripped:
        continue
      skip_paragraph = False
    if skip_indent is not None:
      if not stripped or indent > skip_indent:
        continue
      skip_indent = None
    if options and _RST_OPTION.match(line):
      continue
    options = False
    if not stripped:
      kept.append("")
      continue
    m = _RST_DIRECTIVE.match(line)
    if m:
      if m.group(1) is None or m.group(1) in _RST_CODE_BODIES:
        skip_indent = indent  # a comment, or code
      options = True
      kept.append("")
      continue
    if _RST_RULE.fullmatch(stripped) or stripped.startswith(("|", ">>>", "$ ", "# ")):
      skip_paragraph = not _RST_RULE.fullmatch(stripped)
      kept.append("")
      continue
    if stripped.endswith("::"):
      line = line.rstrip()[:-1]
      skip_indent = indent
    kept.append(line)
  paragraphs = []
  for paragraph in "\n".join(kept).split("\n\n"):
    paragraph = _RST_ROLE.sub(lambda m: re.sub(r"\s*<[^>]*>$", "", m.group(1)).lstrip("~!"),
                              paragraph)
    paragraph = _RST_LITERAL.sub(r"\1", paragraph)
    paragraph = _RST_REF.sub(r"\1", paragraph)
    paragraph = _RST_EMPHASIS.sub(r"\1", _RST_FOOTNOTE.sub(" ", paragraph))
    if paragraph.strip():
      paragraphs.append(paragraph.replace("\\", ""))
  return paragraphs


def read_rst_tree(path: str) -> Iterator[str]:
  """The paragraphs of every ``*.rst.txt`` or ``*.rst`` file under ``path``
  (Sphinx's ``_sources``), in path order."""
  files = sorted(glob.glob(os.path.join(path, "**", "*.rst*"), recursive=True))
  for file in files:
    if file.endswith((".rst", ".rst.txt")):
      with open(file, encoding="utf-8", errors="replace") as f:
        yield from rst_paragraphs(f.read())


# -------------------------------------------------------------------- POD

_POD_CODE = re.compile(r"([A-Z])<<<\s(.*?)\s>>>|([A-Z])<<\s(.*?)\s>>|([A-Z])<([^<>]*)>",
                       re.DOTALL)
_POD_ENTITIES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&"}


def _pod_code(m) -> str:
  letter, content = next((m.group(i), m.group(i + 1)) for i in (1, 3, 5) if m.group(i))
  if letter in "XZ":
    return ""
  if letter == "E":
    return _POD_ENTITIES.get(content, html.unescape(f"&{content};"))
  if letter == "L":
    return content.split("|", 1)[0] if "|" in content else content.split("/")[0]
  return content


def pod_paragraphs(text: str) -> List[str]:
  """The ordinary paragraphs of a POD file, formatting codes removed;
  commands, ``=begin`` blocks and verbatim (code) paragraphs dropped."""
  out, skip_to = [], None
  for paragraph in _BLANK.split(text):
    if skip_to:
      if paragraph.startswith(skip_to):
        skip_to = None
      continue
    if paragraph.startswith("=begin"):
      skip_to = "=end"
      continue
    if not paragraph.strip() or paragraph.startswith(("=", " ", "\t")):
      continue
    while True:
      paragraph, n = _POD_CODE.subn(_pod_code, paragraph)
      if not n:
        break
    out.append(paragraph)
  return out


def read_pod_dir(path: str) -> Iterator[str]:
  """The paragraphs of every ``*.pod`` file beside ``path``, in name order."""
  for file in sorted(glob.glob(os.path.join(os.path.dirname(path), "*.pod"))):
    with open(file, encoding="utf-8", errors="replace") as f:
      yield from pod_paragraphs(f.read())


# ------------------------------------------------------------ HTML, fortune

_HTML_DROP = re.compile(r"<(head|pre|script|style|table|code)\b[^>]*>.*?</\1>|<!--.*?-->",
                        re.DOTALL | re.IGNORECASE)
_HTML_BLOCK = re.compile(r"</?(?:p|div|h\d|li|ul|ol|dl|dt|dd|br|tr|td|th|blockquote|"
                         r"body|html|title|caption|hr|section|nav)\b[^>]*>", re.IGNORECASE)
_HTML_INLINE_CODE = re.compile(r"<code\b[^>]*>(.*?)</code>", re.DOTALL | re.IGNORECASE)


def html_paragraphs(text: str) -> List[str]:
  """The paragraphs of an HTML page without its head, code blocks, tables
  and scripts; inline code keeps its text."""
  text = _HTML_INLINE_CODE.sub(r"\1", text)
  text = _HTML_BLOCK.sub("\n\n", _HTML_DROP.sub("\n\n", text))
  return [html.unescape(p) for p in _BLANK.split(_TAG.sub("", text)) if p.strip()]


def read_html_dir(path: str) -> Iterator[str]:
  """The paragraphs of every ``*.html`` page in ``path``, in name order."""
  for file in sorted(glob.glob(os.path.join(path, "*.html"))):
    with open(file, encoding="utf-8", errors="replace") as f:
      yield from html_paragraphs(f.read())


_FORTUNE_SAID_BY = re.compile(r"(?m)^[ \t]*--.*(?:\n[ \t]{2,}\S.*)*$")


def fortune_paragraphs(text: str) -> List[str]:
  """The quotations of a fortune file (separated by ``%`` lines), without
  their attributions ("-- Mark Twain")."""
  return [p for fortune in re.split(r"(?m)^%\s*$", text)
          for p in _BLANK.split(_FORTUNE_SAID_BY.sub("", fortune)) if p.strip()]


def read_fortunes(path: str) -> Iterator[str]:
  """The quotations of the fortune files beside ``path`` (not
  ``ascii-art``), each file once."""
  for file in sorted(glob.glob(os.path.join(os.path.dirname(path), "*"))):
    name = os.path.basename(file)
    if (os.path.isfile(file) and not os.path.islink(file) and "." not in name
        and name != "ascii-art"):
      with open(file, encoding="utf-8", errors="replace") as f:
        yield from fortune_paragraphs(f.read())


# ---------------------------------------------------------------- sources


@dataclasses.dataclass(frozen=True)
class Source:
  """Text from a Debian package: ``path`` (a glob; its first match in sorted
  order) says the package is installed and is what ``read`` reads, yielding
  markup-free paragraphs. ``prose_only``: keep only sentences that look like
  prose (manuals: code and tables)."""
  name: str
  package: str
  path: str
  read: Callable[[str], Iterator[str]]
  prose_only: bool = False

  def find(self) -> Optional[str]:
    matches = sorted(glob.glob(self.path))
    return matches[0] if matches else None

  def describe(self) -> dict:
    return {"name": self.name, "package": self.package, "path": self.path,
            "prose_only": self.prose_only}


SOURCES = {s.name: s for s in (
    Source("gcide", "dict-gcide", "/usr/share/dictd/gcide.dict.dz", read_gcide),
    Source("wordnet", "wordnet-base", "/usr/share/wordnet/data.noun", read_wordnet),
    Source("kjv", "sword-text-kjv", "/usr/share/sword/mods.d/engKJV*.conf", read_sword),
    Source("web", "sword-text-web", "/usr/share/sword/mods.d/engWEB*.conf", read_sword),
    Source("mhcc", "sword-comm-mhcc", "/usr/share/sword/mods.d/mhcc.conf", read_sword),
    Source("tdavid", "sword-comm-tdavid", "/usr/share/sword/mods.d/tdavid.conf", read_sword),
    Source("scofield", "sword-comm-scofield", "/usr/share/sword/mods.d/scofield.conf",
           read_sword),
    Source("foldoc", "dict-foldoc", "/usr/share/dictd/foldoc.dict.dz", read_dictd),
    Source("jargon", "dict-jargon", "/usr/share/dictd/jargon.dict.dz", read_dictd),
    Source("devil", "dict-devil", "/usr/share/dictd/devil.dict.dz", read_dictd),
    Source("python-docs", "python3-doc", "/usr/share/doc/python3*/html/_sources",
           read_rst_tree, prose_only=True),
    Source("perl-docs", "perl-doc", "/usr/share/perl/5*/pod/perlfunc.pod",
           read_pod_dir, prose_only=True),
    Source("linux-docs", "linux-doc", "/usr/share/doc/linux-doc-*/html/_sources",
           read_rst_tree, prose_only=True),
    Source("postgresql-docs", "postgresql-doc", "/usr/share/doc/postgresql-doc-*/html",
           read_html_dir, prose_only=True),
    Source("fortunes", "fortunes", "/usr/share/games/fortunes/literature", read_fortunes),
)}
PACKAGES = tuple(s.package for s in SOURCES.values())


def _choose(sources) -> List[Source]:
  if sources is None:
    chosen = [s for s in SOURCES.values() if s.find()]
    if not chosen:
      raise UserError("no text source is installed (Debian packages such as "
                      f"{', '.join(PACKAGES[:3])}); {BUILD_HINT}")
    return chosen
  chosen = []
  for s in sources:
    if isinstance(s, str):
      if s not in SOURCES:
        raise UserError(f"unknown text source {s!r}; the sources are {', '.join(SOURCES)}")
      s = SOURCES[s]
    if s.find() is None:
      raise UserError(f"the text source {s.name} needs the Debian package {s.package} "
                      f"(nothing matches {s.path}); {BUILD_HINT}, or apt-get install "
                      f"{s.package}")
    chosen.append(s)
  if not chosen:
    raise UserError(f"no text sources were given; {BUILD_HINT}")
  if len({s.name for s in chosen}) < len(chosen):
    raise UserError("each text source can be given once")
  return chosen


def _package_version(package: str) -> Optional[str]:
  try:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                         capture_output=True, text=True, check=False, timeout=30)
  except (OSError, subprocess.SubprocessError):
    return None
  return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def source_sentences(source: Source, min_tokens=MIN_TOKENS) -> List[str]:
  """The sentences of one source, each its tokens joined by single spaces."""
  return [" ".join(tokens) for tokens in paragraph_sentences(
      source.read(source.find()), min_tokens, prose_only=source.prose_only)]


def _timed_sentences(source: Source, min_tokens: int):
  start = time.time()
  return source_sentences(source, min_tokens), time.time() - start


def held_out(sentence: str, seed: int, fraction: float) -> bool:
  """Whether ``sentence`` belongs to the held-out split: a hash of it and
  ``seed``, as a number in [0, 1), below ``fraction``."""
  digest = hashlib.blake2b(f"{seed}\n{sentence}".encode(), digest_size=8).digest()
  return int.from_bytes(digest, "big") / 2.0 ** 64 < fraction


def build(out: str, *, heldout_fraction=0.02, seed=0,
          sources: Optional[Sequence[Union[str, Source]]] = None, min_tokens=MIN_TOKENS,
          workers: Optional[int] = None, log=print) -> dict:
  """Builds the corpus in ``out`` (or finds it there, built with the same
  settings); returns its meta dict. ``sources``: names from ``SOURCES`` or
  ``Source`` objects; by default every source whose package is installed."""
  if not 0.0 <= heldout_fraction < 1.0:
    raise UserError(f"the held-out fraction must be in [0, 1), not {heldout_fraction}")
  if min_tokens < 1:
    raise UserError(f"min_tokens must be 1 or more, not {min_tokens}")
  settings = {"heldout_fraction": heldout_fraction, "seed": seed, "min_tokens": min_tokens,
              "version": VERSION,
              "sources": None if sources is None else
                         [s if isinstance(s, str) else s.describe() for s in sources]}
  meta = corpus.built_meta(out, lambda m: m.get("settings") == settings, "text corpus")
  if meta is not None:
    log(f"text corpus already in {out}")
    return meta
  chosen = _choose(sources)
  start = time.time()
  workers = max(1, min(workers or os.cpu_count() or 1, len(chosen)))
  if workers > 1:
    # Spawned, not forked: the caller may have started JAX's threads.
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"))
  else:
    pool = concurrent.futures.ThreadPoolExecutor(1)
  seen, splits = set(), {"train": [], "heldout": []}
  used = []
  with pool:
    futures = [pool.submit(_timed_sentences, s, min_tokens) for s in chosen]
    for source, future in zip(chosen, futures):
      sentences, seconds = future.result()
      counts = {"train": [0, 0], "heldout": [0, 0]}
      duplicates = 0
      for sentence in sentences:
        if sentence in seen:
          duplicates += 1
          continue
        seen.add(sentence)
        split = "heldout" if held_out(sentence, seed, heldout_fraction) else "train"
        splits[split].append(sentence)
        counts[split][0] += 1
        counts[split][1] += sentence.count(" ") + 1
      used.append({**source.describe(), "version": _package_version(source.package),
                   "sentences": counts["train"][0] + counts["heldout"][0],
                   "words": counts["train"][1] + counts["heldout"][1],
                   "train_words": counts["train"][1], "heldout_words": counts["heldout"][1],
                   "duplicate_sentences": duplicates, "seconds": round(seconds, 1)})
      log(f"{source.name} ({source.package}): {used[-1]['words']} words in "
          f"{used[-1]['sentences']} sentences, {duplicates} duplicates dropped")
  del seen
  if not splits["train"] and not splits["heldout"]:
    raise UserError(f"the text sources ({', '.join(s.name for s in chosen)}) gave no "
                    f"sentences of {min_tokens} or more words; {BUILD_HINT}")
  if not splits["train"]:
    raise UserError(f"every sentence was held out; give a held-out fraction below "
                    f"{heldout_fraction}")
  os.makedirs(out, exist_ok=True)
  rng = np.random.default_rng(seed)
  split_meta = {}
  for split, file in (("train", TRAIN_FILE), ("heldout", HELDOUT_FILE)):
    lines = splits[split]
    path = os.path.join(out, file)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
      for i in rng.permutation(len(lines)):
        f.write(lines[i])
        f.write("\n")
    os.replace(path + ".tmp", path)
    split_meta[split] = {"sentences": len(lines),
                         "words": sum(s.count(" ") + 1 for s in lines)}
  meta = {"settings": settings, "sources": used, "splits": split_meta,
          "build_seconds": round(time.time() - start, 1)}
  corpus.write_meta(out, meta)
  log(f"text corpus in {out}: {split_meta['train']['words']} train words "
      f"({split_meta['train']['sentences']} sentences), {split_meta['heldout']['words']} "
      f"held-out words ({split_meta['heldout']['sentences']} sentences) from "
      f"{len(used)} sources in {meta['build_seconds']} s")
  return meta


def read_sentences(path: str) -> Iterator[List[str]]:
  """The token lists of a corpus file, one a line."""
  with open(path, encoding="utf-8") as f:
    for line in f:
      tokens = line.split()
      if tokens:
        yield tokens


def load(data_dir: Optional[str] = None):
  """(meta, train path, held-out path) of the corpus in ``data_dir``."""
  data_dir = data_dir or default_corpus_dir()
  paths = [os.path.join(data_dir, f) for f in (corpus.META_FILE, TRAIN_FILE, HELDOUT_FILE)]
  if not all(os.path.exists(p) for p in paths):
    raise UserError(f"no text corpus in {data_dir}; run `make text` or "
                    f"`sslax data make-text --out {data_dir}`")
  with open(paths[0]) as f:
    meta = json.load(f)
  return meta, paths[1], paths[2]
