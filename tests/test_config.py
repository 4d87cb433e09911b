"""Settings from TOML + LIANJIAN_* environment, redaction, the example file, the link secret."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from bot.config import Settings, link_secret, load_settings, secret_file_path
from tests.server_helpers import random_aes_key

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("LIANJIAN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./config.toml


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, "utf-8")
    return path


def test_defaults_without_any_file() -> None:
    s = load_settings()
    assert (s.host, s.port, s.database_url) == ("127.0.0.1", 8080, "lianjian.sqlite3")
    assert s.enabled_platforms() == []
    assert s.simulator.enabled is True and s.scheduler.timezone == "Asia/Shanghai"
    assert s.base_url == "http://127.0.0.1:8080"


def test_toml_then_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aes = random_aes_key()
    path = write(
        tmp_path,
        f"""
port = 9000
[rules]
decline_reason_min_chars = 20
[wecom]
corp_id = "ww1"
agent_id = 1000002
secret = "from-file"
token = "tok"
encoding_aes_key = "{aes}"
[sender]
group_robot_per_minute = 10
""",
    )
    monkeypatch.setenv("LIANJIAN_WECOM__SECRET", "from-env")
    monkeypatch.setenv("LIANJIAN_PORT", "9100")
    monkeypatch.setenv("LIANJIAN_SENDER__MAX_ATTEMPTS", "4")
    s = load_settings(path, port=9200)
    assert s.port == 9200  # CLI flag beats env beats file
    assert s.wecom is not None and s.wecom.secret == "from-env" and s.wecom.token == "tok"
    assert s.sender.group_robot_per_minute == 10 and s.sender.max_attempts == 4
    assert s.rules.decline_reason_min_chars == 20
    assert s.enabled_platforms() == ["wecom"]


def test_platform_enabled_from_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIANJIAN_DINGTALK__APP_KEY", "ding-key")
    monkeypatch.setenv("LIANJIAN_DINGTALK__APP_SECRET", "ding-secret")
    monkeypatch.setenv("LIANJIAN_DINGTALK__ROBOT_CODE", "ding-robot")
    assert load_settings().enabled_platforms() == ["dingtalk"]


def test_example_file_loads_with_no_platform_and_documents_every_key() -> None:
    s = load_settings(EXAMPLE)
    assert s.enabled_platforms() == []
    documented = tomllib.loads(EXAMPLE.read_text("utf-8"))

    def missing(model: type[BaseModel], section: dict[str, Any], prefix: str) -> list[str]:
        gaps = []
        for name, info in model.model_fields.items():
            if name not in section:
                gaps.append(prefix + name)
                continue
            sub = info.annotation
            args = getattr(sub, "__args__", ())
            sub = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), sub)
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                gaps += missing(sub, section[name], f"{prefix}{name}.")
        return gaps

    assert missing(Settings, documented, "") == []


def test_half_filled_platform_section_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[wecom]\ncorp_id = "ww1"\ntoken = "t"\n')
    with pytest.raises(ValidationError):
        load_settings(path)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "nope.toml")


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        load_settings(write(tmp_path, "prot = 80\n"))


def test_redacted_hides_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    aes = random_aes_key()
    secrets = {
        "LIANJIAN_WECOM__SECRET": "s3cret-app",
        "LIANJIAN_WECOM__TOKEN": "s3cret-token",
        "LIANJIAN_WECOM__ENCODING_AES_KEY": aes,
        "LIANJIAN_DINGTALK__APP_SECRET": "s3cret-ding",
        "LIANJIAN_LINK_SECRET": "s3cret-link" * 4,
        "LIANJIAN_DATABASE_URL": "postgresql://lj:s3cret-pw@db:5432/lianjian",
    }
    for k, v in secrets.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LIANJIAN_WECOM__CORP_ID", "ww1")
    monkeypatch.setenv("LIANJIAN_WECOM__AGENT_ID", "1000002")
    monkeypatch.setenv("LIANJIAN_DINGTALK__APP_KEY", "k")
    monkeypatch.setenv("LIANJIAN_DINGTALK__ROBOT_CODE", "r")
    shown = repr(load_settings().redacted())
    for value in secrets.values():
        assert value not in shown
    assert "s3cret" not in shown and "ww1" in shown and "db:5432" in shown


def test_link_secret_generated_once_private_and_stable(tmp_path: Path) -> None:
    s = load_settings(database_url=str(tmp_path / "data" / "lj.sqlite3"))
    (tmp_path / "data").mkdir()
    first = link_secret(s)
    path = secret_file_path(s)
    assert path == tmp_path / "data" / ".lianjian-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32 and link_secret(s) == first
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_configured_link_secret_wins(tmp_path: Path) -> None:
    s = load_settings(link_secret="k" * 40, database_url=str(tmp_path / "x.sqlite3"))
    assert link_secret(s) == b"k" * 40
    assert not secret_file_path(s).exists()


WECOM_ENV = {
    "LIANJIAN_WECOM__CORP_ID": "ww1",
    "LIANJIAN_WECOM__AGENT_ID": "1000002",
    "LIANJIAN_WECOM__SECRET": "s",
    "LIANJIAN_WECOM__TOKEN": "t",
}


@pytest.mark.parametrize(
    ("section", "platform", "expected"),
    [
        ("", False, True),  # nothing configured: a local trial, the simulator is the chat
        ("", True, False),  # a platform configured: off unless asked for
        ('[simulator]\nenabled = "auto"\n', True, False),
        ('[simulator]\nenabled = "auto"\n', False, True),
        ("[simulator]\nenabled = true\n", True, True),
        ("[simulator]\nenabled = false\n", False, False),
    ],
)
def test_simulator_auto_is_off_once_a_platform_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, section: str, platform: bool, expected: bool
) -> None:
    if platform:
        for k, v in {**WECOM_ENV, "LIANJIAN_WECOM__ENCODING_AES_KEY": random_aes_key()}.items():
            monkeypatch.setenv(k, v)
    s = load_settings(write(tmp_path, section))
    assert s.enabled_platforms() == (["wecom"] if platform else [])
    assert s.simulator.enabled is expected


def test_simulator_auto_from_the_environment_and_the_example_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k, v in {**WECOM_ENV, "LIANJIAN_WECOM__ENCODING_AES_KEY": random_aes_key()}.items():
        monkeypatch.setenv(k, v)
    assert load_settings(EXAMPLE).simulator.enabled is False  # example + credentials from env
    monkeypatch.setenv("LIANJIAN_SIMULATOR__ENABLED", "true")
    assert load_settings(EXAMPLE).simulator.enabled is True


def test_empty_platform_section_does_not_turn_the_simulator_off(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[dingtalk]\napp_key = ""\n[simulator]\nenabled = "auto"\n'))
    assert s.enabled_platforms() == [] and s.simulator.enabled is True


@pytest.mark.parametrize("value", ["short", "k" * 31])
def test_short_configured_link_secret_is_refused_at_load(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValidationError) as info:
        load_settings(write(tmp_path, f'link_secret = "{value}"\n'))
    [error] = info.value.errors(include_input=False)
    assert error["loc"] == ("link_secret",)
    assert "至少需要 32 个字符" in error["msg"] and "at least 32 characters" in error["msg"]
    assert value not in error["msg"]


def test_link_secret_of_32_characters_or_empty_is_accepted(tmp_path: Path) -> None:
    assert load_settings(link_secret="k" * 32).link_secret.get_secret_value() == "k" * 32
    assert load_settings().link_secret.get_secret_value() == ""
