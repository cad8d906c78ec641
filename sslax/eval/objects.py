"""What a ``dense`` encoder knows about the objects in a frame: a linear probe
of mask-pooled features on the garments' classes.

Each object of a video corpus clip (``sslax.data.video_corpus``) is a
Fashion-MNIST garment whose class the corpus keeps (``garment_labels``).
For a few evenly spaced frames of every clip, each object's feature is the
mean of the frame's feature map over the object's visible pixels (each
feature cell weighted by the share of it the mask covers); the same L-BFGS
logistic regression as ``sslax eval linear`` is trained on the objects of
the training clips and scored on those of the test clips, whose garments and
photographs are disjoint from the training ones. Objects covering fewer than
``min_pixels`` pixels of a frame (occluded, faded out of view) are left out.
"""

import numpy as np

from sslax.data.source import check_examples
from sslax.errors import UserError

DEFAULTS = dict(frames=2, min_pixels=20)


def pooled(features: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """float [h, w, d] features, bool [H, W] mask (H, W multiples of h, w) ->
  float32 [d]: the features averaged over the mask, each cell weighted by
  the share of its pixels inside it."""
  h, w, _ = features.shape
  height, width = mask.shape
  cover = mask.astype(np.float32).reshape(h, height // h, w, width // w).mean(axis=(1, 3))
  return (np.einsum("hw,hwd->d", cover, features) / cover.sum()).astype(np.float32)


def object_examples(source, features_fn, *, frames: int = 2, min_pixels: int = 20,
                    limit=None):
  """(features float32 [n, d], labels int32 [n]) of every object visible in
  ``frames`` evenly spaced frames of each clip of ``source``, with
  ``features_fn(clip) -> [T, h, w, d]``."""
  labels = getattr(source, "garment_labels", None)
  if labels is None:
    raise UserError(f"`sslax eval objects` needs clips whose objects have classes "
                    f"(garment_labels), which {type(source).__name__} lacks; set "
                    "--config.evals.objects.data.name=video_corpus")
  xs, ys = [], []
  count = len(source) if limit is None else min(limit, len(source))
  for i in range(count):
    ex = check_examples(source, source.get(np.array([i])), 1)
    clip, masks = ex["clip"][0], ex["masks"][0]
    maps = features_fn(clip)
    for t in np.linspace(0, len(clip) - 1, frames).round().astype(int):
      for k, label in enumerate(labels[i], start=1):
        mask = masks[t] == k
        if mask.sum() >= min_pixels:
          xs.append(pooled(maps[t], mask))
          ys.append(int(label))
  if not xs:
    raise UserError("no object of the clips covers --min-pixels pixels; lower it")
  return np.stack(xs), np.asarray(ys, np.int32)


def evaluate(train, test, features_fn, *, frames: int = 2, min_pixels: int = 20,
             limit=None) -> dict:
  """The probe's test top-1 (a fraction) and the counts of objects."""
  from sslax.probes.linear import linear_probe  # pylint: disable=g-import-not-at-top
  options = dict(frames=frames, min_pixels=min_pixels, limit=limit)
  train_x, train_y = object_examples(train, features_fn, **options)
  test_x, test_y = object_examples(test, features_fn, **options)
  result = linear_probe(train_x, train_y, test_x, test_y, fraction=1.0,
                        num_classes=int(max(train_y.max(), test_y.max())) + 1)
  result.update(train_objects=int(len(train_y)), test_objects=int(len(test_y)),
                feature_dim=int(train_x.shape[1]))
  return result


def clip_sources(config):
  """The training and test clips of ``config.evals.objects.data`` (default
  the video corpus in ``data/video``) and that data config."""
  from sslax.data.sources import get_source  # pylint: disable=g-import-not-at-top
  from sslax.eval.track import clip_data  # pylint: disable=g-import-not-at-top
  data = clip_data(config, "objects")
  train = get_source(data, data.get("train_split") or "train")
  test = get_source(data, data.get("test_split") or "test")
  for source in (train, test):
    missing = [k for k in ("clip", "masks") if k not in source.element_spec]
    if missing:
      raise UserError(f"`sslax eval objects` needs clips with masks, but {data.name} "
                      f"examples lack {', '.join(missing)}; set "
                      "--config.evals.objects.data.name=video_corpus")
  return train, test, data


def evaluate_workdir(workdir: str, features: str = "encoder", *, limit=None, overrides=(),
                     encoder=None, **options) -> dict:
  """``sslax eval objects``: the workdir's dense encoder (``random_init``:
  the same network at its initialisation; ``lab_pixels``: raw Lab cells) on
  ``config.evals.objects.data``; writes ``eval/objects*.json``."""
  from sslax.eval.evaluate import write_eval  # pylint: disable=g-import-not-at-top
  from sslax.eval.track import clip_features  # pylint: disable=g-import-not-at-top
  from sslax.train import checkpoint, run_config  # pylint: disable=g-import-not-at-top
  config = run_config.load_config(workdir, overrides, reads_data=False)
  train, test, data = clip_sources(config)
  result = evaluate(train, test, clip_features(workdir, features, encoder),
                    limit=limit, **{**DEFAULTS, **options})
  result.update(features=features, encoder=encoder, options={**DEFAULTS, **options},
                clips=limit or len(test), dataset=f"{data.name} ({data.data_dir})",
                step=checkpoint.latest_step(workdir))
  write_eval(workdir, "objects" if features == "encoder" else f"objects_{features}", result)
  return result
