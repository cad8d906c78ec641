"""The synthetic video corpus (``sslax data make-video``, ``make video``):
clips with ground truth for tracking, made on this machine from data sslax
already reads.

Each clip is ``frames`` frames of ``size`` x ``size`` RGB. The background is
a crop of one of the wallpaper photographs (``sslax.data.photos``) that pans
and zooms slowly. Over it move ``objects`` Fashion-MNIST garments, each
scaled, tinted one random colour and drawn in a fixed depth order (later ones
occlude earlier ones):

- object 1 moves at constant velocity and bounces off the frame's edges;
- object 2 falls under gravity and bounces on the floor, losing speed at
  each bounce (damped: time's direction shows);
- object 3 moves at constant velocity and fades towards the background
  (irreversible too);
- further objects move like object 1.

Ground truth per frame: ``masks`` (uint8 [T, H, W]: 0 background, k for the
k-th object where it is the visible one), ``keypoints`` (float32 [T, K, 2],
``(x, y)`` pixels; five per object: the support pixel nearest its centre and
its topmost, bottommost, leftmost and rightmost pixels) and ``visible`` (bool
[T, K]: the keypoint is inside the frame and not occluded). ``labels``
(int32 [objects]) are the garments' Fashion-MNIST classes. Train and test
clips use disjoint garments (Fashion-MNIST's own splits) and disjoint photos.
Everything is a function of ``seed`` and the clip's index.
"""

import os
import zlib
from typing import Sequence

import numpy as np

from sslax.data import corpus, photos
from sslax.data.fashion_mnist import fashion_mnist
from sslax.data.source import ArraySource
from sslax.errors import UserError

KEYPOINTS_PER_OBJECT = 5
SUPPORT_THRESHOLD = 0.2  # garment intensity in [0, 1] above which a pixel is the garment
GRAVITY = 0.35  # pixels / frame^2
BOUNCE_DAMPING = 0.7
FADE_TO = 0.35  # the fading object's opacity in the last frame
CLIP_KEYS = ("clip", "masks", "keypoints", "visible")


def default_corpus_dir() -> str:
  return os.path.join("data", "video")


def _background_frames(photo, frames: int, size: int, rng: np.random.Generator):
  """uint8 [T, size, size, 3]: a square crop of the PIL ``photo`` that pans
  and zooms by at most a few percent of its side per frame."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  w, h = photo.size
  side = rng.uniform(0.35, 0.6) * min(w, h)
  zoom = rng.uniform(-0.006, 0.006)  # relative change of the side per frame
  velocity = rng.uniform(-0.01, 0.01, 2) * side
  last = side * (1 + zoom) ** frames
  margin = max(side, last)
  cx = rng.uniform(margin / 2, w - margin / 2) if w > margin else w / 2
  cy = rng.uniform(margin / 2, h - margin / 2) if h > margin else h / 2
  out = np.empty((frames, size, size, 3), np.uint8)
  for t in range(frames):
    s = side * (1 + zoom) ** t
    x = float(np.clip(cx + velocity[0] * t, s / 2, w - s / 2))
    y = float(np.clip(cy + velocity[1] * t, s / 2, h - s / 2))
    box = (x - s / 2, y - s / 2, x + s / 2, y + s / 2)
    out[t] = np.asarray(photo.resize((size, size), Image.BILINEAR, box=box))
  return out


def _garment(image28: np.ndarray, side: int):
  """A garment resized to ``side`` x ``side``: (intensity float32 [side,
  side] in [0, 1], support bool [side, side])."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  g = np.asarray(Image.fromarray(image28).resize((side, side), Image.BILINEAR),
                 np.float32) / 255.0
  return g, g > SUPPORT_THRESHOLD


def _object_keypoints(support: np.ndarray) -> np.ndarray:
  """float32 [5, 2] (x, y) in the garment's own pixels: the support pixel
  nearest its centroid, then its topmost, bottommost, leftmost, rightmost."""
  ys, xs = np.nonzero(support)
  cy, cx = ys.mean(), xs.mean()
  centre = np.argmin((ys - cy) ** 2 + (xs - cx) ** 2)
  picks = [centre, np.argmin(ys), np.argmax(ys), np.argmin(xs), np.argmax(xs)]
  return np.stack([np.array([xs[i], ys[i]], np.float32) for i in picks])


def _trajectory(kind: str, frames: int, side: int, size: int, rng: np.random.Generator):
  """Top-left positions float [T, 2] (x, y) of an object of ``side`` pixels
  in a ``size`` frame: constant velocity with bounces off the edges, and for
  ``kind == "gravity"`` a fall with damped bounces on the floor."""
  limit = size - side
  pos = rng.uniform(0, limit, 2)
  vel = rng.uniform(-2.5, 2.5, 2)
  if kind == "gravity":
    pos[1] = rng.uniform(0, limit / 3)
    vel[1] = rng.uniform(-0.5, 0.5)
  out = np.empty((frames, 2), np.float32)
  for t in range(frames):
    out[t] = pos
    if kind == "gravity":
      vel[1] += GRAVITY
    pos = pos + vel
    for axis in (0, 1):
      if pos[axis] < 0:
        pos[axis], vel[axis] = -pos[axis], -vel[axis]
      if pos[axis] > limit:
        pos[axis] = 2 * limit - pos[axis]
        vel[axis] = -vel[axis] * (BOUNCE_DAMPING if kind == "gravity" and axis == 1 else 1)
  return out


def render_clip(background: np.ndarray, garments: Sequence[np.ndarray], rng: np.random.Generator):
  """One clip over ``background`` (uint8 [T, S, S, 3]) with the 28x28
  ``garments``: ``{"clip", "masks", "keypoints", "visible"}``."""
  frames, size = background.shape[0], background.shape[1]
  clip = background.astype(np.float32)
  masks = np.zeros((frames, size, size), np.uint8)
  keypoints = np.zeros((frames, len(garments) * KEYPOINTS_PER_OBJECT, 2), np.float32)
  kinds = ["bounce", "gravity", "fade"] + ["bounce"] * max(0, len(garments) - 3)
  for k, image28 in enumerate(garments):
    side = int(rng.integers(size * 5 // 16, size * 7 // 16 + 1))
    intensity, support = _garment(image28, side)
    tint = rng.uniform(0.25, 1.0, 3).astype(np.float32) * 255.0
    path = _trajectory(kinds[k], frames, side, size, rng)
    own = _object_keypoints(support)
    opacity = np.linspace(1.0, FADE_TO, frames) if kinds[k] == "fade" else np.ones(frames)
    for t in range(frames):
      x0, y0 = int(round(path[t, 0])), int(round(path[t, 1]))
      region = (slice(y0, y0 + side), slice(x0, x0 + side))
      colour = intensity[..., None] * tint
      a = opacity[t]
      patch = clip[t][region]
      clip[t][region] = np.where(support[..., None], a * colour + (1 - a) * patch, patch)
      masks[t][region] = np.where(support, k + 1, masks[t][region])
      keypoints[t, k * KEYPOINTS_PER_OBJECT:(k + 1) * KEYPOINTS_PER_OBJECT] = own + [x0, y0]
  owner = np.repeat(np.arange(1, len(garments) + 1), KEYPOINTS_PER_OBJECT)
  xy = np.round(keypoints).astype(np.int64)
  inside = np.all((xy >= 0) & (xy < size), axis=-1)
  t_index = np.arange(frames)[:, None]
  visible = inside & (masks[t_index, np.clip(xy[..., 1], 0, size - 1),
                            np.clip(xy[..., 0], 0, size - 1)] == owner)
  return {"clip": np.clip(np.round(clip), 0, 255).astype(np.uint8), "masks": masks,
          "keypoints": keypoints, "visible": visible}


def make_corpus(out: str, *, clips=(600, 100), frames=16, size=64, objects=3, seed=0,
                test_fraction=0.2, search_dirs=photos.SEARCH_DIRS,
                fashion_mnist_dir=None, log=print) -> dict:
  """Builds the corpus in ``out`` (or finds it there, built with the same
  settings): ``clips`` (train, test) clips. Returns its meta dict."""
  settings = {"clips": [int(c) for c in clips], "frames": int(frames), "size": int(size),
              "objects": int(objects), "seed": int(seed),
              "test_fraction": float(test_fraction)}
  if min(clips) < 1 or frames < 2 or size < 32 or objects < 1:
    raise UserError(f"need at least 1 clip per split, --frames >= 2, --size >= 32 and "
                    f"--objects >= 1; got clips {tuple(clips)}, {frames}, {size}, {objects}")
  found = photos.find_photos(search_dirs)
  if len(found) < 2:
    raise UserError(f"found {len(found)} of the wallpaper photos the video corpus draws "
                    f"its backgrounds from (need 2); install them with {photos.INSTALL_HINT}")
  names = [n for n, _ in found]
  meta = corpus.built_meta(out, lambda m: m.get("settings") == settings and
                           m.get("photos") == names, "video corpus")
  if meta is not None:
    log(f"video corpus already in {out}")
    return meta
  train_photos, test_photos = photos.split_photos(names, test_fraction, seed)
  os.makedirs(out, exist_ok=True)
  meta = {"settings": settings, "photos": names, "keys": list(CLIP_KEYS),
          "keypoints_per_object": KEYPOINTS_PER_OBJECT}
  for split, count, photo_idx in (("train", clips[0], train_photos),
                                  ("test", clips[1], test_photos)):
    garments = fashion_mnist(split, fashion_mnist_dir)
    images = garments.arrays["image"][..., 0]
    loaded = {i: photos.load_photo(found[i][1], 4 * size) for i in photo_idx}
    arrays = {key: [] for key in CLIP_KEYS}
    labels = []
    for c in range(count):
      rng = np.random.default_rng([seed, zlib.crc32(split.encode()), c])
      photo = loaded[int(photo_idx[rng.integers(len(photo_idx))])]
      which = rng.choice(len(images), objects, replace=False)
      clip = render_clip(_background_frames(photo, frames, size, rng), images[which], rng)
      for key in CLIP_KEYS:
        arrays[key].append(clip[key])
      labels.append(garments.labels[which])
    np.savez(os.path.join(out, f"{split}.npz"), labels=np.stack(labels).astype(np.int32),
             **{k: np.stack(v) for k, v in arrays.items()})
    meta[f"{split}_photos"] = [names[i] for i in photo_idx]
    log(f"{split}: {count} clips of {frames} frames, {size}x{size}, {objects} garments "
        f"each, backgrounds from {len(photo_idx)} photos")
  corpus.write_meta(out, meta)
  log(f"video corpus in {out}")
  return meta


def load_split(data_dir: str, split: str) -> ArraySource:
  """A split of the corpus: examples ``{"clip", "masks", "keypoints",
  "visible"}``; ``garment_labels`` (int32 [n, objects]) rides along as an
  attribute (the frame-level probe's classes), the clips themselves have no
  label."""
  data_dir = data_dir or default_corpus_dir()
  data, _ = corpus.read_split(
      data_dir, split, what="video corpus",
      build_hint=f"`sslax data make-video --out {data_dir}` (or `make video`)")
  source = ArraySource(arrays={k: data[k] for k in CLIP_KEYS})
  source.garment_labels = data["labels"]
  return source


def load_frames(data_dir: str, split: str) -> ArraySource:
  """A split's frames as single unlabelled images (``{"image": uint8 [H, W,
  3]}``, clip by clip, frame by frame): the corpus for a method of still
  images, whose features are then compared with the video methods'."""
  clips = load_split(data_dir, split).arrays["clip"]
  return ArraySource(images=clips.reshape(-1, *clips.shape[2:]))
