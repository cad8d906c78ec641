"""The ``sslax`` command.

  sslax train --config configs/simclr.py:fashion_mnist --workdir DIR [--config.key=value ...]
              [--distributed | --coordinator HOST:PORT --num-processes N --process-id I]
  sslax eval linear --workdir DIR [--label-fraction F] [--features encoder|random_init|raw_pixels|mfcc]
  sslax eval knn --workdir DIR [--temperature T] [--features ...]
  sslax eval transfer --workdir DIR [--label-fraction F] [--features encoder|random_init]
  sslax eval finetune --workdir DIR [--label-fraction F] [--init encoder|random_init] [--epochs E]
  sslax eval words --workdir DIR [--encoder NAME] [--data-dir DIR]
  sslax export --workdir DIR --out PATH [--encoder NAME]
  sslax embed --from DIR --images FOLDER|X.npy --out FEATURES.npy [--encoder NAME] [--batch-size B]
  sslax viz --workdir DIR [--map tsne|umap]
  sslax configs [NAME[:VARIANT]]
  sslax report RUN_DIR [RUN_DIR ...]
  sslax data make-speech --out DIR [--speakers N] [--train-per-speaker N]
                         [--test-per-speaker N] [--words FILE] [--seed S]
  sslax data make-photos --out DIR [--size 32] [--crops-per-image N] [--seed S]
  sslax data make-video --out DIR [--train-clips N] [--test-clips N] [--frames T] [--size S]
  sslax data make-text --out DIR
  sslax data make-tfds --from image_folder|arrays --data-dir DIR --name NAME --out TFDS_DIR
                       [--size S] [--splits train,test] [--channels C] [--encoding png|jpeg]

Every command that reads a config (train, and eval, export and viz, which read
the workdir's) takes ``--config.key=value`` overrides, e.g.
``--config.data.data_dir=DIR`` where the data moved or ``--config.eval.batch_size=N``.
Mistakes (unknown config keys, missing data, bad fractions...) print one line
and exit with status 2. A training run whose loss, gradient norm or state
become non-finite (NaN or inf) stops at the first logged or checkpointed step
that shows it, with one line naming the step, and exits with status 3; it saves
nothing non-finite, so its last checkpoints are finite. ``eval`` and ``export``
refuse a checkpoint with non-finite encoder parameters (one line, status 2).
SIGTERM or Ctrl-C stops ``train`` at the next step boundary after saving that
step, with one line saying how to resume: status 0 for SIGTERM, 130 for SIGINT.
A checkpoint that fails to read is moved into WORKDIR/damaged_checkpoints and
the next older one resumes; a second run on a workdir, a full disk, a
read-only or unwritable workdir print one line and exit with status 2.
"""

import argparse
import json
import os
import shlex
import sys

from sslax import logs
from sslax.errors import UserError, exit_on_user_error


class _Parser(argparse.ArgumentParser):
  """argparse that reports usage mistakes as UserError (one line, status 2)."""

  def error(self, message):
    raise UserError(f"{self.prog}: {message}")


def _split_config_overrides(argv):
  rest, overrides = [], []
  for arg in argv:
    if arg.startswith("--config."):
      overrides.append(arg[len("--config."):])
    else:
      rest.append(arg)
  return rest, overrides


def build_parser():
  parser = _Parser(prog="sslax", description="Self-supervised learning in JAX.")
  sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

  train = sub.add_parser(
      "train", help="train a method (resumes from WORKDIR)",
      epilog="Any config key can be set as --config.KEY=VALUE (Python literals: "
      "--config.num_steps=200 --config.data.image_size=32,32 "
      "--config.data.data_dir=DIR); `sslax configs NAME:VARIANT` lists every key "
      "with its value.")
  train.add_argument("--config", required=True,
                     help="config file and variant, e.g. configs/simclr.py:fashion_mnist")
  train.add_argument("--workdir", required=True)
  train.add_argument("--extend-to", type=int, metavar="N",
                     help="continue the workdir's run (finished or not) to N steps; its "
                     "learning-rate schedule keeps its length, then follows "
                     "config.optimizer.extend (tail: a new cosine from tail_peak x the "
                     "peak; hold: the end value)")
  train.add_argument("--distributed", action="store_true",
                     help="call jax.distributed.initialize() (TPU pods detect the rest)")
  train.add_argument("--coordinator", help="host:port of process 0 (multi-process)")
  train.add_argument("--num-processes", type=int)
  train.add_argument("--process-id", type=int)

  configs = sub.add_parser("configs", help="list the config files and their variants, or "
                           "print one's every key (what --config.KEY=VALUE takes)")
  configs.add_argument("name", nargs="?", metavar="NAME[:VARIANT]",
                       help="e.g. simclr, simclr:cifar10 or configs/simclr.py:smoke")

  export = sub.add_parser("export", help="write the encoder for downstream use")
  export.add_argument("--workdir", required=True)
  export.add_argument("--out", required=True)
  export.add_argument("--encoder", help="one of the run's encoders (default: all of "
                      "them, the primary at --out)")

  embed = sub.add_parser("embed", help="features of your images with a trained encoder: "
                         "FEATURES.npy, and FEATURES.txt naming each row's file")
  embed.add_argument("--from", dest="path", required=True,
                     help="an exported encoder (sslax export --out) or a workdir")
  embed.add_argument("--images", required=True,
                     help="a folder of images (any sizes) or a .npy array [n, H, W, C]")
  embed.add_argument("--out", required=True, help="the .npy file to write")
  embed.add_argument("--encoder", help="which of its encoders (default: the primary)")
  embed.add_argument("--batch-size", type=int, default=256)

  viz = sub.add_parser("viz", help="pictures (WORKDIR/viz): t-SNE of test features, "
                       "retrieval grid, training curves; a dense encoder's tracking "
                       "(strips, GIFs, attention); the method's own")
  viz.add_argument("--workdir", required=True)
  viz.add_argument("--map", default="tsne", choices=("tsne", "umap"),
                   help="the 2-D map of test features: t-SNE (default) or UMAP "
                   "(the umap extra)")

  report = sub.add_parser("report", help="one Markdown table of several runs' evals")
  report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")

  data = sub.add_parser("data", help="build local datasets")
  data_sub = data.add_subparsers(dest="dataset", required=True, parser_class=_Parser)
  speech = data_sub.add_parser("make-speech", help="synthesise the espeak-ng speaker "
                               "corpus for configs/cpc_speech.py")
  speech.add_argument("--out", required=True)
  speech.add_argument("--speakers", type=int, default=24)
  speech.add_argument("--train-per-speaker", type=int, default=100)
  speech.add_argument("--test-per-speaker", type=int, default=25)
  speech.add_argument("--words", help="file of words, whitespace-separated "
                      "(default: a built-in list of 150)")
  speech.add_argument("--seed", type=int, default=0)
  photos = data_sub.add_parser("make-photos", help="cut the wallpaper photo corpus "
                               "for configs/colorization.py and configs/split_brain.py")
  photos.add_argument("--out", required=True)
  photos.add_argument("--size", type=int, default=32, help="crop side in pixels")
  photos.add_argument("--crops-per-image", type=int, default=1000)
  photos.add_argument("--seed", type=int, default=0)
  video = data_sub.add_parser("make-video", help="render the synthetic video corpus "
                              "(garments over panning photographs, with masks and "
                              "keypoints) for the video methods and `sslax eval track`")
  video.add_argument("--out", required=True)
  video.add_argument("--train-clips", type=int, default=800)
  video.add_argument("--test-clips", type=int, default=100)
  video.add_argument("--frames", type=int, default=16)
  video.add_argument("--size", type=int, default=64, help="frame side in pixels")
  video.add_argument("--objects", type=int, default=3, help="garments per clip")
  video.add_argument("--seed", type=int, default=0)
  make_tfds = data_sub.add_parser("make-tfds", help="write an image folder or "
                                  ".npz/.npy arrays as a TFDS dataset in the "
                                  "array_record format (no TensorFlow needed)")
  make_tfds.add_argument("--from", dest="kind", required=True,
                         choices=("image_folder", "arrays"))
  make_tfds.add_argument("--data-dir", required=True, help="the folder or arrays to read")
  make_tfds.add_argument("--name", required=True, help="the TFDS name, e.g. my_photos")
  make_tfds.add_argument("--out", required=True, help="the TFDS data_dir to write into")
  make_tfds.add_argument("--size", type=int, default=0,
                         help="image folder: side the images are scaled and cropped to")
  make_tfds.add_argument("--splits", help="comma-separated (default: train, and "
                         "test where the data has it)")
  make_tfds.add_argument("--channels", type=int, default=0,
                         help="image folder: 0 as the images are, 1 gray, 3 RGB")
  make_tfds.add_argument("--encoding", default="png", choices=("png", "jpeg"))
  text = data_sub.add_parser("make-text", help="build the English text corpus of "
                             "configs/word2vec.py from installed Debian packages")
  text.add_argument("--out", required=True)
  text.add_argument("--seed", type=int, default=0)

  ev = sub.add_parser("eval", help="evaluate a trained workdir")
  ev_sub = ev.add_subparsers(dest="protocol", required=True, parser_class=_Parser)
  from sslax.eval.protocols import EVALUATIONS  # pylint: disable=g-import-not-at-top
  for name, evaluation in EVALUATIONS.items():
    one = ev_sub.add_parser(name, help=evaluation.HELP)
    one.add_argument("--workdir", required=True)
    one.add_argument("--json", action="store_true",
                     help="print the whole result as one JSON line (for scripts) "
                     "instead of a rounded table")
    evaluation.add_arguments(one)
  return parser


def run(argv):
  given_argv = list(argv)
  argv, overrides = _split_config_overrides(argv)
  args = build_parser().parse_args(argv)
  if overrides and args.command in ("report", "data", "embed", "configs"):
    raise UserError(f"--config.KEY=VALUE overrides apply to commands that read a "
                    f"config (train, eval, export, viz), not `sslax {args.command}`")
  logs.filter_library_logs()
  if args.command == "train":
    from sslax.config_loading import apply_overrides, load_config_file  # pylint: disable=g-import-not-at-top
    config = apply_overrides(load_config_file(args.config), overrides)
    given = [v is not None for v in (args.coordinator, args.num_processes, args.process_id)]
    if any(given) and not all(given):
      raise UserError("--coordinator, --num-processes and --process-id go together; "
                      "give all three (or --distributed alone on a TPU pod)")
    if args.distributed or all(given):
      from sslax.sharding import initialize_distributed  # pylint: disable=g-import-not-at-top
      try:
        initialize_distributed(args.coordinator, args.num_processes, args.process_id)
      except (RuntimeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"jax.distributed.initialize failed: {first}; check the "
                        "coordinator address and process ids") from None
    from sslax.train.interrupt import Interrupted  # pylint: disable=g-import-not-at-top
    from sslax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
    try:
      state = train_and_evaluate(config, args.workdir, extend_to=args.extend_to)
    except Interrupted as e:
      # One line: where it stopped, how to resume; 0 for SIGTERM, 130 for SIGINT.
      print(f"sslax: {e}; resume with the same command and --workdir: "
            f"{shlex.join([*invocation(), *given_argv])}", file=sys.stderr, flush=True)
      if e.abandoned:  # a compilation still runs on a helper thread: do not wait
        sys.stdout.flush()
        os._exit(e.exit_status)  # pylint: disable=protected-access
      sys.exit(e.exit_status)
    _next_commands(args.workdir, int(state.step))
  elif args.command == "data":
    DATA_COMMANDS[args.dataset](args)
  elif args.command == "report":
    from sslax.eval.report import markdown  # pylint: disable=g-import-not-at-top
    print(markdown(args.run_dirs))
  elif args.command == "viz":
    from sslax.eval.viz import visualize  # pylint: disable=g-import-not-at-top
    for path in visualize(args.workdir, overrides=overrides, map_method=args.map):
      print(path)
  elif args.command == "export":
    from sslax.export import export_encoder  # pylint: disable=g-import-not-at-top
    export_encoder(args.workdir, args.out, overrides, args.encoder)
    from sslax.export import describe_export  # pylint: disable=g-import-not-at-top
    print("\n".join(describe_export(args.out)))
  elif args.command == "embed":
    _embed(args)
  elif args.command == "configs":
    _configs(args.name)
  elif args.command == "eval":
    from sslax.eval import protocols  # pylint: disable=g-import-not-at-top
    protocols.check_encoder(args.protocol, args.workdir, getattr(args, "encoder", None),
                            can_pick=hasattr(args, "encoder"))
    result = protocols.EVALUATIONS[args.protocol].run(args, overrides)
    if args.json:
      print(json.dumps(result))
    else:
      print(f"sslax eval {args.protocol} of {args.workdir} (the whole result: "
            f"{args.workdir}/eval/, or --json)")
      print("\n".join(result_table(result)))


def result_table(result: dict) -> list:
  """An evaluation's result as aligned ``key  value`` lines: floats to 4
  decimals, nested groups as ``group.key``, lists (subset indices) by their
  length."""
  rows = []

  def add(key, value):
    if isinstance(value, dict):
      for k, v in value.items():
        add(f"{key}.{k}" if key else str(k), v)
    elif isinstance(value, (list, tuple)):
      rows.append((key, f"[{len(value)} values]"))
    elif isinstance(value, float):
      rows.append((key, f"{value:.4f}" if abs(value) < 1e5 else f"{value:.4g}"))
    else:
      rows.append((key, str(value)))

  add("", result)
  width = max((len(k) for k, _ in rows), default=0)
  return [f"  {k.ljust(width)}  {v}" for k, v in rows]


def invocation() -> list:
  """How this command was started, as a user would type it again: ``sslax``
  when that is the one on PATH, else the script's full path (an inactive
  virtual environment's ``.venv/bin/sslax``) or ``python -m sslax``."""
  import shutil  # pylint: disable=g-import-not-at-top
  script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
  if os.path.basename(script) == "sslax" and os.path.isfile(script):
    on_path = shutil.which("sslax")
    if on_path and os.path.samefile(on_path, script):
      return ["sslax"]
    relative = os.path.relpath(script)
    return [script if relative.startswith("..") else relative]
  return [sys.executable, "-m", "sslax"]


def _next_commands(workdir: str, step: int):
  """One line after training: the commands that use what it made."""
  import jax  # pylint: disable=g-import-not-at-top
  from sslax.eval import protocols  # pylint: disable=g-import-not-at-top
  from sslax.train import artifact  # pylint: disable=g-import-not-at-top
  if jax.process_index() != 0:
    return
  from sslax.data.sources import probe_labels  # pylint: disable=g-import-not-at-top
  from sslax.train import run_config  # pylint: disable=g-import-not-at-top
  definition, _ = artifact.read_encoder_definition(workdir)
  labelled = probe_labels(run_config.load_config(workdir, reads_data=False).data)
  me = shlex.join(invocation())
  where = shlex.quote(workdir)
  applicable = protocols.applicable(definition, labelled)
  evals = [f"{me} eval {name} --workdir {where}" for name in applicable[:2]]
  if not labelled and "linear" in protocols.for_output(definition.output):
    # the probes need labelled data: the run's splits have none
    evals.append(f"{me} eval linear --workdir {where} --config.data.data_dir=LABELLED_DATA")
  # pictures: a vector encoder's map, or those of an evaluation that draws some
  drawn = definition.output == "vector" or any(
      hasattr(protocols.EVALUATIONS[name], "pictures") for name in applicable)
  pictures = [f"{me} viz --workdir {where}"] if drawn else []
  steps = [*evals, *pictures, f"{me} export --workdir {where} --out {where}/export"]
  print(f"sslax: trained to step {step} in {workdir}; next: {'; '.join(steps)}",
        file=sys.stderr, flush=True)


def config_dir() -> str:
  """The configs/ of the working directory, else of sslax's checkout."""
  here = os.path.join(os.getcwd(), "configs")
  if os.path.isdir(here):
    return here
  return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def _configs(name):
  from sslax import config_loading  # pylint: disable=g-import-not-at-top
  from sslax.config_base import VARIANTS  # pylint: disable=g-import-not-at-top
  directory = config_dir()
  files = config_loading.config_files(directory, VARIANTS)
  if name is None:
    width = max(len(os.path.relpath(p)) for p, _, _ in files)
    for path, line, variants in files:
      print(f"{os.path.relpath(path).ljust(width)}  {line}; variants: "
            f"{variants[0]} (default), {', '.join(variants[1:])}")
    print("Train one: sslax train --config configs/simclr.py:VARIANT --workdir DIR; "
          "see its keys: sslax configs simclr:VARIANT")
    return
  file_part, _, variant = name.partition(":")
  path = file_part if file_part.endswith(".py") else os.path.join(directory, f"{file_part}.py")
  known = {os.path.basename(p)[:-3]: variants for p, _, variants in files}
  stem = os.path.basename(path)[:-3]
  if not os.path.isfile(path):
    raise UserError(f"no config {file_part!r}; the configs are {', '.join(known)}")
  if variant and stem in known and variant not in known[stem]:
    raise UserError(f"{stem} has no variant {variant!r}; its variants are "
                    f"{', '.join(known[stem])}")
  config = config_loading.load_config_file(f"{path}:{variant}" if variant else path)
  for key, value in config_loading.flatten(config):
    print(f"{key} = {value!r}")


def _embed(args):
  import numpy as np  # pylint: disable=g-import-not-at-top
  if not args.out.endswith(".npy"):
    raise UserError(f"--out {args.out} must end in .npy")
  index = args.out[:-len(".npy")] + ".txt"
  for path in (args.out, index):
    if os.path.exists(path):
      raise UserError(f"{path} already exists; choose a new --out")
  if args.images.endswith(".npy"):
    try:
      inputs = np.load(args.images)
    except (OSError, ValueError) as e:
      raise UserError(f"cannot read {args.images} as a .npy array: {e}") from None
  elif os.path.isdir(args.images):
    inputs = args.images
  else:
    raise UserError(f"--images {args.images} is neither a folder nor a .npy file")
  from sslax.export import embed_with_names  # pylint: disable=g-import-not-at-top
  features, names = embed_with_names(args.path, inputs, batch_size=args.batch_size,
                                     name=args.encoder)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  np.save(args.out, features)
  with open(index, "w") as f:
    f.write("".join(f"{n}\n" for n in (names or range(len(features)))))
  print(f"wrote {features.shape[0]} x {features.shape[1]} features to {args.out}; "
        f"row i is the image on line i of {index}")


def _make_speech(args):
  from sslax.data import speech  # pylint: disable=g-import-not-at-top
  words = None
  if args.words:
    try:
      with open(args.words) as f:
        words = f.read().split()
    except OSError as e:
      raise UserError(f"cannot read --words {args.words}: {e.strerror}") from None
  speech.make_corpus(args.out, num_speakers=args.speakers,
                     train_per_speaker=args.train_per_speaker,
                     test_per_speaker=args.test_per_speaker, words=words, seed=args.seed)


def _make_photos(args):
  from sslax.data import photos  # pylint: disable=g-import-not-at-top
  photos.make_corpus(args.out, size=args.size, crops_per_image=args.crops_per_image,
                     seed=args.seed)


def _make_video(args):
  from sslax.data import video_corpus  # pylint: disable=g-import-not-at-top
  video_corpus.make_corpus(args.out, clips=(args.train_clips, args.test_clips),
                           frames=args.frames, size=args.size, objects=args.objects,
                           seed=args.seed)


def _make_tfds(args):
  from sslax.data import tfds_prepare  # pylint: disable=g-import-not-at-top
  splits = [s for s in args.splits.split(",") if s] if args.splits else None
  print(tfds_prepare.prepare_from(args.kind, args.data_dir, args.name, args.out,
                                  splits=splits, size=args.size, channels=args.channels,
                                  encoding=args.encoding))


def _make_text(args):
  from sslax.data import text_corpus  # pylint: disable=g-import-not-at-top
  text_corpus.build(args.out, seed=args.seed)


# `sslax data NAME`: the function building it.
DATA_COMMANDS = {"make-speech": _make_speech, "make-photos": _make_photos,
                 "make-tfds": _make_tfds, "make-text": _make_text, "make-video": _make_video}


def main(argv=None):
  logs.quiet_orbax_shutdown_noise()
  exit_on_user_error("sslax", run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
  main()
