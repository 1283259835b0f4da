"""Render every figure of the experiments that take part in `loopdyn reproduce` on a reduced protocol (their
`--quick` settings, 2 seeds, N = 12, batch 16) and report text that overlaps or is smaller than 5 pt when the
figure is printed 7.2 in wide (issue #21.7; the checks are `tests/_helpers.text_overlaps` and `small_text`).

    python benchmarks/check_figures.py [EXPERIMENT ...] [--out DIR]     # default: every participant

The test suite runs the same checks on the figures it already draws (ablation-beta, stages, closed-vs-open,
tracking, invisible-memory, nonlinear-stages, learning-rules); this script covers the rest without adding
their training to the suite. Exit status 1 if any figure fails.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import loopdyn  # noqa: E402
from _helpers import small_text, text_overlaps  # noqa: E402
from loopdyn.experiments import get  # noqa: E402
from loopdyn.reproduce._pipeline import participants  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="*")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    names = args.experiments or [e.name for e in participants()]
    out = args.out or Path(tempfile.mkdtemp(prefix="figure-check-"))
    bad = 0
    for name in names:
        exp, t = get(name), time.time()
        cfg = loopdyn.load_config(exp.reproduce.config, [*exp.reproduce.quick, "agent.N=12", "task.batch=16"], "0..1")
        store = loopdyn.train(cfg, out / f"{name}.zarr", progress=False)
        loopdyn.analyze(store)
        for fig_name, fig in exp.figures(loopdyn.open_run(store)).items():
            overlaps, small = text_overlaps(fig), small_text(fig)
            bad += bool(overlaps or small)
            print(f"{name} {fig_name}: {fig.get_figwidth():.1f} x {fig.get_figheight():.1f} in, "
                  f"{len(overlaps)} overlapping text pairs {overlaps[:2]}, {len(small)} texts under 5 pt {small[:2]} "
                  f"({time.time() - t:.0f} s)", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
