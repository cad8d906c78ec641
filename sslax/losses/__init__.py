"""Pure loss functions of arrays: no config, no globals.

Every function takes embeddings (or scores) as arrays and returns a scalar
loss. Functions with an ``axis_name`` argument are meant to be called inside
``jax.shard_map`` on each device's rows of the global batch; they then use the
global batch exactly as the single-device call would.

* ``contrastive``: NT-Xent (SimCLR), MoCo's InfoNCE with a queue, CPC's
  InfoNCE over future codes.
* ``non_contrastive``: BYOL, Barlow Twins, SimSiam, VICReg.
* ``classic``: contrastive pair, triplet (with semi-hard mining), lifted
  structured, N-pair, NCE, InfoNCE with explicit negatives, soft nearest
  neighbour.
* ``reconstruction``: the emphasised squared error of denoising autoencoders.
"""

from sslax.losses.classic import (contrastive_pair_loss, infonce,
                                  lifted_structured_loss, n_pair_loss, nce_loss,
                                  semi_hard_triplet_loss,
                                  soft_nearest_neighbour_loss, triplet_loss)
from sslax.losses.contrastive import cpc_infonce, l2_normalize, moco_infonce, nt_xent
from sslax.losses.non_contrastive import barlow_twins, byol_loss, simsiam_loss, vicreg
from sslax.losses.reconstruction import weighted_reconstruction_loss

__all__ = [
    "barlow_twins", "byol_loss", "contrastive_pair_loss", "cpc_infonce", "infonce",
    "l2_normalize",
    "lifted_structured_loss", "moco_infonce", "n_pair_loss", "nce_loss", "nt_xent",
    "semi_hard_triplet_loss", "simsiam_loss", "soft_nearest_neighbour_loss",
    "triplet_loss", "vicreg", "weighted_reconstruction_loss",
]
