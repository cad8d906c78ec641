"""Pictures of a run (``sslax viz``), written as PNGs under ``WORKDIR/viz``:

* ``tsne.png``: a t-SNE map (van der Maaten & Hinton 2008) of test features,
  one colour per class;
* ``retrieval.png`` (image runs): test queries and their 8 nearest training images by
  cosine similarity of the features, framed green where the class matches;
* ``curves.png``: the training curves of ``metrics.jsonl``;
* ``<name>.png`` for each picture the method draws (``Method.pictures``):
  e.g. test images, the corrupted or masked input and the reconstruction, or
  the L channel, the predicted colours and the truth.

Figures are drawn with matplotlib's object API (no pyplot state) and written
through ``etils.epath``, so a ``gs://`` workdir gets its pictures in the bucket.
"""

import io
import os

from etils import epath
import jax
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sslax.data.sources import split_source
from sslax.eval import features as features_lib
from sslax.losses import l2_normalize
from sslax.methods import build_method
from sslax.probes.linear import stratified_subset
from sslax.train import checkpoint, run_config
from sslax.train.metrics import read_metrics

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _save(fig, path):
  """Writes ``fig`` as a PNG to ``path`` (a local path or a URL such as
  ``gs://...``); returns ``path``."""
  FigureCanvasAgg(fig)
  buffer = io.BytesIO()  # rendered in memory: remote files may not seek
  fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
  epath.Path(path).write_bytes(buffer.getvalue())
  return path


def embed_2d(features, seed=0):
  """2-D t-SNE coordinates (after PCA to 50 dimensions)."""
  from sklearn.decomposition import PCA  # pylint: disable=g-import-not-at-top
  from sklearn.manifold import TSNE  # pylint: disable=g-import-not-at-top
  x = np.asarray(features, np.float64)
  if x.shape[1] > 50:
    x = PCA(n_components=min(50, len(x)), random_state=seed).fit_transform(x)
  # (a small evaluation split, e.g. a user's own folder, needs less perplexity)
  return TSNE(n_components=2, init="pca", perplexity=min(30.0, max(1.0, (len(x) - 1) / 3)),
              random_state=seed).fit_transform(x)


def tsne_png(features, labels, class_names, path, *, num_points=3000, seed=0,
             title="t-SNE of test features"):
  fraction = min(1.0, num_points / len(labels))
  idx = stratified_subset(labels, fraction, seed)
  xy = embed_2d(features[idx], seed)
  fig = Figure(figsize=(7, 6))
  ax = fig.add_subplot()
  colours = [f"C{i}" if i < 10 else None for i in range(len(class_names))]
  for c, name in enumerate(class_names):
    sel = labels[idx] == c
    ax.scatter(xy[sel, 0], xy[sel, 1], s=4, c=colours[c], label=name)
  ax.set_xticks([]), ax.set_yticks([])
  ax.set_title(f"{title} ({len(idx)} points)")
  ax.legend(markerscale=4, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
  return _save(fig, path)


def nearest_neighbours(query_x, bank_x, k):
  sims = np.asarray(l2_normalize(query_x)) @ np.asarray(l2_normalize(bank_x)).T
  return np.argsort(-sims, axis=1)[:, :k]


def retrieval_png(query_images, query_labels, query_x, bank_images, bank_labels,
                  bank_x, path, *, k=8):
  neighbours = nearest_neighbours(query_x, bank_x, k)
  rows = len(query_images)
  fig = Figure(figsize=(1.1 * (k + 1), 1.15 * rows))
  for r in range(rows):
    panels = [(query_images[r], None)] + [
        (bank_images[j], bank_labels[j] == query_labels[r]) for j in neighbours[r]]
    for c, (image, match) in enumerate(panels):
      ax = fig.add_subplot(rows, k + 1, r * (k + 1) + c + 1)
      ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None)
      ax.set_xticks([]), ax.set_yticks([])
      colour = "black" if match is None else ("tab:green" if match else "tab:red")
      for side in ax.spines.values():
        side.set_edgecolor(colour)
        side.set_linewidth(3 if match is not None else 1)
      if r == 0:
        ax.set_title("query" if c == 0 else f"#{c}", fontsize=8)
  precision = np.mean(bank_labels[neighbours] == query_labels[:, None])
  fig.suptitle(f"nearest training images (cosine, features); class match "
               f"{100 * precision:.0f}%", fontsize=9)
  return _save(fig, path)


CURVES = (("loss", ("loss",)), ("learning rate", ("lr",)),
          ("online top-1", ("online_knn_top1_k20", "online_probe_top1",
                            "probe_train_top1")),
          ("examples/s", ("examples_per_second", "images_per_second")))


def curves_png(records, path):
  fig = Figure(figsize=(11, 6.5))
  for i, (title, keys) in enumerate(CURVES):
    ax = fig.add_subplot(2, 2, i + 1)
    for key in keys:
      points = [(r["step"], r[key]) for r in records if key in r]
      if points:
        steps, values = zip(*points)
        ax.plot(steps, values, marker="." if len(points) < 30 else None, label=key)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step", fontsize=8)
    if len(keys) > 1:
      ax.legend(fontsize=7)
  fig.tight_layout()
  return _save(fig, path)


def image_rows_png(rows, path, title):
  """One row of images per ``(name, images)`` in ``rows``: float images
  [n, H, W, C] (or [n, H, W]) in [0, 1], one column per image (the first 8)."""
  n = min(8, min(len(images) for _, images in rows))
  fig = Figure(figsize=(1.1 * n + 0.8, 1.2 * len(rows)))
  for r, (name, images) in enumerate(rows):
    for c in range(n):
      ax = fig.add_subplot(len(rows), n, r * n + c + 1)
      image = np.clip(np.asarray(images[c], np.float32), 0.0, 1.0)
      ax.imshow(image.squeeze(), cmap="gray" if image.ndim == 2 or image.shape[-1] == 1
                else None, vmin=0.0, vmax=1.0)
      ax.set_xticks([]), ax.set_yticks([])
      if c == 0:
        ax.set_ylabel(name, fontsize=9)
  fig.suptitle(title, fontsize=10)
  return _save(fig, path)


def visualize(workdir: str, *, num_queries=8, seed=0, overrides=()):
  """Writes the PNGs of a trained workdir; returns their paths."""
  config = run_config.load_config(workdir, overrides)
  viz_dir = epath.Path(workdir) / "viz"
  viz_dir.mkdir(parents=True, exist_ok=True)

  def out(name):  # the workdir as given: relative, absolute or a URL
    return os.fspath(viz_dir / name)

  train_x, train_y, test_x, test_y, num_classes = features_lib.features(
      config, "encoder", workdir, "sslax viz")
  train = split_source(config.data, "eval_train_split")
  test = split_source(config.data, "eval_split")
  names = getattr(test, "class_names", None) or (
      FASHION_MNIST_CLASSES if config.data.name == "fashion_mnist"
      else tuple(str(c) for c in range(num_classes)))
  paths = [tsne_png(test_x, test_y, names, out("tsne.png"), seed=seed,
                    num_points=config.eval.tsne_points)]
  if "image" in test.element_spec:  # pictures of neighbours are of images
    queries = np.random.default_rng(seed).choice(len(test_y), min(num_queries, len(test_y)),
                                                 replace=False)
    query_images = test.get(queries)["image"]
    paths.append(retrieval_png(
        query_images, test_y[queries], test_x[queries], _Lazy(train), train_y, train_x,
        out("retrieval.png")))
  paths.append(curves_png(read_metrics(workdir), out("curves.png")))
  method = build_method(config)
  if method.pictures is not None:  # the method's own: reconstructions, colours
    params, model_state = checkpoint.restore_model(workdir)
    idx = np.sort(np.random.default_rng(seed).choice(len(test), min(256, len(test)),
                                                     replace=False))
    images = test.get(idx)["image"]
    drawn = method.pictures(params, model_state, images, jax.random.PRNGKey(seed))
    for name, (rows, title) in drawn.items():
      paths.append(image_rows_png(rows, out(f"{name}.png"),
                                  f"{config.method}: {title}"))
  return paths


class _Lazy:
  """Indexes a source's images one at a time (no whole-split copy)."""

  def __init__(self, source):
    self.source = source

  def __getitem__(self, i):
    return self.source.get(np.asarray([i]))["image"][0]
