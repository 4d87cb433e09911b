"""Every command's `--help` describes each of its arguments and options in Chinese."""

import argparse
import re
from pathlib import Path

import pytest

from bot.cli import _parser


def _commands(
    parser: argparse.ArgumentParser, path: str = "lianjian"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _commands(child, f"{path} {name}")
    return found


def test_every_argument_and_option_has_a_help_text():
    undescribed = [
        f"{path}: {'/'.join(action.option_strings) or action.dest}"
        for path, parser in _commands(_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert not undescribed, undescribed


def test_every_positional_argument_is_named_in_chinese():
    """Usage lines and errors name a positional by its metavar: `chat bind` showed “to”, a
    wrong import kind “参数 kind”."""
    english = [
        f"{path}: {name}"
        for path, parser in _commands(_parser())
        for action in parser._positionals._group_actions
        if not isinstance(action, argparse._SubParsersAction)
        and (name := str(action.metavar or action.dest)).isascii()
    ]
    assert not english, english


def test_every_option_value_is_named_in_chinese_and_choices_wrap_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Options showed argparse's English metavars (--db DB, --rejects REJECTS, --show-errors
    N) beside Chinese positionals, and the import kinds wrapped mid-word ("c / onflicts")."""
    monkeypatch.setenv("COLUMNS", "80")  # the terminal the tester wrapped at
    english = [
        f"{path}: {match.group(0)}"
        for path, parser in _commands(_parser())
        for match in re.finditer(r"(--[\w-]+|-\w) [A-Z_]+\b", parser.format_help())
    ]
    assert not english, english
    for path, parser in _commands(_parser()):
        if path in ("lianjian import", "lianjian template"):
            text = parser.format_help()
            assert "exclusions" in text and "conflicts" in text, text


def _readme_rows() -> list[tuple[str, str]]:
    """(the command cell, the whole row) of each row of the README's CLI table."""
    readme = Path(__file__).resolve().parent.parent / "README.md"
    return [
        (line.split(" | ", 1)[0], line)
        for line in readme.read_text("utf-8").splitlines()
        if line.startswith("| `lianjian ")
    ]


COMMON_OPTIONS = {"-h", "--help", "--db", "--config"}  # told once under the table


def test_every_command_and_option_is_in_the_readmes_cli_table():
    """The README's CLI table is the operator's reference: 1c61a4e gave report year, export
    results, draw export-pool and summary a --force their rows never showed, and import's
    --past-year and --show-errors and db link-secret were missing too (-o stands for
    --output)."""
    rows = _readme_rows()
    missing = []
    for path, parser in _commands(_parser()):
        if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
            continue
        words = path.split()[1:]
        row = next(
            (
                line
                for cell, line in rows
                if re.search(rf"(lianjian |`){re.escape(' '.join(words))}\b", cell)
            ),
            None,
        )
        if row is None:
            missing.append(path)
            continue
        for action in parser._optionals._group_actions:
            names = set(action.option_strings) - COMMON_OPTIONS
            if names and not any(re.search(rf"{re.escape(n)}\b", row) for n in names):
                missing.append(f"{path} {'/'.join(sorted(names))}")
    assert not missing, missing
