"""A tidy table as one self-contained HTML page to read in the report: its description (the
table's caption, reStructuredText) above it, numbers to four significant digits, right-aligned,
a header that stays in view. Snakemake's report offers a TSV only as a download.

Long tables (per-layer-and-head rows of a large grid) show their first `max_rows` rows, and the
page says how many it leaves out and where the full TSV is.
"""

from __future__ import annotations

import html
import numbers
from pathlib import Path

import pandas as pd

from bioprobe.io import atomic_path

__all__ = ["MAX_ROWS", "rst_to_html", "table_html", "write_table_html"]

#: rows shown; a page of 2000 rows is ~0.3 MB, and more is for a spreadsheet, not a report
MAX_ROWS = 2000

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 16px; background: #fff; }
h1 { font-size: 17px; margin: 0 0 6px; }
.description { max-width: 62em; color: #333; }
.description p { margin: 0 0 8px; }
.note { color: #8a4b00; margin: 6px 0 10px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e3e3e3; white-space: nowrap; }
th { position: sticky; top: 0; background: #f2f2f2; text-align: left;
  border-bottom: 2px solid #bbb; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
"""


def rst_to_html(text: str) -> str:
    """A caption's reStructuredText as an HTML fragment (its body)."""
    from docutils.core import publish_parts

    return publish_parts(text, writer="html")["body"]


def _cell(value) -> tuple[str, bool]:
    """A cell's text and whether it is a number (right-aligned)."""
    if value is None or (isinstance(value, numbers.Real) and pd.isna(value)):
        return "", True
    if isinstance(value, bool):
        return str(value), False
    if isinstance(value, numbers.Integral):
        return str(value), True
    if isinstance(value, numbers.Real):
        return f"{value:.4g}", True
    return html.escape(str(value)), False


def _rows(df: pd.DataFrame) -> str:
    out = []
    for row in df.astype(object).itertuples(index=False):
        cells = []
        for value in row:
            text, numeric = _cell(value)
            cells.append(f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out)


def table_html(
    df: pd.DataFrame, *, title: str, description_html: str, source: str, max_rows: int = MAX_ROWS
) -> str:
    """The page: `title`, the table's description (HTML), then its first `max_rows` rows;
    `source` names the full TSV."""
    shown = df.head(max_rows)
    note = ""
    if len(df) > len(shown):
        note = (
            f'<p class="note">The first {len(shown):,} of {len(df):,} rows; the full table is'
            f" <code>{html.escape(source)}</code> (the report's TSV).</p>"
        )
    header = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<div class="description">{description_html}</div>
{note}<table>
<thead><tr>{header}</tr></thead>
<tbody>
{_rows(shown)}
</tbody>
</table>
</body></html>
"""


def write_table_html(
    tsv: str | Path,
    out: str | Path,
    *,
    title: str,
    caption_rst: str,
    max_rows: int = MAX_ROWS,
) -> Path:
    """`tsv` rendered by `table_html` into `out` (atomically), its caption above it."""
    df = pd.read_csv(tsv, sep="\t")
    page = table_html(
        df,
        title=title,
        description_html=rst_to_html(caption_rst),
        source=str(tsv),
        max_rows=max_rows,
    )
    out = Path(out)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return out
