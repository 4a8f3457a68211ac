"""The report of a run folder as files: report.md and a self-contained
report.html (plots embedded), rendered from the one document
(document.py), with the plots, trials.csv and tensorboard/ beside them."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from tlbench.files import replaced_together, write_text_atomic
from tlbench.reports.analysis import RunAnalysis
from tlbench.reports.columns import html_table, markdown_table
from tlbench.reports.document import FILE, Bullets, Document, Image, Note, Paragraph, Table, build
from tlbench.results import REPORT_HTML, REPORT_MD


def _text(block: Paragraph | Note) -> str:
    """A paragraph's Markdown; a note's as a paragraph: `**Warning**: text`."""
    return f"**{block.label.rstrip(':').capitalize()}**: {block.text}" if isinstance(block, Note) else block.text


def to_markdown(document: Document) -> str:
    lines = [f"# {document.title}", ""]
    for section in document.sections:
        blocks = section.shown_in(FILE)
        if blocks:
            lines += [f"## {section.title}", ""]
        for block in blocks:
            if isinstance(block, (Paragraph, Note)):
                lines += [_text(block), ""]
            elif isinstance(block, Bullets):
                lines += [f"- {item}" for item in block.items] + [""]
            elif isinstance(block, Table):
                lines += [markdown_table(block.rows, block.columns, ordered=block.ordered)]
            elif isinstance(block, Image):
                lines += [f"![{block.alt}]({block.file})", ""]
    return "\n".join(lines)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 96em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; }
th { background: #f0f0f0; } td.num { text-align: right; } tr.failed td { color: #b00; }
code { background: #f4f4f4; padding: 0 0.2em; } img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
"""


def to_html(document: Document, folder: Path) -> str:
    """One file: styles inline, images embedded as base64 PNG; no network."""
    title = html.escape(document.title)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">']
    parts += [f"<title>{title}</title><style>{_STYLE}</style></head><body>", f"<h1>{title}</h1>"]
    for section in document.sections:
        blocks = section.shown_in(FILE)
        if blocks:
            parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in blocks:
            if isinstance(block, (Paragraph, Note)):
                parts.append(f"<p>{_inline(_text(block))}</p>")
            elif isinstance(block, Bullets):
                parts.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>")
            elif isinstance(block, Table):
                parts.append(html_table(block.rows, block.columns, ordered=block.ordered))
            elif isinstance(block, Image):
                data = base64.b64encode((folder / block.file).read_bytes()).decode("ascii")
                alt = html.escape(block.alt)
                image = f'<img src="data:image/png;base64,{data}" alt="{alt}">'
                parts.append(f"<figure>{image}<figcaption>{alt}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _inline(text: str) -> str:
    """The Markdown the report's paragraphs use: `code` and **bold**."""
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def write_report(analysis: RunAnalysis) -> dict[str, Path]:
    """report.md, report.html and the plots: all replacing the old ones, or none (`replaced_together`)."""
    from tlbench.reports.export import write_exports
    from tlbench.reports.plots import write_plots

    run = analysis.run
    with replaced_together(run.run_dir) as staging:
        plots = write_plots(analysis, staging)
        document = build(analysis, plots)
        write_text_atomic(staging / REPORT_MD, to_markdown(document))
        write_text_atomic(staging / REPORT_HTML, to_html(document, staging))
        write_exports(analysis, staging)  # trials.csv with these; tensorboard/ replaced
    return {name: run.run_dir / name for name in (REPORT_MD, REPORT_HTML, *plots)}
