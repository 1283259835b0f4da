"""The documentation: the examples (jupytext notebooks in examples/) run on quick settings, each once, in one
kernel, and their numbers hold; the site builds with `mkdocs build --strict` from those executed notebooks,
offline, with the configuration reference generated from the schema."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("fig3_stages", "sweep", "closed_vs_open", "user_plant", "reload_agent")

@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Every example executed once (quick settings) in one shared kernel; the executed notebooks' folder."""
    sys.path.insert(0, str(ROOT / "docs" / "hooks"))
    from execute_examples import EXAMPLES as listed
    from execute_examples import execute

    assert listed == EXAMPLES
    out = tmp_path_factory.mktemp("examples")
    seconds = execute(out, quick=True, timeout=300)
    print("examples:", {k: round(v, 1) for k, v in seconds.items()})
    return out


def _text(nb_path) -> str:
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    return "\n".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_examples_run_and_their_numbers_hold(executed):
    text = _text(executed / "reload_agent.ipynb")  # the reloaded agent's rollout gives the recorded test loss
    rolled, recorded = map(float, re.search(r"rolled out: (\S+)\s+recorded: (\S+)", text).groups())
    assert rolled == pytest.approx(recorded, rel=1e-5)
    # the joint matrix built from the user's plant and the stored parameters has the stored spectrum
    assert float(_text(executed / "user_plant.ipynb").strip().splitlines()[-1]) < 1e-6
    s1, s2 = map(int, re.search(r"stage 1 ends at epoch (-?\d+) - stage 2 ends at epoch (-?\d+)",
                                _text(executed / "fig3_stages.ipynb")).groups())
    assert 0 <= s1 < s2 < 150  # seed 9 goes through the three stages within the quick run's 150 epochs
    assert "runs: 6 learning rates: [0.003, 0.01, 0.03]" in _text(executed / "sweep.ipynb")  # 3 lr x 2 seeds
    for name in EXAMPLES:  # every example draws its figure
        assert '"image/png"' in (executed / f"{name}.ipynb").read_text(), name


def test_site_builds_strict_offline_with_generated_keys(executed, tmp_path):
    from loopdyn.config import TrainConfig, config_tables

    env = {**os.environ, "LOOPDYN_EXECUTED_EXAMPLES": str(executed), "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")]
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        cmd = ["unshare", "-n", *cmd]  # without a network: a plugin that fetched anything would fail the build
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "WARNING" not in res.stderr, res.stderr[-3000:]
    site = tmp_path / "site"
    configs = (site / "configs" / "index.html").read_text()
    for f in TrainConfig.__dataclass_fields__.values():
        assert f.metadata["doc"].replace("'", "&#39;")[:30] in configs.replace("&#x27;", "&#39;"), f.name
    assert configs.count("<h3") >= len(config_tables())
    for name in EXAMPLES:  # the examples with their executed outputs
        assert "data:image/png;base64," in (site / "examples" / name / "index.html").read_text(), name
    assert "load_agent" in (site / "api" / "index.html").read_text()
    remote = [(p.name, m) for p in site.rglob("*.html")
              for m in re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(https?://[^"]+)"', p.read_text())]
    assert not remote, remote[:5]  # nothing is fetched when the site is opened


def test_readme_is_a_front_door_whose_links_resolve():
    """Issue #21.1: README.md stays <= 10 KB, and every relative link in it names a file of the checkout."""
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 10_000, len(text.encode())
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert local and all((ROOT / link).exists() for link in local), [link for link in local if not (ROOT / link).exists()]
    for command in ("python3 run.py demo", "python3 run.py test"):
        assert command in text
