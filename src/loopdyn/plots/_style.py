"""Shared look of loopdyn's figures: colours, stage shading, the unit circle, panel letters, saving.

Figures are `matplotlib.figure.Figure` objects (Agg canvas, no pyplot state); panel functions take a
Matplotlib `Axes`. Log-log epoch axes show `epoch + 1` so that epoch 0 appears.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

CLOSED_BLUE = "#4c72b0"  # seaborn "deep" blue: closed loop
OPEN_RED = "#c44e52"  # seaborn "deep" red: open loop, theory
STAGE_COLORS = ("#b7e3d1", "#5fa8c4", "#3a5a9a")  # light -> dark, after seaborn's mako_r
STAGE1_MARK, STAGE2_MARK = "silver", "gold"
FIGURE_WIDTH = 10.8  # inches at most: printed at a journal's two-column width (7.2 in), 7.5 pt text stays 5 pt


def unit_circle(ax, **kw) -> None:
    th = np.linspace(0, 2 * np.pi, 2000)
    ax.plot(np.cos(th), np.sin(th), **{"color": "k", "ls": "--", "lw": 0.8, **kw})


def shade_stages(ax, spans: dict[int, tuple[int, int]], *, labels: bool = True, highlight: int | None = None,
                 log_x: bool = True) -> None:
    """Shade stage `k`'s epochs `[lo, hi)` (`spans` as :meth:`loopdyn.analysis.Stages.spans`), on an axis of
    `epoch + 1` when `log_x`; `highlight` one stage more strongly."""
    shift = 1 if log_x else 0
    for k, (lo, hi) in spans.items():
        alpha = 0.3 if highlight is None else (0.55 if k == highlight else 0.15)
        ax.axvspan(lo + shift, hi + shift, color=STAGE_COLORS[k - 1], alpha=alpha, lw=0, zorder=0)
        if labels:
            x = np.sqrt((lo + shift) * (hi + shift)) if log_x else (lo + hi) / 2
            ax.text(x, 0.97, f"Stage {k}", transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=7.5,
                    fontweight="bold" if k == highlight else "normal")


def log_limits(*series) -> tuple[float, float]:
    """y-limits of a log axis that show every positive finite value of `series`."""
    vals = np.concatenate([np.asarray(s, dtype=np.float64).ravel() for s in series])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    if vals.size == 0:
        return 1e-1, 1e1
    return float(vals.min()) / 2, float(vals.max()) * 4


def label_panels(axes, letters: str = "abcdef", title_size: float = 8) -> None:
    r"""Panel letters: each axes' title becomes its left-aligned title led by the bold letter (`$\bf{a}$  title`),
    so that the letter and the title share one line and cannot overlap."""
    for ax, letter in zip(axes, letters):
        title = ax.get_title()
        ax.set_title("")
        text = wrap(rf"$\bf{{{letter}}}$   {title}", axes_width(ax), title_size) if title else rf"$\bf{{{letter}}}$"
        ax.set_title(text, loc="left", fontsize=title_size)


def axes_width(ax) -> float:
    """The width of `ax` in inches, as its figure's grid places it (before the layout engine trims it)."""
    fig = ax.get_figure()
    return ax.get_position().width * fig.get_figwidth() if fig is not None else 4.0


def wrap(text: str, width_in: float, size: float) -> str:
    """`text` broken at spaces (never inside `$...$`) into lines of at most `width_in` inches at `size` points
    (an average glyph taken as 0.55 em)."""
    limit = max(int(width_in * 72 / (0.55 * size)), 10)
    words, merged = text.replace("\n", " ").split(" "), []
    for w in words:  # keep each mathtext span one word
        if merged and merged[-1].count("$") % 2:
            merged[-1] += " " + w
        else:
            merged.append(w)
    def visible(t: str) -> int:  # the characters drawn: no $, no mathtext commands or braces
        return len(re.sub(r"\\[A-Za-z]+|[${}]", "", t))
    lines, line = [], ""
    for w in merged:
        if line and visible(line) + 1 + visible(w) > limit:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    return "\n".join([*lines, line])


CAPTION = "_loopdyn_caption"  # a figure's caption (the exact definitions), saved in its files' metadata


def set_caption(fig, text: str) -> None:
    """Attach a caption to a figure: written into the PNG's `Description` and the PDF's `Subject`, not drawn."""
    setattr(fig, CAPTION, text)


def save_figures(figures: dict, outdir, formats=("png", "pdf"), dpi: int = 150) -> list[Path]:
    """Save `name -> Figure` as `outdir/name.png` and `.pdf` (a caption of :func:`set_caption` in their
    metadata); returns the paths."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        for ext in formats:
            p = outdir / f"{name}.{ext}"
            caption = getattr(fig, CAPTION, None)
            meta = {} if not caption else {"Description": caption} if ext == "png" else {"Subject": caption} if ext == "pdf" else {}
            fig.savefig(p, dpi=dpi, metadata=meta or None)
            fig.set_layout_engine("none")  # keep the solved layout for the next format
            paths.append(p)
    return paths


_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "lambda", "mu", "nu", "omega", "phi", "pi", "rho", "sigma",
          "tau", "theta", "xi"}
_FUNCS = {"exp": r"\exp", "log": r"\log", "min": r"\min", "max": r"\max", "sum": r"\sum"}


_MATH_WORDS = _GREEK | {"dt", "exp", "sum", "mean", "log", "+", "-", "="}


def _math_token(tok: str) -> str:
    def word(m):
        w = m.group(0)
        if w in _GREEK:
            return "\\" + w
        if w in _FUNCS:
            return _FUNCS[w]
        return r"\mathrm{" + w + "}" if len(w) > 1 else w
    tok = re.sub(r"\b([a-z])(\d)\b", r"\1_\2", tok)  # x0 -> x_0
    tok = re.sub(r"_([A-Za-z]{2,})", r"_{\1}", tok)  # u_student -> u_{student}
    tok = re.sub(r"[A-Za-z]+", word, tok)
    return tok.replace("~", r"\sim ").replace("%", r"\%")


def mathtext(text: str) -> str:
    r"""A definition written in ASCII maths (`"train loss mean_{t,i,b} x^2 + beta mean_b sum_t u^2"`) as
    Matplotlib mathtext: runs of formula tokens (those with `_ ^ { } ( ) = + - * /`, single letters, Greek
    names, numbers) become `$...$` with `\beta`, `\sum`, `\mathrm{mean}`; words stay text. Text that does
    not parse is returned with its dollar signs escaped."""
    from matplotlib.mathtext import MathTextParser

    if not text or "$" in text:
        return text
    tokens = text.split(" ")
    bare = [t.strip(",;.") for t in tokens]
    mathy = [bool(re.search(r"[_^{}=+*/\[\]~|]|\b(exp|log)\(", t)) or b in _MATH_WORDS or (len(b) == 1 and b.isalpha() and b not in "aA")
             for t, b in zip(tokens, bare)]
    out, i = [], 0
    while i < len(tokens):
        if not mathy[i]:
            out.append(tokens[i])
            i += 1
            continue
        j = i
        while j < len(tokens) and mathy[j]:
            j += 1
        run = " ".join(tokens[i:j])
        tail = run[len(run.rstrip(",;.")):]
        out.append("$" + _math_token(run.rstrip(",;.")) + "$" + tail)
        i = j
    result = " ".join(out)
    try:
        MathTextParser("path").parse(result)
    except ValueError:
        return text.replace("$", r"\$")
    return result
