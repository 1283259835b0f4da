"""Start-up time of the command line, as ratios to `python -c "import xarray, zarr"` measured in the same run.

    python benchmarks/bench_startup.py [STORE]    # without STORE: a 4-run, 20-epoch linear-rank1 store is trained

Prints the median of 5 fresh processes for each command, interleaved, and the CPU model. The targets
(issue 21): `loopdyn --help` <= 2x and `loopdyn info STORE` <= 4x the baseline.
"""

import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _time(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv: list[str]) -> None:
    py = sys.executable
    cli = [py, "-m", "loopdyn_cli"]
    with tempfile.TemporaryDirectory() as tmp:
        store = argv[0] if argv else None
        if store is None:
            subprocess.run([*cli, "train", "linear-rank1", "--set", "epochs=20", "--seeds", "0..3", "--quiet",
                            "--out", tmp], check=True, stdout=subprocess.DEVNULL)
            store = str(Path(tmp) / "linear-rank1.zarr")
        commands = {
            "python -c 'import xarray, zarr'": [py, "-c", "import xarray, zarr"],
            "loopdyn --help": [*cli, "--help"],
            "loopdyn --version": [*cli, "--version"],
            "loopdyn info STORE": [*cli, "info", store],
            "python -c 'import loopdyn'": [py, "-c", "import loopdyn"],
            "python -c 'import loopdyn; loopdyn.train'": [py, "-c", "import loopdyn; loopdyn.train"],
        }
        for cmd in commands.values():  # warm the file cache
            _time(cmd)
        times: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(5):
            for k, cmd in commands.items():
                times[k].append(_time(cmd))
    base = statistics.median(times["python -c 'import xarray, zarr'"])
    print(f"CPU: {_cpu()}; Python {platform.python_version()}; median of 5 fresh processes")
    for k, ts in times.items():
        m = statistics.median(ts)
        print(f"{k:<44} {m:6.2f} s  {m / base:5.2f} x baseline")


if __name__ == "__main__":
    main(sys.argv[1:])
