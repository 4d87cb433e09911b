"""`lianjian` command line: serve, demo, db, import, draw, audit, holidays, outbox, summary."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from core.bindings import PLATFORMS
from core.changes import Ctx
from core.clock import SystemClock
from core.db import database_url, is_lianjian_database, is_sqlite, make_engine, make_sessionmaker
from core.errors import DomainError
from core.schema import upgrade
from core.states import DRAW, DrawState

if TYPE_CHECKING:
    from core.summary import ScopeSummary

Handler = Callable[[argparse.Namespace], Awaitable[int]]


def _db_url(args: argparse.Namespace) -> str:
    """--db wins; otherwise config / LIANJIAN_DATABASE_URL (bot.config.Settings)."""
    if getattr(args, "db", None):
        return str(args.db)
    from bot.config import load_settings

    return load_settings(getattr(args, "config", None)).database_url


class CliError(Exception):
    """A problem with what the operator typed or pointed at: one Chinese line, exit 2."""


def _existing_database(url: str, *, create: bool) -> str:
    """An SQLite file must exist and be ours, unless this command may create it (db upgrade,
    demo and serve do); a missing folder is never created."""
    if not is_sqlite(database_url(url)) or url.startswith("sqlite"):
        return url
    path = Path(url).expanduser()
    if not path.parent.is_dir():
        raise CliError(f"数据库所在的文件夹不存在：{path.parent}。请检查 --db 路径")
    if not path.exists():
        if create:
            return url
        raise CliError(f"数据库文件不存在：{path}。新建请先运行 lianjian db upgrade --db {path}")
    if not is_lianjian_database(path):
        raise CliError(f"{path} 不是联检数据库（或已损坏）。请检查 --db 路径")
    return url


@asynccontextmanager
async def _ctx(
    args: argparse.Namespace, *, migrate: bool = True, create: bool = False
) -> AsyncIterator[Ctx]:
    """One transaction as the CLI operator ("admin:cli"); committed when the block succeeds."""
    engine = make_engine(_existing_database(_db_url(args), create=create))
    try:
        if migrate:
            await upgrade(engine)
        async with make_sessionmaker(engine)() as session:
            ctx = Ctx(session=session, clock=SystemClock(), actor_label="admin:cli")
            yield ctx
            await session.commit()
    finally:
        await engine.dispose()


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


# ---------------------------------------------------------------- db, audit, holidays


async def cmd_db_upgrade(args: argparse.Namespace) -> int:
    async with _ctx(args, create=True):
        pass
    print("数据库已升级到最新版本")
    return 0


async def cmd_audit_verify(args: argparse.Namespace) -> int:
    from core.audit import verify_chain

    async with _ctx(args) as ctx:
        problems = await verify_chain(ctx.session)
    if not problems:
        print("审计日志完整：哈希链校验通过")
        return 0
    for p in problems:
        print(f"✗ {p.problem}")
    return 1


async def cmd_holidays_load(args: argparse.Namespace) -> int:
    from core.holidays import load_holiday_year
    from core.workdays import parse_holiday_file

    hf = parse_holiday_file(Path(args.file))
    async with _ctx(args) as ctx:
        changed = await load_holiday_year(ctx, hf)
    print(
        f"已载入 {hf.year} 年节假日安排（放假 {len(hf.holidays)} "
        f"天，调休上班 {len(hf.workdays)} 天）；"
        f"重算暂定期限 {changed} 项"
    )
    return 0


# ---------------------------------------------------------------- import


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
        "plan": partial(annual_plan.import_plan, year=args.year),
    }
    fn = importers[args.kind]
    rejects = Path(args.rejects) if args.rejects else Path(args.file).with_suffix(".rejects.csv")
    with Progress(transient=True) as bar:
        job = bar.add_task(f"导入 {Path(args.file).name}", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(job, completed=done, total=total)

        async with _ctx(args) as ctx:
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
    return 0 if report.ok else 1


# ---------------------------------------------------------------- templates, readiness, report

TEMPLATE_KINDS = ("departments", "items", "inspectors", "targets", "exclusions", "plan")


def cmd_template(args: argparse.Namespace) -> int:
    from core.sheets import write_template

    path = write_template(args.kind, Path(args.output), year=SystemClock().today().year)
    print(
        f"已生成导入模板 {path}：“数据”表含表头和示例行，“填写说明”表逐列说明；"
        f"填好后用 lianjian import {args.kind} {path.name} 导入"
    )
    return 0


async def cmd_setup_check(args: argparse.Namespace) -> int:
    from core.readiness import check_setup

    async with _ctx(args) as ctx:
        readiness = await check_setup(ctx)
    print(readiness.text_zh())
    return 0 if readiness.ok else 1


async def cmd_report_year(args: argparse.Namespace) -> int:
    from core.evaluation import write_report, year_report

    async with _ctx(args) as ctx:
        report = await year_report(ctx, args.year or ctx.clock.today().year)
    path = await asyncio.to_thread(write_report, report, Path(args.output))
    print(f"已生成 {report.year} 年度考核统计：{len(report.departments)} 个成员单位 → {path}")
    if report.absent:
        print(f"未发起也未参与联合抽查（004 第七条）：{'、'.join(d.name for d in report.absent)}")
    return 0


# ---------------------------------------------------------------- draws


async def cmd_draw_list(args: argparse.Namespace) -> int:
    from core.draws.verify import all_draws

    async with _ctx(args) as ctx:
        draws = await all_draws(ctx)
        rows: list[dict[str, Any]] = [
            {
                "id": d.id,
                "code": d.code,
                "kind": d.kind,
                "task_code": d.task_code,
                "state": d.state,
                "locked": d.state == DrawState.LOCKED,
                "pool_size": d.pool_size,
                "selected": len(d.selection),
            }
            for d in draws
        ]
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("还没有任何抽取记录（任务的抽取、快抽都会列在这里）")
        return 0
    print(f"{'ID':>4}  {'抽取编号':<18} {'类型':<8} {'任务':<14} {'状态':<6} {'池':>8} {'选中':>6}")
    for r in rows:
        state = DRAW.label(r["state"])
        print(
            f"{r['id']:>4}  {r['code']:<22} {DRAW_KIND_LABELS.get(r['kind'], r['kind']):<8} "
            f"{r['task_code'] or '—':<16} {state:<6} {r['pool_size']:>8} {r['selected']:>6}"
        )
    return 0


DRAW_KIND_LABELS = {"targets": "检查对象", "inspectors": "执法人员", "quick": "快抽"}


async def cmd_draw_show(args: argparse.Namespace) -> int:
    from core.draws.verify import draw_public_json, find_draw

    async with _ctx(args) as ctx:
        data = draw_public_json(await find_draw(ctx, args.draw))
    if args.json:
        _print_json(data)
    else:
        print(_receipt(data))
    return 0


def _receipt(d: dict[str, Any]) -> str:
    """`draw show` for people: the published parameters with Chinese labels."""
    locked = d["seed"] is not None
    lines = [
        f"抽取编号：{d['code']}（{DRAW_KIND_LABELS.get(d['kind'], d['kind'])}）",
        f"任务：{d['task_code'] or '—'}    状态："
        f"{'已锁定' if locked else '未锁定（尚未揭示种子）'}",
        f"算法版本：{d['algorithm_version']}    冻结号：{d['freeze_no']}",
        f"种子承诺值：{d['commitment']}",
        f"揭示的种子：{d['seed'] or '锁定后公布'}",
    ]
    if d["uses_beacon"]:
        lines.append(f"公开信标：{d['beacon_source']}，取值 {d['beacon'] or '锁定后公布'}")
    lines += [f"抽取池：{d['pool_size']} 户，哈希 {d['pool_hash']}", "抽取规则："]
    for stratum in (d["rule"] or {}).get("strata", []):
        amount = (
            f"比例 {stratum['ratio']}"
            if stratum.get("ratio") is not None
            else f"数量 {stratum.get('count')}"
        )
        levels = "、".join(stratum.get("risk_levels") or []) or "其余"
        lines.append(f"  - {stratum.get('name', '')}（风险等级 {levels}）：{amount}")
    if locked:
        shown = d["selection"][:20]
        more = f" …… 共 {len(d['selection'])} 户" if len(d["selection"]) > 20 else ""
        lines.append(f"选中（{len(d['selection'])}）：{'、'.join(shown)}{more}")
    lines.append(f"复核：lianjian draw verify {d['code']}")
    return "\n".join(lines)


async def cmd_draw_export_pool(args: argparse.Namespace) -> int:
    from core.draws.verify import find_draw, pool_csv_text

    async with _ctx(args) as ctx:
        d = await find_draw(ctx, args.draw)
        text = await pool_csv_text(ctx, d.id)
    await asyncio.to_thread(Path(args.output).write_text, text, "utf-8")
    print(f"已导出抽取池 {d.code}：{d.pool_size} 条 → {args.output}")
    return 0


async def cmd_draw_verify(args: argparse.Namespace) -> int:
    from core.draws.verify import find_draw, verify_draw

    async with _ctx(args) as ctx:
        d = await find_draw(ctx, args.draw)
        report = await verify_draw(ctx, d.id)
    for check in report.checks:
        print(f"{'✓' if check.ok else '✗'} {check.label}{'' if check.ok else '：' + check.detail}")
    print("验证通过" if report.ok else "验证未通过")
    return 0 if report.ok else 1


# ---------------------------------------------------------------- documents


async def cmd_documents(args: argparse.Namespace) -> int:
    from core.documents import write_documents

    out = Path(args.output)
    async with _ctx(args) as ctx:
        files = await write_documents(ctx, args.code, ctx.clock.today())
    for name, content in files:
        path = out / name
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(path.write_bytes, content)
    print(f"已生成 {len(files)} 份检查文书 → {out}")
    return 0


# ---------------------------------------------------------------- exports


async def cmd_export_results(args: argparse.Namespace) -> int:
    from core.exports import RESULT_LAYOUT, results_workbook

    async with _ctx(args) as ctx:
        data, n = await results_workbook(ctx, args.year, args.department)
    await asyncio.to_thread(Path(args.output).write_bytes, data)
    print(f"已导出 {args.year} 年已公示检查结果 {n} 条（{RESULT_LAYOUT}）→ {args.output}")
    return 0


async def cmd_export_archive(args: argparse.Namespace) -> int:
    from bot.config import attachments_dir, load_settings
    from core.archive.closing import archive_task
    from core.attachments import FileStore

    store = FileStore(attachments_dir(load_settings(args.config)))
    async with _ctx(args) as ctx:
        data, task = await archive_task(ctx, args.task, store)
        # written before the commit: a task is closed only once its archive exists
        await asyncio.to_thread(Path(args.output).write_bytes, data)
        code = task.code
    print(f"任务 {code} 已立卷归档，状态改为“已归档” → {args.output}")
    return 0


# ---------------------------------------------------------------- tasks


async def cmd_task_create(args: argparse.Namespace) -> int:
    from core.taskfile import create_from_file, read_task_file

    spec = read_task_file(Path(args.file))
    async with _ctx(args) as ctx:
        task = await create_from_file(ctx, spec)
        code, title, state, commitment = task.code, task.title, task.state, task.commitment
    print(
        f"已创建联合抽查任务 {code}：{title}"
        + (f"（年度抽查计划 {spec.plan}）" if spec.plan else "")
    )
    if state == "draft":
        print(f"任务为草稿（{state}），文件中没有邀请参与部门")
    else:
        invited = "、".join(spec.invite) or "计划中的参与部门"
        print(f"已向 {invited} 发出邀请；随机种子承诺值 {commitment}")
    return 0


# ---------------------------------------------------------------- chats


async def cmd_chat_bind(args: argparse.Namespace) -> int:
    from core.bindings import bind_chat, masked

    async with _ctx(args) as ctx:
        b = await bind_chat(
            ctx,
            department_code=None if args.to == "office" else args.to,
            platform=args.platform,
            webhook_url=args.webhook,
            sign_secret=args.secret or "",
        )
    print(f"已绑定群机器人 #{b.id}（{args.platform}）→ {args.to}：{masked(args.webhook)}")
    return 0


async def cmd_chat_list(args: argparse.Namespace) -> int:
    from core.bindings import list_chats, masked

    async with _ctx(args) as ctx:
        rows = await list_chats(ctx)
    for b, owner in rows:
        state = "启用" if b.enabled else f"停用（{b.disabled_reason}）"
        print(f"{b.id:>4}  {owner:<16} {b.platform:<9} {state}  {masked(b.webhook_url)}")
    if not rows:
        print("尚未绑定任何群机器人")
    return 0


# ---------------------------------------------------------------- outbox, summary


async def cmd_outbox_list(args: argparse.Namespace) -> int:
    from core.outbox import list_dead, list_recent

    async with _ctx(args) as ctx:
        rows = await (list_dead(ctx.session) if args.dead else list_recent(ctx.session))
    for r in rows:
        print(
            f"{r.id:>6}  {r.state:<8} {r.dest_key:<16} 尝试 {r.attempts}  "
            f"{r.message.get('title') or r.message.get('kind')}  {r.last_error[:60]}"
        )
    if not rows:
        print("没有死信" if args.dead else "发件箱为空")
    return 0


async def cmd_outbox_retry(args: argparse.Namespace) -> int:
    from core.outbox import retry

    async with _ctx(args) as ctx:
        await retry(ctx.session, args.id, ctx.clock.now())
    print(f"消息 {args.id} 已重新排队")
    return 0


async def cmd_summary(args: argparse.Namespace) -> int:
    """The leaders' daily summary: printed for a terminal, or `.md` + `.png` per leader."""
    from core.errors import NotFound
    from core.summary import SummaryRun, active_leaders, scope_summary

    async with _ctx(args) as ctx:
        day = args.date or ctx.clock.today()
        leaders = await active_leaders(ctx, args.leader) if args.leader or args.out else []
        if args.leader and not leaders:
            raise NotFound(f"没有在岗的领导人员编号 {args.leader}")
        run = SummaryRun()  # each task counted once for all the scopes
        scopes = [
            (f"{o.code}-{o.name}", await scope_summary(ctx, day, o.department_id, run=run))
            for o in leaders
        ]
        if not args.leader:
            scopes.insert(0, ("全部部门", await scope_summary(ctx, day, run=run)))
    if args.out:
        return await asyncio.to_thread(_write_summaries, Path(args.out), day.isoformat(), scopes)
    from rich.console import Console
    from rich.markdown import Markdown

    for (
        _,
        scoped,
    ) in scopes:  # chat markdown breaks lines on a single newline; rich needs two spaces
        Console().print(Markdown(re.sub(r"(?<!\n)\n(?!\n)", "  \n", scoped.message().body)))
    return 0


def _write_summaries(out: Path, day: str, scopes: list[tuple[str, ScopeSummary]]) -> int:
    from core.charts import render_charts

    out.mkdir(parents=True, exist_ok=True)
    pngs = render_charts([scoped.chart for _, scoped in scopes])
    for (label, scoped), png in zip(scopes, pngs, strict=True):
        stem = out / f"{label}-{day}"
        stem.with_suffix(".md").write_text(scoped.message().body + "\n", "utf-8")
        if png is not None:
            stem.with_suffix(".png").write_bytes(png)
        print(f"{stem}.md" + (f"、{stem.name}.png" if png else "（未安装中文字体，未生成图表）"))
    return 0


# ---------------------------------------------------------------- serve, demo


async def cmd_demo(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from core.demo import STAGES, run_demo

    # Only on a terminal: in CI logs or `| tail` the transcript lines alone are the output.
    with Progress(transient=True, disable=not sys.stdout.isatty()) as bar:
        job = bar.add_task("演示", total=len(STAGES))

        def stage(name: str) -> None:
            bar.update(job, completed=STAGES.index(name), description=f"演示：{name}")

        return await run_demo(
            db=args.db, seed=args.seed, targets=args.targets, out=print, stage=stage
        )


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.config import load_settings
    from bot.server import run

    overrides: dict[str, Any] = {
        k: v
        for k, v in {"host": args.host, "port": args.port, "database_url": args.db}.items()
        if v is not None
    }
    settings = load_settings(args.config, **overrides)
    run(settings, demo=args.demo)
    return 0


# ---------------------------------------------------------------- parser


def _date_arg(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"日期“{value}”格式不对，应为 YYYY-MM-DD，如 2026-12-07"
        ) from None


class ChineseHelpFormatter(argparse.HelpFormatter):
    def add_usage(
        self, usage: str | None, actions: Any, groups: Any, prefix: str | None = None
    ) -> None:
        # argparse passes prefix="" when it builds a subcommand's prog from its parent
        super().add_usage(usage, actions, groups, prefix="用法：" if prefix is None else prefix)


# argparse's own English messages, as operators read them (matched on argparse's wording)
ARGPARSE_ZH = (
    (re.compile(r"the following arguments are required: (.*)"), "缺少参数：{0}"),
    (
        re.compile(r"argument (\S+): invalid choice: '?([^']*)'? \(choose from (.*)\)"),
        "参数 {0} 的取值“{1}”无效，可选：{2}",
    ),
    (
        re.compile(r"invalid choice: '?([^']*)'? \(choose from (.*)\)"),
        "没有“{0}”这个命令，可用：{1}",
    ),
    (re.compile(r"unrecognized arguments: (.*)"), "无法识别的参数：{0}"),
    (re.compile(r"argument (\S+): expected one argument"), "参数 {0} 后面需要一个值"),
    (re.compile(r"argument (\S+): invalid (\w+) value: '?([^']*)'?"), "参数 {0} 的值“{2}”格式不对"),
)


class ChineseArgumentParser(argparse.ArgumentParser):
    """Usage, help and errors in Chinese; an error prints the usage and exits 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", ChineseHelpFormatter)
        kwargs.setdefault("add_help", False)
        super().__init__(*args, **kwargs)
        self.add_argument("-h", "--help", action="help", help="显示帮助并退出")
        self._positionals.title = "参数"
        self._optionals.title = "选项"

    def error(self, message: str) -> NoReturn:
        for pattern, text in ARGPARSE_ZH:
            if match := pattern.search(message):
                message = text.format(*match.groups())
                break
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}：错误：{message}\n运行 {self.prog} -h 查看说明\n")


def _parser() -> argparse.ArgumentParser:
    p = ChineseArgumentParser(
        prog="lianjian", description="联检：部门联合“双随机、一公开”抽查机器人"
    )
    sub = p.add_subparsers(
        dest="command",
        required=True,
        title="命令",
        metavar="命令",
        parser_class=ChineseArgumentParser,
    )

    def add(
        name: str,
        fn: Handler | Callable[[argparse.Namespace], int],
        help_: str,
        parent: Any = sub,
        db: bool = True,
    ) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = parent.add_parser(name, help=help_)
        if db:
            sp.add_argument("--db", help="数据库文件路径或 SQLAlchemy URL")
            sp.add_argument("--config", help="config.toml 路径")
        sp.set_defaults(fn=fn)
        return sp

    s = add("serve", cmd_serve, "启动机器人服务（含本地模拟器）")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--demo", action="store_true", help="先载入演示数据，便于在模拟器中体验")

    d = add("demo", cmd_demo, "生成模拟县域数据并完整演示一次联合抽查", db=False)
    d.add_argument("--db", help="SQLite 文件（默认临时目录）")
    d.add_argument("--seed", type=int, default=2026)
    d.add_argument("--targets", type=int, default=20000)

    db = sub.add_parser("db", help="数据库").add_subparsers(
        dest="sub", required=True, title="子命令", metavar="子命令"
    )
    add("upgrade", cmd_db_upgrade, "执行数据库迁移", parent=db)

    imp = add("import", cmd_import, "批量导入（CSV / XLSX）")
    imp.add_argument(
        "kind",
        choices=[
            "departments",
            "items",
            "targets",
            "inspectors",
            "exclusions",
            "conflicts",
            "plan",
        ],
    )
    imp.add_argument("file")
    imp.add_argument("--skip-invalid", action="store_true", help="导入合格行，不合格行写入拒收文件")
    imp.add_argument("--rejects", help="拒收文件路径（默认 原文件名.rejects.csv）")
    imp.add_argument("--show-errors", type=int, default=50)
    imp.add_argument("--year", type=int, help="年度抽查计划的年度（默认今年）")

    tp = add("template", cmd_template, "生成导入模板（XLSX，含示例行和填写说明）", db=False)
    tp.add_argument("kind", choices=list(TEMPLATE_KINDS))
    tp.add_argument("-o", "--output", required=True)

    st = sub.add_parser("setup", help="上线准备").add_subparsers(dest="sub", required=True)
    add("check", cmd_setup_check, "检查开展第一次联合抽查前还缺什么（未就绪时返回非零）", parent=st)

    rp = sub.add_parser("report", help="统计报表").add_subparsers(dest="sub", required=True)
    ry = add("year", cmd_report_year, "年度考核统计（XLSX）", parent=rp)
    ry.add_argument("--year", type=int, help="年度（默认今年）")
    ry.add_argument("-o", "--output", required=True)

    dr = sub.add_parser("draw", help="抽取记录与验证").add_subparsers(
        dest="sub", required=True, title="子命令", metavar="子命令"
    )
    add("list", cmd_draw_list, "列出抽取记录", parent=dr).add_argument(
        "--json", action="store_true"
    )
    show = add("show", cmd_draw_show, "显示一次抽取的公开参数", parent=dr)
    show.add_argument("draw", help="抽取编号或 ID")
    show.add_argument("--json", action="store_true")
    ex = add("export-pool", cmd_draw_export_pool, "导出抽取池（id,stratum）", parent=dr)
    ex.add_argument("draw")
    ex.add_argument("-o", "--output", required=True)
    add("verify", cmd_draw_verify, "重算并核对一次抽取", parent=dr).add_argument("draw")

    au = sub.add_parser("audit", help="审计日志").add_subparsers(
        dest="sub", required=True, title="子命令", metavar="子命令"
    )
    add("verify", cmd_audit_verify, "校验审计日志哈希链", parent=au)

    ho = sub.add_parser("holidays", help="节假日数据").add_subparsers(
        dest="sub", required=True, title="子命令", metavar="子命令"
    )
    add("load", cmd_holidays_load, "载入某年节假日安排（TOML/JSON）", parent=ho).add_argument(
        "file"
    )

    tk = sub.add_parser("task", help="联合抽查任务").add_subparsers(
        dest="sub", required=True, title="子命令", metavar="子命令"
    )
    add(
        "create",
        cmd_task_create,
        "按任务文件（TOML，见 examples/task.example.toml）创建任务并发出邀请",
        parent=tk,
    ).add_argument("file")

    dc = add(
        "documents", cmd_documents, "生成任务或案件的联合抽查通知书和检查记录表（Word 与网页）"
    )
    dc.add_argument("code", help="任务编号（整套）或案件号")
    dc.add_argument("-o", "--output", required=True, help="输出目录")

    xp = sub.add_parser("export", help="导出与归档").add_subparsers(
        dest="sub", required=True, title="子命令", metavar="子命令"
    )
    er = add(
        "results",
        cmd_export_results,
        "导出某年度已公示的检查结果（省级平台结果录入格式 XLSX）",
        parent=xp,
    )
    er.add_argument("--year", type=int, required=True)
    er.add_argument("--department", help="部门编码或全称：只导出该部门发起或参加的任务")
    er.add_argument("-o", "--output", required=True)
    ea = add("archive", cmd_export_archive, "任务立卷归档（ZIP），归档后任务办结", parent=xp)
    ea.add_argument("task", help="任务编号")
    ea.add_argument("-o", "--output", required=True)

    ch = sub.add_parser("chat", help="部门群 / 办公室群机器人").add_subparsers(
        dest="sub", required=True, title="子命令", metavar="子命令"
    )
    cb = add("bind", cmd_chat_bind, "绑定群机器人 Webhook（新绑定替换旧绑定）", parent=ch)
    cb.add_argument("to", help="部门编号，或 office 表示联席会议办公室群")
    cb.add_argument("--platform", required=True, choices=PLATFORMS)
    cb.add_argument("--webhook", required=True, help="机器人 Webhook 地址（含 key / access_token）")
    cb.add_argument("--secret", help="钉钉机器人加签密钥（SEC 开头）")
    add("list", cmd_chat_list, "列出群机器人绑定", parent=ch)

    ob = sub.add_parser("outbox", help="发件箱").add_subparsers(
        dest="sub", required=True, title="子命令", metavar="子命令"
    )
    add("list", cmd_outbox_list, "列出消息", parent=ob).add_argument("--dead", action="store_true")
    add("retry", cmd_outbox_retry, "重新发送死信", parent=ob).add_argument("id", type=int)

    su = add("summary", cmd_summary, "领导日报：打印，或按领导写出 .md 和 .png")
    su.add_argument("--date", type=_date_arg, help="日期 YYYY-MM-DD（默认今天）")
    su.add_argument("--leader", help="领导的人员编号（默认全部）")
    su.add_argument("--out", help="输出目录：每位领导一个 .md 和一个 .png")
    return p


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    args = _parser().parse_args(argv)
    try:
        result = args.fn(args)
        code = asyncio.run(result) if asyncio.iscoroutine(result) else result
    except DomainError as err:
        print(f"错误：{err.message}", file=sys.stderr)
        return 2
    except CliError as err:
        print(f"错误：{err}", file=sys.stderr)
        return 2
    except ValidationError as err:
        # pydantic's own text echoes each input (an AES key, a secret): print location + message
        print(f"配置有误 / invalid settings（{err.error_count()} 处）：", file=sys.stderr)
        for error in err.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or err.title
            print(f"  {where}: {error['msg']}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `lianjian … | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
