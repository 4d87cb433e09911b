"""The one Jinja2 environment over templates/ (source tree or the copy inside the wheel)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape


def templates_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):  # wheel, then source tree
        if candidate.is_dir():
            return candidate
    raise RuntimeError("templates/ not found next to core/ — broken installation")


@cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(templates_dir()),
                      autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
    env.filters["cn_date"] = lambda d: f"{d.year}年{d.month}月{d.day}日" if d else "—"
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context).strip()
