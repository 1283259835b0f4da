"""`loopdyn view`: one self-contained interactive HTML page of a store (Bokeh, its JavaScript inlined: no
server, no remote resource). Loss curves and the spectral radius rho(P) per run (hover: run, seed, swept
values, epoch, value), and the eigenvalues of P in the complex plane at the epoch chosen with a slider.

The eigenvalue panel reads the source named `eigenvalues` (columns `re`, `im`, `run`, `seed`, the swept keys,
`epoch`); the slider named `epoch_slider` runs over the indices of `epochs` (at most :data:`MAX_EPOCHS`,
log-spaced for long runs) and its callback copies that epoch's block of every run's eigenvalues into it.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

MAX_EPOCHS = 400  # epochs on the page: all of a short run, log-spaced (first and last kept) for a long one


def _epochs(n: int) -> np.ndarray:
    if n <= MAX_EPOCHS:
        return np.arange(n)
    return np.unique(np.concatenate([[0], np.round(np.logspace(0, np.log10(n - 1), MAX_EPOCHS)).astype(int), [n - 1]]))


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def view_page(ds, path: str | Path, *, title: str = "", hue: str | None = None) -> Path:
    """Write the interactive page of the store opened as `ds` (:func:`loopdyn.open_run`) to `path`; runs
    coloured by the per-run coordinate `hue` (default: the first swept key, else the seed)."""
    from bokeh.embed import file_html
    from bokeh.layouts import column, row
    from bokeh.models import ColumnDataSource, CustomJS, Div, HoverTool, Legend, LegendItem, Slider
    from bokeh.palettes import Viridis256
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    from ..store import swept_keys

    path = Path(path)
    R = ds.sizes["run"]
    keys = swept_keys(ds)
    hue = hue if hue is not None else (keys[0] if keys else "seed")
    if hue not in ds.coords or ds[hue].dims != ("run",):
        from ..errors import ConfigError

        raise ConfigError(f"--hue {hue}: not a per-run coordinate of the store; choose among "
                          f"{', '.join(str(c) for c, v in ds.coords.items() if v.dims == ('run',) and c != 'run')}")
    per_run = {k: [_fmt(v) for v in np.asarray(ds[k].values).tolist()] for k in dict.fromkeys(["seed", *keys])}
    levels = list(dict.fromkeys(np.asarray(ds[hue].values).tolist()))
    palette = [Viridis256[int(i)] for i in np.linspace(0, 230, max(len(levels), 1))]
    colour = [palette[levels.index(v)] for v in np.asarray(ds[hue].values).tolist()]
    sel = _epochs(ds.sizes["epoch"])
    epochs = np.asarray(ds.epoch.values)[sel]
    tooltips = [("run", "@run"), *[(k, f"@{{{k}}}") for k in per_run], ("epoch", "@epoch"), ("value", "@y")]

    def curves(var: str, label: str, log_y: bool):
        values = np.asarray(ds[var].values, np.float64)[:, sel]
        fig = figure(width=460, height=330, x_axis_type="log", y_axis_type="log" if log_y else "linear",
                     title=label, x_axis_label="epoch + 1", y_axis_label=label, tools="pan,wheel_zoom,box_zoom,reset,save")
        items: dict = {}
        for i in range(R):
            y = values[i].copy()
            if log_y:
                y[~(y > 0)] = np.nan
            src = ColumnDataSource({"x": epochs + 1, "y": y, "epoch": epochs, "run": [i] * len(epochs),
                                    **{k: [v[i]] * len(epochs) for k, v in per_run.items()}})
            glyph = fig.line("x", "y", source=src, color=colour[i], line_width=1.5, alpha=0.85)
            items.setdefault(_fmt(np.asarray(ds[hue].values).tolist()[i]), []).append(glyph)
        fig.add_tools(HoverTool(tooltips=tooltips, line_policy="nearest"))
        if var == "spectral_radius":
            fig.line([epochs[0] + 1, epochs[-1] + 1], [1, 1], color="black", line_dash="dashed")
        if len(items) <= 16:
            fig.add_layout(Legend(items=[LegendItem(label=f"{hue} = {k}", renderers=v) for k, v in items.items()],
                                  click_policy="hide", label_text_font_size="8pt"), "right")
        return fig

    panels = [curves("train_loss", "training loss", True), curves("test_loss", "closed-loop test loss", True)]
    blocks = []
    if "spectral_radius" in ds:
        panels.append(curves("spectral_radius", "spectral radius ρ(P)", False))
    if "eigenvalues" in ds:
        lam = np.asarray(ds.eigenvalues.values)[:, sel]  # (run, epoch, eig)
        n = lam.shape[-1]
        # flat, epoch-major: block e holds every run's n eigenvalues at epochs[e]
        flat = np.transpose(lam, (1, 0, 2)).reshape(len(sel), R * n)
        last = len(sel) - 1
        runs = np.repeat(np.arange(R), n)
        def block(e):
            return {"re": flat[e].real, "im": flat[e].imag, "modulus": np.abs(flat[e])}
        shown = ColumnDataSource({**block(last), "run": runs, "colour": [colour[r] for r in runs],
                                  "epoch": [int(epochs[last])] * (R * n),
                                  **{k: [v[r] for r in runs] for k, v in per_run.items()}}, name="eigenvalues")
        store = ColumnDataSource({"re": flat.real.ravel(), "im": flat.imag.ravel()}, name="all_eigenvalues")
        fig = figure(width=460, height=460, match_aspect=True, title="eigenvalues of the joint matrix P",
                     x_axis_label="Re λ", y_axis_label="Im λ", tools="pan,wheel_zoom,box_zoom,reset,save")
        th = np.linspace(0, 2 * np.pi, 400)
        fig.line(np.cos(th), np.sin(th), color="black", line_dash="dashed")
        dots = fig.scatter("re", "im", source=shown, color="colour", size=7, alpha=0.8, line_color="black")
        fig.add_tools(HoverTool(renderers=[dots], tooltips=[("run", "@run"), *[(k, f"@{{{k}}}") for k in per_run],
                                                            ("epoch", "@epoch"), ("λ", "@re{0.0000} + @im{0.0000}i"),
                                                            ("|λ|", "@modulus{0.0000}")]))
        label = Div(text=f"epoch {int(epochs[last])}", name="epoch_label")
        slider = Slider(start=0, end=max(last, 1), value=last, step=1, title="epoch index", name="epoch_slider",
                        disabled=last == 0, width=440)
        slider.js_on_change("value", CustomJS(args={"shown": shown, "store": store, "label": label,
                                                    "epochs": [int(e) for e in epochs], "width": R * n}, code="""
            const e = cb_obj.value, lo = e * width;
            const re = store.data.re.slice(lo, lo + width), im = store.data.im.slice(lo, lo + width);
            const modulus = Array.from(re, (r, i) => Math.hypot(r, im[i]));
            shown.data = {...shown.data, re: re, im: im, modulus: modulus, epoch: new Array(width).fill(epochs[e])};
            label.text = "epoch " + epochs[e];
        """))
        blocks.append(row(fig, column(slider, label)))
    meta = (f"<h2>{html.escape(title or path.stem)}</h2><p>experiment <code>{html.escape(str(ds.attrs.get('experiment', '')))}"
            f"</code>, {R} runs, {ds.sizes['epoch']} epochs"
            + (f" ({len(sel)} shown, log-spaced)" if len(sel) < ds.sizes["epoch"] else "")
            + f"; colour: {html.escape(hue)}; swept: {html.escape(', '.join(keys) or 'nothing (seeds only)')}. "
            "Hover a curve or a point for its run; click a legend entry to hide its runs.</p>")
    layout = column(Div(text=meta, width=1400), row(*panels), *blocks)
    text = file_html(layout, resources=INLINE, title=f"loopdyn view: {title or path.stem}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
