"""The one exception type for mistakes a user can fix."""


class UserError(Exception):
  """A mistake in the user's input: the message is one line naming the fix.

  The command-line interface prints it without a traceback and exits with
  status 2. Library callers can catch it like any other exception.
  """


class UnknownSplit(UserError):
  """A split name the dataset does not have; the message lists the ones it has."""
