"""The report's table as text other tools take: Markdown (a README, a paper draft) or CSV (a
spreadsheet, pandas). The same rows and cells as the terminal table, numbers as ``fmt`` writes
them in Markdown and at full precision in CSV."""

from __future__ import annotations

import csv
import io


def table_columns(rows: list[dict], columns: tuple[str, ...]) -> list[str]:
    """The columns any row fills (the kind column stays internal)."""
    return [c for c in columns if c != "kind" and any(r.get(c) is not None for r in rows)]


def as_markdown(rows: list[dict], columns: list[str], fmt) -> str:
    def cell(v, c):
        return fmt(v, c).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c), c) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def as_csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return buf.getvalue()
