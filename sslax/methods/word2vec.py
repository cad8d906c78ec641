"""word2vec (Mikolov et al. 2013, "Distributed representations of words and
phrases and their compositionality"): skip-gram with negative sampling, or
CBOW (``config.word2vec.cbow``), on the same jit/mesh trainer as every
method. Batches are corpus positions with their windows
(``sslax.data.word_windows``), sharded over the data axis; each step draws,
on device and from the step's key, gensim's per-epoch randomness:
frequent-word subsampling, the dynamic window and the negatives, drawn from
the unigram distribution to the 3/4 (``sslax.data.skipgram``).

Each step is SGD on the sum of its pairs' losses at word2vec's rate, with
one change that lets thousands of pairs share a step: a word's update is the
sum of its occurrences' gradients in the batch scaled down to at most
``update_cap`` occurrences' worth (``lookup``; 1: their mean; the config's
32 was the best of 1, 8, 32 and 128 on the analogies after one epoch),
so no word moves by more than that many pairs' updates however often the
batch holds it (summed in full, the frequent words' updates diverge at a
batch of 4096 centres; gensim applies them one pair at a time). The pairs of a centre share its
negatives by default (``shared_negatives``), k dot products per centre.

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
draws them per pair as word2vec.c and gensim do), ``update_cap``; ``config.data``: ``min_count``, ``max_vocab``, ``reach`` (the raw
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


@jax.custom_vjp
def lookup(table, ids, counts):
  """``table[ids]``, whose gradient to a row is the mean of its occurrences'
  (``counts``: occurrences of each id in every lookup of the table this
  step) rather than their sum: one step moves a word by at most one pair's
  update at the learning rate, however often the batch holds it."""
  del counts
  return table[ids]


def _lookup_fwd(table, ids, counts):
  return table[ids], (table.shape, ids, counts)


def _lookup_bwd(residual, cotangent):
  shape, ids, counts = residual
  scale = 1.0 / counts[ids].astype(cotangent.dtype)
  grad = jnp.zeros(shape, cotangent.dtype).at[ids].add(cotangent * scale[..., None])
  return grad, None, None


lookup.defvjp(_lookup_fwd, _lookup_bwd)


def occurrences(size: int, *ids, cap: float = 1.0):
  """How often each of ``size`` ids occurs in ``ids`` (an id of ``size`` or
  more counts nowhere), divided by ``cap`` and at least 1: the divisor of
  a row's summed gradient, so that it is the sum of up to ``cap``
  occurrences' gradients (1: their mean)."""
  counts = sum(jnp.bincount(i.reshape(-1), length=size + 1)[:size] for i in ids)
  return jnp.maximum(counts.astype(jnp.float32) / cap, 1.0)


def compact(ids, mask, width: int):
  """``(ids, mask)`` [n, c] with each row's chosen slots first, cut to
  ``width`` slots (every chosen one kept when a row has at most ``width``)."""
  if width >= ids.shape[1]:
    return ids, mask
  order = jnp.argsort(~mask, axis=1, stable=True)[:, :width]
  return jnp.take_along_axis(ids, order, axis=1), jnp.take_along_axis(mask, order, axis=1)


def check_config(config):
  w = config.word2vec
  for key in ("dim", "window", "negatives"):
    if int(w[key]) <= 0:
      raise UserError(f"config.word2vec.{key} must be positive, got {w[key]}")
  if int(w.window) > int(config.data.reach):
    raise UserError(f"config.word2vec.window ({w.window}) exceeds config.data.reach "
                    f"({config.data.reach}), the positions a window can see; raise "
                    "--config.data.reach")
  if float(w.get("update_cap", 1.0)) < 1:
    raise UserError(f"config.word2vec.update_cap must be at least 1 (1: a word's update is "
                    f"the mean of its occurrences' gradients), got {w.update_cap}")
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
  cap = float(w.get("update_cap", 1.0))

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
    # At most ``window`` kept words a side are paired with a centre: its pairs
    # fit in the first 2 * window slots once the chosen ones come first.
    context, mask = compact(context, mask, 2 * window)
    words, outputs = params["words"]["embedding"], params["context"]["embedding"]
    size = words.shape[0]
    unused = jnp.where(mask, context, size)  # slots no pair uses count nowhere
    if cbow:
      neg = losses.draw_negatives(k_neg, method_state["noise"], (centre.shape[0], negatives))
      in_counts = occurrences(size, unused, cap=cap)
      out_counts = occurrences(size, centre, neg, cap=cap)
      loss = losses.cbow_loss(lookup(outputs, centre, out_counts),
                              lookup(words, context, in_counts), mask,
                              lookup(outputs, neg, out_counts), reduction="sum")
      return loss, LossAux(model_state, method_state,
                           {"pairs": jnp.sum(jnp.any(mask, axis=1))})
    shape = (centre.shape[0], negatives) if shared else (*context.shape, negatives)
    neg = losses.draw_negatives(k_neg, method_state["noise"], shape)
    in_counts = occurrences(size, centre, cap=cap)
    out_counts = occurrences(size, unused, neg, cap=cap)
    pair_loss = losses.sgns_loss_shared_negatives if shared else losses.sgns_loss
    loss = pair_loss(lookup(words, centre, in_counts), lookup(outputs, context, out_counts),
                     mask, lookup(outputs, neg, out_counts), reduction="sum")
    return loss, LossAux(model_state, method_state, {"pairs": jnp.sum(mask)})

  def assets(source):
    text = source.vocabulary.to_json()
    return {"words": {VOCABULARY: text}, "context": {VOCABULARY: text}}

  return Method(name="word2vec", init=init, loss_fn=loss_fn,
                encoder=table_def(config, len(vocab), "words"), encoder_name="words",
                other_encoders={"context": table_def(config, len(vocab), "context")},
                constants=constants, assets=assets)
