"""Day-to-day operation: `report year`, the leaders' `summary`, the `outbox` and the group
`chat` bindings."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import (
    XLSX,
    CliError,
    cli_ctx,
    new_files,
    output_file,
    output_folder,
    robot_addresses,
)
from bot.platforms.base import plain_text
from core.states import OutboxState

if TYPE_CHECKING:
    from core.summary import ScopeSummary


async def cmd_report_year(args: argparse.Namespace) -> int:
    from core.evaluation import write_report, year_report

    out = output_file(args.output, XLSX, force=args.force)
    async with cli_ctx(args) as ctx:
        report = await year_report(ctx, args.year or ctx.clock.today().year)
    path = await asyncio.to_thread(write_report, report, out)
    print(f"已生成 {report.year} 年度考核统计：{len(report.departments)} 个成员单位 → {path}")
    if report.absent:
        print(f"未发起也未参与联合抽查（004 第七条）：{'、'.join(d.name for d in report.absent)}")
    return 0


async def cmd_summary(args: argparse.Namespace) -> int:
    """The leaders' daily summary: printed for a terminal, or `.md` + `.png` per leader."""
    from core.summary import SummaryRun, active_leaders, leader_named, scope_summary

    async with cli_ctx(args) as ctx:
        day = ctx.clock.today()
        if args.date and args.date != day:
            # the figures are the cases' states now: no earlier day's can be rebuilt
            raise CliError(
                f"--date {args.date.isoformat()}：日报按案件当前的状态统计，只能生成今天"
                f"（{day.isoformat()}）的日报，无法还原其他日期的情况；"
                "过去某日的日报见当日发给各领导的消息"
            )
        if args.leader:
            leaders = [await leader_named(ctx, args.leader)]
        else:
            leaders = await active_leaders(ctx) if args.out else []
        run = SummaryRun()  # each task counted once for all the scopes
        scopes = [
            (f"{o.code}-{o.name}", await scope_summary(ctx, day, o.department_id, run=run))
            for o in leaders
        ]
        if not args.leader:
            scopes.insert(0, ("全部部门", await scope_summary(ctx, day, run=run)))
    if args.out:
        return await asyncio.to_thread(
            _write_summaries, Path(args.out), day.isoformat(), scopes, force=args.force
        )
    # as the leaders read it, one line per line: a terminal renderer padded every line to the
    # terminal's width and wrapped mid-phrase
    print("\n\n".join(plain_text(scoped.message().body) for _, scoped in scopes))
    return 0


def _write_summaries(
    out: Path, day: str, scopes: list[tuple[str, ScopeSummary]], *, force: bool
) -> int:
    from core.charts import cjk_font, render_charts

    output_folder(out)
    stems = [f"{label}-{day}" for label, _ in scopes]
    new_files(out, [f"{stem}{ext}" for stem in stems for ext in (".md", ".png")], force=force)
    charts = [scoped.chart for _, scoped in scopes if scoped.chart.drawn]
    if charts and cjk_font() is None:  # in Chinese here, not the charts' English log line
        print("未安装中文字体（如 Debian 的 fonts-wqy-microhei），摘要未附图表")
        charts = []
    drawn = iter(render_charts(charts))
    for label, scoped in scopes:
        stem = out / f"{label}-{day}"
        stem.with_suffix(".md").write_text(scoped.message().body + "\n", "utf-8")
        png = next(drawn, None) if scoped.chart.drawn else None
        if png is not None:
            stem.with_suffix(".png").write_bytes(png)
            print(f"{stem}.md、{stem.name}.png")
        elif scoped.chart.drawn:
            print(f"{stem}.md（未附图表）")
        else:
            print(f"{stem}.md（没有进行中的任务，不生成图表）")
    return 0


async def cmd_outbox_list(args: argparse.Namespace) -> int:
    from core.outbox import list_dead, list_recent, reason_zh, recipients_zh
    from core.states import OUTBOX

    async with cli_ctx(args) as ctx:
        rows = await (list_dead(ctx.session) if args.dead else list_recent(ctx.session))
        reasons = [await reason_zh(ctx.session, r) if r.last_error else "" for r in rows]
        recipients = await recipients_zh(ctx.session, rows)
    for r, reason in zip(rows, reasons, strict=True):
        print(
            f"{r.id:>6}  {OUTBOX.label(r.state):<4} {recipients[r.dest_key]:<16} "
            f"{_attempts(r.state, r.attempts)}  {_headline(r.message)}  {reason}"
        )
    if not rows:
        print("没有死信" if args.dead else "发件箱为空")
    return 0


def _attempts(state: OutboxState, attempts: int) -> str:
    """How many times the sender tried; a pending row not yet tried says so."""
    if state == OutboxState.SENT:
        return f"发送 {attempts} 次"
    return f"已尝试 {attempts} 次" if attempts else "尚未发送"


def _headline(message: dict[str, Any]) -> str:
    """What a queued message is about: its title, else its first line (a command's reply has
    no title: the list printed “None”)."""
    first = plain_text(str(message.get("body") or "")).split("\n", 1)[0]
    return str(message.get("title") or first or "（图片）")[:40]


async def cmd_outbox_retry(args: argparse.Namespace) -> int:
    from core.outbox import dead_ids, retry

    async with cli_ctx(args) as ctx:
        ids = await dead_ids(ctx.session) if args.all_dead else args.ids
        if not ids:
            raise CliError("请写明要重新发送的消息编号，或加 --all-dead 重新发送全部死信")
        for row_id in ids:  # one transaction: a wrong id requeues none
            await retry(ctx.session, row_id, ctx.clock.now())
    print(f"已重新排队 {len(ids)} 条")
    return 0


async def cmd_chat_bind(args: argparse.Namespace) -> int:
    from core.bindings import bind_chat, masked
    from core.models import ChatPlatform, Department

    async with cli_ctx(args) as ctx:
        b = await bind_chat(
            ctx,
            department_code=None if args.to == "office" else args.to,
            platform=args.platform,
            webhook_url=args.webhook,
            robot=robot_addresses(args)[ChatPlatform(args.platform)],
            sign_secret=args.secret or "",
        )
        department = await ctx.session.get(Department, b.department_id) if b.department_id else None
    owner = "联席会议办公室群" if department is None else department.name
    print(f"已绑定群机器人 #{b.id}（{args.platform}）→ {owner}：{masked(args.webhook)}")
    return 0


async def cmd_chat_list(args: argparse.Namespace) -> int:
    from core.bindings import list_chats, masked

    async with cli_ctx(args) as ctx:
        rows = await list_chats(ctx)
    for b, owner in rows:
        state = "启用" if b.enabled else f"停用（{b.disabled_reason}）"
        print(f"{b.id:>4}  {owner:<16} {b.platform:<9} {state}  {masked(b.webhook_url)}")
    if not rows:
        print("尚未绑定任何群机器人")
    return 0
