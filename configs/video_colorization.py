"""Video colourisation (Vondrick et al. 2018). Variants: corpus (default),
smoke. Build the video corpus first (``sslax data make-video --out
data/video``, or ``make video``), then ``sslax train --config
configs/video_colorization.py --workdir runs/video_colorization`` and
``sslax eval track --workdir runs/video_colorization``.

The encoder is a ConvNet on the L channel of single 64x64 frames (widths 32,
64, first stage stride 2), its 16x16x64 map the dense representation; 3
reference frames before a target, 16 k-means colour clusters, attention
temperature 1; Adam (the paper's), peak 1e-3, cosine. The clips have no
labels: online evaluation is off.
"""

import ml_collections

from sslax.config_base import apply_variant, base_config
from sslax.errors import UserError

VARIANTS = ("corpus", "smoke")
VIDEO_DATA = dict(name="video_corpus", modality="video", data_dir="data/video",
                  image_size=(64, 64), load_size=0, mean=(0.5, 0.5, 0.5),
                  std=(0.25, 0.25, 0.25), train_split="train", eval_train_split="train",
                  eval_split="test", channels=0, workers=0)


def video_config(method: str, arg: str, config_file: str):
  """The video methods' shared settings: the corpus, the dense ConvNet on
  single 64x64 frames, Adam at 1e-3 with a cosine schedule, 1000 steps of 32
  clips, online evaluation off (the clips have no labels); ``smoke``: 8
  steps of 8 clips with a narrow network. Returns ``(config, variant)``."""
  arg = arg or "corpus"
  if arg not in VARIANTS:
    raise UserError(f"{config_file} has no variant {arg!r}; use one of "
                    f"{', '.join(VARIANTS)}")
  c = base_config(method)
  apply_variant(c, "smoke" if arg == "smoke" else "fashion_mnist", config_file)
  del c["head"]
  c.data = ml_collections.ConfigDict(VIDEO_DATA)
  c.model = ml_collections.ConfigDict(dict(encoder="convnet", widths=(32, 64),
                                           stem_stride=2, pool="map"))
  c.optimizer.update(name="adamw", learning_rate=1e-3, weight_decay=0.0, warmup_steps=50,
                     lr_scaling="none")
  c.global_batch_size = 32
  c.num_steps = 1000
  c.online_eval_every = 0
  c.log_every = 25
  # One crop per clip (the same box in every frame; (1, 1): none) and colour
  # jitter drawn per frame of strength `jitter` (0: none), on top of one
  # horizontal flip per clip (sslax.data.augment.augment_clips).
  c.clip_augment = ml_collections.ConfigDict(dict(crop_scale=(1.0, 1.0), jitter=0.0))
  if arg == "smoke":
    c.model.widths = (8, 16)
    c.global_batch_size = 8
    c.num_steps = 8
    c.log_every = 2
    c.optimizer.warmup_steps = 2
  return c, arg


def get_config(arg: str = "corpus"):
  c, _ = video_config("video_colorization", arg, "configs/video_colorization.py")
  c.video_colorization = ml_collections.ConfigDict(dict(
      references=3, clusters=16, temperature=1.0))
  return c
