"""Settings from TOML + LIANJIAN_* environment, redaction, the example file, the link secret."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from bot.cli import main
from bot.config import Settings, link_secret, load_settings, secret_file_path
from core.errors import ValidationFailed
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
    with pytest.raises(ValidationFailed):
        load_settings(path)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "nope.toml")


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="prot：不是可用的项，是不是“port”？"):
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
    with pytest.raises(ValidationFailed) as info:
        load_settings(write(tmp_path, f'link_secret = "{value}"\n'))
    told = info.value.message
    assert "config.toml 中的 link_secret：" in told and "至少需要 32 个字符" in told
    assert value not in told
    # Chinese only, no "left empty it is generated" (not so on PostgreSQL), and how to make one
    assert "must be" not in told and "留空则自动生成" not in told
    assert "openssl rand -hex 32" in told


def test_link_secret_of_32_characters_or_empty_is_accepted(tmp_path: Path) -> None:
    assert load_settings(link_secret="k" * 32).link_secret.get_secret_value() == "k" * 32
    assert load_settings().link_secret.get_secret_value() == ""


def check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *extra: str
) -> tuple[int, str]:
    """`lianjian setup check --config` on `text`: its exit code and what it printed."""
    code = main(["setup", "check", "--config", str(write(tmp_path, text)), *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize(
    ("text", "told"),
    [
        ('port = "abc"\n', "config.toml 中的 port：应为整数（现为“abc”），例如 port = 8080"),
        (
            '[scheduler]\nnudge_time = "9点"\n',
            "[scheduler] nudge_time：应为 24 小时制时间 HH:MM（现为“9点”），"
            '例如 nudge_time = "09:00"',
        ),
        ("[wechat]\nx = 1\n", "wechat：不是可用的项；可用的小节：[rules]、[wecom]"),
        (
            '[rules]\nsame_year_exclusion = "sometimes"\n',
            '[rules] same_year_exclusion：应为以下之一："always" 或 "except_key_items"',
        ),
        (
            "[rules]\ndecline_reason_min_chars_typo = 5\n",
            "[rules] decline_reason_min_chars_typo：不是可用的项，"
            "是不是“decline_reason_min_chars”？",
        ),
        ("[wecom_aibot]\nzzz = 1\n", "[wecom_aibot] zzz：不是可用的项"),
        ("[sender]\nlease = 5\n", "[sender] lease：不是可用的项，是不是“lease_s”？"),
        (
            "[rules]\nnudge_before_workdays = [3, -1, 0]\n",
            "[rules] nudge_before_workdays 第 2 项：应为不小于 0 的数（现为“-1”），"
            "例如 nudge_before_workdays = [3, 1, 0]",
        ),
        (
            "[sender]\nlease_s = 5.0\n",
            "[sender] lease_s（5 秒）须大于平台接口超时 http_timeout_s（10 秒），"
            "例如 lease_s = 120.0",
        ),
        (
            f'[wecom]\ncorp_id = "ww1"\nagent_id = "abc"\nsecret = "s"\ntoken = "t"\n'
            f'encoding_aes_key = "{"a" * 43}"\n',
            "[wecom] agent_id：应为整数（现为“abc”），例如 agent_id = 1000002",
        ),
    ],
)
def test_config_errors_are_chinese_naming_the_key_and_an_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, told: str
) -> None:
    """Every mistyped key, in any section, is refused with the nearest known key; each value
    is told with what the key takes and an example."""
    code, shown = check_config(tmp_path, capsys, text)
    assert code == 2 and told in shown
    assert "Input should" not in shown and "Value error" not in shown


def test_an_error_type_without_its_own_words_is_told_in_chinese_with_its_code_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """validation_zh fell back to pydantic's English message for an error type it has no
    words for ("取值无效（Input should be a multiple of 5）"), then kept it as a trailing
    "英文原因": the line says in Chinese what to do and names the error type (a code to look
    up, e.g. multiple_of); pydantic's English goes to the log, not to the operator."""
    import datetime as dt
    import logging

    from pydantic import Field, ValidationError

    from core.validation_zh import error_lines, loc_text

    class Sample(BaseModel):
        at: dt.datetime
        step: int = Field(multiple_of=5, examples=[10])

    with pytest.raises(ValidationError) as caught:
        Sample(at="明天", step=7)
    with caplog.at_level(logging.INFO, logger="core.validation_zh"):
        lines = error_lines(
            caught.value, Sample, loc_text, lambda loc: "step = 10" if loc == ("step",) else ""
        )
    assert lines == [
        "at：取值无效，请按此项的说明改写（现为“明天”）（错误类型：datetime_from_date_parsing）",
        "step：取值无效，请按此项的说明改写（现为“7”），例如 step = 10（错误类型：multiple_of）",
    ]
    assert "Input should be a multiple of 5" in caplog.text


def test_config_error_from_the_environment_names_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIANJIAN_PORT", "abc")
    code, shown = check_config(tmp_path, capsys, "")
    assert code == 2
    assert "环境变量 LIANJIAN_PORT：应为整数（现为“abc”），例如 LIANJIAN_PORT=8080" in shown


@pytest.mark.parametrize(
    ("text", "told"),
    [
        ('[dingtalk]\napp_key = "dingabc"\n', "[dingtalk]：钉钉机器人缺少 app_secret、robot_code"),
        (
            '[dingtalk]\nmode = "stream"\nrobot_code = "r"\n',
            "[dingtalk]：钉钉机器人缺少 app_key、app_secret",
        ),
        (
            f'[wecom]\ncorp_id = "ww1"\nencoding_aes_key = "{"a" * 43}"\n',
            "[wecom]：企业微信自建应用缺少 agent_id、secret、token",
        ),
        (
            '[wecom]\nsecret = "s"\n',
            "[wecom]：企业微信自建应用缺少 corp_id、agent_id、token、encoding_aes_key",
        ),
        (
            '[wecom]\ncorp_id = "ww1"\nagent_id = 1\nsecret = "s"\ntoken = "t"\n'
            'encoding_aes_key = "short"\n',
            "[wecom]：encoding_aes_key 应为 43 个字符（现为 5 个）",
        ),
        (
            '[wecom_aibot]\nmode = "websocket"\nbot_id = "b"\n',
            '[wecom_aibot]：企业微信智能机器人（mode = "websocket"）缺少 secret',
        ),
        (
            '[wecom_aibot]\ntoken = "t"\n',
            '[wecom_aibot]：企业微信智能机器人（mode = "callback"）缺少 encoding_aes_key',
        ),
    ],
)
def test_half_filled_platform_section_names_every_key_it_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, told: str
) -> None:
    """docs/platforms.md: both DingTalk modes sign in with AppKey/AppSecret and send as the
    robot; a WeCom app needs CorpID, AgentId, Secret, Token and a 43-character EncodingAESKey."""
    code, shown = check_config(tmp_path, capsys, text)
    assert code == 2 and told in shown


def test_setup_check_reports_the_platforms_of_the_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "lj.sqlite3")
    assert main(["db", "upgrade", "--db", db]) == 0
    section = (
        f'[wecom]\ncorp_id = "ww1"\nagent_id = 1000002\nsecret = "s"\ntoken = "t"\n'
        f'encoding_aes_key = "{random_aes_key()}"\n'
    )
    _, shown = check_config(tmp_path, capsys, section, "--db", db)
    assert "聊天平台：企业微信自建应用（[wecom]）；本机模拟聊天页 /sim：关闭" in shown
    _, shown = check_config(tmp_path, capsys, "", "--db", db)
    assert "聊天平台：未配置" in shown and "/sim：开启" in shown


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("LIANJIAN_DATABSE_URL", "LIANJIAN_DATABASE_URL"),
        ("LIANJIAN_LOGLEVEL", "LIANJIAN_LOG_LEVEL"),
        ("LIANJIAN_WECHAT__TOKEN", "LIANJIAN_WECOM__TOKEN"),
    ],
)
def test_a_mistyped_environment_variable_is_refused_naming_the_nearest(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    meant: str,
) -> None:
    """A misspelt LIANJIAN_DATABASE_URL was ignored: serve ran on a new, empty SQLite file."""
    monkeypatch.setenv(name, "postgresql://u:pw@db/lianjian")
    db = tmp_path / "lj.sqlite3"
    for argv in (["setup", "check"], ["serve", "--db", str(db), "--port", "1"]):
        code = main(argv)
        shown = capsys.readouterr().err
        assert code == 2 and f"环境变量 {name}：不是可用的项，是不是“{meant}”？" in shown
        assert "pw" not in shown
    assert not db.exists()


def test_the_projects_own_environment_variables_are_not_settings_yet_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "LIANJIAN_TEST_DATABASE_URL",
        "LIANJIAN_REQUIRE_POSTGRES",
        "LIANJIAN_REQUIRE_BROWSER",
        "LIANJIAN_BENCH_PROFILE",
        "LIANJIAN_BENCH_STATEMENTS",
        "LIANJIAN_ARTIFACTS",
    ):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("LIANJIAN_LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"
