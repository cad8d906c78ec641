"""Users' mistakes: one line naming the fix, exit status 2, no traceback,
nothing already saved touched."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT, fails_cleanly, xla_flags
from sslax import cli

SMOKE = os.path.join(ROOT, "configs", "simclr.py:smoke")


def _snapshot(directory):
  out = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      st = os.stat(path)
      out[os.path.relpath(path, directory)] = (st.st_size, st.st_mtime_ns)
  return out


@pytest.mark.parametrize("override,match", [
    ("--config.no_such_key=1", "unknown config key 'no_such_key'"),
    ("--config.optimizer.no_such_key=1", "optimizer has keys"),
    ("--config.num_steps=many", "num_steps"),
    ("--config.data.name=no_such_dataset_xyz", "no_such_dataset_xyz"),
    ("--config.data.data_dir=/nonexistent/fmnist", "apt-get install dataset-fashion-mnist"),
    ("--config.model.encoder=resnet9000", "config.model.encoder"),
    ("--config.optimizer.name=adagrad9", "config.optimizer.name"),
])
def test_bad_train_config(tmp_path, capsys, override, match):
  workdir = tmp_path / "run"
  fails_cleanly(capsys, ["train", "--config", SMOKE, "--workdir", str(workdir),
                          override], match)
  assert not (workdir / "checkpoints").exists()


def test_tfds_on_gcs_without_gcsfs_names_it(tmp_path, capsys):
  import importlib.util  # pylint: disable=g-import-not-at-top
  if importlib.util.find_spec("gcsfs") is not None:
    pytest.skip("gcsfs is installed here")
  fails_cleanly(capsys, [
      "train", "--config", SMOKE, "--workdir", str(tmp_path / "run"),
      "--config.data.name=cifar10", "--config.data.data_dir=gs://no-bucket/tfds"],
      "needs gcsfs")
  assert not (tmp_path / "run").exists()


def test_unprepared_tfds_dataset_is_not_downloaded(tmp_path, capsys):
  err = fails_cleanly(capsys, [
      "train", "--config", SMOKE, "--workdir", str(tmp_path / "run"),
      "--config.data.name=cifar10", f"--config.data.data_dir={tmp_path / 'tfds'}"],
      "tfds build cifar10")
  assert "not prepared" in err
  assert not (tmp_path / "tfds" / "cifar10").exists()


@pytest.mark.parametrize("spec,match", [
    ("configs/no_such_method.py", "not found"),
    (os.path.join(ROOT, "configs", "simclr.py:no_such_variant"), "no variant"),
])
def test_bad_config_file(tmp_path, capsys, spec, match):
  fails_cleanly(capsys, ["train", "--config", spec, "--workdir", str(tmp_path)], match)


def test_unknown_command(capsys):
  fails_cleanly(capsys, ["tran"], "invalid choice")


@pytest.mark.parametrize("fraction", ["0", "1.5", "-0.01"])
def test_label_fraction_outside_unit_interval(tmp_path, capsys, fraction):
  fails_cleanly(capsys, ["eval", "linear", "--workdir", str(tmp_path),
                          "--label-fraction", fraction], "outside (0, 1]")


def test_eval_without_a_run(tmp_path, capsys):
  fails_cleanly(capsys, ["eval", "linear", "--workdir", str(tmp_path)], "train")


def test_workdir_of_a_different_config_is_left_untouched(tmp_path, capsys):
  workdir = str(tmp_path / "run")
  cli.main(["train", "--config", SMOKE, "--workdir", workdir, "--config.num_steps=2",
            "--config.checkpoint_every=2", "--config.progress_bar=False"])
  before = _snapshot(workdir)
  assert any(k.startswith("checkpoints") for k in before)
  fails_cleanly(capsys, ["train", "--config", SMOKE, "--workdir", workdir,
                          "--config.num_steps=2", "--config.seed=5"],
                 "different config (differs in seed); resume with --config.seed=0, or")
  assert _snapshot(workdir) == before
  # Run-control keys may change: the same config resumes (and is already done).
  cli.main(["train", "--config", SMOKE, "--workdir", workdir, "--config.num_steps=2",
            "--config.checkpoint_every=2", "--config.log_every=1",
            "--config.progress_bar=False"])


def test_batch_not_divisible_by_devices_from_the_real_command(tmp_path):
  env = dict(os.environ, XLA_FLAGS=xla_flags(8),
             JAX_PLATFORMS="cpu")
  proc = subprocess.run(
      [sys.executable, "-m", "sslax", "train", "--config", SMOKE, "--workdir",
       str(tmp_path / "run"), "--config.global_batch_size=12"],
      env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2
  assert "Traceback" not in proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.startswith("sslax: error")]
  assert len(lines) == 1 and "multiple of 8" in lines[0], proc.stderr


@pytest.mark.parametrize("override,match", [
    ("--config.log_every=0", "log_every must be positive"),
    ("--config.data.mean=(0.5, 0.5, 0.5)", "3 values but fashion_mnist images have 1"),
    ("--config.model.pool=max", "config.model.pool"),
    ("--config.head.kind=deep", "config.head.kind"),
    ("--config.simclr.temperature=0.0", "temperature must be positive"),
])
def test_bad_config_values(tmp_path, capsys, override, match):
  fails_cleanly(capsys, ["train", "--config", SMOKE, "--workdir", str(tmp_path / "r"),
                          override], match)


def test_a_channel_mismatch_names_overrides_that_fix_it(tmp_path, capsys):
  from sslax.config_loading import apply_overrides, load_config_file
  from sslax.data.modality import image
  from sslax.data.sources import split_source
  line = fails_cleanly(capsys, ["train", "--config", SMOKE, "--workdir",
                                str(tmp_path / "r"), "--config.data.mean=(0.5, 0.5, 0.5)"],
                       "3 values but fashion_mnist images have 1 channels; set")
  fix = [word[len("--config."):] for word in line.split() if word.startswith("--config.")]
  assert [f.partition("=")[0] for f in fix] == ["data.mean", "data.std"]
  config = apply_overrides(load_config_file(SMOKE), ["data.mean=(0.5, 0.5, 0.5)", *fix])
  image.check_config(config, split_source(config.data, "train_split"))  # passes


@pytest.mark.parametrize("config,override,match", [
    ("moco_v2", "--config.moco.queue_size=100", "multiple of the global batch"),
    ("moco_v1", "--config.moco.bn_groups=5", "must divide the global batch"),
    ("moco_v1", "--config.optimizer.schedule=exponential", "cosine or step"),
    ("byol", "--config.byol.tau_base=1.5", "tau_base must be in [0, 1]"),
    ("byol", "--config.predictor.kind=deep", "config.predictor.kind"),
    ("barlow_twins", "--config.barlow_twins.lambd=-1.0", "lambd must be >= 0"),
])
def test_bad_method_config_values(tmp_path, capsys, config, override, match):
  spec = os.path.join(ROOT, "configs", f"{config}.py:smoke")
  fails_cleanly(capsys, ["train", "--config", spec, "--workdir", str(tmp_path / "r"),
                          override], match)
  assert not (tmp_path / "r" / "checkpoints").exists()


@pytest.mark.parametrize("argv,match", [
    (["eval", "finetune", "--label-fraction", "1.5"], "outside (0, 1]"),
    (["eval", "finetune", "--init", "raw_pixels"], "encoder or random_init"),
    (["eval", "finetune", "--epochs", "0"], "--epochs must be positive"),
    (["viz"], "train"),
    (["eval", "knn"], "train"),
])
def test_bad_eval_requests(tmp_path, capsys, argv, match):
  fails_cleanly(capsys, argv + ["--workdir", str(tmp_path)], match)


def test_incomplete_distributed_flags(tmp_path, capsys):
  fails_cleanly(capsys, ["train", "--config", SMOKE, "--workdir", str(tmp_path),
                          "--coordinator", "127.0.0.1:1234"], "go together")


def test_data_of_another_modality_names_the_modality_that_fits():
  import numpy as np
  from sslax.config_loading import apply_overrides, load_config_file
  from sslax.data import modality
  from sslax.data.source import ArraySource
  from sslax.errors import UserError
  waveforms = ArraySource(arrays={"audio": np.zeros((4, 100), np.float32)})
  config = load_config_file(SMOKE)
  with pytest.raises(UserError, match=r"modality is image but .* examples have audio; "
                                      r"set --config.data.modality=audio$"):
    modality.check_config(config, waveforms)
  modality.check_config(apply_overrides(config, ["data.modality=audio"]), waveforms)
  tokens = ArraySource(arrays={"centre": np.zeros((4,), np.int32)})
  with pytest.raises(UserError, match="set --config.data.modality=text$"):
    modality.check_config(config, tokens)
