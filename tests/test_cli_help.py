"""Every command's `--help` describes each of its arguments and options in Chinese."""

import argparse

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
