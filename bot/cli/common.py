"""The CLI's shared ground: which database a command opens, one operator transaction
(admin:cli), JSON output, and the operator-error type every command raises."""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from core.changes import Ctx
from core.clock import Clock, SystemClock
from core.db import (
    check_connection,
    database_url,
    is_lianjian_database,
    is_sqlite,
    make_engine,
    make_sessionmaker,
)
from core.deadlines import run_upgrade_steps
from core.demo_clock import DemoClock, restore_offset
from core.models import ChatPlatform, Department
from core.schema import upgrade
from core.workdays import cn_date

if TYPE_CHECKING:
    from bot.config import Settings
    from core.bindings import RobotAddress

Handler = Callable[[argparse.Namespace], Awaitable[int]]


def db_url(args: argparse.Namespace) -> str:
    """--db wins; otherwise config / LIANJIAN_DATABASE_URL (bot.config.Settings)."""
    if getattr(args, "db", None):
        return str(args.db)
    from bot.config import load_settings

    return load_settings(getattr(args, "config", None)).database_url


def robot_addresses(
    args: argparse.Namespace, settings: Settings | None = None
) -> dict[ChatPlatform, RobotAddress]:
    """Each platform's group robot address under the host `serve` sends to: the configured
    webhook_base / oapi_base (a 政务微信 deployment's own), the public one when unset. The
    configuration is `settings` when the command has read it, else read as for the database:
    --db names no configuration, so without --config the public hosts are expected (a
    ./config.toml left in the working directory may be another deployment's), and a refusal
    of the host says how to give the serving one."""
    from bot.config import load_settings
    from bot.platforms.dingtalk import protocol as dingtalk
    from bot.platforms.wecom import protocol as wecom
    from core.bindings import RobotAddress

    advice = ""
    if settings is None and getattr(args, "db", None) and not getattr(args, "config", None):
        advice = (
            "。只给了 --db、未读取配置文件，按平台的公共地址检查；政务微信等私有部署，"
            "请加 --config 服务所用的 config.toml（按其中 [wecom] webhook_base / "
            "[dingtalk] oapi_base 检查）"
        )
    elif settings is None:
        settings = load_settings(getattr(args, "config", None))
    ding_base = settings.dingtalk.oapi_base if settings and settings.dingtalk else None
    wecom_base = settings.wecom.webhook_base if settings and settings.wecom else None
    return {
        ChatPlatform.DINGTALK: RobotAddress(
            (ding_base or dingtalk.DEFAULT_OAPI_BASE).rstrip("/") + dingtalk.ROBOT_PATH,
            dingtalk.ROBOT_CREDENTIAL,
            advice,
        ),
        ChatPlatform.WECOM: RobotAddress(
            (wecom_base or wecom.DEFAULT_BASE).rstrip("/") + wecom.ROBOT_PATH,
            wecom.ROBOT_CREDENTIAL,
            advice,
        ),
    }


def bind_options(args: argparse.Namespace) -> str:
    """The options that make `chat bind` read the database and configuration this command
    read (" --db … --config …", "" for none): with --db, bind reads ./config.toml only when
    told to."""
    from bot.config import DEFAULT_CONFIG

    db, config = getattr(args, "db", None), getattr(args, "config", None)
    if db and not config and DEFAULT_CONFIG.is_file():
        config = str(DEFAULT_CONFIG)
    given = [*(["--db", str(db)] if db else []), *(["--config", str(config)] if config else [])]
    return f" {shlex.join(given)}" if given else ""


class CliError(Exception):
    """A problem with what the operator typed or pointed at: one Chinese line, exit 2."""


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite address names (a path, or an sqlite:/// URL); None for a server
    database or an in-memory one."""
    full = database_url(url)
    file = make_url(full).database if is_sqlite(full) else None
    if not file or file == ":memory:":
        return None
    return Path(file).expanduser()


def existing_database(url: str, *, create: bool, config: str | None = None) -> str:
    """An SQLite file must exist and be ours, unless this command may create it (db upgrade,
    demo and serve do); a missing folder is never created. A missing file names the command
    that creates it, with the operator's --config when the address came from it."""
    path = sqlite_file(url)
    if path is None:
        return url
    if not path.parent.is_dir():
        raise CliError(f"数据库所在的文件夹不存在：{path.parent}。请检查 --db 路径")
    if not path.exists():
        if create:
            return url
        where = f"--config {config}" if config else f"--db {path}"
        raise CliError(f"数据库文件不存在：{path}。新建请先运行 lianjian db upgrade {where}")
    if not is_lianjian_database(path):
        raise CliError(f"{path} 不是联检数据库（或已损坏）。请检查 --db 路径")
    return url


XLSX = {".xlsx": "Excel 工作簿"}
CSV = {".csv": "CSV 表格"}
FORCE_HELP = "覆盖已有的同名文件（默认不覆盖）"


def output_file(
    path: str, formats: Mapping[str, str], *, force: bool | None, kept: str = ""
) -> Path:
    """A file the operator names for output (-o): its extension says which of the command's
    `formats` (extension → its name for a clerk) to write; another extension, or none, is
    refused before any work — never a file whose name says another format than it holds.
    Then the rule of every output (`new_output`)."""
    out = Path(path)
    if out.suffix.lower() not in formats:
        kinds = "或 ".join(f"{ext}（{name}）" for ext, name in formats.items())
        example = out.with_suffix(next(iter(formats))).name if out.stem else ""
        raise CliError(
            f"输出文件名须以 {kinds}结尾：{out.name or path}"
            + (f"，例如 {example}" if example else "")
        )
    return new_output(out, force=force, kept=kept)


def new_output(out: Path, *, force: bool | None, kept: str = "") -> Path:
    """The one rule for a file a command writes (README, "Output files"), told before any
    work: the folder it goes into must exist — a missing one is refused, never a whole path
    made up from a typo — and an existing file is kept unless `force` (--force; None: the
    command has none, its file being a record, such as a backup or an archive). `kept` says
    what the existing file may be."""
    folder_must_exist(out)
    if out.is_dir():
        raise CliError(f"{out} 是一个文件夹，请给出文件名")
    if out.exists() and not force:
        raise existing_file(out, force, kept)
    return out


def existing_file(out: Path, force: bool | None, kept: str = "") -> CliError:
    """The refusal of an existing `out`, with a free name to use instead."""
    free = next(
        name
        for n in itertools.count(2)
        if not (name := out.with_name(f"{out.stem}-{n}{out.suffix}")).exists()
    )
    return CliError(
        f"{out} 已存在，未覆盖{kept}。请另选文件名，例如 {free.name}"
        + ("；确需覆盖请加 --force" if force is not None else "")
    )


def folder_must_exist(path: Path) -> None:
    """The folder `path` goes into exists: a missing one is refused, not made."""
    folder = path.absolute().parent
    if not folder.is_dir():
        said = f"{folder} 不是文件夹" if folder.exists() else f"文件夹不存在（{folder}）"
        raise CliError(f"{path}：{said}。请先建好这个文件夹，或检查路径")


def output_folder(path: Path) -> Path:
    """A folder the operator names for output: made when missing if the folder it is in exists
    (a missing one is refused, as for a file); a file of that name is refused (FileExistsError,
    told like any path the operating system refuses)."""
    folder_must_exist(path)
    path.mkdir(exist_ok=True)
    return path


def new_files(folder: Path, names: Iterable[str], *, force: bool) -> None:
    """The files a command writes into `folder`: those already there are kept unless --force."""
    if force:
        return
    if found := [name for name in names if (folder / name).exists()]:
        raise CliError(
            f"{folder} 中已存在 {len(found)} 个同名文件（如 {found[0]}），未覆盖。"
            "请换一个输出文件夹；确需覆盖请加 --force"
        )


async def cli_clock(ctx: Ctx) -> Clock:
    """Real time, except on a database whose demo clock `serve --demo` moved forward: there a
    deadline set from the real day (an invitation's reply) is long past at the demo's day, so
    the demo's time, told in one line lest anyone take it for today."""
    demo = DemoClock(ctx.clock)
    await restore_offset(ctx, demo)
    if not demo.offset:
        return ctx.clock
    print(f"演示时钟：{cn_date(demo.today())}", file=sys.stderr)
    return demo


@asynccontextmanager
async def cli_ctx(
    args: argparse.Namespace, *, migrate: bool = True, create: bool = False
) -> AsyncIterator[Ctx]:
    """One transaction as the CLI operator ("admin:cli"); committed when the block succeeds."""
    async with cli_engine(args, create=create) as engine:
        if migrate:
            await upgrade(engine)
        async with make_sessionmaker(engine)() as session:
            ctx = Ctx(session=session, clock=SystemClock(), actor_label="admin:cli")
            ctx.clock = await cli_clock(ctx)
            if migrate:  # what the upgrade left to do, in the command's transaction
                await run_upgrade_steps(ctx)
            yield ctx
            await session.commit()


@asynccontextmanager
async def cli_engine(
    args: argparse.Namespace, *, create: bool = False
) -> AsyncIterator[AsyncEngine]:
    """The database the command names, its connection checked; disposed after the block."""
    config = None if getattr(args, "db", None) else getattr(args, "config", None)
    engine = make_engine(existing_database(db_url(args), create=create, config=config))
    try:
        await check_connection(engine)
        yield engine
    finally:
        await engine.dispose()


async def department_named(ctx: Ctx, word: str) -> Department:
    """The department an operator names as an officer would (core.department_names); an
    unknown one points to the list of them."""
    from core import department_names
    from core.errors import NotFound
    from core.taskfile import DEPARTMENT_LIST

    try:
        return await department_names.find(ctx.session, word)
    except NotFound as err:
        raise NotFound(f"{err.message}（部门列表用 {DEPARTMENT_LIST} 查看）") from None


def print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))
