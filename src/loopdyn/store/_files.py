"""The parts of a store that are loopdyn's, not the training arrays': the progress marker, the training
state, the lock and the analysis; and atomic creation of the store directory. Every one of them is a Zarr
node or a Zarr attribute (format `loopdyn-store-4`), so that a reader of the hierarchy meets nothing else.

- progress: the root group's attributes `progress` (`{"phase", "epochs_done", "phases", "complete"}`) and
  `epochs_done`, replaced atomically (the root `zarr.json` is rewritten through a temporary file beside the
  store and `os.replace`) after every committed chunk; readers trust nothing beyond it.
- `state/phase<p>_epoch<E>`: a Zarr group holding the training state after a committed chunk, one array per
  leaf (`a0, a1, ...`, each named by its tree path in the attribute `name`), built under a temporary name
  and renamed into place.
- the lock: an exclusive `fcntl.flock` on the store's directory, held by the process that trains or
  analyses the store; the root attribute `lock_holder` names it. The kernel releases the lock when the
  process dies, so a stale lock is taken over safely.
- `analysis`: a relative symbolic link to the subgroup that holds the current analysis (its attribute
  `loopdyn_analysis` holds the summary numbers), replaced atomically.

Stores of format `loopdyn-store-3` and older kept these in `progress.json`, `state/*.npz`, `lock` and
`analysis.json`; they are read from there (:func:`read_progress`, :func:`load_state`,
:func:`read_analysis_pointer`) and moved into place when such a store is written again
(:func:`loopdyn.store._zarr.upgrade`).
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

PROGRESS = "zarr.json"  # the root group's metadata, which holds the progress marker
ANALYSIS = "analysis"
OLD_PROGRESS, OLD_LOCK, OLD_ANALYSIS = "progress.json", "lock", "analysis.json"  # loopdyn-store-3 and older
CREATING = ".creating-"


def atomic_write(path: Path, data: bytes, tmp_dir: Path | None = None) -> None:
    """Write `data` to `path` through a process-unique temporary file (in `tmp_dir`, default beside `path`,
    on the same file system) and `os.replace` (the temporary file is removed when the write fails)."""
    path = Path(path)
    tmp = (Path(tmp_dir) if tmp_dir is not None else path.parent) / f".{path.parent.name}.{path.name}.tmp-{os.getpid()}"
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


def read_root(path: Path) -> dict:
    """The root group's metadata document (`zarr.json`); a one-line :class:`StoreError` if unreadable."""
    meta = Path(path) / "zarr.json"
    try:
        doc = json.loads(meta.read_bytes())
        if not isinstance(doc.get("attributes", {}), dict):
            raise ValueError
        return doc
    except (OSError, ValueError, AttributeError, UnicodeDecodeError) as e:
        raise StoreError(f"{meta}: the store's metadata is unreadable ({type(e).__name__}); the store is corrupt — "
                         f"train it again") from None


def update_root_attrs(path: Path, attrs: dict) -> None:
    """Set root attributes by replacing the root `zarr.json` atomically (its temporary file lies beside the
    store, outside the hierarchy). Only the holder of the store's lock writes them."""
    path = Path(path)
    doc = read_root(path)
    doc.setdefault("attributes", {}).update(attrs)
    atomic_write(path / "zarr.json", json.dumps(doc, indent=2, default=_json_default).encode(), tmp_dir=path.parent)


class StoreLock:
    """An exclusive lock on a store (`with StoreLock(path, "train"):`), one line naming the holder if taken."""

    def __init__(self, path: Path, what: str):
        self.path, self.what, self.fd = Path(path), what, None

    def acquire(self) -> "StoreLock":
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as e:
            raise StoreError(f"{self.path}: cannot open the store to lock it ({e.strerror}); check its permissions") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"{self.path}: in use by {_holder_text(self.path)}; wait for it to finish (or stop it) "
                             f"before you {self.what} this store") from None
        self.fd = fd
        try:
            if (self.path / "zarr.json").is_file():
                update_root_attrs(self.path, {"lock_holder": f"PID {os.getpid()} ({self.what})"})
        except (OSError, StoreError):
            pass  # the holder's name is a courtesy: a full disk or damaged metadata is reported by the work itself
        return self

    def release(self) -> None:
        """Drop the lock (the holder's name stays in the attributes: it is read only while the lock is held)."""
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _holder_text(path: Path) -> str:
    try:
        return str(read_root(path)["attributes"].get("lock_holder") or "another process")
    except StoreError:
        return "another process"


def lock_holder(path: Path) -> str | None:
    """Who holds the store's lock (`"PID 123 (train)"`), or `None` when nobody does. Only looks: the lock
    is not taken (a shared request that fails means an exclusive holder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder_text(Path(path))
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
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
    path = Path(path)
    where = path / "zarr.json"
    if not where.is_file():  # not created (yet): nothing committed
        return {"phase": 0, "epochs_done": 0, "phases": None, "complete": False}
    data = read_root(path)["attributes"].get("progress")
    if data is None and (path / OLD_PROGRESS).is_file():  # loopdyn-store-3 and older
        where = path / OLD_PROGRESS
        try:
            data = json.loads(where.read_text())
        except (ValueError, UnicodeDecodeError):
            data = "unreadable"
    if data is None:
        return {"phase": 0, "epochs_done": 0, "phases": None, "complete": False}
    try:
        out = {"phase": int(data["phase"]), "epochs_done": int(data["epochs_done"]),
               "phases": int(data.get("phases") or 1), "complete": bool(data.get("complete", False))}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise StoreError(f"{where}: the progress marker is unreadable (truncated or edited); the store cannot be "
                         f"trusted — train it again") from None
    if out["phase"] < 0 or out["epochs_done"] < 0:
        raise StoreError(f"{where}: the progress marker holds negative numbers; the store cannot be trusted — train it again")
    return out


def write_progress(path: Path, phase: int, done: int, n_phases: int, complete: bool) -> None:
    """Move the progress marker (root attributes `progress` and `epochs_done`: the epochs of the store's epoch
    axis committed, all of them once complete)."""
    path = Path(path)
    epochs = read_root(path)["attributes"].get("epochs", done)
    update_root_attrs(path, {"progress": {"phase": int(phase), "epochs_done": int(done), "phases": int(n_phases),
                                          "complete": bool(complete)},
                             "epochs_done": int(epochs) if complete else int(done), "complete": bool(complete)})


# ------------------------------------------------------------------------------------------ training state
def _state_dir(path: Path, phase: int, done: int) -> Path:
    return Path(path) / "state" / f"phase{phase}_epoch{done}"


def _old_state_file(path: Path, phase: int, done: int) -> Path:
    return Path(path) / "state" / f"phase{phase}_epoch{done}.npz"


def has_state(path: Path, phase: int, done: int) -> bool:
    return (_state_dir(path, phase, done) / "zarr.json").is_file() or _old_state_file(path, phase, done).is_file()


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _write_group_meta(directory: Path, attrs: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attrs}))


def save_state(path: Path, phase: int, done: int, arrays: dict[str, np.ndarray]) -> None:
    """Save the training state after `done` epochs of `phase` (before the progress marker moves): a Zarr
    group built under a process-unique name, synced, and renamed into place."""
    import zarr

    target = _state_dir(path, phase, done)
    if not (target.parent / "zarr.json").is_file():
        _write_group_meta(target.parent, {"description": "loopdyn's training state after the last committed chunk"})
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3, use_consolidated=False)
        group.attrs.update({"phase": int(phase), "epochs_done": int(done)})
        for i, (name, value) in enumerate(arrays.items()):
            value = np.asarray(value)
            arr = group.create_array(f"a{i}", shape=value.shape, dtype=value.dtype, chunks=value.shape or None,
                                     fill_value=0, dimension_names=[f"a{i}_{d}" for d in range(value.ndim)])
            arr[...] = value
            arr.attrs["name"] = name
        _fsync_tree(tmp)
        if target.exists():  # the same commit written again: its old copy leaves first
            old = target.with_name(f"{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def prune_states(path: Path, phase: int, keep: int) -> None:
    """Delete every saved state but the one of `(phase, keep)` (and not other processes' temporaries)."""
    keep_dir = _state_dir(path, phase, keep)
    for f in (Path(path) / "state").glob("phase*"):
        if f == keep_dir or ".tmp-" in f.name:
            continue
        if f.is_dir():
            shutil.rmtree(f, ignore_errors=True)
        else:
            f.unlink(missing_ok=True)


def load_state(path: Path, phase: int, done: int) -> dict[str, np.ndarray]:
    import zarr

    d, f = _state_dir(path, phase, done), _old_state_file(path, phase, done)
    if (d / "zarr.json").is_file():
        try:
            group = zarr.open_group(str(d), mode="r", zarr_format=3, use_consolidated=False)
            return {arr.attrs["name"]: np.asarray(arr[...]) for _, arr in sorted(group.arrays(), key=lambda kv: int(kv[0][1:]))}
        except Exception as e:
            raise StoreError(f"{d}: the training state is unreadable ({type(e).__name__}); the store cannot be resumed — "
                             f"train it again") from e
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
    """The record of the store's current analysis (`group`: the subgroup to open), or `None`."""
    path = Path(path)
    link = path / ANALYSIS
    if link.is_symlink() or link.exists():
        meta = link / "zarr.json"
        try:
            record = json.loads(meta.read_text())["attributes"]["loopdyn_analysis"]
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise StoreError(f"{path}: its analysis group is missing or unreadable; run 'loopdyn analyze {path}' again") from None
        return {**record, "group": ANALYSIS}
    p = path / OLD_ANALYSIS  # loopdyn-store-3 and older
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError):
        raise StoreError(f"{p}: the analysis record is unreadable; run 'loopdyn analyze {path}' again") from None


def analysis_mtime(path: Path) -> float | None:
    """When the store's current analysis was written (`None`: never)."""
    for p in (Path(path) / ANALYSIS / "zarr.json", Path(path) / OLD_ANALYSIS):
        if p.is_file():
            return p.stat().st_mtime
    return None


def point_analysis(path: Path, name: str) -> None:
    """Make `analysis` lead to the subgroup `name` (a relative link, replaced atomically)."""
    path = Path(path)
    link = path / ANALYSIS
    if link.is_dir() and not link.is_symlink():  # a copy that followed the link: move it aside (deleted later)
        os.replace(link, path / f"analysis-copy-{os.getpid()}")
    tmp = path / f"{name}.link-{os.getpid()}"  # a link to a complete group: a Zarr node for its short life
    tmp.unlink(missing_ok=True)
    os.symlink(name, tmp)
    try:
        os.replace(tmp, path / ANALYSIS)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))
