"""word2vec (Mikolov et al. 2013, "Distributed representations of words and
phrases and their compositionality"): skip-gram with negative sampling, or
CBOW (``config.word2vec.cbow``), on the same jit/mesh trainer as every
method. Batches are corpus positions with their windows
(``sslax.data.word_windows``), sharded over the data axis; each step draws,
on device and from the step's key, gensim's per-epoch randomness:
frequent-word subsampling, the dynamic window and the negatives, drawn from
the unigram distribution to the 3/4 (``sslax.data.skipgram``).

Two tables: the input vectors (encoder ``words``, the primary, a ``table``)
and the output vectors (encoder ``context``), initialised as in word2vec.c
(input U(-0.5/dim, 0.5/dim), output zeros). The word counts, the noise and
keep probabilities are constants kept in the state: computed once from the
training data, never recomputed on resume. The vocabulary is an asset of
both encoders (``vocab.json``).

Config group ``config.word2vec``: ``dim``, ``window`` (the largest dynamic
window), ``negatives`` (per pair), ``sample`` (the subsampling threshold),
``cbow``, ``shared_negatives`` (skip-gram: the pairs of one centre share its
``negatives`` draws, k dot products per centre instead of per pair; False
draws them per pair as word2vec.c and gensim do); ``config.data``: ``min_count``, ``max_vocab``, ``reach`` (the raw
positions either side a window may reach after subsampling).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sslax.data import skipgram
from sslax.encoder import EncoderDef
from sslax.errors import UserError
from sslax.losses import word2vec as losses
from sslax.methods.base import LossAux, Method
from sslax.models.embedding import TokenEmbedding

VOCABULARY = "vocab.json"


class Tables(nn.Module):
  """The input (``words``) and output (``context``) vectors."""
  vocab_size: int
  dim: int

  def setup(self):
    self.words = TokenEmbedding(self.vocab_size, self.dim, init_scale=0.5 / self.dim)
    self.context = TokenEmbedding(self.vocab_size, self.dim)

  def __call__(self, ids, train: bool = True):
    return self.words(ids), self.context(ids)


def table_def(config, vocab_size: int, name: str) -> EncoderDef:
  """The ``table`` encoder of ``params[name]``: token ids -> vectors."""
  return EncoderDef(
      network={"kind": "embedding", "vocab_size": int(vocab_size),
               "dim": int(config.word2vec.dim), "model": {}},
      selection=(((name,), ()),), preprocess={"kind": "token_ids"}, input_shape=(),
      input_key=skipgram.CENTRE, input_dtype="int32", output="table",
      assets=(VOCABULARY,))


def check_config(config):
  w = config.word2vec
  for key in ("dim", "window", "negatives"):
    if int(w[key]) <= 0:
      raise UserError(f"config.word2vec.{key} must be positive, got {w[key]}")
  if int(w.window) > int(config.data.reach):
    raise UserError(f"config.word2vec.window ({w.window}) exceeds config.data.reach "
                    f"({config.data.reach}), the positions a window can see; raise "
                    "--config.data.reach")
  if float(w.sample) < 0:
    raise UserError(f"config.word2vec.sample must be >= 0 (0: no subsampling), got {w.sample}")


def build(config) -> Method:
  check_config(config)
  from sslax.data import word_windows  # pylint: disable=g-import-not-at-top
  vocab = word_windows.vocabulary(config.data)
  w = config.word2vec
  model = Tables(len(vocab), int(w.dim))
  window, negatives, cbow = int(w.window), int(w.negatives), bool(w.cbow)
  shared = bool(w.get("shared_negatives", True))

  def constants(source):
    counts = np.asarray(source.vocabulary.counts, np.int64)
    return {"counts": counts,
            "noise": skipgram.noise_distribution(counts).astype(np.float32),
            "keep": (skipgram.keep_probabilities(counts, float(w.sample))
                     if float(w.sample) > 0 else np.ones(len(counts))).astype(np.float32)}

  def init(key, examples, tables):
    variables = model.init(key, jnp.asarray(examples[skipgram.CENTRE]))
    return variables["params"], {}, dict(tables)

  def loss_fn(params, model_state, method_state, batch, key):
    k_pairs, k_neg = jax.random.split(key)
    centre, context = batch[skipgram.CENTRE], batch[skipgram.CONTEXT]
    _, mask = skipgram.sample_pairs(k_pairs, centre, context, batch[skipgram.CONTEXT_VALID],
                                    method_state["keep"], window)
    words = params["words"]["embedding"]
    outputs = params["context"]["embedding"]
    if cbow:
      neg = losses.draw_negatives(k_neg, method_state["noise"], (centre.shape[0], negatives))
      loss = losses.cbow_loss(outputs[centre], words[context], mask, outputs[neg],
                              reduction="sum")
      pairs = jnp.sum(jnp.any(mask, axis=1))
    elif shared:
      neg = losses.draw_negatives(k_neg, method_state["noise"], (centre.shape[0], negatives))
      loss = losses.sgns_loss_shared_negatives(words[centre], outputs[context], mask,
                                               outputs[neg], reduction="sum")
      pairs = jnp.sum(mask)
    else:
      neg = losses.draw_negatives(k_neg, method_state["noise"], (*context.shape, negatives))
      loss = losses.sgns_loss(words[centre], outputs[context], mask, outputs[neg],
                              reduction="sum")
      pairs = jnp.sum(mask)
    return loss, LossAux(model_state, method_state, {"pairs": pairs})

  def assets(source):
    text = source.vocabulary.to_json()
    return {"words": {VOCABULARY: text}, "context": {VOCABULARY: text}}

  return Method(name="word2vec", init=init, loss_fn=loss_fn,
                encoder=table_def(config, len(vocab), "words"), encoder_name="words",
                other_encoders={"context": table_def(config, len(vocab), "context")},
                constants=constants, assets=assets)
