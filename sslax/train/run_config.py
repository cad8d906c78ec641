"""The run's saved config (``config.json``): what a workdir was trained with,
and whether a config may resume it."""

import copy
import json

from etils import epath
import jax
import ml_collections
from jax.experimental import multihost_utils

from sslax.config_base import VIDEO_EVALS
from sslax.config_loading import apply_overrides, flatten
from sslax.errors import UserError, read_json
from sslax.train.checkpoint import latest_step
from sslax.train.workdir import workdir_path

CONFIG_FILE = "config.json"
# Keys that control how a run is watched, not what it computes: they may change
# between a run and its resumption.
RUN_CONTROL_KEYS = ("log_every", "checkpoint_every", "keep_checkpoints",
                    "progress_bar", "online_eval_every", "lock_timeout",
                    "eval", "evals")  # evaluation settings: never what training computes

# Where a run given its own source to ``train_and_evaluate`` says so: the
# source's class and size; config.data.name then names data it never saw.
GIVEN_SOURCE = "given_source"

# Data keys that change how batches are read, never which: a run may resume
# with another worker count; or that training never reads: the evaluation
# splits, whether the run tunes (scores on validation only); or that only
# record where the data came from.
RUN_CONTROL_DATA_KEYS = ("workers", "eval_train_split", "eval_split", "tuning",
                         GIVEN_SOURCE)

# Overrides that say which data to read, instead of the config's own.
_DATA_OVERRIDES = ("data.name=", "data.data_dir=")


# Keys added after runs were saved without them, with the value that means
# what those runs did: a saved config without the key compares as having it,
# and ``load_config`` gives it that value.
ADDED_KEYS = {"schedule_steps": 0, "optimizer.extend": "tail", "optimizer.tail_peak": 0.1,
              "data.validation_fraction": 0.0, "data.validation_seed": 0,
              "data.tuning": False, "clip_augment": {"crop_scale": [1.0, 1.0], "jitter": 0.0},
              "word2vec.update_cap": 1.0,
              **{f"evals.{name}": group for name, group in VIDEO_EVALS.items()}}
# What `sslax train --extend-to N` changes.
EXTEND_KEYS = ("num_steps", "schedule_steps", "optimizer.extend", "optimizer.tail_peak")


def _drop(tree: dict, dotted: str, only_if=lambda value: True) -> dict:
  """``tree`` without the key ``dotted`` (e.g. ``"optimizer.extend"``) where
  ``only_if(its value)``."""
  head, _, rest = dotted.partition(".")
  if head not in tree:
    return tree
  if rest:
    inner = tree[head]
    return {**tree, head: _drop(inner, rest, only_if)} if isinstance(inner, dict) else tree
  return {k: v for k, v in tree.items() if k != head} if only_if(tree[head]) else tree


def comparable_config(config_dict, ignore=()):
  """A saved or given config (as a dict) without its run-control keys and
  with the keys added since at their defaults left out: two runs whose
  comparable configs are equal train the same."""
  out = config_dict
  for key in (*RUN_CONTROL_KEYS, *(f"data.{k}" for k in RUN_CONTROL_DATA_KEYS), *ignore):
    out = _drop(out, key)
  for key, default in ADDED_KEYS.items():
    out = _drop(out, key, only_if=lambda value, default=default: value == default)
  return out


def extend(config, workdir: str, num_steps: int):
  """``config`` continued to ``num_steps`` (``sslax train --extend-to``):
  the saved run's schedules keep their length (``schedule_steps``), the
  steps past it follow ``optimizer.extend``. Returns ``(config, line)``: the
  line says what the learning rate does."""
  path = workdir_path(workdir) / CONFIG_FILE
  if not path.exists() or latest_step(workdir) is None:
    raise UserError(f"--extend-to continues a run, and {workdir} holds none yet; train "
                    "it without --extend-to")
  saved = _read_json(path)
  old_steps = int(saved["num_steps"])
  length = int(saved.get("schedule_steps") or old_steps)
  if num_steps < old_steps:
    raise UserError(f"--extend-to {num_steps} is below the run's {old_steps} steps; give "
                    f"more than {old_steps}")
  config = config.copy_and_resolve_references()
  config.num_steps, config.schedule_steps = int(num_steps), length
  how = config.optimizer.get("extend", "tail")
  if how == "tail":
    what = (f"a new cosine from {config.optimizer.get('tail_peak', 0.1):g} x its peak to "
            f"zero over steps {length}-{num_steps}")
  else:
    what = f"its end value from step {length} on"
  line = (f"sslax: note: extending {workdir} from {old_steps} to {num_steps} steps; the "
          f"learning rate keeps its {length}-step schedule, then {what} "
          f"(config.optimizer.extend={how!r}; 'tail' or 'hold')")
  return config, line


def _different_config(workdir, old: dict, new: dict) -> str:
  """The refusal of a changed config: the keys that differ, and the
  overrides that give back the saved values."""
  saved, given = dict(flatten(comparable_config(old))), dict(flatten(comparable_config(new)))
  if saved.get("method") != given.get("method"):
    return (f"{workdir} holds checkpoints of a {saved.get('method')} run, not "
            f"{given.get('method')}; use a new --workdir")
  keys = sorted(k for k in set(saved) | set(given) if saved.get(k, None) != given.get(k, None))
  if (set(keys) <= set(EXTEND_KEYS) and "num_steps" in keys
      and given["num_steps"] > saved["num_steps"]):
    return (f"{workdir} holds a run of {saved['num_steps']} steps; to train it to "
            f"{given['num_steps']}, add --extend-to {given['num_steps']} (or use a new "
            "--workdir)")
  fix = " ".join(f"--config.{k}={_literal(saved[k])}" for k in keys[:4] if k in saved)
  return (f"{workdir} holds checkpoints of a different config (differs in "
          f"{', '.join(keys[:6])}{', ...' if len(keys) > 6 else ''}); resume with "
          + (f"{fix}, " if fix and len(keys) <= 4 else "the original config, ")
          + "or use a new --workdir")


def _literal(value) -> str:
  """A JSON value as --config.KEY=VALUE takes it."""
  if isinstance(value, (list, tuple)):
    return ",".join(_literal(v) for v in value)
  return repr(value) if isinstance(value, str) and " " in value else str(value)


def _read_json(path: epath.Path):
  return read_json(path, "restore it from a copy, or train into a new --workdir")


def _with_added(tree: dict) -> dict:
  """A saved config with the ``ADDED_KEYS`` it lacks at their defaults, so
  that overrides may set them."""
  for dotted, default in ADDED_KEYS.items():
    *groups, last = dotted.split(".")
    node = tree
    for group in groups:
      node = node.get(group) if isinstance(node, dict) else None
    if isinstance(node, dict):
      node.setdefault(last, copy.deepcopy(default))
  return tree


def load_config(workdir: str, overrides=(), *, reads_data: bool = True
                ) -> ml_collections.ConfigDict:
  """The run's saved config, with ``overrides`` (``key=value`` strings, as
  ``--config.key=value`` on the command line) applied: e.g. the data's new
  ``data.data_dir`` or ``eval.batch_size`` for an evaluation.

  ``reads_data``: the caller reads the training data's splits, so a run
  trained on a source given to ``train_and_evaluate`` is refused in one line
  unless ``overrides`` say which data to read (its config's data.name names
  data the run never saw)."""
  path = workdir_path(workdir) / CONFIG_FILE
  if not path.exists():
    raise UserError(f"{workdir} holds no {CONFIG_FILE}; train into it first with "
                    "`sslax train --config ... --workdir " + str(workdir) + "`")
  config = apply_overrides(ml_collections.ConfigDict(_with_added(_read_json(path))),
                           overrides)
  given = config.data.get(GIVEN_SOURCE)
  if given and any(o.startswith(_DATA_OVERRIDES) for o in overrides):
    del config.data[GIVEN_SOURCE]  # the overrides name the data read now
  elif reads_data and given:
    raise UserError(
        f"{workdir} was trained on data given to train_and_evaluate ({given}), not on "
        f"its config's data.name={config.data.name}; evaluate it on that data: save it "
        "with numpy.savez('mine.npz', images=..., labels=..., test_images=..., "
        "test_labels=...) and add --config.data.name=arrays "
        "--config.data.data_dir=mine.npz")
  return config


def describe_data(data) -> str:
  """What a run's ``config.data`` (a ConfigDict or its dict) reads, in a few
  words: the source given to ``train_and_evaluate``, or ``data.name`` and its
  ``data_dir`` where it has one."""
  return data.get(GIVEN_SOURCE) or " ".join(
      str(x) for x in (data.get("name", "?"), data.get("data_dir")) if x)


def record_given_source(config, source) -> ml_collections.ConfigDict:
  """A copy of ``config`` saying that the run trains on ``source``, given
  to ``train_and_evaluate`` instead of the data that config.data names."""
  config = config.copy_and_resolve_references()
  with config.unlocked():
    config.data[GIVEN_SOURCE] = f"{type(source).__name__} of {len(source)} examples"
  return config


def check_or_write_config(workdir: str, config: ml_collections.ConfigDict, *,
                          extending: bool = False):
  """Writes the run's config; refuses a workdir whose checkpoints were made by a
  different config (only run-control keys may differ; and the length, when
  ``extending``)."""
  path = workdir_path(workdir) / CONFIG_FILE
  new = json.loads(config.to_json())
  # Every process takes the same branches: checkpoints are only created after
  # the barrier below, while config.json may already be written by process 0.
  if latest_step(workdir) is not None and not path.exists():
    raise UserError(f"{workdir} holds checkpoints but no {CONFIG_FILE}, so nothing "
                    "says which config made them; put back its config.json, or train "
                    "into a new --workdir")
  if latest_step(workdir) is not None and path.exists():
    old = _read_json(path)
    ignore = EXTEND_KEYS if extending else ()
    if comparable_config(old, ignore) != comparable_config(new, ignore):
      raise UserError(_different_config(workdir, old, new))
  if jax.process_index() == 0 and (not path.exists() or _read_json(path) != new):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(new, indent=2, sort_keys=True))
    tmp.replace(path)  # atomic on local filesystems
  if jax.process_count() > 1:  # no process creates checkpoints before all have checked
    multihost_utils.sync_global_devices("sslax:check_or_write_config")
