"""Corpora built on this machine by ``sslax data make-*`` (the espeak-ng
speaker corpus, the wallpaper photo corpus): ``DIR/{train,test}.npz`` and
``DIR/meta.json`` holding the settings they were built with."""

import json
import os
from typing import Callable, Optional

import numpy as np

from sslax.data.source import ArraySource
from sslax.errors import UserError

META_FILE = "meta.json"
SPLITS = ("train", "test")


def built_meta(out: str, same_build: Callable[[dict], bool], what: str) -> Optional[dict]:
  """The meta.json of the corpus already in ``out`` when ``same_build(meta)``;
  None when ``out`` holds none; a one-line error when it holds another."""
  meta_path = os.path.join(out, META_FILE)
  if not os.path.exists(meta_path):
    return None
  with open(meta_path) as f:
    meta = json.load(f)
  if same_build(meta):
    return meta
  raise UserError(f"{out} holds a {what} built from other settings or files; choose "
                  "a new --out directory or delete it")


def write_meta(out: str, meta: dict):
  with open(os.path.join(out, META_FILE), "w") as f:
    json.dump(meta, f, indent=1)


def read_split(data_dir: str, split: str, *, what: str, build_hint: str):
  """``(arrays of DIR/<split>.npz as a dict, meta.json)``; a one-line error
  naming ``build_hint`` (the command that builds the corpus) when either is
  missing, or when ``split`` is not train or test."""
  if split not in SPLITS:
    raise UserError(f"the {what} has splits train and test, not {split!r}")
  path = os.path.join(data_dir, f"{split}.npz")
  meta_path = os.path.join(data_dir, META_FILE)
  if not (os.path.exists(path) and os.path.exists(meta_path)):
    raise UserError(f"no {what} in {data_dir}; build it with {build_hint}, or point "
                    "config.data.data_dir at one")
  with open(meta_path) as f:
    meta = json.load(f)
  with np.load(path) as data:
    return {k: data[k] for k in data.files}, meta


def load_split(data_dir: str, split: str, *, what: str, build_hint: str,
               array_key: str, example_key: str,
               num_classes: Callable[[dict], int]) -> ArraySource:
  """``split`` of the corpus in ``data_dir`` as an ArraySource of its
  ``array_key`` array, named ``example_key`` in each example (``"image"``,
  ``"audio"``); ``num_classes(meta)`` counts the labels (``read_split``)."""
  data, meta = read_split(data_dir, split, what=what, build_hint=build_hint)
  return ArraySource(arrays={example_key: data[array_key]},
                     labels=data["labels"].astype(np.int32),
                     num_classes=num_classes(meta))
