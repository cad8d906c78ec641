"""Stopping a run at a step boundary on SIGTERM (preemption) or SIGINT (Ctrl-C).

``StopOnSignal`` records the first such signal instead of dying; the training
loop asks ``stop.agreed()`` after each step and, when it is non-zero, saves a
checkpoint of that step and raises ``Interrupted``. A second signal gets the
handler that was there before (the default: a second Ctrl-C aborts at once).

With several processes, every process must stop at the same step (a
checkpoint is a collective): ``agreed`` combines the flags of all processes
with one small all-gather per step. A single process runs no collective.

Before the first step (set-up, restoring, writing the encoders, the first
step's compilation) the handlers are already installed: ``StopOnSignal.check``
between phases, and ``StopOnSignal.wait_for`` around the ones that block in
native code for long (compilation), which it runs on a helper thread while
the main thread watches for the signal. Either raises ``Interrupted`` naming
the phase and what is saved.
"""

import signal
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# The CLI's exit status for a run stopped by each signal: a preempted run
# stopped cleanly (0), a run the user interrupted (128 + SIGINT, as shells do).
EXIT_STATUS = {signal.SIGTERM: 0, signal.SIGINT: 130}


class Interrupted(Exception):
  """``train_and_evaluate`` stopped on a signal after saving ``step``'s checkpoint.

  ``state`` is the TrainState of ``step``; ``signum`` the signal's number
  (``signal.SIGTERM`` or ``signal.SIGINT``). Rerunning with the same config
  and workdir resumes from ``step``."""

  def __init__(self, step, signum: int, state=None, workdir: str = "", *,
               phase: str = None, saved=None, abandoned: bool = False):
    self.step, self.signum, self.state, self.workdir = step, signum, state, workdir
    # abandoned: a helper thread still runs native code (a compilation); a
    # command-line process exits without waiting for it.
    self.abandoned = abandoned
    name = signal.Signals(signum).name
    if phase is None:
      message = (f"stopped by {name} after step {step}; its checkpoint is saved in "
                 f"{workdir}")
    else:
      kept = (f"the checkpoint of step {saved} is saved in {workdir}" if saved is not None
              else "nothing is saved yet")
      message = f"stopped by {name} during {phase}; {kept}"
    super().__init__(message)

  @property
  def exit_status(self) -> int:
    return EXIT_STATUS.get(self.signum, 128 + self.signum)


class StopOnSignal:
  """Installs the handlers (main thread only; elsewhere it is inert) until
  ``restore()``."""

  def __init__(self):
    self.signum = 0
    self._previous = {}
    if threading.current_thread() is not threading.main_thread():
      return
    for sig in SIGNALS:
      previous = signal.getsignal(sig)
      # None: a handler installed outside Python, which Python cannot reinstall.
      self._previous[sig] = signal.SIG_DFL if previous is None else previous
      signal.signal(sig, self._handle)

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    if not self.signum:
      self.signum = signum
    # The next one of this signal is handled as before: a second Ctrl-C aborts.
    if signum in self._previous:
      signal.signal(signum, self._previous[signum])

  def check(self, phase: str, saved=None, workdir: str = ""):
    """Raises ``Interrupted`` when a signal came before or during ``phase``."""
    if self.signum:
      raise Interrupted(saved, self.signum, workdir=workdir, phase=phase, saved=saved)

  def wait_for(self, phase: str, fn, *args, saved=None, workdir: str = ""):
    """``fn(*args)`` on a helper thread, the main thread watching for a
    signal: ``Interrupted`` at once when one comes (``fn`` is abandoned)."""
    if not self._previous:  # not the main thread: no handler to watch for
      return fn(*args)
    self.check(phase, saved, workdir)
    result = {}

    def target():
      try:
        result["value"] = fn(*args)
      except BaseException as e:  # pylint: disable=broad-except
        result["error"] = e

    thread = threading.Thread(target=target, name=f"sslax-{phase}", daemon=True)
    thread.start()
    while thread.is_alive():
      thread.join(0.1)
      if self.signum and thread.is_alive():
        raise Interrupted(saved, self.signum, workdir=workdir, phase=phase, saved=saved,
                          abandoned=True)
    if "error" in result:
      raise result["error"]
    return result["value"]

  def agreed(self) -> int:
    """The signal that stops every process at this step, or 0."""
    if jax.process_count() == 1:
      return self.signum
    flags = multihost_utils.process_allgather(np.asarray([self.signum], np.int32))
    return int(np.max(flags))

  def restore(self):
    for sig, previous in self._previous.items():
      signal.signal(sig, previous)
    self._previous = {}
