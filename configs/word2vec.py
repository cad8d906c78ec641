"""word2vec (Mikolov et al. 2013): skip-gram with negative sampling on the
local English corpus (``make text``). Variants: text (default), cbow, smoke.
Example: ``sslax train --config configs/word2vec.py --workdir runs/w2v`` then
``sslax eval words --workdir runs/w2v``.

Settings are gensim's defaults (dim 100, window 5, 5 negatives, sample 1e-3,
min_count 5, 5 epochs, lr 0.025 decayed linearly), so the two compare on one
corpus (``launch/words_peer.py``). Each step trains on a batch of 4096
corpus positions, the loss the sum over their pairs, a word's update the
mean of its occurrences' (``sslax.methods.word2vec``)."""

import json
import math
import os

import ml_collections

from sslax.config_base import base_config

CORPUS = "data/text"
VARIANTS = ("text", "cbow", "smoke")


def corpus_words(data_dir: str) -> int:
  """The train split's words by the corpus's meta.json (0 when not built)."""
  try:
    with open(os.path.join(data_dir, "meta.json")) as f:
      return int(json.load(f)["splits"]["train"]["words"])
  except (OSError, KeyError, ValueError):
    return 0


def get_config(arg: str = "text"):
  c = base_config("word2vec")
  c.data = ml_collections.ConfigDict(dict(
      name="text_corpus", modality="text", data_dir=CORPUS, train_split="train",
      eval_train_split="train", eval_split="heldout", min_count=5, max_vocab=0,
      reach=10, workers=0))
  c.word2vec = ml_collections.ConfigDict(dict(
      dim=100, window=5, negatives=5, sample=1e-3, cbow=False, epochs=5,
      shared_negatives=True, update_cap=32.0))
  c.global_batch_size = 4096
  c.optimizer = ml_collections.ConfigDict(dict(
      name="plain_sgd", learning_rate=0.025, lr_scaling="none", schedule="linear",
      warmup_steps=0))
  c.online_eval_every = 0  # a table encoder: no kNN or probe to score
  c.log_every = 200
  c.checkpoint_every = 2000
  if arg == "cbow":
    c.word2vec.cbow = True
    c.optimizer.learning_rate = 0.05  # gensim's CBOW default alpha
  elif arg == "smoke":
    c.word2vec.dim = 16
    c.global_batch_size = 64
    c.data.min_count = 1
  elif arg != "text":
    from sslax.errors import UserError  # pylint: disable=g-import-not-at-top
    raise UserError(f"configs/word2vec.py has variants text, cbow and smoke, not {arg!r}")
  # Epochs over the corpus's positions (about its words: those outside the
  # vocabulary are dropped); 20000 steps before the corpus is built.
  words = corpus_words(c.data.data_dir)
  c.num_steps = (math.ceil(c.word2vec.epochs * words / c.global_batch_size) if words
                 else 20000)
  if arg == "smoke":
    c.num_steps = 8
    c.log_every = c.checkpoint_every = 4
  return c
