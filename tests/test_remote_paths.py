"""`sslax report`, `viz` and `export` on a gs:// workdir read and write through
etils.epath, never a local directory named ``gs:``.

Without TensorFlow, epath hands gs:// paths to fsspec's "gcs" filesystem
(gcsfs, the `gcp` extra). Here that protocol is served by an in-memory fsspec
filesystem with GCS's semantics (flat object names, no empty directories), so
the real epath and fsspec code paths run without a network. What goes past
epath cannot reach it: Orbax asks google-cloud-storage about the bucket and
TensorStore has its own GCS driver. So the checkpoint reads of `viz` come from
the local run the bucket was copied from, and export's Orbax save and restore
go to a local mirror of the bucket; every other file is in the fake bucket.
"""

import json
import os
import types

import fsspec
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from etils import epath
from etils.epath import backend as epath_backend
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.registry import _registry as fsspec_registry

import sslax
from conftest import ROOT
from sslax import cli, export
from sslax.config_loading import apply_overrides, load_config_file
from sslax.errors import UserError
from sslax.eval import report, viz
from sslax.train import artifact, run_config
from sslax.train.loop import train_and_evaluate

RUN = "gs://bucket/runs/smoke"


class FakeGCS(MemoryFileSystem):
  """Objects in memory, named ``bucket/key``; directories exist only through
  the objects under them, as on GCS."""

  protocol = ("gs", "gcs")
  root_marker = ""
  store = {}
  pseudo_dirs = [""]

  @classmethod
  def _strip_protocol(cls, path):
    path = fsspec.utils.stringify_path(path)
    for prefix in ("gs://", "gcs://"):
      path = path.removeprefix(prefix)
    return path.strip("/")

  def mkdir(self, path, create_parents=True, **kwargs):
    del path, create_parents, kwargs  # no directory objects

  def makedirs(self, path, exist_ok=False):
    del path, exist_ok


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
  """A 2-step smoke run with two (made-up) eval results."""
  workdir = tmp_path_factory.mktemp("run")
  config = apply_overrides(load_config_file(os.path.join(ROOT, "configs", "simclr.py:smoke")),
                           ["progress_bar=False", "num_steps=2", "checkpoint_every=2",
                            "log_every=1", "online_eval_every=0"])
  train_and_evaluate(config, str(workdir))
  (workdir / "eval").mkdir()
  (workdir / "eval" / "linear_0.1.json").write_text(json.dumps({"top1": 0.5}))
  (workdir / "eval" / "knn.json").write_text(json.dumps({"top1_k20": 0.625}))
  (workdir / "eval" / "labels_0.1_seed0.json").write_text("{}")
  return workdir


@pytest.fixture
def gcs(monkeypatch, tmp_path):
  """gs:// served by FakeGCS; the test runs in an empty working directory."""
  FakeGCS.store.clear()
  for protocol in FakeGCS.protocol:
    monkeypatch.setitem(fsspec_registry, protocol, FakeGCS)
  FakeGCS.clear_instance_cache()
  # epath caches its fsspec filesystems; drop the real gcsfs one, if made.
  epath_backend.fsspec_backend._get_filesystem.cache_clear()  # pylint: disable=protected-access
  monkeypatch.chdir(tmp_path)
  yield FakeGCS.store
  epath_backend.fsspec_backend._get_filesystem.cache_clear()  # pylint: disable=protected-access
  FakeGCS.clear_instance_cache()
  assert os.listdir(tmp_path) == [], "a gs:// path was written as a local path"


def _upload(local_dir, url):
  for root, _, files in os.walk(local_dir):
    for name in files:
      rel = os.path.relpath(os.path.join(root, name), local_dir)
      with open(os.path.join(root, name), "rb") as f:
        (epath.Path(url) / rel).write_bytes(f.read())


def test_fake_bucket_is_not_local(gcs, local_run):
  _upload(local_run, RUN)
  assert f"{RUN[5:]}/config.json" in gcs
  assert epath.Path(RUN, "eval").is_dir() and not epath.Path(RUN, "nothing").exists()
  assert run_config.load_config(RUN).method == "simclr"


def test_report_of_a_gs_run(gcs, local_run, capsys):
  _upload(local_run, RUN)
  # (results written without their dataset and step: the run's data, "?")
  assert report.collect(RUN) == [
      (RUN, "simclr", "fashion_mnist", "?", "encoder", "kNN k=20", 1.0, 62.5),
      (RUN, "simclr", "fashion_mnist", "?", "encoder", "linear", 0.1, 50.0)]
  cli.main(["report", RUN])
  table = capsys.readouterr().out.strip().splitlines()
  assert f"| {RUN} | simclr | fashion_mnist | ? | encoder | linear | 0.1 | 50.00 |" in table
  with pytest.raises(UserError, match="is not a workdir"):
    report.collect("gs://bucket/runs/missing")


def test_viz_writes_to_the_bucket(gcs, local_run, monkeypatch):
  _upload(local_run, RUN)
  real_features = viz.features_lib.features

  def features(config, kind, workdir, purpose):
    assert workdir == RUN
    return real_features(config, kind, str(local_run), purpose)

  monkeypatch.setattr(viz.features_lib, "features", features)
  # (the figures' titles name the step: of the local mirror, as above)
  real_latest = viz.checkpoint.latest_step
  monkeypatch.setattr(viz.checkpoint, "latest_step",
                      lambda workdir: real_latest(str(local_run) if workdir == RUN else workdir))
  paths = viz.visualize(RUN, overrides=["eval.tsne_points=100"])
  assert paths == [f"{RUN}/viz/{name}.png" for name in ("tsne", "retrieval", "curves")]
  for path in paths:
    assert epath.Path(path).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
  assert not (local_run / "viz").exists()


class _MirroredCheckpointer:
  """Orbax's StandardCheckpointer with gs:// paths mapped into a local mirror
  (TensorStore would reach GCS itself); records the paths it was given."""

  def __init__(self, mirror, calls):
    self._real = ocp.StandardCheckpointer()
    self._mirror, self._calls = mirror, calls

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self._real.close()

  def _local(self, path):
    self._calls.append(os.fspath(path))
    return self._mirror / os.fspath(path).removeprefix("gs://")

  def save(self, path, tree):
    self._real.save(self._local(path), tree)

  def restore(self, path, target):
    return self._real.restore(self._local(path), target)


def test_export_to_the_bucket(gcs, local_run, monkeypatch, tmp_path_factory):
  mirror, calls = tmp_path_factory.mktemp("mirror"), []
  monkeypatch.setattr(export, "ocp", types.SimpleNamespace(
      StandardCheckpointer=lambda: _MirroredCheckpointer(mirror, calls)))
  out = "gs://bucket/exports/encoder"
  info = export.export_encoder(str(local_run), out)
  # the primary, and the ConvNet's map before pooling (``feature_map``)
  assert calls == [f"{out}/variables", f"{out}/encoders/feature_map/variables"]
  saved = json.loads(epath.Path(out, "encoder.json").read_text())
  assert saved["step"] == info["step"] == 2 and saved["method"] == "simclr"
  with pytest.raises(UserError, match="already exists"):
    export.export_encoder(str(local_run), out)

  _, variables, loaded = sslax.load_encoder(out)
  assert calls[-1] == f"{out}/variables" and loaded == saved
  trained = artifact.restore_encoder(str(local_run)).variables
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(variables),
               jax.device_get(trained))
  with pytest.raises(UserError, match="is not an exported encoder"):
    sslax.load_encoder("gs://bucket/exports/missing")
