"""Self-supervised methods, one module each, listed explicitly by name."""

from sslax.errors import UserError
from sslax.methods import barlow_twins, byol, cpc, moco, simclr
from sslax.methods import context_encoder, denoising_ae
from sslax.methods import exemplar, jigsaw, relative_patch, rotation
from sslax.methods import colorization, split_brain
from sslax.methods import supervised
from sslax.methods import simsiam, vicreg
from sslax.methods import arrow_of_time, shuffle_and_learn, video_colorization, word2vec
from sslax.methods.base import Method

METHODS = {
    "simclr": simclr,
    "moco_v1": moco,
    "moco_v2": moco,
    "byol": byol,
    "barlow_twins": barlow_twins,
    "vicreg": vicreg,
    "simsiam": simsiam,
    "cpc": cpc,
    "denoising_ae": denoising_ae,
    "context_encoder": context_encoder,
    "rotation": rotation,
    "relative_patch": relative_patch,
    "jigsaw": jigsaw,
    "exemplar": exemplar,
    "colorization": colorization,
    "split_brain": split_brain,
    "supervised": supervised,
    "word2vec": word2vec,
    "video_colorization": video_colorization,
    "shuffle_and_learn": shuffle_and_learn,
    "arrow_of_time": arrow_of_time,
}


def build_method(config) -> Method:
  if config.method not in METHODS:
    raise UserError(f"unknown method {config.method!r}; use one of {sorted(METHODS)}")
  return METHODS[config.method].build(config)
