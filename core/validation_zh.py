"""pydantic's validation errors in Chinese, by error type: the one translation used for the
config file (bot/config.py) and task files (core/taskfile.py). pydantic's English named
neither where the value was written nor what to write instead; each line here names the
setting (as the caller words its place), what it takes, and an example."""

from __future__ import annotations

import difflib
import json
import logging
import types
from collections.abc import Callable, Collection, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

Loc = tuple[int | str, ...]
log = logging.getLogger(__name__)

_DATE = "实际存在的日期，格式 YYYY-MM-DD"
_EXPECTED = {
    "int_parsing": "整数",
    "int_type": "整数",
    "int_from_float": "整数（不带小数）",
    "float_parsing": "数字",
    "float_type": "数字",
    "decimal_parsing": "小数（如 0.05，不带 %）",
    "decimal_type": "小数（如 0.05，不带 %）",
    "bool_parsing": "true 或 false",
    "bool_type": "true 或 false",
    "string_type": "文本（用英文双引号括起）",
    "date_parsing": _DATE,
    "date_type": _DATE,
    "date_from_datetime_parsing": _DATE,
    "date_from_datetime_inexact": _DATE,
    "time_parsing": "时间，格式 HH:MM",
    "time_type": "时间，格式 HH:MM",
    "list_type": "列表（方括号，逗号分隔）",
    "tuple_type": "列表（方括号，逗号分隔）",
    "dict_type": "一个小节",
    "model_type": "一个小节",
    "greater_than": "大于 {gt} 的数",
    "greater_than_equal": "不小于 {ge} 的数",
    "less_than": "小于 {lt} 的数",
    "less_than_equal": "不大于 {le} 的数",
    "literal_error": "以下之一：{expected}",
    "enum": "以下之一：{expected}",
    "too_short": "至少 {min_length} 项",
    "too_long": "至多 {max_length} 项",
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "至多 {max_length} 个字符",
    "string_pattern_mismatch": "符合格式 {pattern} 的文本",
    "json_invalid": "JSON 写法的值（环境变量中的列表写作 [3, 1, 0]）",
}


def reason_zh(error: ErrorDetails) -> str:
    """What is wrong with one value, in Chinese, from pydantic's error type."""
    text, detail = _reason(error)
    return text + detail


def _reason(error: ErrorDetails) -> tuple[str, str]:
    """(the Chinese line, the error type as a trailing detail when we have no words for it:
    the line then says what to do, the code is something to look up; pydantic's English
    goes to the log, not to the operator)."""
    kind, ctx = error["type"], error.get("ctx", {})
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"])), ""  # our validators' own (Chinese) words
    if kind == "missing":
        return "缺少此项", ""
    if kind == "extra_forbidden":
        return "不是可用的项", ""
    if (expected := _EXPECTED.get(kind)) is None:
        log.info(
            "no Chinese words for pydantic error %s at %s: %s", kind, error["loc"], error["msg"]
        )
        return "取值无效，请按此项的说明改写", f"（错误类型：{kind}）"
    shown = {k: _toml_choices(str(v)) if k == "expected" else v for k, v in ctx.items()}
    return "应为" + expected.format(**shown), ""


def plain_lines(err: ValidationError) -> list[str]:
    """One line per error, its place and what is wrong, never the value given (it may be a
    secret): for an error no caller put into its own words (the CLI's last resort)."""
    return [
        f"{loc_text(tuple(error['loc'])) or err.title}：{reason_zh(error)}"
        for error in err.errors(include_input=False, include_url=False)
    ]


def loc_text(loc: Loc) -> str:
    """("window", 1) as "window 第 2 项"; ("scope", "kinds") as "scope.kinds"."""
    return "".join(
        f" 第 {p + 1} 项" if isinstance(p, int) else f".{p}" if i else str(p)
        for i, p in enumerate(loc)
    )


def _toml_choices(expected: str) -> str:
    """pydantic's "'always' or 'except_key_items'" as a TOML writer types them."""
    return expected.replace("'", '"').replace(" or ", " 或 ").replace(", ", "、")


def error_lines(
    err: ValidationError,
    model: type[BaseModel],
    where: Callable[[Loc], str],
    example: Callable[[Loc], str],
    hidden: Collection[str] = (),
) -> list[str]:
    """One line per error: its place (`where`), what is wrong, the value given unless its key
    is `hidden` (secrets), the nearest known key for an unknown one, and `example`."""
    lines = []
    for error in err.errors(include_url=False):
        loc = tuple(error["loc"])
        text, detail = _reason(error)
        given = error.get("input")
        if _shown(given) and error["type"] not in _NO_INPUT and not set(map(str, loc)) & {*hidden}:
            text += f"（现为“{given}”）"
        if error["type"] == "extra_forbidden":
            text += _nearest(model, loc, given)
        elif ex := example(loc):
            text += f"，例如 {ex}"
        text += detail
        lines.append(f"{where(loc)}：{text}" if where(loc) else text)
    return lines


def _nearest(model: type[BaseModel], loc: Loc, given: Any) -> str:
    """The known key an unknown one was likely meant as; for a table, the tables there are."""
    known = keys_at(model, loc[:-1])
    if isinstance(given, dict):
        tables = [k for k in known if model_at(model, (*loc[:-1], k))]
        return "；可用的小节：" + "、".join(f"[{k}]" for k in tables) if tables else ""
    close = difflib.get_close_matches(str(loc[-1]), known, 1, 0.6)
    return f"，是不是“{close[0]}”？" if close else ""


_NO_INPUT = ("missing", "extra_forbidden")


def _shown(value: Any) -> bool:
    return isinstance(value, str | int | float) and len(str(value)) <= 60


def keys_at(model: type[BaseModel], loc: Loc) -> Sequence[str]:
    """The keys the part of `model` at `loc` takes (none when it is not a model)."""
    found = model_at(model, loc)
    return tuple(found.model_fields) if found else ()


def model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model that validates the part at `loc` (list indices skipped)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    """`X | None`, `list[X]`: the X a value there is validated as."""
    if get_origin(annotation) in (Union, types.UnionType, list, tuple):
        return next((a for a in map(_inner_model, get_args(annotation)) if a is not None), None)
    return annotation if annotation is not type(None) else None


def example_at(model: type[BaseModel], loc: Loc) -> Any:
    """A valid value of the key at `loc`: the field's example, else its default (None: none)."""
    return next(iter(examples_at(model, loc)), None)


def examples_at(model: type[BaseModel], loc: Loc) -> list[Any]:
    """Valid values of the key at `loc`: the field's examples, else its default."""
    keys = [part for part in loc if isinstance(part, str)]
    if not keys:
        return []
    owner = model_at(model, tuple(keys[:-1]))
    field = owner.model_fields.get(keys[-1]) if owner else None
    if field is None:
        return []
    if field.examples:
        return list(field.examples)
    value = field.get_default(call_default_factory=True)
    return [] if value is None or isinstance(value, BaseModel) else [value]


def toml_value(value: Any) -> str:
    """`value` as written in a TOML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)
