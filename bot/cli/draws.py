"""Checking the record: `draw list/show/export-pool/verify` recompute and show a draw's
published parameters, `audit verify` checks the audit hash chain, `audit show` reads a task's or a
case's trail."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bot.cli.common import CSV, cli_ctx, output_file, print_json
from core.states import DRAW, DrawState


async def cmd_draw_list(args: argparse.Namespace) -> int:
    from core.draws.verify import all_draws

    async with cli_ctx(args) as ctx:
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
        print_json(rows)
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

    async with cli_ctx(args) as ctx:
        data = draw_public_json(await find_draw(ctx, args.draw))
    if args.json:
        print_json(data)
    else:
        print(_receipt(data))
    return 0


def _receipt(d: dict[str, Any]) -> str:
    """`draw show` for people: the published parameters with Chinese labels."""
    from core.draws.algorithm import rule_lines

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
    lines += [f"  - {line}" for line in rule_lines(d["rule"])]
    if locked:
        shown = d["selection"][:20]
        more = f" …… 共 {len(d['selection'])} 户" if len(d["selection"]) > 20 else ""
        lines.append(f"选中（{len(d['selection'])}）：{'、'.join(shown)}{more}")
    lines.append(f"复核：lianjian draw verify {d['code']}")
    return "\n".join(lines)


async def cmd_draw_export_pool(args: argparse.Namespace) -> int:
    from core.draws.verify import find_draw, pool_csv_text

    out = output_file(args.output, CSV, force=args.force)
    async with cli_ctx(args) as ctx:
        d = await find_draw(ctx, args.draw)
        text = await pool_csv_text(ctx, d.id)
    await asyncio.to_thread(out.write_text, text, "utf-8")
    print(f"已导出抽取池 {d.code}：{d.pool_size} 条 → {args.output}")
    return 0


async def cmd_draw_verify(args: argparse.Namespace) -> int:
    from core.draws.verify import find_draw, verify_draw

    async with cli_ctx(args) as ctx:
        d = await find_draw(ctx, args.draw)
        report = await verify_draw(ctx, d.id)
    print(f"抽取编号：{d.code}（{DRAW_KIND_LABELS.get(d.kind, d.kind)}）")
    if report.replaced_by:
        print(f"已作废：由 {report.replaced_by} 取代，不会锁定")
    for check in report.checks:
        print(f"{'✓' if check.ok else '✗'} {check.label}{'' if check.ok else '：' + check.detail}")
    print("验证通过" if report.ok else "验证未通过")
    return 0 if report.ok else 1


async def cmd_audit_verify(args: argparse.Namespace) -> int:
    from core.audit import verify_chain

    async with cli_ctx(args) as ctx:
        problems = await verify_chain(ctx.session)
    if not problems:
        print("审计日志完整：哈希链校验通过")
        return 0
    for p in problems:
        print(f"✗ {p.problem}")
    return 1


async def cmd_audit_show(args: argparse.Namespace) -> int:
    """A task's or a case's events in words, oldest first (the archive's excerpt, readable)."""
    from core.cases import get_case
    from core.jointtask import get_task
    from core.trail import case_trail, task_trail, trail_text

    code = args.code.strip().upper()
    async with cli_ctx(args) as ctx:
        if code.count("-") >= 3:  # LJ-2026-001-013 names a case, LJ-2026-001 its task
            case = await get_case(ctx, code)
            title, events = f"案件 {case.code}", await case_trail(ctx.session, case)
        else:
            task = await get_task(ctx, code)
            title, events = f"任务 {task.code}", await task_trail(ctx.session, task)
        text = await trail_text(ctx.session, title, events)
    if args.json:
        print_json(
            [
                {
                    "id": e.id,
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "subject": e.subject,
                    "data": e.data,
                    "hash": e.hash,
                }
                for e in events
            ]
        )
        return 0
    print(text, end="")
    return 0
