"""Representation quality while a run trains, for every method.

* The online linear probe: a softmax classifier on stop-gradient features of
  each training batch, trained beside the method with its own Adam optimizer
  (as in BYOL, Grill et al. 2020), so it never changes the encoder.
* Online evaluation every ``config.online_eval_every`` steps: the encoder (eval
  mode) embeds a fixed, seed-chosen subset of the training set and of the test
  set; the logged figures are the weighted kNN top-1 (Wu et al. 2018) and the
  online probe's top-1 on those test examples.

Everything runs as global arrays over the run's data mesh, so it works the
same on one device and across processes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sslax.data import pipeline
from sslax.data.sources import get_source
from sslax.probes.knn import knn_scores
from sslax.sharding import data_sharding


def probe_optimizer(config):
  return optax.adam(config.online_probe.learning_rate)


def init_probe(feature_dim: int, num_classes: int, tx):
  params = {"w": jnp.zeros((feature_dim, num_classes), jnp.float32),
            "b": jnp.zeros((num_classes,), jnp.float32)}
  return {"params": params, "opt_state": tx.init(params)}


def probe_logits(params, features):
  return features.astype(jnp.float32) @ params["w"] + params["b"]


def update_probe(probe, tx, features, labels):
  """One optimizer step of the probe on ``stop_gradient(features)``."""
  features = jax.lax.stop_gradient(features)

  def loss_of(params):
    logits = probe_logits(params, features)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, logits

  (loss, logits), grads = jax.value_and_grad(loss_of, has_aux=True)(probe["params"])
  updates, opt_state = tx.update(grads, probe["opt_state"], probe["params"])
  metrics = {"probe_loss": loss,
             "probe_train_top1": jnp.mean(jnp.argmax(logits, -1) == labels)}
  return {"params": optax.apply_updates(probe["params"], updates),
          "opt_state": opt_state}, metrics


def _subset(num_examples, size, chunk, seed):
  """A seed-fixed subset whose size is a multiple of ``chunk``."""
  size = min(size or num_examples, num_examples) // chunk * chunk
  return np.sort(np.random.default_rng([seed, 1]).permutation(num_examples)[:size])


class OnlineEval:
  """Embeds fixed train (kNN bank) and test subsets and scores them."""

  def __init__(self, config, encoder_def, mesh):
    self.encoder_def = encoder_def
    self.config = config
    sharding = data_sharding(mesh)
    train, test = get_source(config.data, "train"), get_source(config.data, "test")
    self.num_classes = train.num_classes
    # Chunks of whole global batches, split over the mesh like training data.
    chunk = max(mesh.size, config.eval.batch_size // mesh.size * mesh.size)
    chunk = min(chunk, len(test) // mesh.size * mesh.size, len(train) // mesh.size * mesh.size)
    rows = pipeline.local_rows(sharding, chunk)

    def chunks(source, size):
      idx = _subset(len(source), size, chunk, config.seed)
      out = []
      for start in range(0, len(idx), chunk):
        images, labels = source.get(idx[start:start + chunk][rows])
        out.append(pipeline.to_global(sharding, (images, labels.astype(np.int32))))
      return out

    self.train_chunks = chunks(train, config.eval.online_train_examples)
    self.test_chunks = chunks(test, config.eval.online_test_examples)

    module = encoder_def.module()

    @jax.jit
    def embed(variables, images):
      x = encoder_def.prepare(images)
      return module.apply(variables, x, train=False).astype(jnp.float32)

    self._embed = embed

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
