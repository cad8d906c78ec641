"""An encoder exported from an 8-device run restores onto 1 device."""

import os
import subprocess
import sys

import jax
import numpy as np

import sslax
from conftest import xla_flags
from sslax.config_loading import apply_overrides, load_config_file
from sslax.data.sources import fashion_mnist
from sslax.export import export_encoder, preprocess
from sslax.train.loop import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LOAD_ON_ONE_DEVICE = """
import sys, jax, numpy as np, sslax
from sslax.data.sources import fashion_mnist
assert jax.device_count() == 1
module, variables, info = sslax.load_encoder(sys.argv[1])
x = sslax.preprocess(fashion_mnist("test").images[:16], info)
np.save(sys.argv[2], np.asarray(module.apply(variables, x, train=False)))
"""


def test_export_from_eight_devices_loads_on_one(tmp_path):
  assert jax.device_count() == 8
  config = apply_overrides(load_config_file(os.path.join(ROOT, "configs", "simclr.py:smoke")),
                           ["progress_bar=False", "num_steps=2"])
  state = train_and_evaluate(config, str(tmp_path / "run"))
  assert len(state.params["encoder"]["Conv_0"]["kernel"].sharding.device_set) == 8
  export_encoder(str(tmp_path / "run"), str(tmp_path / "enc"))
  module, variables, info = sslax.load_encoder(str(tmp_path / "enc"))
  want = np.asarray(module.apply(variables, preprocess(fashion_mnist("test").images[:16], info),
                                 train=False))
  env = dict(os.environ, XLA_FLAGS=xla_flags(1), JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", LOAD_ON_ONE_DEVICE, str(tmp_path / "enc"),
                         str(tmp_path / "feats.npy")], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  np.testing.assert_allclose(np.load(tmp_path / "feats.npy"), want, rtol=1e-6, atol=1e-6)
