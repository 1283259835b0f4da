"""`loopdyn reproduce` and `loopdyn report` on a tiny protocol: resumable steps, the statistics the ablation
writes, the HTML page — opened in headless Chromium (every image loads, no console error, a screenshot)."""

import json
import re
import time

import matplotlib.text
import numpy as np
import pytest
from typer.testing import CliRunner

import loopdyn
from _cdp import Browser, find_browser
from loopdyn.cli import app
from loopdyn.config import ConfigError
from loopdyn.errors import Interrupted
from loopdyn.reproduce import plan, report, reproduce

# The quick protocol of one ablation, shrunk further (hidden --set/--seeds of `loopdyn reproduce`).
TINY = ("epochs=20", "agent.N=10", "task.batch=8", "task.test_batch=8", "record.chunk=10")
SEEDS = "0..2"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A reproduce directory of ablation-beta, first interrupted after its first chunk, then continued."""
    out = tmp_path_factory.mktemp("reproduce") / "out"
    kw = dict(quick=True, only=["ablation-beta"], overrides=TINY, seeds=SEEDS, progress=False)
    calls = []  # polled once before the store is created, then after every committed chunk: stop after the first
    with pytest.raises(Interrupted):
        reproduce(out, should_stop=lambda: calls.append(1) or len(calls) > 1, **kw)
    assert not (out / "index.html").exists()
    index = reproduce(out, **kw)
    return out, index, kw


def _log(out):
    return (out / "reproduce.log").read_text()


def test_reproduce_resumes_and_writes_everything(tiny):
    out, index, _ = tiny
    store = out / "stores" / "ablation-beta.zarr"
    assert index == out / "index.html" and index.exists()
    assert loopdyn.check_store(store)["complete"]
    assert (out / "figures" / "ablation-beta" / "ablation_beta.png").exists()
    assert (out / "summaries" / "ablation-beta.txt").read_text().startswith("analysis of")
    log = _log(out)
    assert "ablation-beta: interrupted at epoch 10" in log and log.count("ablation-beta: resumed in") == 1
    assert "ablation-beta: trained in" not in log and "analysed in" in log
    manifest = json.loads((out / "reproduce.json").read_text())
    assert manifest["mode"] == "quick" and manifest["experiments"]["ablation-beta"]["done"]
    assert set(manifest["experiments"]["ablation-beta"]["timings"]) == {"train", "analyse", "figures"}


def test_reproduce_again_skips_finished_steps(tiny):
    out, index, kw = tiny
    before = index.stat().st_mtime
    t0 = time.perf_counter()
    reproduce(out, **kw)
    log = _log(out).split("reproduce --quick")[-1]
    assert "training skipped" in log and "analysis present, skipped" in log and "figures present, skipped" in log
    assert time.perf_counter() - t0 < 30 and index.stat().st_mtime >= before


def test_reproduce_refuses_another_protocol_in_the_same_directory(tiny):
    out, _, kw = tiny
    with pytest.raises(ConfigError) as e:
        reproduce(out, **{**kw, "quick": False})
    assert "holds a quick reproduce" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="not an experiment of 'loopdyn reproduce'"):
        plan(out, only=["no-such-thing"])


def test_ablation_statistics_are_numpys_over_the_runs_of_each_condition(tiny):
    out, _, _ = tiny
    ds = loopdyn.open_run(out / "stores" / "ablation-beta.zarr")
    rows = ds.attrs["analysis"]["numbers"]["conditions"]
    assert [r["condition"] for r in rows] == ["beta=0", "beta=0.5", "beta=2", "beta=5"]
    for r in rows:
        idx = np.nonzero(ds.beta.values == float(r["condition"][5:]))[0]
        assert r["runs"] == len(idx) == 3
        final = ds.train_loss.values[idx, -1]
        assert r["metrics"]["final_train_loss"]["median"] == pytest.approx(np.median(final))
        assert r["metrics"]["final_train_loss"]["q75"] == pytest.approx(np.percentile(final, 75))
        k2 = ds.gains.values[idx, -1, 0, 1]
        assert r["metrics"]["k2"]["q25"] == pytest.approx(np.percentile(k2, 25))
        s2 = ds.stage2_end.values[idx]
        assert r["metrics"]["stage2_end"]["n_valid"] == int(np.sum(s2 >= 0))


def test_report_of_stores(tiny, tmp_path):
    out, _, _ = tiny
    index = report([out / "stores" / "ablation-beta.zarr"], tmp_path / "rep")
    text = index.read_text()
    assert "figures/ablation-beta/ablation_beta.png" in text and "Stage boundaries" in text
    res = CliRunner().invoke(app, ["report", str(tmp_path / "missing.zarr"), "--out", str(tmp_path / "rep2")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1


def test_cli_reproduce_refuses_unknown_experiment(tmp_path):
    res = CliRunner().invoke(app, ["reproduce", "--quick", "--only", "nope", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "nope" in res.output and not (tmp_path / "r").exists()


def test_page_states_claims_numbers_and_provenance(tiny):
    out, index, _ = tiny
    text = index.read_text()
    assert "Paper:" in text and "Measured:" in text and "Fig 5d" in text
    assert re.search(r"final training loss [0-9.e+-]+ \[", text)  # medians with their IQR in the caption
    assert "git_commit" in text and "jax" in text and "[task]" in text  # provenance and the config as TOML
    assert "Quick mode" in text


@pytest.mark.skipif(find_browser() is None, reason="no chromium binary on PATH (Debian: apt-get install chromium); "
                                                   "the HTML report is not checked in a browser")
def test_report_in_headless_chromium(tiny, tmp_path):
    out, index, _ = tiny
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><img src='missing.png'><script>console.error('boom')</script></body></html>")
    shot = tmp_path / "report.png"
    with Browser(find_browser(), tmp_path) as browser:
        control = browser.visit(bad.as_uri())
        page = browser.visit(index.as_uri(), screenshot=shot)
    # the harness sees a broken image and a console error when there are some
    assert control["images"] == [["missing.png", 0]] and len(control["errors"]) == 2
    assert page["images"] and all(width > 0 for _, width in page["images"]), page["images"]
    assert page["errors"] == []
    assert shot.stat().st_size > 10_000


def test_the_page_names_everything_relative_to_itself(tiny, tmp_path):
    """Issue #21.9: moved elsewhere, every link of the page (stores, log, manifest, figures) still resolves."""
    import shutil
    import urllib.parse

    out, _, _ = tiny
    moved = tmp_path / "elsewhere" / "out"
    shutil.copytree(out, tmp_path / "copy", symlinks=True)
    shutil.move(tmp_path / "copy", moved)
    text = (moved / "index.html").read_text()
    assert str(out) not in text and str(out.parent) not in text
    links = re.findall(r"(?:href|src)='([^'#][^']*)'", text)
    assert {"reproduce.log", "reproduce.json", "stores/ablation-beta.zarr/"} <= set(links), links
    for link in links:
        target = moved / urllib.parse.unquote(link)
        assert not link.startswith(("/", "file:")) and target.exists(), link
    assert loopdyn.check_store(moved / "stores" / "ablation-beta.zarr")["complete"]  # the store moved with it


def test_every_figure_has_no_overlapping_text_and_is_readable_in_print(tiny):
    """Issue #21.7: every figure of the reproduce run (and each store's training overview), drawn: no two
    texts' tight boxes overlap, no text under 5 pt at a journal's two-column width, maths as mathtext."""
    from _helpers import small_text, text_overlaps
    from loopdyn.plots import training_figure

    out, _, _ = tiny
    manifest = json.loads((out / "reproduce.json").read_text())
    drawn = 0
    for name, entry in manifest["experiments"].items():
        ds = loopdyn.open_run(out / entry["store"])
        figs = {**loopdyn.experiments.get(name).figures(ds), "training": training_figure(ds)}
        for fig_name, fig in figs.items():
            assert text_overlaps(fig) == [], (name, fig_name)
            assert small_text(fig) == [], (name, fig_name)
            assert not any(re.search(r"(mean|sum)_|\^2", t.get_text()) and "$" not in t.get_text()
                           for t in fig.findobj(matplotlib.text.Text)), (name, fig_name)  # no raw ASCII maths
            drawn += 1
    assert drawn >= 2


def test_the_overlap_check_finds_overlapping_text():
    from matplotlib.figure import Figure

    from _helpers import small_text, text_overlaps

    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.set_title("a title long enough")
    ax.text(0.5, 1.02, "over the title", transform=ax.transAxes, ha="center")
    assert text_overlaps(fig) == [("a title long enough", "over the title")] or \
        text_overlaps(fig) == [("over the title", "a title long enough")]
    ax.texts[0].set_visible(False)
    assert text_overlaps(fig) == []
    assert small_text(Figure(figsize=(14.4, 3)).text(0.5, 0.5, "x", fontsize=8).get_figure()) == [("x", 4.0)]


def test_page_config_is_toml_that_loads_back():
    import tomllib

    from loopdyn.config import from_dict, to_dict
    from loopdyn.reproduce._page import phase_differences, toml_text

    for name in ("stages", "ablation-T", "closed-vs-open-seeds"):
        cfg = loopdyn.load_config(name)
        back = from_dict(tomllib.loads(toml_text(to_dict(cfg))), source=cfg.source)
        assert json.dumps(to_dict(back)) == json.dumps(to_dict(cfg))  # via JSON: agent.over is NaN
    exp = loopdyn.experiments.get("ablation-T")
    phases = [[label, to_dict(c)] for c, label in exp.phases(loopdyn.load_config("ablation-T"))]
    lines = phase_differences(phases)
    assert lines[1].startswith("T=10: ") and 'task.T = 10' in lines[1] and 'start.store = "self"' in lines[1]
