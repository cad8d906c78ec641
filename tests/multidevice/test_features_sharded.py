"""On 8 simulated devices, feature extraction split over the data mesh equals
the one-device extraction (also with a batch size 8 does not divide and a
partial last batch), and the SGD linear probe, on fixed or on augmented
features, equals its run on one device. Two processes of 4 devices each, each
feeding its own rows, get the same features and probe as one process."""

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import xla_flags
from sslax.config_loading import load_config_file
from sslax.data.arrays import ArraySource
from sslax.encoder import Encoder, backbone_def
from sslax.eval import features as features_lib
from sslax.probes import linear, sgd, sharded
from sslax.sharding import DATA_AXIS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _one_device_mesh():
  return jax.make_mesh((1,), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=jax.devices()[:1])


@pytest.fixture(scope="module")
def encoder():
  config = load_config_file(os.path.join(ROOT, "configs", "simclr.py:smoke"))
  definition = backbone_def(config)
  x = np.zeros((1, *definition.input_shape), np.float32)
  variables = definition.module().init(jax.random.PRNGKey(0), x, train=False)
  return Encoder(definition, variables)


@pytest.fixture(scope="module")
def source():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(53, 28, 28, 1), dtype=np.uint8)
  return ArraySource(images, (np.arange(53) % 3).astype(np.int32), num_classes=3)


@pytest.mark.parametrize("batch_size", [16, 20])
def test_sharded_extraction_equals_one_device(encoder, source, batch_size):
  assert jax.device_count() == 8
  want = np.asarray(jax.jit(features_lib.encoder_apply(encoder))(
      encoder.variables, source.images))
  feats, labels = features_lib.encode_source(encoder, source, batch_size)
  one, one_labels = features_lib.encode_source(encoder, source, batch_size,
                                               _one_device_mesh())
  assert feats.shape == (53, want.shape[1]) and feats.dtype == np.float32
  np.testing.assert_array_equal(labels, source.labels)
  np.testing.assert_array_equal(one_labels, source.labels)
  np.testing.assert_allclose(feats, want, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(feats, one, rtol=1e-5, atol=1e-5)


def _problem(n=300, dim=6, classes=3):
  rng = np.random.default_rng(1)
  centers = rng.normal(size=(classes, dim)) * 2
  y = (np.arange(n) % classes).astype(np.int32)
  return (centers[y] + rng.normal(size=(n, dim))).astype(np.float32), y


def test_sgd_probe_on_eight_devices_equals_one():
  x, y = _problem()
  idx = np.arange(250)
  stats = linear.feature_statistics(x[idx])
  runs = [sgd.fit_sgd(x, y, idx, stats, num_classes=3, epochs=3, batch_size=36,
                      learning_rate=0.5, weight_decay=1e-3, seed=3, mesh=mesh)
          for mesh in (sharded.eval_mesh(), _one_device_mesh())]
  (p8, loss8, steps8), (p1, loss1, steps1) = runs
  assert steps8 == steps1 == 21  # ceil(3 * 250 / 36), batches of 36 padded to 40
  np.testing.assert_allclose(p8["w"], p1["w"], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(p8["b"], p1["b"], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(loss8, loss1, rtol=1e-4)
  a8, a1 = (sgd.accuracy(p8, stats, x[250:], y[250:], mesh=m, batch_size=30)
            for m in (sharded.eval_mesh(), _one_device_mesh()))
  assert a8 == a1 and a8 > 0.7


def test_augmented_sgd_probe_on_eight_devices_equals_one(encoder, source):
  feats, labels = features_lib.encode_source(encoder, source, 32)
  idx = np.arange(40)
  stats = linear.feature_statistics(feats[idx])
  runs = []
  for mesh in (sharded.eval_mesh(), _one_device_mesh()):
    recompute = sgd.Recompute(read=lambda rows: source.get(rows)["image"],
                              features=features_lib.augmented_features(encoder),
                              variables=encoder.variables, threads=2)
    runs.append(sgd.fit_sgd(feats, labels, idx, stats, num_classes=3, epochs=2,
                            batch_size=12, learning_rate=0.1, seed=0, mesh=mesh,
                            recompute=recompute))
  (p8, loss8, _), (p1, loss1, _) = runs
  np.testing.assert_allclose(p8["w"], p1["w"], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(loss8, loss1, rtol=1e-4)
  assert np.abs(p8["w"]).sum() > 0


TWO_PROCESSES = """
import sys
import jax
import numpy as np
from sslax.sharding import initialize_distributed
initialize_distributed(sys.argv[1], 2, int(sys.argv[2]))
from sslax.config_loading import load_config_file
from sslax.data.arrays import ArraySource
from sslax.encoder import Encoder, backbone_def
from sslax.eval import features as features_lib
from sslax.probes import sgd
assert jax.device_count() == 8 and jax.local_device_count() == 4
definition = backbone_def(load_config_file(sys.argv[3]))
x = np.zeros((1, *definition.input_shape), np.float32)
variables = definition.module().init(jax.random.PRNGKey(0), x, train=False)
encoder = Encoder(definition, variables)
images = np.random.default_rng(0).integers(0, 256, size=(53, 28, 28, 1), dtype=np.uint8)
source = ArraySource(images, (np.arange(53) % 3).astype(np.int32), num_classes=3)
feats, labels = features_lib.encode_source(encoder, source, 20)
result = sgd.sgd_linear_probe(feats, labels, feats, labels, fraction=1.0, num_classes=3,
                              epochs=3, batch_size=12, learning_rate=0.1)
np.savez(sys.argv[4], feats=feats, labels=labels, loss=result["final_loss"],
         top1=result["top1"])
"""


def test_two_processes_feed_their_rows_and_get_everything(tmp_path, encoder, source):
  feats, labels = features_lib.encode_source(encoder, source, 20)
  want = sgd.sgd_linear_probe(feats, labels, feats, labels, fraction=1.0, num_classes=3,
                              epochs=3, batch_size=12, learning_rate=0.1)
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(4))
  procs = [subprocess.Popen(
      [sys.executable, "-c", TWO_PROCESSES, f"127.0.0.1:{port}", str(i),
       os.path.join(ROOT, "configs", "simclr.py:smoke"), str(tmp_path / f"{i}.npz")],
      env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(2)]
  logs = [p.communicate(timeout=300)[0] for p in procs]
  for p, log in zip(procs, logs):
    assert p.returncode == 0, log[-3000:]
  for i in range(2):  # every process holds every feature
    got = np.load(tmp_path / f"{i}.npz")
    np.testing.assert_allclose(got["feats"], feats, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got["labels"], labels)
    np.testing.assert_allclose(got["loss"], want["final_loss"], rtol=1e-4)
    assert float(got["top1"]) == want["top1"]
