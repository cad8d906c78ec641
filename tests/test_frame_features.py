"""Still-image methods beside the video methods: the video corpus' frames as
a source of unlabelled images (``video_frames``), a ConvNet run's
``feature_map`` encoder (its last map before pooling, a ``dense`` encoder over
the same variables), and `sslax eval track --encoder` picking it."""

import json
import os

import jax
import numpy as np
import pytest

from conftest import ROOT, fails_cleanly
from sslax import cli
from sslax.config_loading import load_config_file
from sslax.data import video_corpus
from sslax.data.sources import get_source
from sslax.encoder import Encoder, embed_fn
from sslax.methods import build_method


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  out = tmp_path_factory.mktemp("video") / "corpus"
  video_corpus.make_corpus(str(out), clips=(4, 2), frames=4, size=64, log=lambda line: None)
  return str(out)


def test_frames_are_the_clips_frames_in_order_unlabelled(corpus):
  clips = video_corpus.load_split(corpus, "test").arrays["clip"]
  config = load_config_file(os.path.join(ROOT, "configs", "simclr.py:video_frames"))
  config.data.data_dir = corpus
  frames = get_source(config.data, "test")
  assert frames.element_spec == {"image": ((64, 64, 3), "uint8")}
  assert len(frames) == 2 * 4
  got = frames.get([0, 3, 5])["image"]
  for row, (clip, t) in zip(got, [(0, 0), (0, 3), (1, 1)]):
    np.testing.assert_array_equal(row, clips[clip, t])


@pytest.mark.parametrize("name", ["simclr", "barlow_twins"])
def test_the_feature_map_averaged_is_the_primary_encoders_vector(name):
  config = load_config_file(os.path.join(ROOT, "configs", f"{name}.py:smoke"))
  method = build_method(config)
  primary, dense = method.encoders["encoder"], method.encoders["feature_map"]
  assert (primary.output, dense.output) == ("vector", "dense")
  assert dense.selection == primary.selection and dense.preprocess == primary.preprocess
  variables = primary.module().init(jax.random.key(1),
                                    np.zeros((1, *primary.input_shape), np.float32))
  images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1)).astype(np.uint8)
  vector = np.asarray(embed_fn(primary)(variables, images))
  maps = np.asarray(Encoder(dense, variables)(images))
  assert maps.shape == (3, 7, 7, 16)  # two stride-2 stages of (8, 16)
  np.testing.assert_allclose(maps.mean(axis=(1, 2)), vector, rtol=1e-5, atol=1e-6)
  # a ResNet, or a ConvNet that is a map already, has none
  for model in ({"encoder": "resnet18"}, {"pool": "map"}):
    config.model.update(model)
    assert "feature_map" not in build_method(config).encoders


@pytest.mark.slow
def test_eval_track_and_objects_take_the_feature_map_encoder(corpus, tmp_path, capsys):
  workdir = str(tmp_path / "run")
  cli.run(["train", "--config", os.path.join(ROOT, "configs", "simclr.py:video_frames"),
           "--workdir", workdir, f"--config.data.data_dir={corpus}",
           "--config.model.widths=(8, 16)", "--config.head.hidden_dim=16",
           "--config.head.output_dim=8", "--config.global_batch_size=8",
           "--config.num_steps=2", "--config.progress_bar=False"])
  data = f"--config.evals.track.data.data_dir={corpus}"
  fails_cleanly(capsys, ["eval", "track", "--workdir", workdir, data],
                "gives a vector; add --encoder feature_map")
  cli.run(["eval", "track", "--workdir", workdir, "--encoder", "feature_map", data])
  with open(os.path.join(workdir, "eval", "track.json")) as f:
    result = json.load(f)
  assert result["encoder"] == "feature_map" and result["clips"] == 2
  assert 0 <= result["J"] <= 100 and 0 <= result["PCK@0.2"] <= 100
  # --clips beyond the test split's: the clips scored are recorded
  cli.run(["eval", "track", "--workdir", workdir, "--encoder", "feature_map", "--features",
           "copy", "--clips", "50", data])
  with open(os.path.join(workdir, "eval", "track_copy.json")) as f:
    assert json.load(f)["clips"] == 2
  cli.run(["eval", "objects", "--workdir", workdir, "--encoder", "feature_map",
           "--frames", "2", "--min-pixels", "4",
           f"--config.evals.objects.data.data_dir={corpus}"])
  with open(os.path.join(workdir, "eval", "objects.json")) as f:
    assert json.load(f)["encoder"] == "feature_map"
