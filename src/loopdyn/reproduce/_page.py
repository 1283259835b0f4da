"""The HTML report: one self-contained page (inline style, no script, no remote resource) with, per
experiment, its figures captioned by the paper's claim and the measured numbers, a table of stage
boundaries with their spread over seeds, the analysis summary, the configuration, versions and commit."""

from __future__ import annotations

import datetime
import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1400px;
       padding: 1em 2em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.92em; max-width: 1100px; } .claim { color: #444; } .measured { color: #113; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; vertical-align: top; }
th { background: #f2f2f2; } td.l, th.l { text-align: left; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
.note { color: #7a4b00; } .error { color: #a00; font-weight: bold; } .small { font-size: 0.85em; color: #555; }
nav li { margin: 0.1em 0; }
"""

STAT_COLUMNS = (
    ("stage1_end", "stage-1 end", True),
    ("stage2_end", "stage-2 end (stable from)", True),
    ("stabilisation_epoch", "rho < 1 from", True),
    ("final_train_loss", "final train loss", False),
    ("final_test_loss", "final test loss", False),
)


@dataclass
class Section:
    """One experiment (or store) of the page."""

    title: str
    experiment: str
    description: str = ""
    store: str = ""  # relative to the page's folder
    figures: list[dict] = field(default_factory=list)  # {"name", "png", "pdf", "claim", "measured"}
    stats: list[dict] = field(default_factory=list)  # rows of loopdyn.experiments.store_statistics
    tables: list[dict] = field(default_factory=list)  # {"title", "columns", "rows"} of the experiment
    summary: str = ""
    phases: list = field(default_factory=list)  # [[label, config dict], ...]
    provenance: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    protocol: str = ""
    notes: list[str] = field(default_factory=list)
    error: str = ""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


def _cell(s: dict | None, epochs: bool) -> str:
    if not s:
        return "-"
    if s.get("median") is None:
        return "never" if epochs and s.get("n") else "-"
    f = (lambda v: f"{v:.0f}") if epochs else (lambda v: f"{v:.4g}")
    text = f"{f(s['median'])} [{f(s['q25'])}, {f(s['q75'])}]"
    if s["n_valid"] < s["n"]:
        text += f" ({s['n_valid']}/{s['n']})"
    return _e(text)


def stats_table(rows: list[dict]) -> str:
    """The table of stage boundaries, final losses and gains per condition: median [IQR] (k/n)."""
    if not rows:
        return "<p class='note'>No runs.</p>"
    gains = [k for k in rows[0]["metrics"] if re.fullmatch(r"k\d+", k)]
    cols = [c for c in STAT_COLUMNS if any(c[0] in r["metrics"] for r in rows)]
    head = "".join(f"<th>{_e(label)}</th>" for _, label, _ in cols) + "".join(f"<th>final {_e(g)}</th>" for g in gains)
    out = [f"<table><tr><th class='l'>condition</th><th>runs</th><th>epochs</th>{head}<th>diverged</th></tr>"]
    for r in rows:
        cells = "".join(f"<td>{_cell(r['metrics'].get(name), ep)}</td>" for name, _, ep in cols)
        cells += "".join(f"<td>{_cell(r['metrics'].get(g), False)}</td>" for g in gains)
        out.append(f"<tr><td class='l'>{_e(r['condition'])}</td><td>{r['runs']}</td><td>{r.get('epochs', '')}</td>"
                   f"{cells}<td>{r['diverged']}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _table(t: dict) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in t["columns"])
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in t["rows"])
    return f"<h4>{_e(t['title'])}</h4><table><tr>{head}</tr>{body}</table>"


def toml_text(d: dict) -> str:
    """A configuration dict (as :func:`loopdyn.config.to_dict` gives it) as TOML text."""

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, str):
            return json.dumps(v)
        return str(v)

    lines = [f"{k} = {value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines.extend(f"{json.dumps(kk) if '.' in kk else kk} = {value(vv)}" for kk, vv in v.items())
    return "\n".join(lines) + "\n"


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def phase_differences(phases: list) -> list[str]:
    """One line per phase: its label and the keys in which its configuration differs from phase 0's."""
    if not phases:
        return []
    first = _flat(phases[0][1])
    lines = []
    for label, d in phases:
        flat = _flat(d)
        diff = [f"{k} = {json.dumps(v)}" for k, v in flat.items() if first.get(k) != v and k != "description"]
        lines.append(f"{label}: " + (", ".join(diff) if diff else "(the configuration below)"))
    return lines


def _section(s: Section) -> str:
    out = [f"<section id='{_anchor(s.title)}'><h2>{_e(s.title)}</h2>"]
    if s.description:
        out.append(f"<p>{_e(s.description)}</p>")
    meta = []
    if s.store:
        meta.append(f"experiment <code>{_e(s.experiment)}</code>, store <a href='{_e(s.store)}/'><code>{_e(s.store)}</code></a>")
    if s.protocol:
        meta.append(_e(s.protocol))
    if s.timings:
        meta.append("wall time: " + ", ".join(f"{_e(k)} {v:.1f} s" for k, v in s.timings.items()))
    if meta:
        out.append("<p class='small'>" + "<br>".join(meta) + "</p>")
    if s.error:
        out.append(f"<p class='error'>Failed: {_e(s.error)}</p>")
    for note in s.notes:
        out.append(f"<p class='note'>{_e(note)}</p>")
    for f in s.figures:
        cap = []
        if f.get("claim"):
            cap.append(f"<span class='claim'><b>Paper:</b> {_e(f['claim'])}</span>")
        if f.get("measured"):
            cap.append(f"<span class='measured'><b>Measured:</b> {_e(f['measured'])}</span>")
        pdf = f" (<a href='{_e(f['pdf'])}'>PDF</a>)" if f.get("pdf") else ""
        out.append(f"<figure><a href='{_e(f['png'])}'><img src='{_e(f['png'])}' alt='{_e(f['name'])}' loading='eager'></a>"
                   f"<figcaption><b>{_e(f['name'])}</b>{pdf}. {' '.join(cap)}</figcaption></figure>")
    if s.stats:
        out.append("<h3>Stage boundaries, final losses and gains over seeds</h3>"
                   "<p class='small'>Median [interquartile range] over the runs of each condition; (k/n): the runs "
                   "where the value exists (an epoch: the event happened; a loss: the run did not diverge). Epochs "
                   "of each condition's own phase; stage 1 = [0, s1), stage 2 = [s1, s2), stage 3 from s2.</p>")
        out.append(stats_table(s.stats))
    for t in s.tables:
        out.append(_table(t))
    if s.summary:
        out.append(f"<details><summary>analysis summary</summary><pre>{_e(s.summary)}</pre></details>")
    if s.phases:
        diffs = "\n".join(phase_differences(s.phases))
        out.append(f"<details><summary>configuration</summary><p class='small'>phases:</p><pre>{_e(diffs)}</pre>"
                   f"<pre>{_e(toml_text(s.phases[0][1]))}</pre></details>")
    if s.provenance:
        out.append("<details><summary>versions and commit</summary><pre>"
                   f"{_e(json.dumps(s.provenance, indent=1))}</pre></details>")
    out.append("</section>")
    return "\n".join(out)


def write_page(path: Path, title: str, sections: list[Section], intro: list[str] = (), extra_html: str = "") -> Path:
    """Write the report page `path` (`index.html`); store and figure paths in the sections are relative to its
    folder, so the page's links hold when the folder is moved."""
    path = Path(path)
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    nav = "".join(f"<li><a href='#{_anchor(s.title)}'>{_e(s.title)}</a>{' (failed)' if s.error else ''}</li>"
                  for s in sections)
    body = "\n".join(_section(s) for s in sections)
    intro_html = "".join(f"<p>{_e(p)}</p>" for p in intro)
    text = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1><p class='small'>written {_e(now)}</p>"
            f"{intro_html}{extra_html}<nav><ul>{nav}</ul></nav>{body}</body></html>\n")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
