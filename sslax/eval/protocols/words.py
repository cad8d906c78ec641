"""Word embeddings: analogies (Mikolov et al. 2013), WordSim-353 and
SimLex-999 Spearman, nearest neighbours (``sslax.eval.words``), of a
``table`` encoder and the vocabulary saved beside it (``vocab.json``). The
evaluation files are ``config.evals.words.data_dir`` (default: gensim's
wheel). No labels needed; ``eval/words.json``."""

import json

import numpy as np

from sslax.errors import UserError

OUTPUT, LABELS = "table", False
HELP = "word analogies, WordSim-353/SimLex-999 and neighbours of a table encoder"
VOCABULARY = "vocab.json"


def applies(definition, probe_labels: bool) -> bool:
  del definition, probe_labels
  return True


def add_arguments(parser):
  parser.add_argument("--encoder", help="which of the run's encoders (default: the primary)")
  parser.add_argument("--data-dir", help="the evaluation files (default: "
                      "config.evals.words.data_dir, else gensim's test data)")


def table(encoder, batch_size=65536) -> np.ndarray:
  """The vectors of every vocabulary id [V, d]: the encoder applied to ids."""
  import jax  # pylint: disable=g-import-not-at-top
  size = int(encoder.definition.network["vocab_size"])
  module = encoder.module
  apply = jax.jit(lambda variables, ids: module.apply(variables, ids, train=False))
  rows = [np.asarray(apply(encoder.variables,
                           np.arange(s, min(s + batch_size, size), dtype=np.int32)))
          for s in range(0, size, batch_size)]
  return np.concatenate(rows).astype(np.float32)


def vocabulary(encoder, workdir) -> list:
  path = (encoder.assets or {}).get(VOCABULARY)
  if path is None or not path.exists():
    raise UserError(f"the table encoder of {workdir} has no {VOCABULARY} beside it; "
                    "train it again with this version of sslax")
  return list(json.loads(path.read_text())["words"])


def run(args, overrides):
  """(The command has checked that the encoder is a table.)"""
  from sslax.eval import words  # pylint: disable=g-import-not-at-top
  from sslax.eval.evaluate import write_eval  # pylint: disable=g-import-not-at-top
  from sslax.train import artifact, checkpoint, run_config  # pylint: disable=g-import-not-at-top
  config = run_config.load_config(args.workdir, overrides, reads_data=False)
  encoder = artifact.restore_encoder(args.workdir, name=args.encoder)
  settings = config.get("evals", {}).get("words", {})
  data_dir = args.data_dir or settings.get("data_dir") or None
  neighbours = tuple(settings.get("neighbours", words.NEIGHBOUR_WORDS))
  result = words.evaluate(vocabulary(encoder, args.workdir), table(encoder),
                          data_dir=data_dir, words=neighbours)
  result.update(encoder=args.encoder or artifact.encoder_names(args.workdir)[0],
                dataset="word similarity and analogy files " + (data_dir or "(gensim's)"),
                step=checkpoint.latest_step(args.workdir))
  write_eval(args.workdir, "words" if not args.encoder else f"words_{args.encoder}", result)
  # (eval/words.json: the primary's; eval/words_<name>.json: --encoder NAME's)
  return result


def claims(file_name) -> bool:
  return file_name == "words.json" or (file_name.startswith("words_") and
                                       file_name.endswith(".json"))


def report_rows(file_name, result):
  del file_name
  which = result.get("encoder", "encoder")
  rows = [(which, "analogy (all sections)", 1.0,
           100 * (result["analogies"]["total"]["accuracy"] or 0.0))]
  for key, title in (("wordsim353", "WordSim-353 rho x100"),
                     ("simlex999", "SimLex-999 rho x100")):
    if result.get(key, {}).get("spearman") is not None:
      rows.append((which, title, 1.0, 100 * result[key]["spearman"]))
  return rows
