"""The one Jinja2 environment over templates/ (source tree or the copy inside the wheel)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from core.links import page_ref
from core.workdays import cn_date, deadline_label

if TYPE_CHECKING:
    from core.models import CaseResult, JointTask


def templates_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):  # wheel, then source tree
        if candidate.is_dir():
            return candidate
    raise RuntimeError("templates/ not found next to core/ — broken installation")


# Markdown, link and mention syntax in text people typed (decline reasons, objections…) would
# otherwise become links, emphasis or @mentions inside an official message. Neither WeCom's nor
# DingTalk's markdown subset documents backslash escapes, so each such character is swapped for
# its full-width form, which reads the same in Chinese text and is never markup.
_MD_SWAPS = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in "[]()<>*_`#"})


def md_text(value: object) -> str:
    """User-typed text made inert inside robot markdown (``{{ reason | md_text }}``)."""
    return "" if value is None else str(value).translate(_MD_SWAPS)


def window_label(task: JointTask) -> str:
    """A task's inspection window as every message and page shows it: to its last day with
    the lead's extension, said so (000 §五.3), as the public task information must (002 二(六))."""
    shown = f"{cn_date(task.window_start)} 至 {cn_date(task.window_last_day)}"
    return f"{shown}（已延期）" if task.window_extended_to else shown


def version_label(result: CaseResult) -> str:
    """A result version as reviewers read it: its edition (第 N 版, +1 per correction) and which
    entry of the case it was, as `案件` lists them: every resubmission after a return is 第 1 版
    again, and only the entry tells the rounds apart."""
    edition = f"第 {result.edition} 版" + ("（更正）" if result.is_correction else "")
    return f"{edition} · 本案第 {result.version} 次录入"


def file_size(size: int) -> str:
    """An attachment's size as a person reads it: bytes under 1 KB (a small file is not "0 KB")."""
    if size < 1024:
        return f"{size} 字节"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(templates_dir()),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        # the templates ship with the code and change only with a restart: no stat() of each
        # template and its includes on every render
        auto_reload=False,
    )
    env.filters["md_text"] = md_text
    env.globals["page_ref"] = page_ref  # signed per recipient by the sender (core.links)
    env.filters["cn_date"] = lambda d: cn_date(d) if d else "—"
    env.filters["cn_window"] = window_label
    env.filters["cn_version"] = version_label
    env.filters["file_size"] = file_size
    env.globals["deadline"] = deadline_label  # every deadline, in messages and pages alike
    return env


def load_all_templates() -> int:
    """Compile every template now (how many): a running server then renders the templates of
    its own version to its end. Loaded on first use instead, an upgrade that replaces the
    files under a running process would pair its code with the next version's templates
    (seen: a new template's variable the old code did not pass, a 500)."""
    env = environment()
    names = env.list_templates()
    for name in names:
        env.get_template(name)
    return len(names)


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context).strip()
