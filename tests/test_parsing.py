"""Command parsing tolerates what people type on phones."""

import pytest

from handlers.base import match_command
from handlers.commands import COMMANDS


@pytest.mark.parametrize(
    "text",
    [
        "任务：LJ-2026-001",
        "任务: LJ-2026-001",
        "任务，LJ-2026-001",
        "＠联检助手　任务 LJ-2026-001",
        "@联检助手 任务LJ-2026-001",
        "任务 LJ-2026-001。",  # what a phone's input method adds: a full stop,
        "任务 LJ—2026—001",  # its dash (an em dash),
        "任务 “LJ-2026-001”，",  # quotes and a comma
    ],
)
def test_separators_and_mentions(text):
    found = match_command(text, COMMANDS)
    assert found is not None
    command, args = found
    assert command.name == "任务" and args.code(0) == "LJ-2026-001"


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("案件 LJ-2026-001-7", "LJ-2026-001-007"),  # the case's zeros left out
        ("案件 lj-2026-001-07", "LJ-2026-001-007"),
        ("案件 LJ-2026-001-007", "LJ-2026-001-007"),
        ("案件 LJ-2026-001-1000", "LJ-2026-001-1000"),  # a task's thousandth case
        ("任务 LJ-2026-001", "LJ-2026-001"),  # a task's number is not a case's
        ("验证 LJ-2026-001-T1", "LJ-2026-001-T1"),  # nor a draw's
    ],
)
def test_a_case_number_without_its_zeros_is_read_in_full(typed: str, code: str) -> None:
    """`LJ-2026-001-7` was not found: a case's number has three digits (core.draws.targets),
    and one written with fewer can mean only the case with those zeros before them."""
    found = match_command(typed, COMMANDS)
    assert found is not None and found[1].code(0) == code
