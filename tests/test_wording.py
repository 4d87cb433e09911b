"""One concept, one word in what users read (docs/domain.md glossary): the lead department is
牵头部门 in every message, page, document and export — the seeds say 发起部门 too (004), and
a refusal saying one beside a refusal saying the other read as two different departments."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# column names an import accepts: a county's spreadsheet may say either
ACCEPTED_HEADERS = {ROOT / "core" / "imports" / "annual_plan.py"}
JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)


def _user_strings(path: Path) -> list[str]:
    """The string literals of a module, docstrings and comments aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    ]


def test_the_lead_department_is_called_牵头部门_everywhere_users_read() -> None:
    found = [
        str(p.relative_to(ROOT))
        for folder in ("core", "bot", "handlers")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p not in ACCEPTED_HEADERS and any("发起部门" in s for s in _user_strings(p))
    ]
    found += [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "templates").rglob("*"))
        if p.is_file() and "发起部门" in JINJA_COMMENT.sub("", p.read_text(encoding="utf-8"))
    ]
    assert found == []
