"""Writing XLSX files for the import tests."""

from __future__ import annotations

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
