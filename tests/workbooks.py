"""Writing XLSX files for the import tests."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import openpyxl


def xlsx(path: Path, *sheets: tuple[str, list[list[Any]]]) -> Path:
    """A workbook with the given sheets, in order (the first is the one an importer reads)."""
    wb = openpyxl.Workbook()
    first = wb.active
    assert first is not None
    wb.remove(first)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def csv_file(path: Path, rows: list[list[Any]], encoding: str = "utf-8") -> Path:
    """A CSV file of the rows, in the encoding an office's tool saved it in."""
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path
