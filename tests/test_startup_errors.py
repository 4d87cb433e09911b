"""What stops `lianjian serve` and `lianjian setup check` at the start, as an operator meets it
(README "Going live", "Configuration", "Deploying on a platform"): a database, listening
address or setting that is wrong is one Chinese line naming the setting and what to do, exit 2,
before anything starts. They were tracebacks (a PostgreSQL database or user that does not
exist, mysql://), the driver's English alone (a server not listening, a host unknown), a crash
after "serving on" (an unknown time zone, a log level), "serving on … stopped" before the port
in use was told, or were accepted and broke later (public_base_url without https://, a
PostgreSQL URL without a database name, several processes on PostgreSQL each signing links
with a key of its own)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select, text

from bot.app import create_app
from bot.config import load_settings
from bot.pages.links import page_link
from bot.server import build_services
from core.db import check_connection, make_engine
from core.errors import ValidationFailed
from core.links import INVALID, link_url, sign_link
from core.models import AuditEvent
from tests.conftest import PG_ENV, PG_SKIP, fresh_pg_database
from tests.test_cli_errors import run_cli
from tests.test_crash import Server, free_port

PG = os.environ.get(PG_ENV, "")
needs_pg = pytest.mark.skipif(not PG, reason=PG_SKIP)
SECRET = "s" * 40
FORMS = "postgresql://用户:密码@主机:端口/库名"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("LIANJIAN_") and name != PG_ENV:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./config.toml, and a secret file would land here


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text, "utf-8")
    return str(path)


def commands(config: str) -> list[list[str]]:
    """`setup check` and `serve` on the same configuration file."""
    return [
        ["setup", "check", "--config", config],
        ["serve", "--config", config, "--port", str(free_port())],
    ]


def refusals(
    config: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[str]:
    """The error output of each command, which refused with exit 2 and never started serving."""
    caplog.set_level(logging.INFO)
    for argv in commands(config):
        code, _, err = run_cli(argv, capsys)
        assert code == 2, (argv, err)
        assert "serving on" not in caplog.text
        yield err


def pg_url(**parts: Any) -> str:
    """The test server's URL with another user or database."""
    from sqlalchemy import make_url

    return make_url(PG).set(**parts).render_as_string(hide_password=False)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://u@h/x", "不支持 mysql:// 数据库"),
        ("postgresql+psycopg2://u@h/x", "不支持 postgresql+psycopg2:// 数据库"),
        # no database name: the server's maintenance database `postgres` got the tables
        ("postgresql://postgres@127.0.0.1:5999", "缺少库名"),
        ("postgresql://postgres@127.0.0.1:5999/", "缺少库名"),
        ("postgresql://postgres@127.0.0.1:port/x", "格式不对"),
    ],
)
def test_only_sqlite_and_postgresql_urls_with_a_database_are_accepted(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    url: str,
    says: str,
) -> None:
    config = write_config(tmp_path, f'database_url = "{url}"\nlink_secret = "{SECRET}"\n')
    for err in refusals(config, capsys, caplog):
        assert "database_url" in err and says in err and FORMS in err
    code, _, err = run_cli(["setup", "check", "--db", url], capsys)
    assert code == 2 and says in err and "--db" in err


def test_a_database_server_not_listening_or_a_host_unknown_names_database_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """They were `错误：Connect call failed ('127.0.0.1', 5999)` and `错误：Name or service not
    known`: what failed, and where to change it, left to guess."""
    port = free_port()
    url = f"postgresql://postgres@127.0.0.1:{port}/lianjian"
    config = write_config(tmp_path, f'database_url = "{url}"\nlink_secret = "{SECRET}"\n')
    for err in refusals(config, capsys, caplog):
        assert f"连不上 PostgreSQL 127.0.0.1:{port}（连接被拒绝）" in err
        assert f"数据库地址 {url}，见 database_url 或 --db" in err
    url = "postgresql://postgres@nosuchhost.invalid/lianjian"
    config = write_config(tmp_path, f'database_url = "{url}"\nlink_secret = "{SECRET}"\n')
    for err in refusals(config, capsys, caplog):
        assert "找不到数据库主机“nosuchhost.invalid”" in err and "database_url" in err


@needs_pg
def test_a_postgresql_database_or_user_that_does_not_exist_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Both were an sqlalchemy.exc.DBAPIError traceback."""
    config = write_config(
        tmp_path, f'database_url = "{pg_url(database="nosuchdb")}"\nlink_secret = "{SECRET}"\n'
    )
    for err in refusals(config, capsys, caplog):
        assert "没有数据库“nosuchdb”：请先建库（createdb nosuchdb）" in err
        assert "database_url" in err
    config = write_config(
        tmp_path, f'database_url = "{pg_url(username="nosuchrole")}"\nlink_secret = "{SECRET}"\n'
    )
    for err in refusals(config, capsys, caplog):
        assert "不接受用户“nosuchrole”" in err and "database_url" in err


async def test_a_database_file_that_cannot_be_opened_says_what_to_do(tmp_path: Path) -> None:
    """A folder as the SQLite database was `无法打开数据库：unable to open database file`: the
    driver's English alone, nothing to do. The driver's words stay, after the Chinese. (The
    CLI names a folder before connecting; services built otherwise reach the connection.)"""
    folder = tmp_path / "data"
    folder.mkdir()
    engine = make_engine(str(folder))
    try:
        with pytest.raises(ValidationFailed) as refused:
            await check_connection(engine)
    finally:
        await engine.dispose()
    said = f"无法打开 SQLite 数据库 {folder}：请确认它是文件而不是文件夹，且所在文件夹存在、可读写"
    assert said in refused.value.message and "database_url" in refused.value.message
    assert refused.value.message.startswith(said + "（数据库原话：unable to open database file）")


@needs_pg
def test_another_postgresql_refusal_says_what_to_do_before_the_servers_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A refusal with no words of ours (here SSL required of a server without it) was
    `无法打开数据库：` and the driver's English alone."""
    url = pg_url() + "?ssl=require"
    config = write_config(tmp_path, f'database_url = "{url}"\nlink_secret = "{SECRET}"\n')
    for err in refusals(config, capsys, caplog):
        assert (
            "无法连接 PostgreSQL 127.0.0.1:5432：请按括号中数据库的原话改正数据库地址或服务器设置"
            in err
        )
        assert "（数据库原话：" in err and "database_url" in err


@needs_pg
def test_a_postgresql_user_that_may_not_create_tables_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A user that may log in but not create tables (PostgreSQL 15 grants no CREATE on schema
    public to others) was a ProgrammingError traceback ending in the driver's English
    "permission denied for schema public"."""
    name = f"lj_test_{uuid.uuid4().hex[:10]}"
    role = f"{name}_user"

    async def admin(*statements: str, database: str = "") -> None:
        engine = make_engine(pg_url(database=database) if database else PG)
        async with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
        await engine.dispose()

    asyncio.run(admin(f'CREATE ROLE "{role}" LOGIN', f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(admin("REVOKE CREATE ON SCHEMA public FROM PUBLIC", database=name))
        url = pg_url(username=role, database=name)
        config = write_config(tmp_path, f'database_url = "{url}"\nlink_secret = "{SECRET}"\n')
        for err in refusals(config, capsys, caplog):
            assert f"PostgreSQL 用户“{role}”无权在库“{name}”中建表" in err
            assert f"GRANT CREATE ON SCHEMA public TO {role}" in err and "database_url" in err
            assert "Traceback" not in err
    finally:
        asyncio.run(
            admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{role}"')
        )


@pytest.mark.parametrize(
    ("line", "setting", "says"),
    [
        ('[scheduler]\ntimezone = "Beijing"\n', "[scheduler] timezone", "应为 IANA 时区名"),
        ('log_level = "verbose"\n', "log_level", "应为以下之一：DEBUG、INFO、WARNING"),
        # without https:// every signed link in the messages was relative and unusable
        ('public_base_url = "lianjian.county.gov.cn"\n', "public_base_url", "完整 https://"),
        ('public_base_url = "http://lianjian.county.gov.cn"\n', "public_base_url", "https://"),
    ],
)
def test_time_zone_log_level_and_public_url_are_checked_when_the_config_loads(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    line: str,
    setting: str,
    says: str,
) -> None:
    """An unknown time zone crashed serve after "serving on", a log level was a ValueError
    traceback; `setup check` said nothing of either."""
    config = write_config(tmp_path, f'database_url = "{tmp_path / "lj.sqlite3"}"\n{line}')
    for err in refusals(config, capsys, caplog):
        assert setting in err and says in err


def test_a_port_in_use_is_told_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """It logged "serving on …" and "stopped" (migrations run, workers started and stopped)
    before `错误：端口已被占用`."""
    caplog.set_level(logging.INFO)
    db = tmp_path / "lj.sqlite3"
    config = write_config(tmp_path, f'database_url = "{db}"\n')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_cli(["serve", "--config", config, "--port", str(port)], capsys)
    assert code == 2 and f"端口 {port} 已被占用" in err and "--port" in err
    assert "serving on" not in caplog.text and "stopped" not in caplog.text
    assert not db.exists()  # nothing migrated


def test_a_host_that_cannot_be_listened_on_names_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, f'database_url = "{tmp_path / "lj.sqlite3"}"\n')
    code, _, err = run_cli(["serve", "--config", config, "--host", "300.1.1.1"], capsys)
    assert code == 2 and "host“300.1.1.1”不是可以监听的地址：请改正 host（或 --host）" in err


@pytest.mark.parametrize(
    "value",
    [
        "",
        "https://lianjian.county.gov.cn",
        "https://lj.example.cn:8443/lj/",
        "http://127.0.0.1:8080",
    ],
)
def test_public_base_url_https_or_this_machine_is_accepted(value: str) -> None:
    assert load_settings(public_base_url=value).public_base_url == value
    assert load_settings(public_base_url="http://localhost:9000").base_url.startswith("http://")


@needs_pg
def test_serve_on_postgresql_without_a_link_secret_refuses_saying_how_to_set_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pg_database: str
) -> None:
    """Two processes on one PostgreSQL each wrote a .lianjian-secret of their own, so a link
    one made was "链接无效或被篡改" in the other. A key in the database instead would let
    whoever reads the database (a dump, a reporting account) sign links as any officer."""
    config = write_config(tmp_path, f'database_url = "{pg_database}"\n')
    argv = ["serve", "--config", config, "--port", str(free_port())]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "LIANJIAN_LINK_SECRET" in err and "link_secret" in err
    assert not (tmp_path / ".lianjian-secret").exists()
    # a single process that ran before with a generated key: told how to keep its links valid
    (tmp_path / ".lianjian-secret").write_text("e" * 64)
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and ".lianjian-secret 是此前自动生成的密钥" in err


@needs_pg
def test_setup_check_on_postgresql_without_a_link_secret_lists_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pg_database: str
) -> None:
    """`setup check` lists what blocks going live: a serve that will not start is one."""
    for argv in (
        ["setup", "check", "--config", write_config(tmp_path, f'database_url = "{pg_database}"\n')],
        ["setup", "check", "--db", pg_database],
    ):
        code, out, _ = run_cli(argv, capsys)
        assert code == 1 and "LIANJIAN_LINK_SECRET" in out, argv
    assert not (tmp_path / ".lianjian-secret").exists()


@needs_pg
async def test_two_servers_on_one_postgresql_given_the_secret_accept_each_others_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_database: str
) -> None:
    monkeypatch.setenv("LIANJIAN_LINK_SECRET", SECRET)
    first, second = [await build_services(load_settings(database_url=pg_database)) for _ in "ab"]
    # an officer id no one has: past the signature, the page says so instead
    token_of = {
        "first": page_link(first, 999_999, "documents", "case:LJ-2026-001-001"),
        "forged": link_url(
            first.public_base_url,
            "/h5/documents",
            sign_link(b"f" * 40, 999_999, "case:LJ-2026-001-001", "documents", 2**40),
        ),
    }
    server = TestServer(create_app(second, workers=()), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            shown = {}
            for name, link in token_of.items():
                async with http.get(server.make_url("/h5/documents?" + link.split("?", 1)[1])) as r:
                    shown[name] = await r.text()
    finally:
        await server.close()
        for services in (first, second):
            assert services.engine is not None
            await services.engine.dispose()
    assert INVALID not in shown["first"] and "该链接的使用人已停用" in shown["first"]
    assert INVALID in shown["forged"]


async def test_serve_on_a_fresh_sqlite_file_starts_without_any_secret_configured(
    tmp_path: Path,
) -> None:
    """On one machine the processes share the folder of the SQLite file, and the key generated
    into it; "serving on" is logged once the port is bound."""
    port, log = free_port(), tmp_path / "serve.log"
    config = Path(
        write_config(
            tmp_path,
            f'database_url = "{tmp_path / "lj.sqlite3"}"\nport = {port}\n'
            "[scheduler]\nenabled = false\n",
        )
    )
    server = Server(config, port, log)
    server.start()
    try:
        async with aiohttp.ClientSession() as http:
            await server.ready(http)
    finally:
        await server.stop()
    assert server.proc is not None and server.proc.returncode == 0
    serving = next(line for line in log.read_text().splitlines() if "serving on" in line)
    # which database is in use: a misspelt variable had left it on a new, empty file unseen
    assert f"serving on http://127.0.0.1:{port}" in serving
    assert f"database: sqlite+aiosqlite:///{tmp_path / 'lj.sqlite3'}" in serving
    assert (tmp_path / ".lianjian-secret").exists()


def test_a_database_made_by_a_newer_version_is_told_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Every command, serve too, was alembic's traceback "Can't locate revision"."""
    import sqlite3

    db = str(tmp_path / "lj.sqlite3")
    assert run_cli(["db", "upgrade", "--db", db], capsys)[0] == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9a9a9a9a9a9a'")
    config = write_config(tmp_path, f'database_url = "{db}"\n')
    for argv in (*commands(config), ["db", "upgrade", "--db", db], ["department", "list"]):
        code, _, err = run_cli([*argv, *(["--db", db] if argv[0] == "department" else [])], capsys)
        assert code == 2, argv
        assert "数据库由更新版本的联检建立（版本 9a9a9a9a9a9a）" in err, argv
        assert "请安装那个版本" in err and "备份" in err
    assert "serving on" not in caplog.text


@pytest.fixture(params=["sqlite", "postgresql"])
def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test alone: the link secret it records is no other test's."""
    if request.param == "sqlite":
        yield str(tmp_path / "lj.sqlite3")
        return
    with fresh_pg_database() as url:
        yield url


def start(url: str, secret: str = "") -> None:
    """What a serve process does with the database before it listens, then stop."""

    async def run() -> None:
        services = await build_services(load_settings(database_url=url, link_secret=secret))
        assert services.engine is not None
        await services.engine.dispose()

    asyncio.run(run())


def recorded(url: str) -> list[tuple[str, dict[str, Any]]]:
    async def read() -> list[tuple[str, dict[str, Any]]]:
        engine = make_engine(url)
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(AuditEvent.actor, AuditEvent.data)
                .where(AuditEvent.action == "link_secret.recorded")
                .order_by(AuditEvent.id)
            )
            found = [(actor, data) for actor, data in rows]
        await engine.dispose()
        return found

    return asyncio.run(read())


def test_a_serve_with_another_link_secret_than_the_databases_is_refused(
    own_database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two serves on one database with different keys each refused the other's links as
    "链接无效或被篡改"; the second now refuses to start, until the change is recorded."""
    other = "o" * 40
    start(own_database, SECRET)  # the first start records the key's fingerprint
    start(own_database, SECRET)
    monkeypatch.setenv("LIANJIAN_LINK_SECRET", other)
    serve = ["serve", "--db", own_database, "--port", str(free_port())]
    code, _, err = run_cli(serve, capsys)
    assert code == 2 and "签名链接密钥与这个数据库记录的不同" in err
    assert "LIANJIAN_LINK_SECRET" in err and "lianjian db link-secret" in err
    # a deliberate change: recorded, audited, and from then on the old key is the one refused
    code, out, _ = run_cli(["db", "link-secret", "--db", own_database], capsys)
    assert code == 0 and "已记录当前的签名链接密钥" in out
    start(own_database, other)
    with pytest.raises(ValidationFailed, match="签名链接密钥与这个数据库记录的不同"):
        start(own_database, SECRET)
    events = recorded(own_database)
    assert [actor for actor, _ in events] == ["system:config", "admin:cli"]
    # a fingerprint only: neither key, nor a plain hash that a guessed key could be tested on
    shown = repr(events)
    for key in (SECRET, other):
        assert key not in shown and hashlib.sha256(key.encode()).hexdigest() not in shown


def test_a_regenerated_secret_file_next_to_sqlite_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A .lianjian-secret moved away and generated anew left every link sent invalid."""
    db = str(tmp_path / "lj.sqlite3")
    start(db)
    (tmp_path / ".lianjian-secret").unlink()
    code, _, err = run_cli(["serve", "--db", db, "--port", str(free_port())], capsys)
    assert code == 2 and "签名链接密钥与这个数据库记录的不同" in err
    assert f"{tmp_path / '.lianjian-secret'}：若它是移动或删除后重新生成的，请放回原来的文件" in err


def test_setup_check_lists_what_serve_refuses_host_port_and_holidays_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`setup check` passed a host that is no address, a port in use and a holiday file that
    is not there, each of which serve refuses; serve's own refusal of the file names the key."""
    db = str(tmp_path / "lj.sqlite3")
    assert run_cli(["db", "upgrade", "--db", db], capsys)[0] == 0
    nosuch = tmp_path / "nosuch.toml"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for line, says in (
            ('host = "300.1.1.1"', "host“300.1.1.1”不是可以监听的地址"),
            (f"port = {port}", f"端口 {port} 已被占用"),
            (f'holidays_file = "{nosuch}"', f"holidays_file：无法读取节假日文件 {nosuch}"),
        ):
            config = write_config(tmp_path, f'database_url = "{db}"\n{line}\n')
            code, out, _ = run_cli(["setup", "check", "--config", config], capsys)
            assert code == 1 and says in out, line
            # beside a live serve its port is taken by design: a note, not a blocking problem
            assert ("注意：" + says in out) == line.startswith("port"), line
    config = write_config(tmp_path, f'database_url = "{db}"\nholidays_file = "{nosuch}"\n')
    code, _, err = run_cli(["serve", "--config", config, "--port", str(free_port())], capsys)
    assert code == 2 and f"holidays_file：无法读取节假日文件 {nosuch}" in err


def test_a_configured_holiday_file_without_holidays_gets_advice_config_and_serve_can_follow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Neither `setup check` nor `serve` takes --allow-empty: the advice is to load the year
    with `holidays load … --allow-empty` and take holidays_file out of the configuration."""
    db = str(tmp_path / "lj.sqlite3")
    assert run_cli(["db", "upgrade", "--db", db], capsys)[0] == 0
    empty = tmp_path / "empty.toml"
    empty.write_text("year = 2027\n", encoding="utf-8")
    config = write_config(tmp_path, f'database_url = "{db}"\nholidays_file = "{empty}"\n')
    code, out, _ = run_cli(["setup", "check", "--config", config], capsys)
    assert code == 1 and "holidays_file：" in out and "没有放假日期" in out, out
    assert "请加 --allow-empty" not in out
    assert f"lianjian holidays load {empty} --allow-empty" in out
    assert "删去配置中的 holidays_file" in out


def test_a_platform_section_half_set_in_the_environment_names_the_variables(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIANJIAN_WECOM__CORP_ID", "ww1")
    monkeypatch.setenv("LIANJIAN_WECOM__TOKEN", "t")
    code, _, err = run_cli(["setup", "check"], capsys)
    assert code == 2
    assert (
        "环境变量 LIANJIAN_WECOM__*：企业微信自建应用缺少 LIANJIAN_WECOM__AGENT_ID、"
        "LIANJIAN_WECOM__SECRET、LIANJIAN_WECOM__ENCODING_AES_KEY"
    ) in err


@pytest.mark.parametrize("url", ["mysql://u@h/x", "postgresql://postgres@127.0.0.1:5999"])
def test_a_wrong_database_url_gives_a_postgresql_example_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    config = write_config(tmp_path, f'database_url = "{url}"\n')
    code, _, err = run_cli(["setup", "check", "--config", config], capsys)
    assert code == 2
    assert 'database_url = "lianjian.sqlite3" 或 database_url = "postgresql://' in err
