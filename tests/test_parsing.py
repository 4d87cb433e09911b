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
