"""Settings: config.toml (path given, or ./config.toml) overlaid by LIANJIAN_* environment.

Precedence, highest first: explicit overrides (CLI flags) → environment (`LIANJIAN_PORT`,
`LIANJIAN_WECOM__TOKEN`, … nested with "__") → the TOML file → defaults. config.example.toml
documents every key. Secrets are SecretStr and never printed: log `Settings.redacted()`.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from contextvars import ContextVar
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url

from bot.platforms.dingtalk import DingTalkSettings
from bot.platforms.wecom import WeComSettings
from bot.platforms.wecom_aibot import WeComAiBotSettings
from core.db import DEFAULT_SQLITE_FILE, database_url, is_sqlite
from core.errors import ValidationFailed
from core.messages import Platform
from core.rules import Rules
from core.textfiles import read_toml_file
from core.validation_zh import Loc, error_lines, examples_at, keys_at, loc_text, toml_value

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("config.toml")
SECRET_FILE = ".lianjian-secret"
ENV_PREFIX = "LIANJIAN_"

_toml_file: ContextVar[Path | None] = ContextVar("lianjian_toml_file", default=None)


MIN_LINK_SECRET_CHARS = 32
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")  # plain http for public_base_url: a trial here
# the configuration section of each platform adapter (the simulator has its own settings)
PLATFORM_SECTIONS = (Platform.WECOM, Platform.WECOM_AIBOT, Platform.DINGTALK)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a mistyped key is refused, not ignored


class SimulatorSettings(Section):
    # In config files `"auto"` (the default) is accepted and resolved by `Settings`: on only
    # when no platform is configured, because the simulator lets anyone act as any officer.
    enabled: bool = False


class SenderSettings(Section):
    poll_interval_s: float = Field(2.0, gt=0)  # also woken at once when replies are queued
    batch_size: int = Field(50, ge=1)
    # claims at most this often (s): under load one claim takes the replies of the moment
    # together (a claim, a look-up and a record per claim, not per reply); 0: at once
    claim_pace_s: float = Field(0.05, ge=0)
    lease_s: float = Field(
        120.0, gt=0
    )  # > the adapters' HTTP timeout, so a live send keeps its row
    max_attempts: int = Field(8, ge=1)
    backoff_base_s: float = Field(10.0, gt=0)
    backoff_cap_s: float = Field(3600.0, gt=0)
    group_robot_per_minute: int = Field(20, ge=1)  # WeCom and DingTalk robots: 20/min each
    app_user_per_minute: int = Field(30, ge=1)  # WeCom app: 30/min per member, excess dropped


class InboxSettings(Section):
    poll_interval_s: float = Field(3.0, gt=0)  # picks up other processes' rows and leftovers
    batch_size: int = Field(20, ge=1)
    # up to this many claimed events share one transaction (one commit and one turn at
    # SQLite's write gate for several), for at most group_s; 1: one event per transaction
    group_size: int = Field(10, ge=1)
    group_s: float = Field(0.25, gt=0)
    lease_s: float = Field(60.0, gt=0)
    max_attempts: int = Field(5, ge=1)
    backoff_base_s: float = Field(5.0, gt=0)
    backoff_cap_s: float = Field(600.0, gt=0)


class AttachmentSettings(Section):
    # where result photos and PDFs are kept, by content hash; empty: "attachments" next to
    # the SQLite file (for a server database: in the working directory)
    dir: str = ""
    max_file_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_files: int = Field(9, ge=1)  # per result version
    max_image_pixels: int = Field(50_000_000, ge=10_000)  # refuses decompression bombs


class SchedulerSettings(Section):
    enabled: bool = True
    timezone: str = "Asia/Shanghai"
    nudge_time: str = "09:00"  # WeCom advises avoiding :00 and :30 — "09:05" is kinder
    summary_time: str = "08:30"
    holiday_warning_time: str = "10:00"
    invitation_expiry_minutes: int = Field(30, ge=1)  # how often expired invitations are closed
    housekeeping_time: str = "03:20"  # daily clean-up (old summary charts), a quiet hour
    # summary charts older than this are deleted, unless a queued message still names one or a
    # link sent within its lifetime (30 days, bot/pages/links.py) still shows it
    image_retention_days: int = Field(40, ge=1)

    @field_validator("nudge_time", "summary_time", "holiday_warning_time", "housekeeping_time")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        hour, _, minute = value.partition(":")
        if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
            raise ValueError("应为 24 小时制时间 HH:MM")
        return f"{int(hour):02d}:{int(minute):02d}"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        # checked at load: an unknown name stopped serve after it had started
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError("应为 IANA 时区名，北京时间为 Asia/Shanghai") from None
        return value


# what identifies an account on a platform: a section with none of them is "not configured"
_IDENTITY_KEYS = frozenset(
    {"corp_id", "agent_id", "secret", "token", "encoding_aes_key"}
    | {"app_key", "app_secret", "robot_code", "bot_id"}
)


def _empty_section(name: str, value: Any) -> bool:
    """A platform section without any credential means "not configured" (the example file
    ships the keys empty); one with a mistyped key is checked, so the key is told."""
    return (
        isinstance(value, dict)
        and set(value) <= set(keys_at(Settings, (name,)))
        and not any(value.get(k) for k in _IDENTITY_KEYS)
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
    )

    # a file path (SQLite) or an SQLAlchemy URL
    database_url: str = Field(
        DEFAULT_SQLITE_FILE,
        examples=[DEFAULT_SQLITE_FILE, "postgresql://lianjian:密码@127.0.0.1:5432/lianjian"],
    )
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # how officers' phones reach us; default http://host:port
    public_base_url: str = Field("", examples=["https://lianjian.example.gov.cn"])
    link_secret: SecretStr = SecretStr("")  # empty: generated into .lianjian-secret
    log_level: str = "INFO"
    client_max_size: int = Field(1024 * 1024, ge=1024)  # request body limit for every route
    holidays_file: str = ""  # optional holiday arrangement (TOML/JSON) loaded at start-up
    rules: Rules = Field(default_factory=Rules)
    wecom: WeComSettings | None = None
    dingtalk: DingTalkSettings | None = None
    wecom_aibot: WeComAiBotSettings | None = None
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    sender: SenderSettings = Field(default_factory=SenderSettings)
    inbox: InboxSettings = Field(default_factory=InboxSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    attachments: AttachmentSettings = Field(default_factory=AttachmentSettings)

    @field_validator(*PLATFORM_SECTIONS, mode="before")
    @classmethod
    def _unconfigured_is_none(cls, value: Any, info: ValidationInfo) -> Any:
        return None if _empty_section(str(info.field_name), value) else value

    @model_validator(mode="before")
    @classmethod
    def _resolve_simulator_auto(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        section = data.get("simulator")
        if isinstance(section, SimulatorSettings):
            return data
        resolved = dict(section) if isinstance(section, dict) else {}
        enabled = resolved.get("enabled", "auto")
        if isinstance(enabled, str) and enabled.strip().lower() == "auto":
            resolved["enabled"] = not any(
                data.get(name) is not None and not _empty_section(name, data.get(name))
                for name in PLATFORM_SECTIONS
            )
        return {**data, "simulator": resolved}

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> Settings:
        # a claim lease running out while a send still waits for the platform lets another
        # sender claim the row and send it twice
        timeouts = [getattr(self, name).http_timeout_s for name in self.enabled_platforms()]
        timeout = max(timeouts or [WeComSettings.model_fields["http_timeout_s"].default])
        if self.sender.lease_s <= timeout:
            raise ValueError(
                f"[sender] lease_s（{self.sender.lease_s:g} 秒）须大于平台接口超时 "
                f"http_timeout_s（{timeout:g} 秒），例如 lease_s = 120.0"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        try:
            database_url(value)
        except ValidationFailed as err:
            raise ValueError(err.message) from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"应为以下之一：{'、'.join(LOG_LEVELS)}")
        return level

    @field_validator("public_base_url")
    @classmethod
    def _absolute_https_url(cls, value: str) -> str:
        # every signed link starts with it: without a scheme the links were relative, and a
        # link is a personal credential, so over the network only https carries it
        parts = urlsplit(value)
        local = parts.scheme == "http" and parts.hostname in LOCAL_HOSTS
        if not value or (parts.hostname and (parts.scheme == "https" or local)):
            return value
        raise ValueError(
            "应为手机能打开的完整 https:// 地址（签名链接以它开头）；http:// 只可用于本机试用，"
            "即 http://127.0.0.1:端口 或 http://localhost:端口"
        )

    @field_validator("link_secret")
    @classmethod
    def _long_link_secret(cls, value: SecretStr) -> SecretStr:
        # empty means "generate one"; a configured key signs every H5 link, so it must not be
        # guessable. The message never contains the value.
        length = len(value.get_secret_value())
        if 0 < length < MIN_LINK_SECRET_CHARS:
            raise ValueError(
                f"至少需要 {MIN_LINK_SECRET_CHARS} 个字符（当前 {length} 个），"
                "可用 openssl rand -hex 32 生成"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = _toml_file.get()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    @property
    def base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    def enabled_platforms(self) -> list[Platform]:
        return [name for name in PLATFORM_SECTIONS if getattr(self, name) is not None]

    def platforms_zh(self) -> str:
        """Which chat platforms this configuration turns on, for `setup check`."""
        on = [f"{getattr(self, name).label}（[{name}]）" for name in self.enabled_platforms()]
        chats = "、".join(on) or "未配置（填写 [wecom]、[wecom_aibot] 或 [dingtalk] 后启用）"
        sim = "开启（仅本机可用）" if self.simulator.enabled else "关闭"
        return f"聊天平台：{chats}；本机模拟聊天页 /sim：{sim}"

    def redacted(self) -> dict[str, Any]:
        """Everything worth logging at start-up, with secrets and DB passwords masked."""
        data = _mask(self.model_dump(mode="json"))
        data["database_url"] = self.database_shown()
        return data

    def database_shown(self) -> str:
        """The database URL without its password."""
        return make_url(database_url(self.database_url)).render_as_string(hide_password=True)


# database_url: a URL may carry a password (redacted() shows it without)
SECRET_KEYS = frozenset(
    {"secret", "token", "encoding_aes_key", "app_secret", "link_secret", "database_url"}
)
MASK = "**********"


def _mask(data: dict[str, Any]) -> dict[str, Any]:
    """Mask credentials by key name, whatever type the platform module gave them."""
    return {
        k: (_mask(v) if isinstance(v, dict) else MASK if k in SECRET_KEYS and v else v)
        for k, v in data.items()
    }


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from `path` (must exist), else ./config.toml if present, else env + defaults."""
    toml: Path | None
    if path is not None:
        toml = Path(path)
        if not toml.is_file():
            raise FileNotFoundError(f"配置文件不存在：{toml}")
    else:
        toml = DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None
    if toml is not None:
        _check_config_file(toml)
    lines = _unknown_variables()
    token = _toml_file.set(toml)
    try:
        settings = Settings(**overrides)
    except ValidationError as err:
        found = error_lines(err, Settings, partial(_where, toml), _example, hidden=SECRET_KEYS)
        lines += map(_as_variables, [tuple(e["loc"]) for e in err.errors()], found)
    finally:
        _toml_file.reset(token)
    if lines:
        raise ValidationFailed(
            f"配置有误（{len(lines)} 处；各项的写法见 config.example.toml）：\n"
            + "\n".join(f"  {line}" for line in lines)
        )
    return settings


# read by the tests, CI and benchmarks, not settings
OTHER_VARIABLES = (
    *("LIANJIAN_TEST_DATABASE_URL", "LIANJIAN_ARTIFACTS"),
    *("LIANJIAN_REQUIRE_", "LIANJIAN_BENCH_"),
)


def _unknown_variables() -> list[str]:
    """The environment source reads only the variables naming a setting: a misspelt
    LIANJIAN_DATABASE_URL left serve on a new, empty SQLite file. A mistyped key within a
    known section is pydantic's to refuse. The value is never shown (it may be a secret)."""
    known = _variable_names()
    lines = []
    for name in sorted(os.environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(OTHER_VARIABLES):
            continue
        section, _, key = upper.removeprefix(ENV_PREFIX).lower().partition("__")
        if section in Settings.model_fields and (not key or keys_at(Settings, (section,))):
            continue
        close = difflib.get_close_matches(upper, known, 1, 0.6)
        meant = f"，是不是“{close[0]}”？" if close else ""
        lines.append(f"环境变量 {name}：不是可用的项{meant}")
    return lines


def _variable_names() -> list[str]:
    names = []
    for field in Settings.model_fields:
        keys = keys_at(Settings, (field,))
        names += [_env_name((field, key)) for key in keys] if keys else [_env_name((field,))]
    return names


def _env_name(loc: Loc) -> str:
    return ENV_PREFIX + "__".join(str(p).upper() for p in loc if isinstance(p, str))


def _from_env(loc: Loc) -> bool:
    return _env_name(loc) in {name.upper() for name in os.environ}


def _section_from_env(loc: Loc) -> bool:
    prefix = _env_name(loc) + "__"
    return bool(keys_at(Settings, loc)) and any(n.upper().startswith(prefix) for n in os.environ)


def _as_variables(loc: Loc, line: str) -> str:
    """A section set in the environment: the keys it lacks named as the variables to set."""
    if len(loc) != 1 or not _section_from_env(loc):
        return line
    return re.sub(
        r"缺少 ([a-z_、]+)",
        lambda m: "缺少 " + "、".join(_env_name((*loc, k)) for k in m[1].split("、")),
        line,
    )


def _where(toml: Path | None, loc: Loc) -> str:
    """A setting as the operator wrote it: the environment variable, or the file's key."""
    if not loc:
        return ""
    if _from_env(loc):
        return f"环境变量 {_env_name(loc)}"
    if len(loc) == 1 and _section_from_env(loc):
        return f"环境变量 {_env_name(loc)}__*"
    section = keys_at(Settings, loc[:1])
    key = f"[{loc[0]}] {loc_text(loc[1:])}".rstrip() if section else loc_text(loc)
    return f"{toml.name} 中的 {key}" if toml else f"配置项 {key}"


def _example(loc: Loc) -> str:
    """Valid values of the key, written as where the value came from takes them."""
    return " 或 ".join(
        _written(loc, value)
        for value in examples_at(Settings, loc)
        if value != "" and not isinstance(value, SecretStr)
    )


def _written(loc: Loc, value: Any) -> str:
    if _from_env(loc):
        return f"{_env_name(loc)}={value if isinstance(value, str) else toml_value(value)}"
    return f"{[p for p in loc if isinstance(p, str)][-1]} = {toml_value(value)}"


def _check_config_file(path: Path) -> None:
    """pydantic's TOML source reads the file as UTF-8 TOML: anything else (an .xlsx, a GBK
    file from Notepad, a syntax error) was a traceback; here it is one Chinese line."""
    hint = "配置文件是 UTF-8 编码的 TOML 文本，各项见 config.example.toml"
    read_toml_file(path, "配置文件", hint)  # the parse is pydantic's; this names what is wrong
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed(
            f"配置文件 {path.name} 不是 UTF-8 编码：请用记事本打开，“另存为”时编码选 UTF-8"
        ) from None


def data_dir(settings: Settings) -> Path:
    """Next to the SQLite file; for a server database, the working directory."""
    url = database_url(settings.database_url)
    if is_sqlite(url):
        db_file = make_url(url).database
        if db_file and db_file != ":memory:":
            return Path(db_file).parent
    return Path.cwd()


def secret_file_path(settings: Settings) -> Path:
    return data_dir(settings) / SECRET_FILE


def attachments_dir(settings: Settings) -> Path:
    configured = settings.attachments.dir
    return Path(configured) if configured else data_dir(settings) / "attachments"


def link_secret(settings: Settings) -> bytes:
    """The HMAC key for signed links: configured, or on SQLite created once next to the
    database file (0600) and reused, so links survive restarts. On PostgreSQL one must be
    configured (ValidationFailed otherwise, see `link_secret_missing`)."""
    if missing := link_secret_missing(settings):
        raise ValidationFailed(missing)
    configured = settings.link_secret.get_secret_value()
    if configured:
        return configured.encode()
    path = secret_file_path(settings)
    if not path.exists():
        _create_secret_file(path)
    value = path.read_text().strip()
    if len(value) < MIN_LINK_SECRET_CHARS:
        raise ValueError(f"{path} holds no usable secret; delete it to have one generated")
    return value.encode()


def link_secret_missing(settings: Settings) -> str:
    """Why serve will not start for want of a link secret ("" if it will): on PostgreSQL the
    processes sharing the database may run anywhere, and each wrote a key file of its own, so
    a link one of them made was refused by the others. Not kept in the database instead:
    whoever can read it (a dump, a reporting account) could then sign links as any officer."""
    if settings.link_secret.get_secret_value() or is_sqlite(database_url(settings.database_url)):
        return ""
    path = secret_file_path(settings)
    earlier = (
        f"。{path} 是此前自动生成的密钥，设为它的内容，已发出的链接仍然有效"
        if path.exists()
        else ""
    )
    return (
        "使用 PostgreSQL 时必须配置签名链接密钥：请设置环境变量 LIANJIAN_LINK_SECRET"
        f"（或配置文件中的 link_secret），至少 {MIN_LINK_SECRET_CHARS} 个字符，"
        "可用 openssl rand -hex 32 生成；共用这个数据库的每个 lianjian serve 都设同一个值，"
        "否则一个进程发出的链接在另一个进程打开时是“链接无效或被篡改”" + earlier
    )


def link_secret_differs(settings: Settings) -> str:
    """Why serve refuses a link secret other than the one the database recorded."""
    moved = (
        ""
        if settings.link_secret.get_secret_value()
        else f"（未配置 link_secret，用的是 {secret_file_path(settings)}：若它是移动或删除后"
        "重新生成的，请放回原来的文件）"
    )
    return (
        f"签名链接密钥与这个数据库记录的不同{moved}：共用一个数据库的每个 lianjian serve "
        "须设同一个 link_secret（或环境变量 LIANJIAN_LINK_SECRET），否则一个进程发出的链接在"
        "另一个进程打开时是“链接无效或被篡改”。有意更换密钥时，先用新密钥运行 "
        "lianjian db link-secret 记录它（此前发出的链接随之失效）"
    )


def _create_secret_file(path: Path) -> None:
    # written in full under a private name, then linked into place: a second process starting
    # at the same moment either wins the link or reads the complete file of the winner
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(os.urandom(32).hex())
    try:
        os.link(tmp, path)
        log.info("generated a link secret in %s (keep it private, back it up with the DB)", path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
