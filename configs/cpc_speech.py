"""Speech CPC (van den Oord et al. 2018, section 3.1) on the local espeak-ng
speaker corpus. Variants: espeak (default), smoke. Build the corpus first:
``sslax data make-speech --out data/espeak_speakers``, then
``sslax train --config configs/cpc_speech.py --workdir runs/cpc_speech``.

The paper's encoder (strides 5, 4, 2, 2, 2; filters 10, 8, 4, 4, 4; one code
per 10 ms at 16 kHz), narrower (128 channels, not 512); a GRU context of 128
(not 256); 12 offsets ahead; windows of 10240 samples (64 codes; the paper
uses 20480) from 2-second clips.
"""

import ml_collections

from sslax.config_base import base_config
from sslax.errors import UserError

VARIANTS = ("espeak", "smoke")


def get_config(arg: str = "espeak"):
  arg = arg or "espeak"
  if arg not in VARIANTS:
    raise UserError(f"configs/cpc_speech.py has no variant {arg!r}; use one of "
                    f"{', '.join(VARIANTS)}")
  c = base_config("cpc")
  del c["head"]
  del c["augment"]
  c.data = ml_collections.ConfigDict(dict(
      name="espeak_speakers", modality="audio", data_dir="data/espeak_speakers",
      crop_length=10240))
  c.model = ml_collections.ConfigDict(dict(
      encoder="waveform", width=128, kernels=(10, 8, 4, 4, 4), strides=(5, 4, 2, 2, 2),
      layer_norm=False))
  c.cpc = ml_collections.ConfigDict(dict(context_dim=128, offsets=tuple(range(1, 13))))
  # Adam as in the paper (2e-4 there, for far longer training).
  c.optimizer.update(name="adamw", learning_rate=2e-3, lr_scaling="none",
                     weight_decay=0.0, warmup_steps=100)
  c.global_batch_size = 32
  c.num_steps = 1000
  c.online_eval_every = 250
  c.eval.update(batch_size=200, online_train_examples=2400, online_test_examples=600,
                tsne_points=600)
  if arg == "smoke":
    c.data.crop_length = 2560
    c.model.width = 16
    c.cpc.update(context_dim=16, offsets=(1, 2, 3))
    c.global_batch_size = 8
    c.num_steps = 6
    c.log_every = 2
    c.checkpoint_every = 3
    c.online_eval_every = 3
    c.optimizer.warmup_steps = 2
    c.eval.update(batch_size=8, online_train_examples=48, online_test_examples=16)
  return c
