"""The evaluations of ``sslax eval``, one module each, listed explicitly.

Each module says what it evaluates: ``OUTPUT``, the encoder output kind it
needs (``vector``, ``table``, ...; ``sslax.encoder.OUTPUT_KINDS``), and
``LABELS``, whether it needs labelled data (``OUTPUT`` None: any encoder); ``applies(definition,
probe_labels)``, whether it fits an encoder of a run whose evaluation splits
are labelled or not (what training suggests next); its ``add_arguments(parser)``
and ``run(args, overrides) -> dict`` (which writes ``WORKDIR/eval/*.json``);
``claims(file_name)``, whether an eval file is one of its results, and
``report_rows(file_name, result)``: its rows in ``sslax report``
(features, protocol, label fraction, figure). Optional: ``pictures(workdir,
config, out, title, seed) -> [paths]``, what ``sslax viz`` draws for it with
the run's primary encoder when it applies (``out(file name)``: the path
under ``WORKDIR/viz``; ``title`` heads every figure), e.g. tracking's
propagated masks. A new evaluation is one module here and one line below;
none names a method.
"""

from sslax.errors import UserError
from sslax.eval.protocols import (finetune, knn, linear, objects, pretext, track, transfer,
                                   words)

EVALUATIONS = {
    "linear": linear,
    "knn": knn,
    "finetune": finetune,
    "transfer": transfer,
    "words": words,
    "track": track,
    "objects": objects,
    "pretext": pretext,
}


def for_output(output: str) -> list:
  """The evaluations that apply to an encoder of output kind ``output``."""
  return [name for name, e in EVALUATIONS.items() if e.OUTPUT in (None, output)]


def applicable(definition, probe_labels: bool) -> list:
  """The evaluations that fit the encoder ``definition`` of a run whose
  evaluation splits are labelled (``probe_labels``) or not."""
  return [name for name in for_output(definition.output)
          if EVALUATIONS[name].applies(definition, probe_labels)]


def check_encoder(name: str, workdir: str, encoder=None, *, can_pick: bool = False):
  """One line when evaluation ``name`` does not apply to the workdir's encoder
  ``encoder`` (default: the primary): its output is of another kind
  (``can_pick``: the evaluation takes ``--encoder``, which the line names)."""
  from sslax.train import artifact  # pylint: disable=g-import-not-at-top
  if encoder is None and not artifact.encoder_names(workdir):
    return None  # no trained run here: the evaluation says so in its own words
  definition, _ = artifact.read_encoder_definition(workdir, encoder)
  want = EVALUATIONS[name].OUTPUT
  if want is not None and definition.output != want:
    which = f"encoder {encoder!r}" if encoder else "the primary encoder"
    fits = ", ".join(for_output(definition.output)) or "none yet"
    others = [n for n in artifact.encoder_names(workdir) if can_pick and
              artifact.read_encoder_definition(workdir, n)[0].output == want]
    if others:
      raise UserError(f"`sslax eval {name}` needs a {want} encoder but {which} of "
                      f"{workdir} gives a {definition.output}; add --encoder "
                      f"{' or --encoder '.join(others)}")
    raise UserError(f"`sslax eval {name}` needs a {want} encoder but {which} of "
                    f"{workdir} gives a {definition.output}; evaluate it with: {fits} "
                    f"(the run's encoders: {', '.join(artifact.encoder_names(workdir))})")
  return definition
