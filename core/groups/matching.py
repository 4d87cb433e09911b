"""Stage 3, inspection groups: matching — each participating department's inspectors drawn
in key order (same seed and beacon as the targets), dealt round-robin into one group per case,
and each inspector and department told their cases (seeds 001 第十四条, 004 第十三条).

locked → inspecting.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.access import lead_only
from core.changes import Ctx, Notice, record
from core.draws import algorithm
from core.draws.pool import INSPECTOR_KEYS, InspectorRow, build_inspector_pool, encode_pool
from core.draws.targets import locked_draw
from core.errors import InvalidTransition, ValidationFailed
from core.jointtask import CHUNK, DONE_STATES, LISTED_CASES, get_task, participants, task_items
from core.links import page_ref
from core.messages import Destination, OutMessage
from core.models import (
    Case,
    Department,
    Draw,
    DrawPool,
    GroupMember,
    JointTask,
    Officer,
    OfficerConflict,
)
from core.render import render
from core.states import DRAW, TASK, DrawState, TaskState


class _Roster:
    """One department's inspectors in key order; hands out the least-loaded eligible one, ties
    going to key order — plain round-robin when nothing is skipped, so loads differ by ≤ 1."""

    def __init__(self, department: Department, officers: Sequence[InspectorRow]) -> None:
        self.department = department
        self.heap: list[tuple[int, int, InspectorRow]] = [
            (0, pos, o) for pos, o in enumerate(officers)
        ]

    def take(
        self, target_id: int, taken: set[int], conflicts: set[tuple[int, int]]
    ) -> InspectorRow | None:
        skipped, chosen = [], None
        while self.heap:
            load, pos, officer = heapq.heappop(self.heap)
            if officer.id in taken or (officer.id, target_id) in conflicts:
                skipped.append((load, pos, officer))
                continue
            chosen = officer
            heapq.heappush(self.heap, (load + 1, pos, officer))
            break
        for entry in skipped:
            heapq.heappush(self.heap, entry)
        return chosen


def _inspector_rule(
    departments: Sequence[Department], sizes: dict[int, int]
) -> algorithm.SamplingRule:
    """Every inspector of every department is ordered: one stratum per department, count = all."""
    return algorithm.parse_rule(
        {"strata": [{"name": d.code, "count": sizes[d.id]} for d in departments]}
    )


async def _task_cases(
    session: AsyncSession, task: JointTask, selection: Sequence[str]
) -> list[Case]:
    """The task's cases in selection order."""
    cases = list(await session.scalars(select(Case).where(Case.task_id == task.id)))
    position = {u: n for n, u in enumerate(selection)}
    return sorted(cases, key=lambda c: position[c.target.uscc])


async def _conflicts(session: AsyncSession, officer_ids: Iterable[int]) -> set[tuple[int, int]]:
    ids = list(officer_ids)
    out: set[tuple[int, int]] = set()
    for i in range(0, len(ids), CHUNK):
        rows = await session.execute(
            select(OfficerConflict.officer_id, OfficerConflict.target_id).where(
                OfficerConflict.officer_id.in_(ids[i : i + CHUNK])
            )
        )
        out.update((o, t) for o, t in rows)
    return out


def _assign(
    cases: Sequence[Case],
    rosters: Sequence[_Roster],
    conflicts: set[tuple[int, int]],
    min_size: int,
) -> dict[int, list[tuple[InspectorRow, bool]]]:
    """case id → [(officer, is_leader)]: the lead's first officer leads; each accepted department
    sends one; the lead tops the group up to the minimum size."""
    lead, others = rosters[0], rosters[1:]
    groups: dict[int, list[tuple[InspectorRow, bool]]] = {}
    for case in cases:
        taken: set[int] = set()
        group: list[tuple[InspectorRow, bool]] = []
        for roster in (lead, *others):
            officer = roster.take(case.target_id, taken, conflicts)
            if officer is None:
                raise ValidationFailed(
                    f"{roster.department.name}没有可派往 {case.code}"
                    f"（{case.target.name}）的执法检查人员（其余人员均需回避）"
                )
            taken.add(officer.id)
            group.append((officer, roster is lead))
        while len(group) < min_size:
            officer = lead.take(case.target_id, taken, conflicts)
            if officer is None:
                raise ValidationFailed(
                    f"{lead.department.name}的执法检查人员不足，无法使 {case.code} "
                    f"的检查组达到 {min_size} 人"
                )
            taken.add(officer.id)
            group.append((officer, False))
        groups[case.id] = group
    return groups


async def match_inspectors(ctx: Ctx, task_code: str) -> list[Case]:
    """Draw each participating department's inspectors (keyed order, same seed and beacon as the
    targets) and match them round-robin into one group per case."""
    task = await get_task(ctx, task_code, for_update=True)
    lead_only(ctx, task, "inspectors.match", admin=False)
    if not TASK.allows(task.state, TaskState.INSPECTING):
        raise InvalidTransition(
            "已匹配执法检查人员，不能重新匹配"
            if task.state in DONE_STATES
            else "检查对象尚未抽取锁定，不能匹配执法检查人员"
        )
    targets_draw = await locked_draw(ctx, task, "targets")
    departments = await participants(ctx, task)
    asked = {k: task.scope.get(k, []) for k in INSPECTOR_KEYS}
    pools = await build_inspector_pool(
        ctx,
        [d.id for d in departments],
        expertise=asked["inspector_expertise"],
        regions=asked["inspector_regions"],
    )
    if empty := [d.name for d in departments if not pools[d.id]]:
        who = (
            "符合本任务专业领域、区域要求的在岗执法检查人员"
            if any(asked.values())
            else "在岗的执法检查人员"
        )
        raise ValidationFailed(f"{'、'.join(empty)}没有{who}，无法匹配检查组")
    by_code = {algorithm.INSPECTOR_PREFIX + o.code: o for rows in pools.values() for o in rows}
    dep_code = {d.id: d.code for d in departments}
    pool = [(i, dep_code[o.department_id]) for i, o in by_code.items()]
    rule = _inspector_rule(departments, {d: len(rows) for d, rows in pools.items()})
    seed = bytes.fromhex(targets_draw.seed_hex)
    beacon = targets_draw.beacon or None
    selection = algorithm.select(pool, rule, algorithm.final_seed(seed, beacon), task.code)
    ordered: dict[int, list[InspectorRow]] = defaultdict(list)
    for i in selection:
        ordered[by_code[i].department_id].append(by_code[i])
    cases = await _task_cases(ctx.session, task, targets_draw.selection)
    conflicts = await _conflicts(ctx.session, (o.id for o in by_code.values()))
    rosters = [_Roster(d, ordered[d.id]) for d in departments]
    groups = _assign(cases, rosters, conflicts, ctx.rules.min_group_size)
    await (await ctx.session.connection()).execute(
        insert(GroupMember),
        [
            {
                "case_id": cid,
                "officer_id": o.id,
                "department_id": o.department_id,
                "is_leader": leads,
                "active": True,
            }
            for cid, members in groups.items()
            for o, leads in members
        ],
    )
    now = ctx.clock.now()
    n = 1 + (
        await ctx.session.scalar(
            select(func.count())
            .select_from(Draw)
            .where(Draw.task_id == task.id, Draw.kind == "inspectors")
        )
        or 0
    )
    inspectors_draw = Draw(
        code=f"{task.code}-I{n}",
        task_id=task.id,
        kind="inspectors",
        task_code=task.code,
        state=DRAW.start(DrawState.LOCKED),
        freeze_no=1,
        commitment=targets_draw.commitment,
        seed_hex=targets_draw.seed_hex,
        beacon_source=targets_draw.beacon_source,
        beacon=targets_draw.beacon,
        uses_beacon=targets_draw.uses_beacon,
        pool_hash=algorithm.pool_hash(pool),
        pool_size=len(pool),
        parameters={
            "rule": rule.public(),
            "strata": algorithm.stratum_sizes(pool),
            "min_group_size": ctx.rules.min_group_size,
            **{k: v for k, v in asked.items() if v},
        },
        algorithm_version=algorithm.ALGORITHM_VERSION,
        selection=selection,
        created_by_id=ctx.actor.id if ctx.actor else None,
        frozen_at=now,
        locked_at=now,
    )
    ctx.session.add(inspectors_draw)
    await ctx.session.flush()
    ctx.session.add(DrawPool(draw_id=inspectors_draw.id, data=encode_pool(pool)))
    TASK.move(task, TaskState.INSPECTING)
    loads = Counter(o.code for members in groups.values() for o, _ in members)
    notices = await _match_notices(ctx, task, inspectors_draw, cases, groups, departments)
    await record(
        ctx,
        "inspectors.matched",
        f"task:{task.code}",
        {
            "draw": inspectors_draw.code,
            "pool_hash": inspectors_draw.pool_hash,
            "pool_size": len(pool),
            "cases": len(cases),
            "loads": dict(sorted(loads.items())),
        },
        notices,
    )
    return cases


def _group_names(
    members: Iterable[tuple[InspectorRow, bool]], names: dict[int, str]
) -> tuple[str, str]:
    """("张三、李四", leader's name)."""
    listed = list(members)
    leader = next((names[o.id] for o, leads in listed if leads), "—")
    return "、".join(names[o.id] for o, _ in listed), leader


async def _match_notices(
    ctx: Ctx,
    task: JointTask,
    draw: Draw,
    cases: Sequence[Case],
    groups: dict[int, list[tuple[InspectorRow, bool]]],
    departments: Sequence[Department],
) -> list[Notice]:
    officer_ids = {o.id for members in groups.values() for o, _ in members}
    names = dict(
        (
            await ctx.session.execute(
                select(Officer.id, Officer.name).where(Officer.id.in_(officer_ids))
            )
        ).all()
    )
    items = "、".join(i.name for i in await task_items(ctx, task))
    per_officer: dict[int, list[dict[str, str]]] = defaultdict(list)
    per_department: dict[int, list[dict[str, str]]] = defaultdict(list)
    for case in cases:
        members = groups[case.id]
        listed, leader = _group_names(members, names)
        entry = case_entry(case, listed, leader)
        for officer, _ in members:
            per_officer[officer.id].append(entry)
        for dep_id in {o.department_id for o, _ in members}:
            ours = "、".join(names[o.id] for o, _ in members if o.department_id == dep_id)
            per_department[dep_id].append({**entry, "ours": ours})
    workdays = ctx.rules.result_entry_workdays
    notices = [
        assignment_notice(ctx, task, entries, items, oid, key=f"matched:{task.id}:officer:{oid}")
        for oid, entries in per_officer.items()
    ]
    for dep in departments:
        entries = per_department[dep.id]
        officers = len({o.id for m in groups.values() for o, _ in m if o.department_id == dep.id})
        text = render(
            "messages/department_cases.md.j2",
            task=task,
            department=dep,
            total=len(entries),
            officers=officers,
            shown=entries[:LISTED_CASES],
            hidden=max(0, len(entries) - LISTED_CASES),
            workdays=workdays,
            draw=draw.code,
        )
        notices.append(
            Notice(
                Destination.department(dep.id),
                OutMessage.md(f"检查人员匹配结果：{task.code}", text),
                key=f"matched:{task.id}:department:{dep.id}",
            )
        )
    return notices


def case_entry(case: Case, members: str, leader: str) -> dict[str, str]:
    """One case of an assignment; `result` is the signed result form the sender fills in."""
    return {
        "code": case.code,
        "name": case.target.name,
        "uscc": case.target.uscc,
        "address": case.target.address,
        "members": members,
        "leader": leader,
        "result": page_ref("result", f"case:{case.id}"),
    }


def assignment_notice(
    ctx: Ctx,
    task: JointTask,
    entries: list[dict[str, str]],
    items: str,
    officer_id: int,
    *,
    key: str,
    joined: str = "",
) -> Notice:
    """One inspector's assignment: every case with address, group, window, items and deadline."""
    text = render(
        "messages/inspector_cases.md.j2",
        task=task,
        total=len(entries),
        shown=entries[:LISTED_CASES],
        hidden=max(0, len(entries) - LISTED_CASES),
        items=items,
        workdays=ctx.rules.result_entry_workdays,
        joined=joined,
        documents=page_ref("documents", f"task:{task.code}"),
    )
    return Notice(
        Destination.officer(officer_id), OutMessage.md(f"检查任务：{task.code}", text), key=key
    )
