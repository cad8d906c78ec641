"""Optimizers and schedules from a config, all optax."""

import jax
import optax

from sslax.errors import UserError


def _peak(opt_config, global_batch_size: int) -> float:
  scaling = {
      "linear": global_batch_size / 256,
      "sqrt": global_batch_size ** 0.5,
      "none": 1.0,
  }
  if opt_config.lr_scaling not in scaling:
    raise UserError(f"unknown lr_scaling {opt_config.lr_scaling!r}; use one of "
                    f"{sorted(scaling)}")
  return opt_config.learning_rate * scaling[opt_config.lr_scaling]


def learning_rate_schedule(opt_config, global_batch_size: int, num_steps: int):
  """Linear warmup, then ``schedule``: 'cosine' decay to zero (SimCLR, MoCo v2)
  or 'step': x0.1 at 60% and 80% of the steps (MoCo v1's 120 and 160 of 200
  epochs), or 'linear' decay to zero (word2vec). The peak is ``learning_rate * global_batch_size / 256`` with
  ``lr_scaling='linear'`` (Goyal et al. 2017), ``* sqrt(global_batch_size)``
  with 'sqrt', or ``learning_rate`` itself with 'none'."""
  peak = _peak(opt_config, global_batch_size)
  warmup = min(int(opt_config.warmup_steps), max(num_steps - 1, 0))
  kind = opt_config.schedule
  if kind == "cosine":
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=peak, warmup_steps=warmup,
        decay_steps=max(num_steps, warmup + 1), end_value=0.0)
  if kind == "step":
    boundaries = {int(f * num_steps): 0.1 for f in STEP_DECAY_AT if int(f * num_steps) > warmup}
    return optax.join_schedules(
        [optax.linear_schedule(0.0, peak, max(warmup, 1)),
         optax.piecewise_constant_schedule(peak, {b - warmup: v for b, v in boundaries.items()})],
        [warmup])
  if kind == "linear":  # warmup, then linearly to zero (word2vec's alpha)
    return optax.join_schedules(
        [optax.linear_schedule(0.0, peak, max(warmup, 1)),
         optax.linear_schedule(peak, 0.0, max(num_steps - warmup, 1))], [warmup])
  raise UserError(f"unknown optimizer.schedule {kind!r}; use cosine or step (or linear)")


STEP_DECAY_AT = (0.6, 0.8)


def decay_mask(params):
  """True for weight matrices and kernels; False for biases and norm scales
  and offsets (1-D leaves), which LARS and AdamW leave out of weight decay and
  of the trust ratio."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def _lars(c, lr):
  return optax.lars(lr, weight_decay=c.weight_decay, weight_decay_mask=decay_mask,
                    trust_coefficient=c.trust_coefficient,
                    trust_ratio_mask=decay_mask, momentum=c.momentum)


def _sgd(c, lr):
  return optax.chain(optax.add_decayed_weights(c.weight_decay, mask=decay_mask),
                     optax.sgd(lr, momentum=c.momentum, nesterov=c.nesterov))


def _adamw(c, lr):
  return optax.adamw(lr, b1=c.b1, b2=c.b2,
                     weight_decay=c.weight_decay, mask=decay_mask)


def _plain_sgd(c, lr):
  """SGD without momentum or weight decay: no state, no pass over the
  parameters but the update (word2vec's tables)."""
  del c
  return optax.sgd(lr)


OPTIMIZERS = {"lars": _lars, "sgd": _sgd, "adamw": _adamw, "plain_sgd": _plain_sgd}


def extended_schedule(opt_config, global_batch_size: int, num_steps: int,
                      schedule_steps: int):
  """The learning rate of a run of ``num_steps`` whose schedule was made for
  ``schedule_steps`` (an extended run): that schedule, then, for the steps
  past it, ``optimizer.extend``: "tail", a cosine from ``tail_peak`` x the
  peak to zero; "hold", the schedule's end value."""
  schedule = learning_rate_schedule(opt_config, global_batch_size, schedule_steps)
  added = num_steps - schedule_steps
  if added <= 0:
    return schedule
  extend = opt_config.get("extend", "tail")
  if extend == "hold":
    return schedule  # every schedule above holds its end value past its length
  if extend != "tail":
    raise UserError(f"unknown optimizer.extend {extend!r}; use tail or hold")
  peak = _peak(opt_config, global_batch_size)
  tail = optax.cosine_decay_schedule(float(opt_config.get("tail_peak", 0.1)) * peak, added)
  return optax.join_schedules([schedule, tail], [schedule_steps])


def make_optimizer(opt_config, global_batch_size: int, num_steps: int,
                   schedule_steps: int = None):
  """Returns ``(optax transformation, schedule)``; the schedule runs over
  ``schedule_steps`` (default ``num_steps``; see ``extended_schedule``)."""
  if opt_config.name not in OPTIMIZERS:
    raise UserError(f"unknown optimizer {opt_config.name!r}; set "
                    f"config.optimizer.name to one of {sorted(OPTIMIZERS)}")
  schedule = extended_schedule(opt_config, global_batch_size, num_steps,
                               schedule_steps or num_steps)
  return OPTIMIZERS[opt_config.name](opt_config, schedule), schedule
