#!/usr/bin/env python3
"""Set-up and entry point for a fresh machine that has only python3.

    python3 run.py demo     # create .venv and install loopdyn if needed, then run the demo
    python3 run.py test     # same set-up, then the whole test suite
    python3 run.py -- ARGS  # same set-up, then `loopdyn ARGS` (e.g. -- train linear-rank1 --seeds 0..7)
"""

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".loopdyn-installed"


def ensure_env() -> None:
    """Create the virtual environment and install loopdyn (editable, with test extras) once,
    and again whenever pyproject.toml changes."""
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    spec = (ROOT / "pyproject.toml").read_text()
    if STAMP.exists() and STAMP.read_text() == spec:
        return
    print("installing loopdyn and its dependencies into .venv ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(spec)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "--"):
        print(__doc__)
        return 2
    ensure_env()
    if argv[0] == "demo":
        cmd = [str(BIN / "loopdyn"), "demo", *argv[1:]]
    elif argv[0] == "test":
        # test modules run in parallel worker processes, one module per worker at a time (`--dist loadfile`:
        # module-scoped fixtures, e.g. a trained store shared by a module's tests, are built once)
        workers = ["-n", str(min(os.cpu_count() or 1, 4)), "--dist", "loadfile"]
        cmd = [str(BIN / "python"), "-m", "pytest", *workers, *argv[1:]]
    else:
        cmd = [str(BIN / "loopdyn"), *argv[1:]]
    return subprocess.run(cmd, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
