"""Console entry point of `loopdyn`: installs the Ctrl-C handler before JAX and the rest are imported,
so that an interrupt at any moment gives one line and exit code 130 (see :mod:`loopdyn.cli`)."""

import os
import signal
import sys


def _interrupted(signum, frame):
    sys.stderr.write("\nloopdyn: interrupted while starting; nothing was written\n")
    sys.stderr.flush()
    os._exit(130)


def main() -> None:
    signal.signal(signal.SIGINT, _interrupted)
    # NumPy's BLAS threads compete with XLA's for the same cores: on a busy 2-core machine the host-side
    # eigenvalue problems of `analyze` (J(0) at every checkpoint) ran up to 7x slower multi-threaded. Read
    # when NumPy loads, so it is set before loopdyn (and NumPy) are imported.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from loopdyn.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
