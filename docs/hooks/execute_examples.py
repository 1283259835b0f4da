"""Execute the examples (jupytext notebooks `examples/*.py`) once, in one shared kernel, into a folder of
executed notebooks that the site's build renders with their outputs:

    python docs/hooks/execute_examples.py OUT [--quick]   # then: LOOPDYN_EXECUTED_EXAMPLES=OUT mkdocs build

`--quick` runs the shortened settings the test suite uses (`LOOPDYN_EXAMPLE_QUICK=1`). One kernel for all of
them: JAX and loopdyn are imported once.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("fig3_stages", "sweep", "closed_vs_open", "user_plant", "reload_agent")


def execute(out: Path, *, quick: bool, timeout: int = 600) -> dict[str, float]:
    """Execute every example into `out/NAME.ipynb` (stores under `out/stores`); seconds per example."""
    import jupytext
    import nbclient
    import nbformat
    from jupyter_client.manager import KernelManager

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LOOPDYN_EXAMPLE_OUT": str(out / "stores"), "LOOPDYN_EXAMPLES": str(ROOT / "examples"),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    if quick:
        env["LOOPDYN_EXAMPLE_QUICK"] = "1"
    km = KernelManager(kernel_name="python3")
    km.kernel_spec.argv[0] = sys.executable  # this interpreter's environment
    km.start_kernel(env=env, cwd=str(out))
    seconds = {}
    try:
        for name in EXAMPLES:
            t0 = time.perf_counter()
            nb = jupytext.read(ROOT / "examples" / f"{name}.py")
            nbclient.NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(out)}}).execute()
            nbformat.write(nb, out / f"{name}.ipynb")
            seconds[name] = time.perf_counter() - t0
    finally:
        km.shutdown_kernel(now=True)
    return seconds


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--quick"]
    if len(args) != 1:
        sys.exit(__doc__)
    for name, s in execute(Path(args[0]), quick="--quick" in sys.argv).items():
        print(f"{name:<16} {s:6.1f} s")
