"""The one exception type for mistakes a user can fix."""


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
