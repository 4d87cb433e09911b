"""County setup commands: `db upgrade`, `import`, `template`, `setup check` and `holidays
load` — what an operator runs before the first joint inspection."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import make_url

from bot.cli.common import (
    CSV,
    XLSX,
    CliError,
    bind_options,
    cli_ctx,
    cli_engine,
    db_url,
    department_named,
    existing_database,
    existing_file,
    new_output,
    output_file,
    robot_addresses,
    sqlite_file,
)
from core.clock import SystemClock
from core.imports import IMPORT_ORDER
from core.schema import upgrade


async def cmd_db_upgrade(args: argparse.Namespace) -> int:
    file = sqlite_file(db_url(args))
    new = file is not None and not file.exists()
    async with cli_engine(args, create=True) as engine:
        changed = await upgrade(engine)
    async with cli_ctx(args):  # the upgrade steps the migrations left to do
        pass
    if new:
        print(f"已新建数据库 {file}（最新版本）")
    else:
        print("数据库已升级到最新版本" if changed else "数据库已是最新版本，无需升级")
    return 0


async def cmd_db_link_secret(args: argparse.Namespace) -> int:
    """Record the configured link secret as the database's: a deliberate change of key, which
    serve otherwise refuses (core/link_key.py)."""
    from bot.config import link_secret, load_settings
    from core.link_key import record_link_key

    settings = load_settings(args.config, **({"database_url": args.db} if args.db else {}))
    key = link_secret(settings)
    async with cli_ctx(args) as ctx:
        changed = await record_link_key(ctx, key, "有意更换密钥（lianjian db link-secret）")
    if not changed:
        print("数据库记录的已是当前的签名链接密钥，无需更改")
        return 0
    print(
        "已记录当前的签名链接密钥：共用这个数据库的每个 lianjian serve 都须改用它并重启，"
        "此前发出的链接已失效"
    )
    return 0


def cmd_db_backup(args: argparse.Namespace) -> int:
    """A copy of the live database to keep; the link secret is told, not copied: whoever
    holds it can sign links as any officer, so it is kept apart from the backups."""
    from bot.config import attachments_dir, load_settings, secret_file_path
    from core.db import backup_sqlite, database_url, is_sqlite, pg_dump_command

    settings = load_settings(args.config, **({"database_url": args.db} if args.db else {}))
    url = database_url(existing_database(settings.database_url, create=False))
    out = Path(args.output)
    if not is_sqlite(url):
        raise CliError(
            "PostgreSQL 数据库请用 pg_dump 备份（密码按提示输入，或用 PGPASSWORD、~/.pgpass）：\n"
            f"  {pg_dump_command(url, out)}"
        )
    kept = "（可能是上一份备份）"
    new_output(out, force=None, kept=kept)
    try:
        backup_sqlite(Path(str(make_url(url).database)), out)
    except FileExistsError:  # made meanwhile
        raise existing_file(out, None, kept) from None
    print(f"已备份数据库（运行中也一致，含尚未写回主文件的最新数据）→ {out}")
    print(f"附件（照片等）在 {attachments_dir(settings)}，请一并备份")
    if (secret := secret_file_path(settings)).exists():
        print(
            f"链接密钥 {secret} 未复制：它是凭据，请另行妥善保管；"
            "恢复时放回数据库旁，丢失则已发出的链接全部失效"
        )
    return 0


async def cmd_import(args: argparse.Namespace) -> int:
    from functools import partial

    from rich.progress import Progress

    from core.imports import annual_plan
    from core.imports.conflicts import import_conflicts
    from core.imports.departments import import_departments
    from core.imports.exclusions import import_exclusions
    from core.imports.flow import ImportReport
    from core.imports.inspectors import import_inspectors
    from core.imports.items import import_items
    from core.imports.targets import import_targets

    importers: dict[str, Callable[..., Awaitable[ImportReport]]] = {
        "departments": import_departments,
        "items": import_items,
        "targets": import_targets,
        "inspectors": import_inspectors,
        "exclusions": import_exclusions,
        "conflicts": import_conflicts,
        "plan": partial(annual_plan.import_plan, year=args.year, past_year=args.past_year),
    }
    fn = importers[args.kind]
    rejects = (
        # rewritten on each run: it is that run's report, not a record
        output_file(args.rejects, {**CSV, **XLSX}, force=True)
        if args.rejects
        else Path(args.file).with_suffix(".rejects.csv")
    )
    if _same_file(rejects, Path(args.file)):  # the list would be replaced by its rejects
        raise CliError(f"--rejects {args.rejects} 正是要导入的文件，会被拒收行覆盖。请另选文件名")
    # Only on a terminal (as the demo's): on a pipe or in a log the bar left an empty first
    # line before the report, which scripts read.
    with Progress(transient=True, disable=not sys.stdout.isatty()) as bar:
        job = bar.add_task(f"导入 {Path(args.file).name}", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(job, completed=done, total=total)

        async with cli_ctx(args) as ctx:
            report = await fn(
                ctx,
                Path(args.file),
                skip_invalid=args.skip_invalid,
                rejects_path=rejects if args.skip_invalid else None,
                progress=progress,
            )
    print(report.summary_zh())
    if report.ignored_columns:
        print(f"  未识别、已忽略的列：{'、'.join(report.ignored_columns)}")
    for err in report.rejected[: args.show_errors]:
        print(f"  第 {err.line} 行 {err.column}：{err.reason}")
    if len(report.rejected) > args.show_errors:
        print(f"  …… 另有 {len(report.rejected) - args.show_errors} 条错误")
    if report.file_error:  # the file itself (path, type, columns): as any command's wrong path
        return 2
    return 0 if report.ok else 1


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:  # either missing: the import says so of its file
        return False


# every importer's XLSX, and the task and holiday files (TOML)
TEMPLATE_KINDS = (*IMPORT_ORDER, "task", "holidays")


def cmd_template(args: argparse.Namespace) -> int:
    from core.sheets import write_template

    toml = args.kind in TEXT_TEMPLATES
    # an existing file is most likely the copy the office has filled in
    formats = {".toml": "TOML 文本"} if toml else XLSX
    path = output_file(args.output, formats, force=args.force, kept="（可能是已填写的文件）")
    if toml:
        example, then = TEXT_TEMPLATES[args.kind]
        path.write_bytes(example())
        print(f"已生成{then.format(path=path)}")
        return 0
    write_template(args.kind, path, year=SystemClock().today().year)
    print(
        f"已生成导入模板 {path}：“数据”表含表头和示例行，“填写说明”表逐列说明；"
        f"填好后用 lianjian import {args.kind} {path} 导入"
    )
    return 0


def _task_example() -> bytes:
    from core.taskfile import task_file_example

    return task_file_example(SystemClock().today())


def _holidays_example() -> bytes:
    from core.render import templates_dir

    return (templates_dir() / "holidays.example.toml").read_bytes()


# the TOML examples: how each is made, and what to do with it
TEXT_TEMPLATES: dict[str, tuple[Callable[[], bytes], str]] = {
    "task": (
        _task_example,
        "任务文件示例 {path}：照着修改后用 lianjian task create {path} 创建任务",
    ),
    "holidays": (
        _holidays_example,
        "节假日文件示例 {path}：按国务院办公厅公布的安排改写后"
        "用 lianjian holidays load {path} 载入",
    ),
}


async def cmd_setup_check(args: argparse.Namespace) -> int:
    from bot.config import link_secret_missing, load_settings
    from bot.server import serve_refusals
    from core.readiness import check_setup

    # the configuration too (with --db as well): a platform section it cannot use is told here
    # with every key it lacks, not at serve; so is a link secret serve would refuse to start
    # without
    settings = load_settings(args.config, **({"database_url": args.db} if args.db else {}))
    async with cli_ctx(args) as ctx:
        readiness = await check_setup(ctx, robot_addresses(args, settings), bind_options(args))
    if missing := link_secret_missing(settings):
        readiness.problems.append(missing)
    problems, notes = serve_refusals(settings)
    readiness.problems += problems
    print(settings.platforms_zh())
    print(readiness.text_zh())
    for note in notes:
        print(f"注意：{note}")
    return 0 if readiness.ok else 1


async def cmd_department_list(args: argparse.Namespace) -> int:
    from core.department_names import county_departments

    async with cli_ctx(args) as ctx:
        departments = await county_departments(ctx.session)
        lines = [f"{d.code}\t{d.name}\t{d.short_name}".rstrip() for d in departments]
    print("\n".join(lines) or "尚未导入部门：用 lianjian import departments 文件 导入")
    return 0


async def cmd_item_list(args: argparse.Namespace) -> int:
    from core.consultation.answers import item_choices

    async with cli_ctx(args) as ctx:
        department = await department_named(ctx, args.department)
        items = await item_choices(ctx, department.id)
        lines = [f"{i.code}\t{'重点' if i.category == 'key' else '一般'}\t{i.name}" for i in items]
        name = department.name
    print("\n".join(lines) or f"{name}尚无抽查事项：用 lianjian import items 文件 导入")
    return 0


async def cmd_holidays_load(args: argparse.Namespace) -> int:
    from core.holidays import load_holiday_year
    from core.workdays import parse_holiday_file

    hf = parse_holiday_file(Path(args.file), allow_empty=args.allow_empty)
    async with cli_ctx(args) as ctx:
        changed = await load_holiday_year(ctx, hf)
    print(
        f"已载入 {hf.year} 年节假日安排（放假 {len(hf.holidays)} "
        f"天，调休上班 {len(hf.workdays)} 天）；"
        f"重算暂定期限 {changed} 项"
    )
    return 0
