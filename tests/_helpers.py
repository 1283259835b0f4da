"""Small conveniences shared by the tests (not part of loopdyn)."""

from loopdyn.agents import make_core
from loopdyn.system import rollout


def closed_loop(spec, plant, params, x0, T, *, g=0.0, return_hidden=False):
    """`(xs, us[, hs])` of a noise-free regulation episode: one :func:`loopdyn.system.rollout`."""
    traj = rollout(make_core(spec, params, g), plant, x0, T, emit=("x", "u", "h"))
    return (traj.x, traj.u, traj.h) if return_hidden else (traj.x, traj.u)


def text_overlaps(fig, tolerance: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of visible, non-empty text artists of a drawn Matplotlib figure (titles, suptitle, panel letters,
    axis and tick labels, legends, annotations) whose tight bounding boxes overlap by more than `tolerance`
    pixels in both directions."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    tick_labels, drawn = set(), set()
    for ax in fig.get_axes():
        for axis in ax._axis_map.values():
            for tick in [*axis.majorTicks, *axis.minorTicks]:
                tick_labels.update((id(tick.label1), id(tick.label2)))
            if not (axis.get_visible() and ax.get_visible()):
                continue
            for tick in axis._update_ticks():  # the ticks inside the view, which are drawn
                drawn.update(id(lb) for lb, on in ((tick.label1, tick.label1.get_visible()),
                                                   (tick.label2, tick.label2.get_visible())) if on)
    texts = []
    for t in fig.findobj(Text):
        if not (t.get_visible() and t.get_text().strip()) or (id(t) in tick_labels and id(t) not in drawn):
            continue
        box = t.get_window_extent(renderer)
        if box.width > 0 and box.height > 0:
            texts.append((t, box))
    out = []
    for i, (a, ba) in enumerate(texts):
        for b, bb in texts[i + 1:]:
            w = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
            h = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
            same = a.get_text() == b.get_text() and all(abs(u - v) < 0.5 for u, v in zip(ba.extents, bb.extents))
            if w > tolerance and h > tolerance and not same:  # one label drawn twice (twin axes) reads as one
                out.append((a.get_text(), b.get_text()))
    return out


PRINT_WIDTH = 7.2  # inches: a journal's two-column width (183 mm)


def small_text(fig, minimum: float = 5.0) -> list[tuple[str, float]]:
    """Visible texts of a figure smaller than `minimum` points once the figure is scaled to the print width
    (:data:`PRINT_WIDTH`; figures narrower than it are not enlarged)."""
    from matplotlib.text import Text

    scale = min(1.0, PRINT_WIDTH / fig.get_figwidth())
    return [(t.get_text(), round(t.get_fontsize() * scale, 2)) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and t.get_fontsize() * scale < minimum]


def assert_refused_in_one_line(cfg, out, needles) -> None:
    """`loopdyn train cfg --out out` exits 2 with one line naming every one of `needles`, and writes nothing."""
    from typer.testing import CliRunner

    from loopdyn.cli import app

    res = CliRunner().invoke(app, ["train", str(cfg), "--out", str(out)])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and all(n in lines[0] for n in needles), res.output
    assert not out.exists() or not any(out.iterdir())
