"""Semi-supervised fine-tuning (SimCLR, Chen et al. 2020, section 6 and Table 7):
the whole encoder plus a new linear head trained on a stratified, seed-fixed
fraction of the labels. The same function with a randomly initialised encoder
is the supervised-from-scratch baseline on the same subset and budget.

Training uses the run's data mesh (batches sharded over devices, one jitted
step, state donated), random resized crops and horizontal flips, Nesterov SGD
with warmup and cosine decay.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from sslax.data import augment, pipeline
from sslax.data.sources import SubsetSource
from sslax.train.mesh import data_sharding, make_mesh, replicated
from sslax.train.optim import make_optimizer


class Classifier(nn.Module):
  """An encoder and a linear head on its representation."""
  encoder: nn.Module
  num_classes: int

  @nn.compact
  def __call__(self, x, train: bool = False):
    h = self.encoder(x, train=train)
    return nn.Dense(self.num_classes, name="head")(h.astype(jnp.float32))


def num_steps(num_labels: int, ft_config) -> int:
  """``epochs`` passes over the labelled subset, at least ``min_steps``."""
  return max(int(ft_config.min_steps),
             math.ceil(ft_config.epochs * num_labels / ft_config.batch_size))


def _optimizer_config(ft):
  return ml_collections.ConfigDict(dict(
      name="sgd", learning_rate=ft.learning_rate, lr_scaling="linear",
      warmup_steps=ft.warmup_steps, weight_decay=ft.weight_decay,
      momentum=ft.momentum, nesterov=True))


def finetune(encoder, variables, train_source, test_source, indices, config,
             *, steps: int, seed: int = 0):
  """Fine-tunes ``encoder`` (from ``variables``) with a new head on
  ``train_source[indices]``; returns (test top-1, train top-1 on the subset,
  final variables of the classifier)."""
  ft = config.finetune
  batch = int(ft.batch_size)
  mesh = make_mesh(batch)
  subset = SubsetSource(train_source, indices)
  model = Classifier(encoder=encoder, num_classes=train_source.num_classes)
  tx, _ = make_optimizer(_optimizer_config(ft), batch, steps)
  aug = augment.AugmentParams(crop_scale=tuple(ft.crop_scale), flip_prob=0.5,
                              jitter_prob=0.0, grayscale_prob=0.0)
  out_hw = tuple(config.data.image_size)

  def prepare(x, key=None):
    if key is not None:
      x = augment.augment_batch(key, x, aug, out_hw)
    else:
      x = augment.center_view(x, out_hw)
    return augment.normalize(x, config.data.mean, config.data.std)

  key = jax.random.PRNGKey(seed)
  init_key, run_key = jax.random.split(key)

  @jax.jit
  def init(images):
    full = model.init(init_key, prepare(images), train=False)
    params = {**full["params"], "encoder": variables["params"]}
    state = {k: {"encoder": v} for k, v in variables.items() if k != "params"}
    return {"params": params, "state": state, "opt_state": tx.init(params),
            "step": jnp.zeros((), jnp.int32)}

  images, _ = train_source.get(np.arange(2))
  shapes = jax.eval_shape(init, images)
  train_state = jax.jit(init, out_shardings=jax.tree.map(
      lambda _: replicated(mesh), shapes))(images)

  def step(ts, batch_data):
    key = jax.random.fold_in(run_key, ts["step"])
    x = prepare(batch_data["image"], key)

    def loss_of(params):
      logits, new_state = model.apply({"params": params, **ts["state"]}, x,
                                      train=True, mutable=list(ts["state"]))
      loss = optax.softmax_cross_entropy_with_integer_labels(
          logits, batch_data["label"]).mean()
      return loss, new_state

    (loss, new_state), grads = jax.value_and_grad(loss_of, has_aux=True)(ts["params"])
    updates, opt_state = tx.update(grads, ts["opt_state"], ts["params"])
    return {"params": optax.apply_updates(ts["params"], updates), "state": new_state,
            "opt_state": opt_state, "step": ts["step"] + 1}, loss

  shardings = jax.tree.map(lambda x: x.sharding, train_state)
  train_step = jax.jit(step, in_shardings=(shardings, data_sharding(mesh)),
                       out_shardings=(shardings, replicated(mesh)), donate_argnums=0)
  batches = pipeline.BatchIterator(subset, seed=seed, global_batch=batch,
                                   sharding=data_sharding(mesh))
  try:
    for i, batch_data in batches:
      if i >= steps:
        break
      train_state, loss = train_step(train_state, batch_data)
  finally:
    batches.close()

  final = {"params": train_state["params"], **train_state["state"]}

  @jax.jit
  def predict(x):
    return jnp.argmax(model.apply(final, prepare(x), train=False), -1)

  def accuracy(source, batch_size=1000):
    correct = 0
    for start in range(0, len(source), batch_size):
      x, y = source.get(np.arange(start, min(start + batch_size, len(source))))
      correct += int(np.sum(np.asarray(predict(jnp.asarray(x))) == y))
    return correct / len(source)

  return {"top1": accuracy(test_source), "train_top1": accuracy(subset),
          "final_loss": float(loss)}, final
