"""Representation quality while a run trains, for every method.

* The online linear probe: a softmax classifier on stop-gradient features of
  each training batch, trained beside the method with its own Adam optimizer
  (as in BYOL, Grill et al. 2020), so it never changes the encoder.
  Examples without a label (-1: STL-10's unlabelled images) do not train it.
* Online evaluation every ``config.online_eval_every`` steps: the encoder (eval
  mode) embeds a fixed, seed-chosen subset of the ``config.data.eval_train_split``
  split and of the ``eval_split`` split; the logged figures are the weighted
  kNN top-1 (Wu et al. 2018) and the online probe's top-1 on those examples.
  Both splits must be labelled (one line otherwise). It is off, with a note,
  when the training data has no labels at all (a flat image folder, arrays
  without labels): there is nothing to score.

Everything runs as global arrays over the run's data mesh, so it works the
same on one device and across processes.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sslax.data import pipeline
from sslax.data.source import LABEL, has_labels
from sslax.data.sources import labelled_source, require_labels
from sslax.encoder import embed_fn
from sslax.errors import UserError
from sslax.probes.knn import knn_scores
from sslax.sharding import data_sharding


def probe_optimizer(config):
  return optax.adam(config.online_probe.learning_rate)


def init_probe(feature_dim: int, num_classes: int, tx):
  num_classes = max(num_classes, 1)  # data without labels: an idle probe
  params = {"w": jnp.zeros((feature_dim, num_classes), jnp.float32),
            "b": jnp.zeros((num_classes,), jnp.float32)}
  return {"params": params, "opt_state": tx.init(params)}


def probe_on(probe, batch, features) -> bool:
  """Whether a step trains the probe (static, at trace time): the run has one
  (a vector encoder), the batch is labelled and the method gave features."""
  return bool(probe) and features is not None and LABEL in batch


def probe_note(encoder_def, source):
  """Why the online probe is off for a run, or None when it is on."""
  if encoder_def.output != "vector":
    return f"the encoder gives a {encoder_def.output}, not a vector per example"
  if not has_labels(source):
    return "the training data has no labels"
  return None


def probe_logits(params, features):
  return features.astype(jnp.float32) @ params["w"] + params["b"]


def update_probe(probe, tx, features, labels):
  """One optimizer step of the probe on ``stop_gradient(features)``, over the
  examples that have a label (label -1: none)."""
  features = jax.lax.stop_gradient(features)
  known = labels >= 0
  count = jnp.maximum(jnp.sum(known), 1)

  def loss_of(params):
    logits = probe_logits(params, features)
    losses = optax.softmax_cross_entropy_with_integer_labels(
        logits, jnp.where(known, labels, 0))
    return jnp.sum(jnp.where(known, losses, 0.0)) / count, logits

  (loss, logits), grads = jax.value_and_grad(loss_of, has_aux=True)(probe["params"])
  updates, opt_state = tx.update(grads, probe["opt_state"], probe["params"])
  metrics = {"probe_loss": loss,
             "probe_train_top1": jnp.sum(known & (jnp.argmax(logits, -1) == labels)) / count}
  return {"params": optax.apply_updates(probe["params"], updates),
          "opt_state": opt_state}, metrics


def _subset(num_examples, size, chunk, seed):
  """A seed-fixed subset whose size is a multiple of ``chunk``."""
  size = min(size or num_examples, num_examples) // chunk * chunk
  return np.sort(np.random.default_rng([seed, 1]).permutation(num_examples)[:size])


OFF = " or turn online evaluation off with --config.online_eval_every=0"


def make_online_eval(config, encoder_def, mesh, train_source, sources=None, *,
                     own_source=False):
  """The run's ``OnlineEval``, or None when it is off: ``online_eval_every``
  is 0, or (with a note on stderr) the training data has no labels at all or
  is the caller's own ``train_source`` given without ``sources``, the
  (bank, test) sources to score against."""
  if not config.online_eval_every:
    return None
  reason = None
  if encoder_def.output != "vector":
    reason = (f"kNN and the probe score vectors, and the encoder gives a "
              f"{encoder_def.output}")
  elif sources is None and own_source:
    reason = "train_and_evaluate got its own source and no eval_sources"
  elif sources is None and not has_labels(train_source):
    where = config.data.get("data_dir")
    reason = (f"the training data ({config.data.name}{' ' + where if where else ''}) "
              "has no labels")
  if reason:
    if jax.process_index() == 0:
      print(f"sslax: note: online evaluation is off: {reason}", file=sys.stderr)
    return None
  return OnlineEval(config, encoder_def, mesh, sources)


class OnlineEval:
  """Embeds fixed train (kNN bank) and test subsets and scores them: of
  ``sources`` (bank, test), by default the config's ``eval_train_split`` and
  ``eval_split``."""

  def __init__(self, config, encoder_def, mesh, sources=None):
    self.encoder_def = encoder_def
    self.config = config
    sharding = data_sharding(mesh)
    if sources is None:
      sources = (labelled_source(config.data, "eval_train_split", "online evaluation",
                                 fix=OFF),
                 labelled_source(config.data, "eval_split", "online evaluation", fix=OFF))
    train, test = sources
    for which, source in (("bank", train), ("test", test)):
      if not has_labels(source):
        raise UserError(f"online evaluation scores labelled data, and the {which} source "
                        f"of eval_sources ({type(source).__name__}) has no \"label\"; "
                        f"give labelled eval_sources{OFF}")
    self.num_classes = train.num_classes
    # Chunks of whole global batches, split over the mesh like training data.
    chunk = max(mesh.size, config.eval.batch_size // mesh.size * mesh.size)
    chunk = min(chunk, len(test) // mesh.size * mesh.size, len(train) // mesh.size * mesh.size)
    if not chunk:
      raise UserError(f"online evaluation needs at least {mesh.size} examples in each of "
                      f"config.data.eval_train_split and eval_split, which have "
                      f"{len(train)} and {len(test)}; turn online evaluation off with "
                      "--config.online_eval_every=0")
    rows = pipeline.local_rows(sharding, chunk)

    def chunks(source, size, key):
      idx = _subset(len(source), size, chunk, config.seed)
      out = []
      for start in range(0, len(idx), chunk):
        examples = source.get(idx[start:start + chunk][rows])
        labels = np.asarray(examples[LABEL], np.int32)
        require_labels(labels, config.data, key, "online evaluation", fix=OFF)
        out.append(pipeline.to_global(sharding, (examples[encoder_def.input_key], labels)))
      return out

    self.train_chunks = chunks(train, config.eval.online_train_examples, "eval_train_split")
    self.test_chunks = chunks(test, config.eval.online_test_examples, "eval_split")

    self._embed = jax.jit(embed_fn(encoder_def))

  def __call__(self, state) -> dict:
    variables = self.encoder_def.select(state.params, state.model_state)
    bank = jnp.concatenate([self._embed(variables, x) for x, _ in self.train_chunks])
    bank_labels = jnp.concatenate([y for _, y in self.train_chunks])
    k = min(self.config.eval.online_knn_k, bank.shape[0])
    knn_correct, probe_correct, total = 0, 0, 0
    for images, labels in self.test_chunks:
      feats = self._embed(variables, images)
      knn_correct += _correct(knn_scores(feats, bank, bank_labels, k=k,
                                         num_classes=self.num_classes,
                                         temperature=self.config.eval.knn_temperature),
                              labels)
      probe_correct += _correct(probe_logits(state.probe["params"], feats), labels)
      total += labels.shape[0]
    return {f"online_knn_top1_k{k}": float(knn_correct) / total,
            "online_probe_top1": float(probe_correct) / total}


@jax.jit
def _correct(scores, labels):
  return jnp.sum(jnp.argmax(scores, -1) == labels)
