"""sslax's word2vec beside its peer, gensim's, with the same settings, one
run: trains both (skip-gram with negative sampling by default) on
``CORPUS/train.txt`` (one sentence a line, space-separated lowercase tokens)
and prints ``sslax.eval.words``' table: analogy accuracy per section,
WordSim-353 and SimLex-999 Spearman, and training words/s, one column a model.

  python launch/words_peer.py --corpus data/text [--dim 100 --epochs 5 ...]

``--batch-size`` and ``--update-cap`` set sslax's own batch (corpus
positions a step) and ``config.word2vec.update_cap``; gensim has neither.

Words/s counts raw corpus words: every token of train.txt (gensim's
``corpus_total_words``, before min_count and ``sample`` drop any) times the
epochs, over the wall-clock seconds of ``Word2Vec.train`` alone (vocabulary
building excluded). gensim's own log line reports "effective words/s", the
words left after min_count and down-sampling, which is lower.

The trainers in ``TRAINERS`` take the same settings and return ``(vocab,
vectors, words_per_second)``; each is one column of the table.
"""

import argparse
import os
import time

import numpy as np

from sslax.errors import UserError, exit_on_user_error
from sslax.eval import words as words_eval


def train_gensim(train_path, *, dim, window, negative, sample, min_count, epochs, workers,
                 seed, sg=1):
  """gensim's Word2Vec (``sg=1`` skip-gram, 0 CBOW; negative sampling, no
  hierarchical softmax) on a LineSentence file through ``corpus_file=``.
  Returns ``(vocab in gensim's order (descending count), vectors float32 [V,
  dim], raw words/s)``. With several workers the result is not bit-for-bit
  reproducible from ``seed`` (gensim's threads race)."""
  try:
    from gensim.models import Word2Vec
  except ImportError:
    raise UserError("gensim is not installed; install it with `make install` "
                    "(pip install 'sslax[words]')") from None
  train_path = str(train_path)
  if not os.path.isfile(train_path):
    raise UserError(f"no corpus file {train_path}: give --corpus a directory with train.txt "
                    f"(one sentence a line)")
  model = Word2Vec(vector_size=dim, window=window, negative=negative, hs=0, sample=sample,
                   min_count=min_count, epochs=epochs, workers=workers, seed=seed, sg=sg)
  model.build_vocab(corpus_file=train_path)
  if not len(model.wv):
    raise UserError(f"{train_path}: no word occurs min_count={min_count} times; lower "
                    f"min_count or train on a larger corpus")
  start = time.perf_counter()
  model.train(corpus_file=train_path, total_examples=model.corpus_count,
              total_words=model.corpus_total_words, epochs=epochs)
  seconds = time.perf_counter() - start
  vectors = np.asarray(model.wv.vectors, np.float32)
  return list(model.wv.index_to_key), vectors, model.corpus_total_words * epochs / seconds


def train_sslax(train_path, *, dim, window, negative, sample, min_count, epochs, workers,
                seed, sg=1, workdir=None, batch_size=4096, update_cap=None):
  """sslax's word2vec (``configs/word2vec.py``) with the same settings, trained
  by ``train_and_evaluate`` into ``workdir`` (default: a temporary one) for
  ``epochs`` passes over the corpus positions, ``batch_size`` positions a step
  (``update_cap``: the config's when None). Words/s is gensim's count (raw
  corpus words x epochs) over the seconds of ``train_and_evaluate`` with the
  vocabulary already built (compilation and checkpoints included)."""
  del workers  # the devices of the process, with XLA's own threads
  import tempfile  # pylint: disable=g-import-not-at-top
  from sslax.config_loading import load_config_file  # pylint: disable=g-import-not-at-top
  from sslax.data import word_windows  # pylint: disable=g-import-not-at-top
  from sslax.eval.protocols import words as words_protocol  # pylint: disable=g-import-not-at-top
  from sslax.train import artifact  # pylint: disable=g-import-not-at-top
  from sslax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  config = load_config_file(os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), "configs", "word2vec.py:" + ("text" if sg else "cbow")))
  config.data.data_dir = os.path.dirname(os.path.abspath(train_path))
  config.data.min_count = min_count
  config.seed = seed
  config.global_batch_size = batch_size
  config.word2vec.update(dim=dim, window=window, negatives=negative, sample=sample,
                         epochs=epochs)
  if update_cap is not None:
    config.word2vec.update_cap = float(update_cap)
  config.progress_bar = False
  positions = len(word_windows.source(config.data, "train"))  # counted and encoded here
  config.num_steps = -(-epochs * positions // batch_size)
  config.checkpoint_every = config.num_steps
  with open(train_path, "rb") as f:
    raw_words = sum(len(line.split()) for line in f)
  workdir = workdir or tempfile.mkdtemp(prefix="sslax_word2vec_")
  start = time.perf_counter()
  train_and_evaluate(config, workdir)
  seconds = time.perf_counter() - start
  encoder = artifact.restore_encoder(workdir)
  return (words_protocol.vocabulary(encoder, workdir), words_protocol.table(encoder),
          raw_words * epochs / seconds)


# Name -> trainer(train_path, **settings) -> (vocab, vectors, words/s): one column each.
TRAINERS = {"sslax": train_sslax, "gensim": train_gensim}


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--corpus", required=True, help="directory with train.txt")
  parser.add_argument("--models", nargs="+", default=list(TRAINERS), choices=list(TRAINERS))
  parser.add_argument("--dim", type=int, default=100)
  parser.add_argument("--window", type=int, default=5)
  parser.add_argument("--negative", type=int, default=5)
  parser.add_argument("--sample", type=float, default=1e-3)
  parser.add_argument("--min-count", type=int, default=5)
  parser.add_argument("--epochs", type=int, default=5)
  parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--batch-size", type=int, default=4096,
                      help="sslax's corpus positions a step (default 4096)")
  parser.add_argument("--update-cap", type=float, default=None,
                      help="sslax's config.word2vec.update_cap (default: the config's)")
  parser.add_argument("--workdir", default=None,
                      help="sslax's run directory (default: a temporary one)")
  parser.add_argument("--data-dir", default=None,
                      help="evaluation files (default: gensim's test data)")
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  train_path = os.path.join(args.corpus, "train.txt")
  settings = dict(dim=args.dim, window=args.window, negative=args.negative, sample=args.sample,
                  min_count=args.min_count, epochs=args.epochs, workers=args.workers,
                  seed=args.seed)
  data_dir = words_eval.test_data_dir() if args.data_dir is None else args.data_dir
  results = {}
  for name in args.models:
    extra = ({"workdir": args.workdir, "batch_size": args.batch_size,
              "update_cap": args.update_cap} if name == "sslax" else {})
    vocab, vectors, words_per_second = TRAINERS[name](train_path, **settings, **extra)
    results[name] = words_eval.evaluate(vocab, vectors, data_dir)
    results[name]["words_per_second"] = words_per_second
  print(" ".join(f"{k}={v}" for k, v in settings.items()))
  print("\n".join(words_eval.table_lines(results)))
  print("\n".join(words_eval.neighbour_lines(results)))
  return results


if __name__ == "__main__":
  exit_on_user_error("words_peer", main)
