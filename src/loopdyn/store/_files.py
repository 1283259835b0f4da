"""Files of a store that are loopdyn's, not Zarr's: the progress marker, the training state, the lock and
the analysis pointer; and atomic creation of the store directory.

- `progress.json`: `{"phase", "epochs_done", "phases", "complete"}`, replaced atomically after every
  committed chunk; readers trust nothing beyond it.
- `state/phase<p>_epoch<E>.npz`: the training state after a committed chunk, arrays named by tree path.
- `lock`: an exclusive `fcntl.flock` held by the process that trains or analyses the store; it holds the
  holder's PID. The kernel releases it when the process dies, so a stale lock is taken over safely.
- `analysis.json`: which subgroup holds the current analysis, and its summary numbers.

Every write goes to a name unique to the writing process and is renamed into place (`os.replace`).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from ..errors import StoreError

PROGRESS = "progress.json"
LOCK = "lock"
ANALYSIS = "analysis.json"
CREATING = ".creating-"


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a process-unique temporary file and `os.replace` (the temporary file
    is removed when the write fails)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


FIXES = {
    errno.ENOSPC: "free space on that file system",
    errno.EDQUOT: "free space within your disk quota",
    errno.EROFS: "make the file system writable (it became read-only)",
    errno.EACCES: "check the permissions",
    errno.EPERM: "check the permissions",
    errno.EIO: "check the disk (an input/output error)",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.ELOOP: "the path is a loop of symbolic links; choose another path",
}


def os_error_line(e: OSError, path=None) -> str:
    """One line for an operating-system error: the file, what went wrong and what to do."""
    where = e.filename if e.filename is not None else path
    what = e.strerror or type(e).__name__
    fix = FIXES.get(e.errno, "check the path and the file system")
    if e.errno == errno.EEXIST and where is not None and os.path.islink(where) and not os.path.exists(where):
        what, fix = "is a symbolic link that leads nowhere (a loop, or its target is missing)", FIXES[errno.ELOOP]
    return f"{where}: {what[0].lower() + what[1:]}; {fix}"


def identity(path: Path) -> tuple[int, int] | None:
    """`(device, inode)` of a directory, or `None` if it is gone: a store renamed, moved or deleted while it
    is written has another identity at its path (or none)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class StoreLock:
    """An exclusive lock on a store (`with StoreLock(path, "train"):`), one line naming the holder if taken."""

    def __init__(self, path: Path, what: str):
        self.path, self.what, self.fh = Path(path), what, None

    def acquire(self) -> "StoreLock":
        lock = self.path / LOCK
        try:
            fh = open(lock, "a+")
        except OSError as e:
            raise StoreError(f"{self.path}: cannot open its lock file ({e.strerror}); check the permissions of the store") from e
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise StoreError(f"{self.path}: in use by {holder}; wait for it to finish (or stop it) before you "
                             f"{self.what} this store") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"PID {os.getpid()} ({self.what})")
        fh.flush()
        self.fh = fh
        return self

    def release(self) -> None:
        if self.fh is not None:
            try:
                self.fh.seek(0)
                self.fh.truncate()
            except OSError:  # a file system that became read-only or full: the kernel still drops the lock
                pass
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def lock_holder(path: Path) -> str | None:
    """Who holds the store's lock (`"PID 123 (train)"`), or `None` when nobody does. Only looks: the lock
    is not taken (a shared request that fails means an exclusive holder)."""
    lock = Path(path) / LOCK
    try:
        fh = open(lock, "r")
    except OSError:
        return None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return fh.read().strip() or "another process"
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None


def refuse_if_held(path: Path, what: str) -> None:
    """One line naming the holder when another process trains or analyses the store."""
    holder = lock_holder(path)
    if holder is not None:
        raise StoreError(f"{path}: in use by {holder}; wait for it to finish (or stop it) before you {what} this store")


def creation_dir(path: Path) -> Path:
    """The temporary directory a new store is built in before :func:`finish_creation` renames it."""
    return path.with_name(f"{path.name}{CREATING}{os.getpid()}")


def finish_creation(tmp: Path, path: Path) -> None:
    """Rename a fully created store into place; refuses (one line) if `path` appeared meanwhile."""
    try:
        os.rename(tmp, path)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"{path}: already exists (created by another process just now); choose another --out") from None


def stale_creations(path: Path) -> list[Path]:
    """Half-created stores of `path` left by processes that died (their PID is gone)."""
    out = []
    for p in path.parent.glob(f"{path.name}{CREATING}*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            out.append(p)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------------------------ progress
def read_progress(path: Path) -> dict:
    """The progress marker (`{"phase": 0, "epochs_done": 0, ...}` before the first committed chunk)."""
    p = Path(path) / PROGRESS
    if not p.is_file():
        return {"phase": 0, "epochs_done": 0, "phases": None, "complete": False}
    try:
        data = json.loads(p.read_text())
        out = {"phase": int(data["phase"]), "epochs_done": int(data["epochs_done"]),
               "phases": int(data.get("phases") or 1), "complete": bool(data.get("complete", False))}
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise StoreError(f"{p}: the progress marker is unreadable (truncated or edited); the store cannot be "
                         f"trusted — train it again") from None
    if out["phase"] < 0 or out["epochs_done"] < 0:
        raise StoreError(f"{p}: the progress marker holds negative numbers; the store cannot be trusted — train it again")
    return out


def write_progress(path: Path, phase: int, done: int, n_phases: int, complete: bool) -> None:
    atomic_write(Path(path) / PROGRESS, json.dumps({"phase": int(phase), "epochs_done": int(done),
                                                     "phases": int(n_phases), "complete": bool(complete)}).encode())


# ------------------------------------------------------------------------------------------ training state
def _state_file(path: Path, phase: int, done: int) -> Path:
    return Path(path) / "state" / f"phase{phase}_epoch{done}.npz"


def save_state(path: Path, phase: int, done: int, arrays: dict[str, np.ndarray]) -> None:
    """Save the training state after `done` epochs of `phase` (before the progress marker moves)."""
    target = _state_file(path, phase, done)
    target.parent.mkdir(exist_ok=True)
    tmp = target.with_name(f"{target.stem}.tmp-{os.getpid()}.npz")
    try:
        np.savez(tmp, **arrays)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def prune_states(path: Path, phase: int, keep: int) -> None:
    """Delete every saved state but the one of `(phase, keep)` (and other processes' temporaries)."""
    for f in (Path(path) / "state").glob("*.npz"):
        if f != _state_file(path, phase, keep) and ".tmp-" not in f.name:
            f.unlink(missing_ok=True)


def load_state(path: Path, phase: int, done: int) -> dict[str, np.ndarray]:
    f = _state_file(path, phase, done)
    if not f.is_file():
        raise StoreError(f"{path}: the training state of epoch {done} is missing; the store cannot be resumed — train it again")
    try:
        with np.load(f) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise StoreError(f"{f}: the training state is unreadable ({type(e).__name__}); the store cannot be resumed — "
                         f"train it again") from e


# ------------------------------------------------------------------------------------------ analysis pointer
def read_analysis_pointer(path: Path) -> dict | None:
    p = Path(path) / ANALYSIS
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError):
        raise StoreError(f"{p}: the analysis record is unreadable; run 'loopdyn analyze {path}' again") from None


def write_analysis_pointer(path: Path, record: dict) -> None:
    atomic_write(Path(path) / ANALYSIS, json.dumps(record, default=_json_default).encode())


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))
