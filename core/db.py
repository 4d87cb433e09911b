"""Engine and session factory. SQLite file by default; any SQLAlchemy async URL otherwise."""

from __future__ import annotations

import asyncio
import errno
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import URL, event, exc, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core import sqlite_async
from core.errors import ValidationFailed

DEFAULT_SQLITE_FILE = "lianjian.sqlite3"
# the drivers installed with lianjian; another URL (mysql://, a psycopg driver) was an import
# traceback
DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
SETTING = "database_url 或 --db"
PG_FORM = "postgresql://用户:密码@主机:端口/库名"
FORMS = (
    "SQLite 数据库文件路径（如 lianjian.sqlite3，或 sqlite:///文件路径），"
    f"或 PostgreSQL 地址 {PG_FORM}"
)


def database_url(value: str | None) -> str:
    """Accept a file path or an SQLite or PostgreSQL URL; plain ones get the async drivers
    (SQLAlchemy's own `sqlite:///file` names the synchronous one, which fails). Anything
    else is refused (ValidationFailed) naming the forms accepted."""
    if not value:
        value = DEFAULT_SQLITE_FILE
    if "://" not in value:
        _no_sqlite_options(value)
        return f"sqlite+aiosqlite:///{Path(value).expanduser().resolve()}"
    scheme, rest = value.split("://", 1)
    scheme = {"postgresql": DRIVERS[1], "postgres": DRIVERS[1], "sqlite": DRIVERS[0]}.get(
        scheme, scheme
    )
    url = f"{scheme}://{rest}"
    _check_url(url, value)
    return url


def _check_url(url: str, given: str) -> None:
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError):  # a port that is not a number, say
        raise ValidationFailed(f"数据库地址格式不对，应为 {FORMS}（见 {SETTING}）") from None
    if parsed.drivername not in DRIVERS:
        raise ValidationFailed(
            f"不支持 {given.split('://', 1)[0]}:// 数据库，只能是 {FORMS}（见 {SETTING}）"
        )
    if parsed.get_backend_name() == "sqlite":
        _no_sqlite_options(given)
    if parsed.get_backend_name() == "postgresql" and not parsed.database:
        # without one the server's maintenance database `postgres` got the tables
        raise ValidationFailed(
            f"PostgreSQL 地址 {shown(parsed)} 缺少库名，应写成 {PG_FORM}，"
            f"库名是为联检建的数据库（如 createdb lianjian；见 {SETTING}）"
        )


def _no_sqlite_options(given: str) -> None:
    """An SQLite path or URL with `?…` options is refused: the path form took them as part of
    the file name (a stray `lj.sqlite3?mode=ro` file), the URL form ignored them with an
    English warning or opened a file URI. Lianjian reads and writes its database, so
    read-only and other URI options have no use here."""
    if "?" not in given:
        return
    path, _, options = given.partition("?")
    path = path.split("://", 1)[1].removeprefix("/") if "://" in path else path
    raise ValidationFailed(
        f"SQLite 数据库地址不接受“?{options}”这样的选项（联检需要读写数据库，只读等选项不可用）："
        f"请只写文件路径，如 {path or DEFAULT_SQLITE_FILE}"
        f"（见 {SETTING}）"
    )


def shown(url: URL) -> str:
    """The URL as the operator would write it, without the password."""
    plain = url.set(drivername=url.get_backend_name())
    return plain.render_as_string(hide_password=True)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the web page read while the sender writes; busy_timeout waits instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={sqlite_async.BUSY_TIMEOUT_MS}")
    cur.close()


def make_engine(url: str | None) -> AsyncEngine:
    url = database_url(url)
    if is_sqlite(url):
        file = make_url(url).database
        if file and file != ":memory:":
            # a plain file: one trip to the connection's thread per statement (sqlite_async)
            creator = sqlite_async.connector(file, timeout=30, check_same_thread=False)
            engine = create_async_engine(url, async_creator=creator)
        else:
            engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(url, pool_size=10, max_overflow=10)
    pool = engine.sync_engine.pool
    event.listen(pool, "connect", _used)
    event.listen(pool, "checkin", _used)
    event.listen(pool, "checkout", _ping_if_idle)
    return engine


# A pooled connection idle this long is pinged before it is handed out (a server restart or an
# idle timeout may have closed it); one in steady use is not: pool_pre_ping's round trip on
# every checkout was ~3 per handled callback. A connection that died within the window fails
# its first statement, and SQLAlchemy then replaces every pooled connection.
PING_IDLE_S = 5.0
_USED = "lianjian.used_at"


def _used(_dbapi_conn: Any, record: Any) -> None:
    record.info[_USED] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    if time.monotonic() - record.info.get(_USED, 0.0) < PING_IDLE_S:
        return
    try:
        dbapi_conn.ping()
    except Exception as err:  # the pool discards it and checks out another
        raise exc.DisconnectionError("the pooled connection is gone") from err


async def check_connection(engine: AsyncEngine) -> None:
    """One connection before anything else: a database or user that does not exist, a wrong
    password, a server not listening or a host unknown is one Chinese line naming the setting
    (they were tracebacks, or the driver's English alone)."""
    try:
        if engine.url.get_backend_name() == "sqlite" and engine.url.database not in (
            None,
            "",
            ":memory:",
        ):
            # a file that cannot be opened is found by sqlite3 itself first: aiosqlite's
            # failed connect leaves its thread to post to the event loop later, which
            # the startup error has closed by then (a traceback after our message)
            await asyncio.to_thread(_open_sqlite, engine.url.database)
        async with engine.connect():
            pass
    except (OSError, sqlite3.Error, exc.DBAPIError) as err:
        raise ValidationFailed(_unreachable(engine.url, err) + _where(engine.url)) from None


def _open_sqlite(path: str) -> None:
    sqlite3.connect(path).close()


def _where(url: URL) -> str:
    return f"（数据库地址 {shown(url)}，见 {SETTING}）"


def _said(err: Exception) -> str:
    """The driver's own words, as a detail after ours (an operator may need them)."""
    return f"（数据库原话：{getattr(err, 'orig', None) or err}）"


def _sqlstate(err: Exception) -> str | None:
    return getattr(getattr(err, "orig", None), "sqlstate", None)


# what PostgreSQL says when it refuses a connection (SQLSTATE) -> what to do
_REFUSALS = {
    "3D000": "PostgreSQL {server} 上没有数据库“{database}”：请先建库（createdb {database}），"
    "或改正库名",
    "28000": "PostgreSQL {server} 不接受用户“{user}”：用户不存在，或 pg_hba.conf 不允许从本机"
    "登录；请改正用户名，或请数据库管理员建用户并放行本机",
    "28P01": "PostgreSQL {server} 上用户“{user}”的密码不对：请改正密码",
}


def _unreachable(url: URL, err: Exception) -> str:
    server = f"{url.host or 'localhost'}:{url.port or 5432}"
    state = _sqlstate(err)
    if state in _REFUSALS:
        return _REFUSALS[state].format(server=server, database=url.database, user=url.username)
    if isinstance(err, socket.gaierror):
        return f"找不到数据库主机“{url.host}”：请改正主机名"
    if isinstance(err, ConnectionRefusedError):
        return f"连不上 PostgreSQL {server}（连接被拒绝）：请确认数据库已启动、主机和端口无误"
    if isinstance(err, TimeoutError):
        return f"连接 PostgreSQL {server} 超时：请确认主机、端口和防火墙"
    if url.get_backend_name() == "sqlite":
        return (
            f"无法打开 SQLite 数据库 {url.database}：请确认它是文件而不是文件夹，"
            f"且所在文件夹存在、可读写{_said(err)}"
        )
    return (
        f"无法连接 PostgreSQL {server}：请按括号中数据库的原话改正数据库地址或服务器设置，"
        f"或请数据库管理员协助{_said(err)}"
    )


def schema_refused(url: URL, err: exc.DBAPIError) -> ValidationFailed:
    """The database took the connection but refused to create or upgrade the tables (a user
    without CREATE on the schema, a read-only file, a full disk): what to do, then the
    driver's words (they were a traceback)."""
    if _sqlstate(err) == "42501":
        user, database = url.username, url.database
        said = (
            f"PostgreSQL 用户“{user}”无权在库“{database}”中建表：请数据库管理员授权"
            f"（GRANT CREATE ON SCHEMA public TO {user}），或让该用户成为库的所有者"
            f"（ALTER DATABASE {database} OWNER TO {user}），然后重试"
        )
    else:
        said = (
            "数据库拒绝了联检建表或升级：请按括号中数据库的原话处理（如权限、只读文件、"
            "磁盘已满），或请数据库管理员协助"
        )
    return ValidationFailed(said + _said(err) + _where(url))


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def is_lianjian_database(path: Path) -> bool:
    """An SQLite file with our migration table (checked read-only before anything opens it)."""
    import sqlite3
    from contextlib import closing

    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
            return (
                con.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
                ).fetchone()
                is not None
            )
    except sqlite3.DatabaseError:
        return False


def backup_sqlite(source: Path, out: Path) -> None:
    """A consistent copy of a live SQLite database by sqlite3's online backup (a plain file
    copy misses what still sits in the -wal file), as one self-contained file; `out` is never
    overwritten (FileExistsError): it may be the last good backup."""
    import os
    import sqlite3
    from contextlib import closing

    if out.exists():
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(out))
    partial = out.with_name(f".{out.name}.partial")
    partial.unlink(missing_ok=True)  # left by an interrupted backup
    try:
        # made here, not by sqlite3, whose refusal ("unable to open database file") names
        # neither the path nor the reason
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(out)) from None
    try:
        with (
            closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
            closing(sqlite3.connect(partial)) as dst,
        ):
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # no -wal beside the copy
        os.link(partial, out)  # fails rather than replace a file made meanwhile
    finally:
        partial.unlink(missing_ok=True)


def pg_dump_command(url: str, out: Path) -> str:
    """The pg_dump line that backs up the PostgreSQL database `url` names into `out`, without
    its password (pg_dump asks for it, or reads PGPASSWORD / ~/.pgpass)."""
    import shlex

    parsed = make_url(url)
    words = ["pg_dump", "-Fc"]
    for flag, value in (("-h", parsed.host), ("-p", parsed.port), ("-U", parsed.username)):
        if value:
            words += [flag, str(value)]
    words += ["-f", str(out), str(parsed.database)]
    return shlex.join(words)
