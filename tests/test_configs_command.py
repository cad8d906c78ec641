"""`sslax configs`: every config file with its variants, each of which loads,
and one config's every key, each of which `--config.KEY=VALUE` takes."""

import os

from conftest import ROOT, fails_cleanly
from sslax import cli, config_loading
from sslax.config_base import VARIANTS


def test_every_config_file_is_listed_with_variants_that_load(capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  cli.main(["configs"])
  lines = capsys.readouterr().out.strip().splitlines()
  files = sorted(f for f in os.listdir(os.path.join(ROOT, "configs")) if f.endswith(".py"))
  assert [line.split()[0] for line in lines[:-1]] == [f"configs/{f}" for f in files]
  assert lines[-1].startswith("Train one: sslax train --config")
  by_file = {os.path.basename(p): (line, variants) for p, line, variants in
             config_loading.config_files(os.path.join(ROOT, "configs"), VARIANTS)}
  assert by_file["simclr.py"][0] == "SimCLR (Chen et al. 2020)"
  assert by_file["word2vec.py"][1] == ["text", "cbow", "smoke"]
  assert by_file["colorization.py"][1][0] == "photos"  # the default first
  for name, (_, variants) in by_file.items():
    for variant in variants:
      config = config_loading.load_config_file(os.path.join(ROOT, "configs",
                                                            f"{name}:{variant}"))
      assert config.method, (name, variant)


def test_one_config_prints_every_key_as_an_override_takes_it(capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  cli.main(["configs", "simclr:smoke"])
  lines = capsys.readouterr().out.strip().splitlines()
  rows = dict(line.split(" = ", 1) for line in lines)
  config = config_loading.load_config_file(os.path.join(ROOT, "configs", "simclr.py:smoke"))
  assert rows["num_steps"] == repr(config.num_steps) and "data.image_size" in rows
  assert len(rows) == len(config_loading.flatten(config))
  # Each printed key and value, given back as an override, is accepted as is.
  again = config_loading.apply_overrides(config, [f"{k}={v}" for k, v in rows.items()
                                                  if not v.startswith("'")])
  assert again.to_dict() == config.to_dict()
  fails_cleanly(capsys, ["configs", "nope"], "no config 'nope'; the configs are")
  fails_cleanly(capsys, ["configs", "simclr:nope"], "simclr has no variant 'nope'")
