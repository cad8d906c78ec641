"""The training run's hold on its workdir: one run at a time, and system
errors (full disk, read-only or unwritable paths) as one line each.

``claim(workdir)`` checks that the workdir is a directory this process can
write, and takes ``WORKDIR/run.lock``: a file naming the host, process id and
process start time of the run holding it. A second run on the same workdir is
refused with one line. A lock left by a killed run is stale when its host is
this host and its process is gone (or its process id now belongs to a later
process); it is then taken over. A lock from another host cannot be checked:
the message says how to remove it. Only process 0 of a multi-process run takes
the lock.
"""

import contextlib
import errno
import json
import os
import re
import socket
import time

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
  return {"host": socket.gethostname(), "pid": os.getpid(),
          "start_time": _start_time(os.getpid()), "since": time.time()}


def _is_stale(holder: dict) -> bool:
  """Whether the run named by ``holder`` is certainly gone (this host only)."""
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


def _describe(holder: dict) -> str:
  since = holder.get("since")
  when = time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(since)) if since else ""
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


def _take_lock(path: epath.Path, workdir: str):
  holder = _holder()
  for _ in range(3):
    if _create_exclusive(path, json.dumps(holder)):
      return holder
    try:
      other = json.loads(path.read_text())
    except FileNotFoundError:
      continue  # released meanwhile
    except (json.JSONDecodeError, UnicodeDecodeError):
      other = {}  # torn by a crash while it was written
    if other and not _is_stale(other):
      raise UserError(f"{workdir} is in use by another run ({_describe(other)}); wait "
                      f"for it, or use another --workdir (if no run is using it, "
                      f"delete {path})")
    # Stale: its run is gone. Remove it and try again (another run starting
    # now may win the race; then it is refused above).
    with contextlib.suppress(FileNotFoundError):
      path.unlink()
  raise UserError(f"could not take {path}; delete it if no run is using {workdir}")


def _release_lock(path: epath.Path, holder: dict):
  try:
    if json.loads(path.read_text()).get("pid") == holder["pid"]:
      path.unlink()
  except (OSError, ValueError):
    pass


@contextlib.contextmanager
def claim(workdir: str):
  """Holds ``workdir`` for one training run (see the module docstring);
  released on any exit of the ``with`` block."""
  root = workdir_path(workdir)
  _check_directory(root, workdir)
  if jax.process_index() != 0:
    yield
    return
  path = root / LOCK_FILE
  try:
    holder = _take_lock(path, workdir)
  except OSError as e:
    raise UserError(f"cannot write in --workdir {workdir}: {system_error(e) or e.strerror}; "
                    "give a directory you can write to") from None
  try:
    yield
  finally:
    _release_lock(path, holder)
