"""Semi-supervised fine-tuning (SimCLR, Chen et al. 2020, section 6 and Table 7):
the whole encoder plus a new linear head trained on a stratified, seed-fixed
fraction of the labels. The same function started from the encoder at its
initialisation is the supervised-from-scratch baseline on the same subset and
budget.

Fine-tuning is a run of the supervised method (``sslax.methods.supervised``)
by the trainer, in a workdir of its own: the run's data mesh, one jitted step,
random resized crops and horizontal flips, Nesterov SGD with warmup and cosine
decay, checkpoints and metrics like any run.
"""

import math

import ml_collections
import numpy as np

from sslax.data.sources import SubsetSource
from sslax.methods import supervised
from sslax.train.loop import train_and_evaluate
from sslax.train.metrics import read_metrics


def num_steps(num_labels: int, ft_config) -> int:
  """``epochs`` passes over the labelled subset, at least ``min_steps``."""
  return max(int(ft_config.min_steps),
             math.ceil(ft_config.epochs * num_labels / ft_config.batch_size))


def finetune_config(config, *, steps: int, seed: int, num_classes: int):
  """The supervised run of ``config.finetune``'s protocol on ``config``'s
  data and encoder."""
  ft = config.finetune
  c = ml_collections.ConfigDict(config.to_dict())
  c.method = "supervised"
  c.seed = int(seed)
  c.global_batch_size = int(ft.batch_size)
  c.num_steps = int(steps)
  c.schedule_steps = 0  # its own schedule over its steps, not the pretraining run's
  c.optimizer.update(name="sgd", learning_rate=ft.learning_rate, lr_scaling="linear",
                     schedule="cosine", warmup_steps=ft.warmup_steps,
                     weight_decay=ft.weight_decay, momentum=ft.momentum, nesterov=True)
  c.supervised = ml_collections.ConfigDict(dict(num_classes=int(num_classes),
                                                crop_scale=tuple(ft.crop_scale)))
  c.update(log_every=min(int(config.log_every), int(steps)), checkpoint_every=int(steps),
           keep_checkpoints=1, online_eval_every=0, progress_bar=False)
  return c


def finetune(start_variables, train_source, test_source, indices, config, *,
             steps: int, workdir: str, seed: int = 0):
  """Fine-tunes the encoder of ``config.model``, starting from
  ``start_variables``, with a new head on ``train_source[indices]`` in
  ``workdir``; returns (test and subset top-1 and the final loss, the final
  TrainState)."""
  subset = SubsetSource(train_source, indices)
  ft_config = finetune_config(config, steps=steps, seed=seed,
                              num_classes=train_source.num_classes)
  method = supervised.build(ft_config, start=start_variables)
  state = train_and_evaluate(ft_config, workdir, source=subset, method=method)
  predict = supervised.predict_fn(ft_config)

  def accuracy(source, batch_size=1000):
    correct = 0
    for start in range(0, len(source), batch_size):
      examples = source.get(np.arange(start, min(start + batch_size, len(source))))
      predicted = predict(state.params, state.model_state, examples["image"])
      correct += int(np.sum(np.asarray(predicted) == examples["label"]))
    return correct / len(source)

  final_loss = _last_loss(workdir)
  return {"top1": accuracy(test_source), "train_top1": accuracy(subset),
          "final_loss": final_loss}, state


def _last_loss(workdir):
  rows = [r for r in read_metrics(workdir) if "loss" in r]
  return float(rows[-1]["loss"]) if rows else float("nan")
