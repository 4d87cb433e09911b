"""The templates' 填写说明 tell what the importers require, and the holiday example the rule."""

from __future__ import annotations

import tomllib
from pathlib import Path

import openpyxl

from core.render import templates_dir
from core.rules import Rules
from core.sheets import NOTES_SHEET, write_template


def required_in_notes(kind: str, tmp_path: Path) -> dict[str, str]:
    wb = openpyxl.load_workbook(write_template(kind, tmp_path / f"{kind}.xlsx", year=2026))
    rows = list(wb[NOTES_SHEET].iter_rows(min_row=2, values_only=True))
    return {str(r[0]): str(r[1] or "") for r in rows}


def test_columns_every_row_must_fill_are_marked_required(tmp_path: Path) -> None:
    """事项类别 was marked optional while every row without it was refused; likewise 利害关系
    and a plan's 参与部门."""
    assert required_in_notes("items", tmp_path)["事项类别"] == "必填"
    assert required_in_notes("conflicts", tmp_path)["利害关系"] == "必填"
    assert required_in_notes("plan", tmp_path)["参与部门"] == "必填"


def test_the_holiday_example_names_the_result_entry_period_of_the_rules() -> None:
    """000 §十, 004 第十九条: results are entered within 20 working days (it said 5)."""
    text = (templates_dir() / "holidays.example.toml").read_text(encoding="utf-8")
    tomllib.loads(text)
    assert f"结果录入的 {Rules().result_entry_workdays} 个工作日" in text
