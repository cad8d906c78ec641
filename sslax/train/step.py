"""The train step: one pure function of (state, batch), the method's loss,
the optimizer, the side update and the online probe; and its jitted, donated
form over the run's mesh (``compile_step``)."""

import jax
import optax

from sslax.sharding import data_sharding, replicated
from sslax.train import online


def make_train_step(method, tx, schedule, probe_tx):
  """``step(state, batch) -> (state, metrics)``, pure; jit it with donation.

  The online probe is fitted on the method's stop-gradient features of the same
  batch when the batch is labelled and the method gives vector features
  (``probe_on``, decided at trace time); it never touches the method's
  parameters."""

  def step(state, batch):
    key = jax.random.fold_in(state.rng, state.step)

    def loss_of(params):
      return method.loss_fn(params, state.model_state, state.method_state, batch,
                            key)

    (loss, aux), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    method_state, side_metrics = aux.method_state, {}
    if method.side_update is not None:
      method_state, side_metrics = method.side_update(
          method_state, jax.lax.stop_gradient(aux.outputs))
    method_state = method.after_update(method_state, params, state.step)
    probe, probe_metrics = state.probe, {}
    if online.probe_on(state.probe, batch, aux.features):
      probe, probe_metrics = online.update_probe(state.probe, probe_tx, aux.features,
                                                 batch["label"])
    metrics = {"loss": loss, "lr": schedule(state.step),
               "grad_norm": optax.global_norm(grads), **aux.metrics,
               **side_metrics, **probe_metrics}
    new_state = state.replace(step=state.step + 1, params=params,
                              model_state=aux.model_state, opt_state=opt_state,
                              method_state=method_state, probe=probe)
    return new_state, metrics

  return step


def compile_step(run, state, *, probe_tx=None, wrap=None):
  """The jitted, donated step of a ``sslax.train.run.Run``; it is traced and run under the run's mesh
  (``jax.set_mesh``), where global-batch losses find it. ``probe_tx``
  replaces the online probe's optimizer and ``wrap`` wraps the pure step
  before jit (tests count traces with it). The jitted function is the
  returned step's ``jitted`` attribute (to lower and compile it ahead of
  time, e.g. for XLA's cost analysis)."""
  state_shardings = jax.tree.map(lambda x: x.sharding, state)
  pure = make_train_step(run.method, run.tx, run.schedule,
                         probe_tx or online.probe_optimizer(run.config))
  step = jax.jit(wrap(pure) if wrap else pure,
                 in_shardings=(state_shardings, data_sharding(run.mesh)),
                 out_shardings=(state_shardings, replicated(run.mesh)),
                 donate_argnums=0)

  def step_under_mesh(state, batch):
    with jax.set_mesh(run.mesh):
      return step(state, batch)

  step_under_mesh.jitted = step
  return step_under_mesh
