"""Pictures of a run (``sslax viz``), written under ``WORKDIR/viz``, each
titled with the run, its method, dataset and step:

* ``tsne.png``: a t-SNE map (van der Maaten & Hinton 2008) of test features,
  one colour per class, never repeated (``umap.png`` with ``--map umap``:
  UMAP, McInnes et al. 2018, where the ``umap`` extra is installed);
* ``retrieval.png`` (image runs): test queries and their 8 nearest training
  images by cosine similarity of the features, each under its class name,
  framed green where the class matches;
* ``curves.png``: the training curves of ``metrics.jsonl``, training-batch
  and test-subset figures told apart;
* the pictures of each evaluation that applies to the primary encoder and
  draws some (its ``pictures``, ``sslax.eval.protocols``): tracking's
  propagated masks (PNG strips and GIFs) and one pixel's attention for a
  ``dense`` encoder (``sslax.eval.track_viz``);
* ``<name>.png`` for each picture the method draws (``Method.pictures``) of
  test examples of what it reads: e.g. test images, the corrupted or masked
  input and the reconstruction, or the L channel, the predicted colours and
  the truth.

The map and the retrieval are of a vector encoder's features of labelled
examples: other encoders, unlabelled data and data whose labels do not carry
across splits (the photo corpus: a label is the source photograph) get
neither, with a note.

Figures are drawn with matplotlib's object API (no pyplot state) and written
through ``etils.epath`` (``sslax.eval.figures``), so a ``gs://`` workdir gets
its pictures in the bucket.
"""

import os
import sys

from etils import epath
import jax
import numpy as np
from matplotlib.figure import Figure

from sslax.data.sources import SOURCE_LABELLED, probe_labels, split_source
from sslax.data.source import labelled
from sslax.errors import UserError
from sslax.eval import features as features_lib
from sslax.eval import protocols
from sslax.eval.figures import class_colours, save_png
from sslax.losses import l2_normalize
from sslax.methods import build_method
from sslax.probes.linear import stratified_subset
from sslax.train import artifact, checkpoint, run_config
from sslax.train.metrics import read_metrics

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def embed_2d(features, seed=0, method="tsne"):
  """2-D coordinates by t-SNE or UMAP (after PCA to 50 dimensions)."""
  from sklearn.decomposition import PCA  # pylint: disable=g-import-not-at-top
  x = np.asarray(features, np.float64)
  if x.shape[1] > 50:
    x = PCA(n_components=min(50, len(x)), random_state=seed).fit_transform(x)
  if method == "umap":
    import umap  # pylint: disable=g-import-not-at-top
    return umap.UMAP(n_components=2, n_neighbors=min(15, max(2, len(x) - 1)),
                     random_state=seed).fit_transform(x)
  from sklearn.manifold import TSNE  # pylint: disable=g-import-not-at-top
  # (a small evaluation split, e.g. a user's own folder, needs less perplexity)
  return TSNE(n_components=2, init="pca", perplexity=min(30.0, max(1.0, (len(x) - 1) / 3)),
              random_state=seed).fit_transform(x)


# Above this many classes a legend is unreadable: the map says so instead.
LEGEND_CLASSES = 40


MAP_NAMES = {"tsne": "t-SNE", "umap": "UMAP"}


def tsne_png(features, labels, class_names, path, *, num_points=3000, seed=0,
             title="t-SNE of test features", method="tsne"):
  fraction = min(1.0, num_points / len(labels))
  idx = stratified_subset(labels, fraction, seed)
  xy = embed_2d(features[idx], seed, method)
  fig = Figure(figsize=(7, 6))
  ax = fig.add_subplot()
  colours = class_colours(len(class_names))
  for c, name in enumerate(class_names):
    sel = labels[idx] == c
    ax.scatter(xy[sel, 0], xy[sel, 1], s=4, color=colours[c], label=name)
  ax.set_xticks([]), ax.set_yticks([])
  many = len(class_names) > LEGEND_CLASSES
  ax.set_title(f"{title}\n{MAP_NAMES[method]} of {len(idx)} test points, "
               f"{len(class_names)} classes"
               + (" (too many to name: no legend)" if many else ""), fontsize=9)
  if not many:
    ax.legend(markerscale=4, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5),
              ncols=1 if len(class_names) <= 20 else 2)
  return save_png(fig, path)


def nearest_neighbours(query_x, bank_x, k):
  sims = np.asarray(l2_normalize(query_x)) @ np.asarray(l2_normalize(bank_x)).T
  return np.argsort(-sims, axis=1)[:, :k]


def retrieval_png(query_images, query_labels, query_x, bank_images, bank_labels,
                  bank_x, path, *, k=8, class_names=None, title=""):
  neighbours = nearest_neighbours(query_x, bank_x, k)
  rows = len(query_images)
  names = class_names or tuple(str(c) for c in range(int(max(bank_labels.max(),
                                                             query_labels.max())) + 1))
  fig = Figure(figsize=(1.25 * (k + 1), 1.45 * rows))
  for r in range(rows):
    panels = [(query_images[r], query_labels[r], None)] + [
        (bank_images[j], bank_labels[j], bank_labels[j] == query_labels[r])
        for j in neighbours[r]]
    for c, (image, label, match) in enumerate(panels):
      ax = fig.add_subplot(rows, k + 1, r * (k + 1) + c + 1)
      ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None)
      ax.set_xticks([]), ax.set_yticks([])
      colour = "black" if match is None else ("tab:green" if match else "tab:red")
      for side in ax.spines.values():
        side.set_edgecolor(colour)
        side.set_linewidth(3 if match is not None else 1)
      ax.set_xlabel(str(names[int(label)])[:14], fontsize=6, color=colour, labelpad=1)
      if r == 0:
        ax.set_title("query" if c == 0 else f"#{c}", fontsize=8)
  precision = np.mean(bank_labels[neighbours] == query_labels[:, None])
  fig.suptitle(f"{title}\nnearest training images (cosine of features), framed green "
               f"where the class matches the query's: {100 * precision:.0f}%", fontsize=9)
  return save_png(fig, path)


# Panels of curves.png: (title, ((metric, legend label), ...)).
CURVES = (("loss", (("loss", "training batches"),)),
          ("learning rate", (("lr", "learning rate"),)),
          ("top-1", (("probe_train_top1", "online probe, training batches"),
                     ("online_probe_top1", "online probe, test subset"),
                     ("online_knn_top1_k20", "kNN (k=20), test subset"))),
          ("examples/s", (("examples_per_second", "training"),
                          ("images_per_second", "training"))))


def curves_png(records, path, title=""):
  fig = Figure(figsize=(11, 6.5))
  for i, (panel, keys) in enumerate(CURVES):
    ax = fig.add_subplot(2, 2, i + 1)
    drawn = 0
    for key, label in keys:
      points = [(r["step"], r[key]) for r in records if key in r]
      if points:
        steps, values = zip(*points)
        ax.plot(steps, values, marker="." if len(points) < 30 else None, label=label,
                linestyle="--" if "training batches" in label and len(keys) > 1 else "-")
        drawn += 1
    ax.set_title(panel, fontsize=10)
    ax.set_xlabel("step", fontsize=8)
    if drawn > 1 or (drawn and len(keys) > 1 and keys[0][0] != "examples_per_second"):
      ax.legend(fontsize=7)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  return save_png(fig, path)


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
  return save_png(fig, path)


def figure_title(workdir: str, config) -> str:
  """``run · method · dataset · step N``: what every figure is of."""
  dataset = run_config.describe_data(config.data)
  run = os.path.basename(os.fspath(workdir).rstrip("/")) or os.fspath(workdir)
  return (f"{run} · {config.method} · {dataset} · step "
          f"{checkpoint.latest_step(workdir)}")


def _no_map_reason(workdir, config, definition):
  """Why the run gets no map or retrieval pictures (None when it gets them):
  they are of a vector encoder's features of labelled examples."""
  if config.data.name in SOURCE_LABELLED:
    return (f"the labels of {config.data.name} name the photograph an example was cut "
            "from, which differ between splits; `sslax eval transfer --workdir "
            f"{workdir}` scores the encoder")
  if definition.output != "vector":
    return (f"they are of vector features, and the primary encoder of {workdir} gives "
            f"{definition.output} ones")
  for key in ("eval_train_split", "eval_split"):
    if not labelled(split_source(config.data, key)):
      return f"they need labels, and config.data.{key} of {config.data.name} has none"
  return None


def visualize(workdir: str, *, num_queries=8, seed=0, overrides=(), map_method="tsne"):
  """Writes the pictures of a trained workdir; returns their paths."""
  if map_method not in MAP_NAMES:
    raise UserError(f"unknown map {map_method!r}; use {' or '.join(MAP_NAMES)}")
  if map_method == "umap":
    try:
      import umap  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      raise UserError("--map umap needs umap-learn: .venv/bin/pip install -c "
                      "constraints.txt -e '.[umap]'") from None
  config = run_config.load_config(workdir, overrides)
  definition, _ = artifact.read_encoder_definition(workdir)
  viz_dir = epath.Path(workdir) / "viz"
  viz_dir.mkdir(parents=True, exist_ok=True)
  title = figure_title(workdir, config)

  def out(name):  # the workdir as given: relative, absolute or a URL
    return os.fspath(viz_dir / name)

  paths = []
  reason = _no_map_reason(workdir, config, definition)
  if reason is not None:
    print(f"sslax: note: no map or retrieval pictures: {reason}", file=sys.stderr)
  else:
    train_x, train_y, test_x, test_y, num_classes = features_lib.features(
        config, "encoder", workdir, "sslax viz")
    train = split_source(config.data, "eval_train_split")
    test = split_source(config.data, "eval_split")
    names = getattr(test, "class_names", None) or (
        FASHION_MNIST_CLASSES if config.data.name == "fashion_mnist"
        else tuple(str(c) for c in range(num_classes)))
    paths.append(tsne_png(test_x, test_y, names, out(f"{map_method}.png"), seed=seed,
                          num_points=config.eval.tsne_points, title=title,
                          method=map_method))
    if "image" in test.element_spec:  # pictures of neighbours are of images
      queries = np.random.default_rng(seed).choice(len(test_y),
                                                   min(num_queries, len(test_y)),
                                                   replace=False)
      query_images = test.get(queries)["image"]
      paths.append(retrieval_png(
          query_images, test_y[queries], test_x[queries], _Lazy(train), train_y, train_x,
          out("retrieval.png"), class_names=names, title=title))
  paths.append(curves_png(read_metrics(workdir), out("curves.png"), title=title))
  # the evaluations' own (tracking by a dense encoder), by the registry
  for evaluation in protocols.applicable(definition, probe_labels(config.data)):
    draw = getattr(protocols.EVALUATIONS[evaluation], "pictures", None)
    if draw is not None:
      paths.extend(draw(workdir, config, out, title, seed))
  method = build_method(config)
  if method.pictures is not None:  # the method's own: reconstructions, colours
    test = split_source(config.data, "eval_split")
    params, model_state = checkpoint.restore_model(workdir)
    idx = np.sort(np.random.default_rng(seed).choice(len(test), min(256, len(test)),
                                                     replace=False))
    reads = method.reads or (method.encoder.input_key,)
    examples = test.get(idx)
    inputs = examples[reads[0]] if len(reads) == 1 else {k: examples[k] for k in reads}
    drawn = method.pictures(params, model_state, inputs, jax.random.PRNGKey(seed))
    for name, (rows, picture_title) in drawn.items():
      paths.append(image_rows_png(rows, out(f"{name}.png"),
                                  f"{title}\n{config.method}: {picture_title}"))
  return paths


class _Lazy:
  """Indexes a source's images one at a time (no whole-split copy)."""

  def __init__(self, source):
    self.source = source

  def __getitem__(self, i):
    return self.source.get(np.asarray([i]))["image"][0]
