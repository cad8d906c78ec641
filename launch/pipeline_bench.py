"""Host input pipeline alone: images/s of sslax's Grain pipeline reading a
folder of ImageNet-sized JPEGs (decode, resize to ``--size`` and centre crop,
then the global array the trainer receives), for each worker count. No model
runs; the figure is what the host can feed an accelerator.

  python launch/pipeline_bench.py --make-folder /tmp/jpegs   # cut the JPEGs once
  python launch/pipeline_bench.py /tmp/jpegs --workers 0 1 2

``--make-folder DIR`` cuts ``--count`` 500x375 crops from the wallpaper
photographs of Debian's plasma-workspace-wallpapers and mate-backgrounds
(``sslax.data.photos``'s allow-list), each photo first scaled by a random
factor, into ``DIR/<photo>/NNNN.jpg`` (a class per photo, JPEG quality 90:
about ImageNet's average size and file size), then measures that folder.
Prints a Markdown table: images/s and ms per batch after ``--warmup``
batches, the host CPU time per image summed over every process (the cost of
decode + resize + hand-over, whatever the worker count), how many cores were
busy, and the time to the first batch (starting the workers).
"""

import argparse
import os
import sys
import time

import ml_collections
import numpy as np

from sslax.data.sources import get_source

CROP = (500, 375)  # width, height


def make_folder(out: str, count: int, seed: int = 0) -> int:
  """Writes ``count`` 500x375 JPEG crops of the wallpaper photos into
  ``out/<photo>/``; returns the number of files there."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from sslax.data import photos  # pylint: disable=g-import-not-at-top
  found = photos.find_photos()
  if not found:
    sys.exit(f"no wallpaper photos under {', '.join(photos.SEARCH_DIRS)}; install "
             f"them with {photos.INSTALL_HINT}")
  rng = np.random.default_rng(seed)
  written = 0
  for k in range(count):
    name, path = found[k % len(found)]
    label = os.path.splitext(os.path.basename(name))[0]
    directory = os.path.join(out, label)
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, f"{k // len(found):04d}.jpg")
    if os.path.exists(target):
      written += 1
      continue
    with Image.open(path) as im:
      im = im.convert("RGB")
      # Shorter side between the crop's and the photo's: close-ups and views.
      scale = rng.uniform(CROP[1] / min(im.size), 1.0)
      im = im.resize((max(CROP[0], round(im.size[0] * scale)),
                      max(CROP[1], round(im.size[1] * scale))), Image.BILINEAR)
      x = int(rng.integers(0, im.size[0] - CROP[0] + 1))
      y = int(rng.integers(0, im.size[1] - CROP[1] + 1))
      im.crop((x, y, x + CROP[0], y + CROP[1])).save(target, quality=90)
    written += 1
  return written


def folder_source(directory: str, size: int):
  """sslax's image-folder source (``data.name = 'image_folder'``) reading
  ``directory`` at ``size`` x ``size``."""
  data = ml_collections.ConfigDict(dict(name="image_folder", data_dir=directory,
                                        load_size=size, image_size=(size, size)))
  return get_source(data, "train"), "image_folder (sslax.data.folder)"


def _cpu_seconds(processes) -> float:
  """User + system CPU seconds of this process and of ``processes``."""
  import resource  # pylint: disable=g-import-not-at-top
  usage = resource.getrusage(resource.RUSAGE_SELF)
  total = usage.ru_utime + usage.ru_stime
  for p in processes:
    try:
      times = p.cpu_times()
      total += times.user + times.system
    except Exception:  # pylint: disable=broad-except
      pass  # a worker that has exited
  return total


def _workers():
  """The worker processes of this one (not multiprocessing's resource tracker)."""
  import psutil  # pylint: disable=g-import-not-at-top
  return [p for p in psutil.Process().children(recursive=True)
          if "resource_tracker" not in " ".join(p.cmdline())]


def measure(source, workers: int, global_batch: int, batches: int, warmup: int):
  """images/s, ms per batch, host CPU ms per image (every process), CPU cores
  busy, and seconds to the first batch, of the trainer's BatchIterator over
  ``source`` with ``workers`` worker processes."""
  import jax  # pylint: disable=g-import-not-at-top
  from sslax.data import pipeline  # pylint: disable=g-import-not-at-top
  from sslax.sharding import data_sharding, make_mesh  # pylint: disable=g-import-not-at-top
  sharding = data_sharding(make_mesh(global_batch))
  begin = time.perf_counter()
  with pipeline.BatchIterator(source, seed=0, global_batch=global_batch,
                              sharding=sharding, workers=workers,
                              stop_step=warmup + batches) as it:
    for step, batch in it:
      jax.block_until_ready(batch)
      if step == 0:
        first = time.perf_counter() - begin
      if step == warmup - 1:
        processes = _workers()
        start, cpu_start = time.perf_counter(), _cpu_seconds(processes)
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds(processes) - cpu_start
  images = batches * global_batch
  return dict(rate=images / seconds, ms=1000 * seconds / batches,
              cpu_ms=1000 * cpu / images, cores=cpu / seconds, first=first)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("folder", nargs="?", help="a folder of class subfolders of JPEGs")
  parser.add_argument("--make-folder", metavar="DIR",
                      help="cut --count 500x375 JPEG crops of the wallpaper photos "
                      "into DIR, then measure DIR")
  parser.add_argument("--count", type=int, default=300)
  parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--size", type=int, default=256,
                      help="host resize: shorter side, then the central square "
                      "(the imagenet variant's data.load_size)")
  parser.add_argument("--batch", type=int, default=32, help="global batch")
  parser.add_argument("--batches", type=int, default=12, help="batches timed")
  parser.add_argument("--warmup", type=int, default=3, help="batches not timed")
  args = parser.parse_args()
  args.warmup = max(1, args.warmup)
  directory = args.make_folder or args.folder
  if not directory:
    parser.error("give a folder, or --make-folder DIR")
  if args.make_folder:
    start = time.perf_counter()
    n = make_folder(args.make_folder, args.count)
    print(f"{n} JPEGs of {CROP[0]}x{CROP[1]} in {args.make_folder} "
          f"({time.perf_counter() - start:.1f} s)")
  source, kind = folder_source(directory, args.size)
  sizes = [os.path.getsize(p) for p in getattr(source, "files", getattr(source, "paths", []))]
  mean_kb = f", mean file {np.mean(sizes) / 1024:.0f} KiB" if sizes else ""
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  print(f"{len(source)} images in {directory}{mean_kb}; source {kind}; decode + "
        f"resize to {args.size}x{args.size}; global batch {args.batch}; "
        f"{args.batches} batches timed after {args.warmup}; {cores} CPU cores")
  print()
  print("| workers | images/s | ms/batch | speed-up | host CPU ms/image | CPU cores busy "
        "| first batch (s) |")
  print("|---|---|---|---|---|---|---|")
  base = None
  for workers in args.workers:
    m = measure(source, workers, args.batch, args.batches, args.warmup)
    base = base or m["rate"]
    print(f"| {workers} | {m['rate']:.0f} | {m['ms']:.0f} | {m['rate'] / base:.2f}x | "
          f"{m['cpu_ms']:.2f} | {m['cores']:.2f} | {m['first']:.2f} |", flush=True)
  load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
  print(f"\nload average (1 min) after the runs: {load:.1f} on {cores} cores; "
        "images/s grows with workers only while cores are free")


if __name__ == "__main__":
  main()
