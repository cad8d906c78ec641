"""The training run's hold on its workdir: one run at a time, and system
errors (full disk, read-only or unwritable paths) as one line each.

``claim(workdir, timeout)`` checks that the workdir is a directory this
process can write, and takes ``WORKDIR/run.lock``: a JSON object naming the
host, process id and process start time of the run holding it, and its
heartbeat, a time the holder rewrites every ``timeout / 10`` seconds (through
``epath``, so on ``gs://`` too). A second run on the same workdir is refused
with one line. A lock is stale, and is taken over with one line saying so,
when its heartbeat is older than ``timeout`` seconds (its run died, on any
host: a preempted machine), or at once when its host is this host and its
process is gone. A lock that is not such an object is refused with one line
naming the file, unless it too is older than ``timeout``. Only process 0 of a
multi-process run takes the lock. Hosts' clocks are assumed to agree to well
within ``timeout``.
"""

import contextlib
import errno
import json
import os
import re
import socket
import threading
import time
import uuid

from etils import epath
import jax

from sslax.errors import UserError

LOCK_FILE = "run.lock"

# errno values that the user fixes on the machine, not in the config.
_SYSTEM_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                  errno.EROFS: "the filesystem is read-only",
                  errno.EACCES: "permission denied", errno.EPERM: "permission denied"}
# How TensorStore (Orbax's array writer) reports the same errors: a ValueError
# whose message carries the errno.
_TENSORSTORE_ERRNO = re.compile(r"os_error_code='?(\d+)")


def system_error(exc: BaseException):
  """What ``exc`` says about the machine (``"the disk is full"``...), or None
  when it is not a full disk, read-only filesystem or permission error."""
  code = getattr(exc, "errno", None)
  if code is None and isinstance(exc, ValueError):
    match = _TENSORSTORE_ERRNO.search(str(exc))
    code = int(match.group(1)) if match else None
  return _SYSTEM_ERRNOS.get(code)


def workdir_path(workdir: str) -> epath.Path:
  """Local directories are made absolute; gs:// and other URLs pass through."""
  if "://" not in str(workdir):
    workdir = os.path.abspath(workdir)
  return epath.Path(workdir)


def _start_time(pid: int):
  """The process's start time in clock ticks since boot (Linux), or None."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return int(f.read().rsplit(")", 1)[1].split()[19])
  except (OSError, IndexError, ValueError):
    return None


def _holder() -> dict:
  now = time.time()
  return {"host": socket.gethostname(), "pid": os.getpid(),
          "start_time": _start_time(os.getpid()), "since": now, "heartbeat": now,
          "token": uuid.uuid4().hex}


def _gone(holder: dict) -> bool:
  """Whether the process ``holder`` names is certainly gone (this host only)."""
  if holder.get("host") != socket.gethostname():
    return False
  pid = holder.get("pid")
  if not isinstance(pid, int):
    return True
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return True
  except PermissionError:
    return False  # alive, another user's
  started = holder.get("start_time")
  return started is not None and _start_time(pid) not in (None, started)


def _silent_for(holder: dict, path: epath.Path) -> float:
  """Seconds since the lock's last heartbeat (locks written before heartbeats
  existed: since the file was last written)."""
  beat = holder.get("heartbeat")
  if not isinstance(beat, (int, float)):
    try:
      beat = path.stat().mtime
    except OSError:
      beat = time.time()
  return time.time() - beat


def _describe(holder: dict) -> str:
  since = holder.get("since")
  when = time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(
      since, (int, float)) else ""
  return f"process {holder.get('pid')} on {holder.get('host')}{when}"


def _check_directory(root: epath.Path, workdir: str):
  if root.exists() and not root.is_dir():
    raise UserError(f"--workdir {workdir} is a file, not a directory; give a directory "
                    "path (it is created if missing)")
  try:
    root.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create --workdir {workdir}: {e.strerror or e}; give a "
                    "directory you can write to") from None


def _create_exclusive(path: epath.Path, text: str) -> bool:
  """Creates ``path`` holding ``text`` unless it exists (atomic on local
  filesystems; a check then a write elsewhere)."""
  if "://" in str(path):
    if path.exists():
      return False
    path.write_text(text)
    return True
  try:
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(fd, "w") as f:
    f.write(text)
  return True


def _write(path: epath.Path, text: str):
  """Replaces ``path`` whole (rename on local filesystems; an object store's
  writes are whole already)."""
  if "://" in str(path):
    path.write_text(text)
    return
  tmp = f"{path}.{os.getpid()}.tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, str(path))


def _read_holder(path: epath.Path):
  """The lock's holder dict, or None when the file is not a JSON object."""
  try:
    holder = json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError):
    return None
  return holder if isinstance(holder, dict) else None


def _take_lock(path: epath.Path, workdir: str, timeout: float, report):
  holder = _holder()
  for _ in range(3):
    if _create_exclusive(path, json.dumps(holder)):
      return holder
    try:
      other = _read_holder(path)
      silent = _silent_for(other or {}, path)
    except FileNotFoundError:
      continue  # released meanwhile
    if other is None:
      if silent <= timeout:
        raise UserError(f"{path} is not a lock that sslax wrote (not a JSON object); "
                        f"delete it if no run is using {workdir}")
      reason = f"it is not a JSON object and was last written {silent:.0f} s ago"
    elif _gone(other):
      reason = "its process is gone"
    elif silent > timeout:
      reason = (f"its heartbeat stopped {silent:.0f} s ago (config.lock_timeout = "
                f"{timeout:g} s)")
    else:
      raise UserError(f"{workdir} is in use by another run ({_describe(other)}, "
                      f"heartbeat {silent:.0f} s ago); wait for it, or use another "
                      f"--workdir (a run that died holds it {timeout:g} s at most, "
                      f"config.lock_timeout; if none is running, delete {path})")
    # Stale: its run is gone. Remove it and try again (another run starting
    # now may win the race; then it is refused above).
    report(f"sslax: note: took over {path} of "
           f"{_describe(other) if other else 'an unknown run'}: {reason}")
    with contextlib.suppress(FileNotFoundError):
      path.unlink()
  raise UserError(f"could not take {path}; delete it if no run is using {workdir}")


def _ours(path: epath.Path, holder: dict) -> bool:
  try:
    other = _read_holder(path)
  except OSError:
    return False
  return other is not None and other.get("token") == holder["token"]


def _release_lock(path: epath.Path, holder: dict):
  with contextlib.suppress(OSError, ValueError):
    if _ours(path, holder):
      path.unlink()


class _Heartbeat:
  """Rewrites the lock's heartbeat every ``interval`` seconds on a daemon
  thread, while the lock is still this run's."""

  def __init__(self, path: epath.Path, holder: dict, interval: float):
    self.path, self.holder, self.interval = path, holder, interval
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, name="sslax-lock-heartbeat",
                                    daemon=True)
    self._thread.start()

  def _run(self):
    while not self._stop.wait(self.interval):
      with contextlib.suppress(OSError):
        if not _ours(self.path, self.holder):
          return  # taken over: this run is no longer its holder
        self.holder["heartbeat"] = time.time()
        _write(self.path, json.dumps(self.holder))

  def stop(self):
    self._stop.set()
    self._thread.join()


def _print_line(line: str):
  import sys  # pylint: disable=g-import-not-at-top
  print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def claim(workdir: str, timeout: float = 300.0, report=_print_line):
  """Holds ``workdir`` for one training run (see the module docstring);
  released on any exit of the ``with`` block. ``report`` prints the line
  saying a stale lock was taken over."""
  root = workdir_path(workdir)
  _check_directory(root, workdir)
  if jax.process_index() != 0:
    yield
    return
  timeout = float(timeout)
  if timeout <= 0:
    raise UserError(f"config.lock_timeout must be positive (seconds), got {timeout:g}")
  path = root / LOCK_FILE
  try:
    holder = _take_lock(path, workdir, timeout, report)
  except OSError as e:
    raise UserError(f"cannot write in --workdir {workdir}: {system_error(e) or e.strerror}; "
                    "give a directory you can write to") from None
  heartbeat = _Heartbeat(path, holder, timeout / 10)
  try:
    yield
  finally:
    heartbeat.stop()
    _release_lock(path, holder)
