"""Loading ``path.py:arg`` config files and applying ``--config.key=value``
overrides, with one-line errors for every mistake."""

import ast
import importlib.util
import os
import re

import ml_collections

from sslax.errors import UserError


def load_module(path: str):
  """Executes a config file as a module (not entered in ``sys.modules``); a
  config file uses this to build on another (``configs/moco_v2.py``)."""
  module_spec = importlib.util.spec_from_file_location(
      "sslax_config_" + os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """``configs/simclr.py:cifar10`` -> that file's ``get_config('cifar10')``."""
  path, _, arg = spec.partition(":")
  if not path.endswith(".py") or not os.path.isfile(path):
    raise UserError(f"config file {path!r} not found; pass e.g. "
                    "--config configs/simclr.py:fashion_mnist")
  try:
    module = load_module(path)
  except UserError:
    raise
  except Exception as e:
    raise UserError(f"config file {path} failed to load: {type(e).__name__}: {e}") from None
  if not hasattr(module, "get_config"):
    raise UserError(f"config file {path} defines no get_config(arg)")
  try:
    return module.get_config(arg) if arg else module.get_config()
  except UserError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f"{path}: get_config({arg!r}) failed: {type(e).__name__}: {e}") from None


def _parse_value(key, text, current):
  if isinstance(current, str) or current is None:
    return text
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    raise UserError(f"--config.{key}={text}: not a Python literal of type "
                    f"{type(current).__name__}") from None
  if isinstance(current, bool) and not isinstance(value, bool):
    raise UserError(f"--config.{key} takes True or False, not {text}")
  if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
    value = float(value)
  if isinstance(current, (tuple, list)) and isinstance(value, (tuple, list)):
    return tuple(value)
  if type(value) is not type(current):
    raise UserError(f"--config.{key} takes a {type(current).__name__}, not {text}")
  return value


def apply_overrides(config: ml_collections.ConfigDict, overrides):
  """Applies ``key.sub=value`` strings; unknown keys are refused."""
  config = ml_collections.ConfigDict(config.to_dict())
  for item in overrides:
    key, sep, text = item.partition("=")
    if not sep:
      raise UserError(f"--config.{item}: give a value as --config.{item}=VALUE")
    node, parts = config, key.split(".")
    for i, part in enumerate(parts):
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        where = ".".join(parts[:i]) or "config"
        valid = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
        raise UserError(f"unknown config key {key!r}; {where} has keys: "
                        f"{', '.join(valid)}")
      if i < len(parts) - 1:
        node = node[part]
    last = parts[-1]
    node[last] = _parse_value(key, text, node[last])
  return config


def config_files(directory: str, shared_variants=()) -> list:
  """``(path, one line, variants)`` of every config file in ``directory``:
  the first sentence of its docstring and its ``VARIANTS`` (default:
  ``shared_variants``, those of ``config_base.apply_variant``), the default
  (``get_config``'s) first."""
  import inspect  # pylint: disable=g-import-not-at-top
  out = []
  for name in sorted(os.listdir(directory)):
    if not name.endswith(".py") or name.startswith("_"):
      continue
    path = os.path.join(directory, name)
    module = load_module(path)
    if not hasattr(module, "get_config"):
      continue
    variants = list(getattr(module, "VARIANTS", shared_variants))
    default = inspect.signature(module.get_config).parameters["arg"].default
    if default in variants:
      variants.remove(default)
      variants.insert(0, default)
    doc = " ".join((module.__doc__ or "").split())
    # Its first sentence ("et al. 2020" is not an end), before any "Variants:".
    line = re.split(r"(?<!\bal)\.\s", doc.split(" Variants:")[0])[0].rstrip(".")
    out.append((path, line, variants))
  return out


def flatten(config, prefix: str = "") -> list:
  """``(key, value)`` of every leaf, keys dotted as ``--config.KEY=VALUE``
  takes them."""
  rows = []
  for key, value in config.items():
    full = f"{prefix}{key}"
    if isinstance(value, (ml_collections.ConfigDict, dict)):
      rows.extend(flatten(value, full + "."))
    else:
      rows.append((full, value))
  return rows
