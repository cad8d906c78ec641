"""The evaluation registry (sslax/eval/protocols): every entry states what it
needs, and what training suggests next follows from the encoder and whether
the run's evaluation splits are labelled (docs/architecture.md,
"Evaluations")."""

import types

import ml_collections
import pytest

from sslax.data.sources import probe_labels
from sslax.eval import protocols


def _encoder(output="vector", kind="normalize", channels=1):
  return types.SimpleNamespace(output=output, preprocess={"kind": kind},
                               input_shape=(28, 28, channels))


def test_every_entry_states_what_it_needs():
  for name, module in protocols.EVALUATIONS.items():
    for attribute in ("OUTPUT", "LABELS", "HELP", "applies", "add_arguments", "run",
                      "claims", "report_rows"):
      assert hasattr(module, attribute), (name, attribute)


@pytest.mark.parametrize("encoder,labelled,expected", [
    (_encoder(), True, ["linear", "knn", "finetune", "transfer"]),
    (_encoder(channels=3), True, ["linear", "knn", "finetune"]),  # transfer's data is gray
    (_encoder(channels=3), False, []),
    (_encoder(kind="lab_l"), False, ["transfer"]),  # colourisation on the photo corpus
    (_encoder(output="table", kind="token_ids"), False, ["words"]),
    (_encoder(output="dense"), True, ["track", "objects"]),  # their data: the video corpus
])
def test_applicable(encoder, labelled, expected):
  assert protocols.applicable(encoder, labelled) == expected


def test_probe_labels():
  fashion = ml_collections.ConfigDict(dict(name="fashion_mnist", data_dir=None,
                                           image_size=(28, 28)))
  assert probe_labels(fashion)
  # labels that name the photograph a crop came from, not what it shows
  assert not probe_labels(ml_collections.ConfigDict(dict(name="wallpaper_photos")))
  # data that cannot be read is not data to probe on
  assert not probe_labels(ml_collections.ConfigDict(dict(name="arrays",
                                                         data_dir="/nonexistent.npz")))
