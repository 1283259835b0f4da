"""MkDocs hook: pages generated at build time, so that the site cannot drift from the code.

- `index.md` and `changelog.md` from `README.md` and `CHANGELOG.md` (links into `docs/` rewritten);
- the key reference appended to `configs.md`, from `loopdyn.config.config_tables()` (the schema's fields
  and every part's parameters: doc, type, default, choices);
- `examples/NAME.md` from `examples/NAME.py` (jupytext percent format): with the outputs of the executed
  notebook `NAME.ipynb` in `$LOOPDYN_EXECUTED_EXAMPLES` when that is set (`execute_examples.py` beside
  this file writes them; the test suite executes the examples once and builds the site from them), else
  code and text alone.

Nothing is fetched from the network.
"""

from __future__ import annotations

import base64
import os
import re
import sys
from pathlib import Path

from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parent))
from execute_examples import EXAMPLES, ROOT  # noqa: E402  (the file beside this one)


def _relink(text: str) -> str:
    text = re.sub(r"\]\(docs/([^)]+)\)", r"](\1)", text)
    return text.replace("](CHANGELOG.md)", "](changelog.md)")


def _cell(text: str) -> str:
    """Text for a table cell: pipes and angle brackets shown as such, not read as cell borders or HTML."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _keys_markdown() -> str:
    from loopdyn.config import config_tables

    out = []
    for t in config_tables():
        out.append(f"### `{t.title}`\n\n{t.doc}\n")
        if t.keys:
            out.append("| key | type | default | meaning |\n|---|---|---|---|")
            for k in t.keys:
                doc = k.doc + (f"; choices: {k.choices}" if k.choices else "")
                out.append(f"| `{k.name}` | {_cell(k.type)} | `{k.default}` | {_cell(doc)} |")
            out.append("")
    return "\n".join(out)


def _notebook(name: str):
    import jupytext
    import nbformat

    executed = os.environ.get("LOOPDYN_EXECUTED_EXAMPLES")
    if executed and (Path(executed) / f"{name}.ipynb").is_file():
        return nbformat.read(Path(executed) / f"{name}.ipynb", as_version=4), True
    return jupytext.read(ROOT / "examples" / f"{name}.py"), False


def _outputs(cell) -> list[str]:
    parts = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            parts.append("```text\n" + o.text.rstrip() + "\n```")
        elif o.output_type in ("execute_result", "display_data"):
            data = o.get("data", {})
            if "image/png" in data:
                png = data["image/png"]
                png = png if isinstance(png, str) else base64.b64encode(png).decode()
                parts.append(f'<img alt="figure" src="data:image/png;base64,{png.strip()}"/>')
            elif "text/plain" in data:
                parts.append("```text\n" + data["text/plain"].rstrip() + "\n```")
        elif o.output_type == "error":
            raise RuntimeError(f"an executed example holds an error: {o.ename}: {o.evalue}")
    return parts


def example_markdown(name: str) -> str:
    nb, executed = _notebook(name)
    out = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            out.append(cell.source)
        elif cell.cell_type == "code":
            out.append("```python\n" + cell.source + "\n```")
            out.extend(_outputs(cell))
    note = (f"*Executed on the test suite's quick settings (`LOOPDYN_EXAMPLE_QUICK=1`). Source: `examples/{name}.py`, a "
            f"jupytext notebook; run it as a script or open it with jupytext.*" if executed else
            f"*Source: `examples/{name}.py`, a jupytext notebook (shown without outputs in this build); run it as a "
            f"script or open it with jupytext.*")
    return "\n\n".join(out) + "\n\n" + note + "\n"


def on_files(files, config):
    generated = {
        "index.md": _relink((ROOT / "README.md").read_text()),
        "changelog.md": (ROOT / "CHANGELOG.md").read_text(),
        **{f"examples/{n}.md": example_markdown(n) for n in EXAMPLES},
    }
    for path, content in generated.items():
        files.append(File.generated(config, path, content=content))
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "configs.md":
        return markdown + "\n" + _keys_markdown()
    return markdown
