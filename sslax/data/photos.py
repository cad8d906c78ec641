"""A small colour photo corpus cut from Debian's wallpaper packages, for
colourisation (Zhang et al. 2016) and split-brain autoencoders (Zhang et al.
2017) where ImageNet cannot be downloaded.

Only photographs are used: ``PHOTOS`` is an allow-list reviewed by eye, which
leaves out the illustrations, 3-D renders and abstract patterns these packages
mostly hold, and the two black-and-white photographs (nothing to colourise).
Each photo gives ``crops_per_image`` square crops at a random place and scale
(side a log-uniform fraction of the photo's shorter side), resized to ``size``
x ``size`` RGB. The split is by photo: a test photo never contributes a
training crop. The label of a crop is the index of its photo (no method uses
it; the online probe's figures mean nothing on this corpus).

``sslax data make-photos --out DIR`` writes ``DIR/{train,test}.npz`` and
``DIR/meta.json``; the config's ``data.data_dir`` points at ``DIR``.
"""

import glob
import os
import re
import zlib
from typing import Optional, Sequence

import numpy as np

from sslax.data import corpus
from sslax.data.source import ArraySource
from sslax.errors import UserError

PACKAGES = ("plasma-workspace-wallpapers", "mate-backgrounds")
SEARCH_DIRS = ("/usr/share/wallpapers", "/usr/share/backgrounds")
INSTALL_HINT = ("`apt-get install plasma-workspace-wallpapers mate-backgrounds` "
                "(or run `make data`)")

# The photographs, as paths relative to a search directory. A path ending in
# "/" is a KDE Plasma wallpaper package (one scene at several sizes): its
# largest image is used. Reviewed on plasma-workspace-wallpapers 5.27.5,
# mate-backgrounds 1.26.0 and gnome-backgrounds 43.1 (Debian 12).
#  Left out, plasma: Altai, Autumn, Canopee, Cascade, Cluster, Elarun, Flow,
#    FlyingKonqui, Honeywave, IceCold, Kay, Kokkini, MilkyWay, Opal,
#    PastelHills, Patak, SafeLanding, Shell, Volna (illustrations and renders);
#    ColdRipple, Grey (black-and-white photographs).
#  Left out, MATE: abstract/* (Elephants is a painting, the rest patterns),
#    desktop/* (logos, stripes, and the Ubuntu-Mate-* blurred starfield renders).
#  gnome-backgrounds 43.1 holds no photographs (SVG drawings, WebP renders).
PHOTOS = (
    "BytheWater/contents/images/",      # jetty planks by a lake
    "ColorfulCups/contents/images/",    # stacked plastic cups
    "DarkestHour/contents/images/",     # lake at dusk
    "EveningGlow/contents/images/",     # rowing boats, sunset
    "FallenLeaf/contents/images/",      # autumn leaves
    "Kite/contents/images/",            # sky with clouds and a kite
    "OneStandsOut/contents/images/",    # moss from above
    "Path/contents/images/",            # spruce forest path
    "summer_1am/contents/images/",      # lake at midsummer night
    "mate/nature/Aqua.jpg",             # water drop splash
    "mate/nature/Blinds.jpg",           # leaf veins
    "mate/nature/Dune.jpg",             # dune grass and sea
    "mate/nature/FreshFlower.jpg",      # orange flower
    "mate/nature/Garden.jpg",           # marigold
    "mate/nature/GreenMeadow.jpg",      # grass blades
    "mate/nature/LadyBird.jpg",         # ladybird, forget-me-nots
    "mate/nature/RainDrops.jpg",        # wet leaves
    "mate/nature/Storm.jpg",            # storm clouds over a road
    "mate/nature/TwoWings.jpg",         # dandelion seeds
    "mate/nature/Wood.jpg",             # weathered planks
    "mate/nature/YellowFlower.jpg",     # yellow flower
)

_SIZE_NAME = re.compile(r"^(\d+)x(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


def default_corpus_dir() -> str:
  return os.path.join("data", "wallpaper_photos")


def _largest_in(directory: str) -> Optional[str]:
  """The largest ``<W>x<H>.jpg|png`` of a Plasma wallpaper's image folder."""
  best, best_area = None, -1
  for path in sorted(glob.glob(os.path.join(directory, "*"))):
    match = _SIZE_NAME.match(os.path.basename(path))
    if match and int(match[1]) * int(match[2]) > best_area:
      best, best_area = path, int(match[1]) * int(match[2])
  return best


def find_photos(search_dirs: Sequence[str] = SEARCH_DIRS) -> list:
  """``[(name, path)]`` of the allow-listed photos found under ``search_dirs``
  (the first directory holding an entry wins), in ``PHOTOS`` order."""
  found = []
  for name in PHOTOS:
    for root in search_dirs:
      candidate = os.path.join(root, name)
      path = _largest_in(candidate) if name.endswith("/") else (
          candidate if os.path.isfile(candidate) else None)
      if path is not None:
        found.append((name.rstrip("/").split("/contents")[0], path))
        break
  return found


def load_photo(path: str, max_side: int):
  """An RGB uint8 photo (EXIF orientation applied), shrunk (Lanczos) so that
  its shorter side is at most ``max_side``."""
  from PIL import Image, ImageOps  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(path) as im:
      im = ImageOps.exif_transpose(im).convert("RGB")
  except OSError as e:
    raise UserError(f"cannot read photo {path}: {e}; reinstall it with "
                    f"{INSTALL_HINT}") from None
  w, h = im.size
  if min(w, h) > max_side:
    scale = max_side / min(w, h)
    im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
  return im


def random_crops(image, count: int, size: int, scale, rng: np.random.Generator):
  """``count`` square crops of a PIL image, each of side ``s * min(W, H)`` with
  ``s`` log-uniform in ``scale``, at a uniformly random place, resized
  (bicubic, antialiased) to ``size`` x ``size``; uint8 [count, size, size, 3]."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  w, h = image.size
  sides = np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]), count)) * min(w, h)
  x0 = rng.uniform(0.0, 1.0, count) * (w - sides)
  y0 = rng.uniform(0.0, 1.0, count) * (h - sides)
  out = np.empty((count, size, size, 3), np.uint8)
  for i in range(count):
    box = (float(x0[i]), float(y0[i]), float(x0[i] + sides[i]), float(y0[i] + sides[i]))
    out[i] = np.asarray(image.resize((size, size), Image.BICUBIC, box=box))
  return out


def split_photos(names: Sequence[str], test_fraction: float, seed: int):
  """Sorted indices of the train and test photos: a seed-fixed
  ``test_fraction`` of them (at least one) is held out."""
  n = len(names)
  num_test = min(n - 1, max(1, int(round(test_fraction * n))))
  order = np.random.default_rng([seed, 0]).permutation(n)
  return np.sort(order[num_test:]), np.sort(order[:num_test])


def make_corpus(out: str, *, size=32, crops_per_image=1000, seed=0, test_fraction=0.2,
                scale=(0.1, 0.6), search_dirs: Sequence[str] = SEARCH_DIRS,
                log=print) -> dict:
  """Builds the corpus in ``out`` (or finds it there, built with the same
  settings from the same photos); returns its meta dict."""
  settings = {"size": int(size), "crops_per_image": int(crops_per_image),
              "seed": int(seed), "test_fraction": float(test_fraction),
              "scale": [float(s) for s in scale]}
  if size < 8 or crops_per_image < 1:
    raise UserError(f"need --size >= 8 and --crops-per-image >= 1, got {size} and "
                    f"{crops_per_image}")
  if not 0.0 < scale[0] <= scale[1] <= 1.0:
    raise UserError(f"crop scale must satisfy 0 < min <= max <= 1, got {tuple(scale)}")
  photos = find_photos(search_dirs)
  if len(photos) < 2:
    raise UserError(f"found {len(photos)} of the {len(PHOTOS)} wallpaper photos under "
                    f"{', '.join(search_dirs)} (need at least 2); install them with "
                    f"{INSTALL_HINT}")
  names = [name for name, _ in photos]
  meta = corpus.built_meta(
      out, lambda m: m.get("settings") == settings and m.get("photos") == names,
      "photo corpus")
  if meta is not None:
    log(f"photo corpus already in {out}")
    return meta
  train_idx, test_idx = split_photos(names, test_fraction, seed)
  # Shrink first so crop resizing is cheap; the smallest crop still has
  # twice the output's pixels a side.
  max_side = int(np.ceil(2 * size / scale[0]))
  os.makedirs(out, exist_ok=True)
  stats = {}
  for split, idx in (("train", train_idx), ("test", test_idx)):
    images, labels = [], []
    for i in idx:
      name, path = photos[i]
      rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
      image = load_photo(path, max_side)
      images.append(random_crops(image, crops_per_image, size, scale, rng))
      labels.append(np.full(crops_per_image, i, np.int32))
    images, labels = np.concatenate(images), np.concatenate(labels)
    np.savez(os.path.join(out, f"{split}.npz"), images=images, labels=labels)
    stats[split] = {"mean": (images.mean(axis=(0, 1, 2)) / 255.0).round(4).tolist(),
                    "std": (images.std(axis=(0, 1, 2)) / 255.0).round(4).tolist(),
                    "num_images": int(len(images))}
    log(f"{split}: {len(idx)} photos, {len(images)} crops")
  meta = {"settings": settings, "photos": names, "paths": [p for _, p in photos],
          "train_photos": [names[i] for i in train_idx],
          "test_photos": [names[i] for i in test_idx], "stats": stats}
  corpus.write_meta(out, meta)
  log(f"photo corpus in {out}: {len(names)} photos, {size}x{size} RGB crops")
  return meta


def load_split(data_dir: str, split: str) -> ArraySource:
  """A split of the corpus as an ArraySource of uint8 images [n, H, W, 3];
  labels are photo indices."""
  data_dir = data_dir or default_corpus_dir()
  return corpus.load_split(
      data_dir, split, what="photo corpus",
      build_hint=f"`sslax data make-photos --out {data_dir}` (or `make photos`)",
      array_key="images", example_key="image", num_classes=lambda m: len(m["photos"]))
