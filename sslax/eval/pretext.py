"""The pretext task on held-out data (``sslax eval pretext``): the run's own
loss and metrics (the order accuracy of Shuffle and Learn, the direction
accuracy of the arrow of time, a rotation or colour accuracy) on examples it
never trained on, with its trained parameters and no gradient step.

The evaluation split (``config.data.eval_split``, or ``--split``) is read in
order in batches of ``config.global_batch_size`` (full batches only: the
losses are over a whole batch), each with a fixed key, so the figures are a
function of the checkpoint and ``--seed`` alone. The loss runs as in
training (batch statistics in batch norm). ``eval/pretext.json``."""

import jax
import numpy as np

from sslax.data.pipeline import read_examples
from sslax.data.sources import check_tuning, get_source, split_name
from sslax.errors import UserError
from sslax.eval.evaluate import write_eval
from sslax.sharding import data_sharding
from sslax.train import checkpoint, run as run_lib, run_config

PARTS = ("params", "model_state", "method_state")


def restore_parts(workdir: str, run):
  """The trained ``params``, ``model_state`` and ``method_state`` of the
  workdir's newest checkpoint, shaped as ``run``'s method builds them."""
  step = checkpoint.latest_step(workdir)
  if step is None:
    raise UserError(f"{workdir} holds no checkpoint; train first with "
                    f"`sslax train --config ... --workdir {workdir}`")
  abstract = run_lib.abstract_state(run)
  restored = checkpoint.restore_subtrees(workdir, step,
                                         {k: getattr(abstract, k) for k in PARTS})
  return step, tuple(restored[k] for k in PARTS)


def evaluate(run, parts, source, *, batches=None, seed: int = 0) -> dict:
  """The mean of the loss and of every metric of ``run.method.loss_fn`` over
  ``source``'s full batches (the first ``batches`` of them)."""
  size = int(run.config.global_batch_size)
  count = len(source) // size if batches is None else min(batches, len(source) // size)
  if count < 1:
    raise UserError(f"the evaluation data has {len(source)} examples, fewer than one batch "
                    f"of {size}; lower it with --config.global_batch_size=N")
  params, model_state, method_state = parts

  def measure(batch, key):
    loss, aux = run.method.loss_fn(params, model_state, method_state, batch, key)
    return {"loss": loss, **aux.metrics}

  sums = {}
  with jax.set_mesh(run.mesh):
    fn = jax.jit(measure)
    for i in range(count):
      batch = jax.device_put(read_examples(source, np.arange(i * size, (i + 1) * size)),
                             data_sharding(run.mesh))
      figures = jax.device_get(fn(batch, jax.random.fold_in(jax.random.PRNGKey(seed), i)))
      for name, value in figures.items():
        sums[name] = sums.get(name, 0.0) + float(value)
  return {"examples": count * size, **{k: v / count for k, v in sums.items()}}


def evaluate_workdir(workdir: str, *, split=None, batches=None, seed: int = 0,
                     overrides=()) -> dict:
  config = run_config.load_config(workdir, overrides)
  run = run_lib.setup(config)
  step, parts = restore_parts(workdir, run)
  check_tuning(config.data, split, given="--split" if split else "config.data.eval_split")
  split = split or split_name(config.data, "eval_split")
  result = evaluate(run, parts, get_source(config.data, split), batches=batches, seed=seed)
  result.update(method=config.method, split=split, step=step, seed=seed)
  write_eval(workdir, "pretext", result)
  return result
