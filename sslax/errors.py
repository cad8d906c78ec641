"""The one exception type for mistakes a user can fix, and the reading of
the JSON files a run keeps (damaged ones are such mistakes)."""

import json
import sys


class UserError(Exception):
  """A mistake in the user's input: the message is one line naming the fix.

  The command-line interface prints it without a traceback and exits with
  status ``exit_code`` (2). Library callers can catch it like any other exception.
  """
  exit_code = 2


class UnknownSplit(UserError):
  """A split name the dataset does not have; the message lists the ones it has."""


class NonFinite(UserError):
  """Training produced a non-finite loss, gradient norm or parameters (the
  message names the step and the fix). Training stops with exit status 3,
  having saved nothing non-finite: its last checkpoints are finite ones."""
  exit_code = 3


def exit_on_user_error(prog: str, run, *args):
  """``run(*args)``; a ``UserError`` it raises is printed as one line on
  stderr, ``PROG: error: ...``, without a traceback, and ends the process
  with the error's exit status (the entry point of a command)."""
  try:
    return run(*args)
  except UserError as e:
    print(f"{prog}: error: {e}", file=sys.stderr)
    sys.exit(e.exit_code)


def read_json(path, fix: str) -> dict:
  """The JSON object in the file ``path`` (an ``epath.Path``); one line
  (``UserError``) naming the file and ``fix`` when it is not UTF-8 JSON
  holding an object: a file torn, truncated or overwritten."""
  try:
    value = json.loads(path.read_bytes().decode("utf-8"))
  except (UnicodeDecodeError, json.JSONDecodeError):
    value = None
  if not isinstance(value, dict):
    raise UserError(f"{path} is damaged (not UTF-8 JSON holding an object); {fix}")
  return value
