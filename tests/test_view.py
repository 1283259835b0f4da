"""`loopdyn view` (issue #21.8): one self-contained HTML page, checked in headless Chromium: no console error,
no network request, and moving the epoch slider moves the eigenvalues to those the store holds."""

import json
import re
import time

import numpy as np
import pytest
from typer.testing import CliRunner

import loopdyn
from _cdp import Browser, find_browser
from loopdyn.cli import app


def _eigen_block(ds, epoch: int):
    """The page's order: run-major, then the store's eigenvalue order."""
    return ds.eigenvalues.values[:, epoch].ravel()


@pytest.fixture(scope="module")
def page(swept_store, tmp_path_factory):
    page = tmp_path_factory.mktemp("view") / "page.html"
    res = CliRunner().invoke(app, ["view", str(swept_store), "--out", str(page)])
    assert res.exit_code == 0 and f"page: {page}" in res.output, res.output
    return page


def test_view_writes_one_self_contained_page(swept_store, page):
    text = page.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?(https?:)?//", text)  # nothing remote
    assert "Bokeh" in text and "epoch_slider" in text and "spectral radius" in text
    res = CliRunner().invoke(app, ["view", str(swept_store), "--out", str(page.with_name("x.html")), "--hue", "nope"])
    assert res.exit_code == 2 and "--hue nope: not a per-run coordinate" in res.output
    assert not page.with_name("x.html").exists()


@pytest.mark.skipif(find_browser() is None, reason="no chromium binary on PATH (Debian: apt-get install chromium); "
                                                   "the view is not checked in a browser")
def test_view_in_headless_chromium_slider_moves_the_points(swept_store, page, tmp_path):
    ds = loopdyn.open_run(swept_store)
    with Browser(find_browser(), tmp_path) as browser:
        browser.call("Network.enable")
        result = browser.visit(page.as_uri())
        requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]

        def evaluate(expr):
            return json.loads(browser.call("Runtime.evaluate", returnByValue=True, expression=expr)["result"]["value"])

        read = """JSON.stringify((() => {
            if (!window.Bokeh || !Bokeh.documents.length) return null;
            const doc = Bokeh.documents[0], src = doc.get_model_by_name('eigenvalues');
            return [Array.from(src.data.re), Array.from(src.data.im), doc.get_model_by_name('epoch_label').text,
                    Array.from(src.data.lr)];
        })())"""
        deadline, before = time.monotonic() + 20, None
        while before is None and time.monotonic() < deadline:  # Bokeh builds its document after the load event
            before = evaluate(read)
            time.sleep(0.05)
        assert before is not None, "the page built no Bokeh document"
        evaluate("JSON.stringify(Bokeh.documents[0].get_model_by_name('epoch_slider').value = 2)")  # as a drag would
        after = evaluate(read)
        while after[2] != "epoch 2" and time.monotonic() < deadline:  # the callback may run after this task
            time.sleep(0.05)
            after = evaluate(read)
        errors = result["errors"] + [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"]
    assert errors == [], errors
    assert all(u.startswith(("file:", "data:", "blob:")) for u in requests), requests
    last, at2 = _eigen_block(ds, ds.sizes["epoch"] - 1), _eigen_block(ds, 2)
    np.testing.assert_allclose(before[0], last.real, rtol=1e-12)
    np.testing.assert_allclose(before[1], last.imag, rtol=1e-12, atol=1e-300)
    assert before[2] == f"epoch {ds.sizes['epoch'] - 1}" and after[2] == "epoch 2"
    np.testing.assert_allclose(after[0], at2.real, rtol=1e-12)
    np.testing.assert_allclose(after[1], at2.imag, rtol=1e-12, atol=1e-300)
    assert not np.allclose(before[0], after[0])  # the points moved
    assert after[3] == [f"{v:g}" for v in np.repeat(ds.lr.values, ds.sizes["eig"])]  # hover names each point's lr
