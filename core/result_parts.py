"""Stage 5, result entry: each department's part of a case (谁检查、谁录入, 000 §九–十) — which
departments enter a part (those with items in the task), whose items an inspector may enter (their
own; the others' are carried over as they stand), which parts are in, returned or missing, and a
part recorded as entered. core.result_entry enters the version the parts make up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select

from core.cases import china_date, department_categories
from core.changes import Ctx
from core.errors import ValidationFailed
from core.inspection import result_deadline
from core.models import (
    Case,
    CasePart,
    CaseResult,
    Department,
    Item,
    ItemResult,
    JointTask,
    Officer,
    TaskItem,
)
from core.results import (
    FOLLOWUPS,
    METHODS,
    NO_FOLLOWUP,
    case_codes,
    contradiction,
    mixed_items,
    needs_form,
    no_problem_text,
    raise_first,
    situations,
    with_parents,
)
from core.states import PART, PartState
from core.timeliness import entered_late, first_entries, last_returns, owed_by

if TYPE_CHECKING:  # core.result_entry builds on this module
    from core.result_entry import EntryState

_PART_FIELDS = ("codes", "content", "problems", "handling")


def own_parts(
    task_items: Sequence[tuple[Item, Department]],
    latest_items: Sequence[ItemResult],
    actor: Officer,
    item_results: Sequence[dict[str, Any]],
    codes: Sequence[str],
    correcting: str = "",
) -> list[dict[str, Any]]:
    """谁检查、谁录入 (000 §九–十): an inspector enters the items of their own department; the
    other departments' parts of the latest version (`latest_items`) are carried over as they
    stand, and an entry that would change one of them is refused, naming whose part it is; an
    own item of 未发现问题 with problems or handling is refused (`no_problem_text`), on every path.
    `task_items`: the task's items with the department checking each; `correcting`: the case's
    code when this is a correction of its published result (a refusal then points at the
    correction form, not the result form)."""
    owner = {
        item.id: (department.id, item.name, department.name) for item, department in task_items
    }
    before: dict[int, dict[str, Any]] = {
        row.item_id: {"item_id": row.item_id, **{k: getattr(row, k) for k in _PART_FIELDS}}
        for row in latest_items
    }
    merged: dict[int, dict[str, Any]] = {}
    for entry in item_results:
        item_id = int(entry["item_id"])
        department_id, name, department = owner.get(item_id, (actor.department_id, "", ""))
        if department_id == actor.department_id:
            raise_first(
                [
                    ValidationFailed(f"“{name}”{err.message}", field=err.field)
                    for err in no_problem_text(
                        list(entry.get("codes") or []),
                        str(entry.get("problems", "")),
                        str(entry.get("handling", "")),
                    )
                ]
            )
        else:
            old = before.get(item_id)
            same = old is not None and all(
                (list(entry.get(k) or []) if k == "codes" else str(entry.get(k, ""))) == old[k]
                for k in _PART_FIELDS
            )
            if not same:
                raise ValidationFailed(
                    f"“{name}”是{department}的检查事项，由该部门的检查人员录入（谁检查、谁录入）"
                )
        merged[item_id] = dict(entry)
    for item_id, old in before.items():
        if owner.get(item_id, (actor.department_id,))[0] != actor.department_id:
            merged.setdefault(item_id, old)
    if "1" in codes:
        _found_elsewhere(owner, before, merged, actor.department_id, correcting)
    return list(merged.values())


def _found_elsewhere(
    owner: dict[int, tuple[int, str, str]],
    before: dict[int, dict[str, Any]],
    merged: dict[int, dict[str, Any]],
    department_id: int,
    correcting: str,
) -> None:
    """The case's conclusion covers every department's items: another department's finding
    rules out 未发现问题 — said plainly, since the quick chat entry shows no items. A
    correction of items already 未发现问题 corrects nothing."""
    for item_id, entry in merged.items():
        mine, name, department = owner.get(item_id, (department_id, "", ""))
        if mine == department_id or all(c == "1" for c in entry.get("codes") or []):
            continue
        own = [old["codes"] for i, old in before.items() if owner.get(i, (0,))[0] == department_id]
        if correcting and own and all(c == ["1"] for c in own):
            raise ValidationFailed(
                "本部门的检查事项已是“未发现问题”，无需更正；"
                f"案件结论按各部门事项合并，{department}录入的“{name}”由该部门更正",
                field="items",
            )
        where = (
            f"请发送“更正 {correcting}”打开更正表单，逐项更正本部门事项"
            if correcting
            else "请在结果填报表单中录入本部门事项"
        )
        raise ValidationFailed(
            f"{department}录入的“{name}”已发现问题或情况，案件结论不能为“未发现问题”；"
            f"{where}（案件结论按各部门事项合并）",
            field="items",
        )


def check_agreement(
    department_id: int,
    codes: Sequence[str],
    task_items: Sequence[tuple[Item, Department]],
    item_results: Sequence[dict[str, Any]],
    parts: dict[int, CasePart],
    departments: Sequence[Department],
) -> None:
    """Refuses a department's entry or correction whose own items say different situations
    (`results.mixed_items`), or whose conclusion (`codes`) contradicts another department's
    entered part (`results.contradiction`), read from its items in `item_results` (the
    version's, the others' as they stand). A returned part is not compared: it is to be
    entered again. `departments`: the task's (their categories name the codes)."""
    department_of = {item.id: department for item, department in task_items}
    names = {item.id: item.name for item, _ in task_items}
    mine: list[tuple[str, Sequence[str]]] = []
    theirs: dict[int, list[Sequence[str]]] = {}
    for entry in item_results:
        item_id, found = int(entry["item_id"]), entry["codes"]
        department = department_of.get(item_id)
        if department is None or not found:
            continue
        if department.id == department_id:
            mine.append((names[item_id], found))
        else:
            theirs.setdefault(department.id, []).append(found)
    extra = department_categories(departments)
    mixed = mixed_items(mine, extra)
    if mixed is not None:
        raise mixed
    for department in {d.id: d for d in department_of.values() if d.id in theirs}.values():
        part = parts.get(department.id)
        if part is None or part.state != PartState.ENTERED:
            continue
        said = case_codes(theirs[department.id])
        on = china_date(part.entered_at)
        misfit = contradiction(codes, said, department.name, on, extra)
        if misfit is not None:
            raise misfit


def situation_for_all(
    task_items: Sequence[tuple[Item, Department]],
    department_id: int,
    item_results: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The lead's correction to the target's situation made every department's: a situation
    is the target's, formed without a visit (004 第十八条), so it is the result of each item.
    Every other department's item takes the situation of the department's item that names
    it (with the parents its codes need and, when they describe a problem, as 6 does, its
    words for it); what each check covered (检查内容) stays as entered."""
    theirs = [item.id for item, d in task_items if d.id != department_id]
    mine = [e for e in item_results if int(e["item_id"]) not in theirs]
    source = next(e for e in mine if situations(e["codes"]))
    codes = with_parents(situations(source["codes"]))
    described = needs_form(codes)
    said = {k: str(source.get(k, "")) if described else "" for k in ("problems", "handling")}
    content = {int(e["item_id"]): e.get("content", "") for e in item_results}
    return mine + [
        {"item_id": item_id, "codes": codes, "content": content.get(item_id, ""), **said}
        for item_id in theirs
    ]


@dataclass(frozen=True)
class QuickEntry:
    """What a chat 提交 enters: the officer's own items with the codes typed, the other
    departments' parts carried over, and the department's own case-level fields (named as
    core.result_entry.submit_result's keywords; core merges them with the other parts')."""

    codes: list[str]  # the case conclusion, merged from every department's items
    methods: list[str]
    followups: list[str]
    followup_done: bool
    followup_done_on: dt.date | None
    item_results: list[dict[str, Any]]
    remarks: str


def quick_items(
    item_ids: Sequence[int], codes: Sequence[str], content: Mapping[int, str] | None = None
) -> list[dict[str, Any]]:
    """A quick result (the chat's 提交 or 更正, naming no items): `codes` for each item, no
    problems or handling; `content`, what each item's check covered, where it was entered."""
    content = content or {}
    return [
        {
            "item_id": item_id,
            "codes": list(codes),
            "content": content.get(item_id, ""),
            "problems": "",
            "handling": "",
        }
        for item_id in item_ids
    ]


def quick_entry(
    loaded: EntryState,
    actor: Officer,
    codes: Sequence[str],
    methods: Sequence[str],
    followups: Sequence[str],
) -> QuickEntry:
    """谁检查、谁录入 (000 §九–十) for the chat's 提交, which names no items: `codes` become the
    result of each of the officer's department's items, and the case conclusion is merged
    from every department's items as the result form merges it — not the last department's
    words alone. `methods` and `followups` are the department's own; the other parts' stand
    (core merges them, `merged_fields`), and so do the department's own remarks, which the
    chat cannot say. From the case as `loaded` for the entry (no look-ups of its own)."""
    own = sorted(item.id for item, dept in loaded.task_items if dept.id == actor.department_id)
    mine = quick_items(own, codes)
    carried = [
        {"item_id": row.item_id, **{k: getattr(row, k) for k in _PART_FIELDS}}
        for row in sorted(loaded.latest_items, key=lambda row: row.item_id)
        if row.item_id not in own
    ]
    part = loaded.parts.get(actor.department_id)
    return QuickEntry(
        codes=case_codes([codes, *(entry["codes"] for entry in carried)]),
        methods=list(methods),
        followups=list(followups),
        followup_done=False,
        followup_done_on=None,
        item_results=mine + carried,
        remarks=part.remarks if part is not None else "",
    )


OWN_FIELDS = ("methods", "followups", "followup_done", "followup_done_on", "remarks")


def own_codes(
    task_items: Sequence[tuple[Item, Department]],
    department_id: int,
    item_results: Sequence[dict[str, Any]],
    codes: Sequence[str],
) -> list[str]:
    """The conclusion of the department's own part: merged from its items in `item_results`,
    or, when it entered none, the conclusion given (`codes`)."""
    mine = {item.id for item, department in task_items if department.id == department_id}
    found = case_codes(e["codes"] for e in item_results if int(e["item_id"]) in mine)
    return found or list(codes)


def merged_fields(
    fields: dict[str, Any],
    parts: dict[int, CasePart],
    departments: Sequence[Department],
    department_id: int,
) -> dict[str, Any]:
    """The version's case-level fields merged from every department's own (谁检查、谁录入,
    000 §九–十): `fields` for the entering department, its stored part for each other one
    (entered or returned: what it entered stands until it enters again). Methods add up;
    follow-ups add up, 无需后续处置 only when no part has another; follow-up is done when
    every part with one has done it (on the last day); remarks stand each with its
    department's name when more than one department wrote any. `departments`: the task's,
    lead first."""
    entries: list[tuple[str, dict[str, Any]]] = []
    for d in departments:
        if d.id == department_id:
            entries.append((d.name, fields))
        elif d.id in parts:
            entries.append((d.name, {k: getattr(parts[d.id], k) for k in OWN_FIELDS}))
    if all(d.id != department_id for d in departments):
        entries.append(("", fields))
    said = [e for _, e in entries]
    followups = [f for f in FOLLOWUPS if any(f in e["followups"] for e in said)]
    if len(followups) > 1:
        followups = [f for f in followups if f != NO_FOLLOWUP]
    done, done_on = _followup_done(said)
    return {
        **fields,
        "methods": [m for m in METHODS if any(m in e["methods"] for e in said)],
        "followups": followups,
        "followup_done": done,
        "followup_done_on": done_on,
        "remarks": _remarks(entries),
    }


def _followup_done(entries: Sequence[dict[str, Any]]) -> tuple[bool, dt.date | None]:
    acting = [e for e in entries if set(e["followups"]) - {NO_FOLLOWUP}] or [
        e for e in entries if e["followup_done"]
    ]
    days = [e["followup_done_on"] for e in acting if e["followup_done"] and e["followup_done_on"]]
    if not acting or len(days) < len(acting):
        return False, None
    return True, max(days)


def _remarks(entries: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """The case's remarks: one department's alone as written; several, each under the names of
    the departments that wrote it (谁检查、谁录入: the same words from two departments are
    two departments' remarks, not one's)."""
    said: dict[str, list[str]] = {}  # text -> the departments that wrote it, in order
    for name, entry in entries:
        if entry["remarks"]:
            said.setdefault(entry["remarks"], []).append(name)
    if len(said) == 1 and len(next(iter(said.values()))) == 1:
        return next(iter(said))
    return "\n".join(
        f"{'、'.join(n for n in names if n)}：{text}" if any(names) else text
        for text, names in said.items()
    )


def departments_with_items(
    task: JointTask, task_items: Sequence[tuple[Item, Department]]
) -> list[Department]:
    """`part_departments` from the task's items already loaded (no query)."""
    found = {department.id: department for _, department in task_items}
    return sorted((found[i] for i in sorted(found)), key=lambda d: d.id != task.lead_department_id)


def not_entered(parts: dict[int, CasePart], with_parts: Sequence[Department]) -> list[Department]:
    """Departments whose part of the case is not entered (never, or returned)."""
    return [d for d in with_parts if d.id not in parts or parts[d.id].state != PartState.ENTERED]


async def part_departments(ctx: Ctx, task: JointTask) -> list[Department]:
    """The departments with items in the task, the lead first: each enters its own part."""
    rows = await ctx.session.scalars(
        select(Department)
        .where(Department.id.in_(select(TaskItem.department_id).where(TaskItem.task_id == task.id)))
        .order_by(Department.id)
    )
    return sorted(rows, key=lambda d: d.id != task.lead_department_id)


_CASE_PARTS = select(CasePart).where(CasePart.case_id == bindparam("case_id"))


async def case_parts(ctx: Ctx, case: Case) -> dict[int, CasePart]:
    """The case's parts by department id (entered or returned; none yet: not entered)."""
    rows = await ctx.session.scalars(_CASE_PARTS, {"case_id": case.id})
    return {p.department_id: p for p in rows}


async def missing_parts(ctx: Ctx, case: Case, task: JointTask) -> list[Department]:
    """Departments whose part of the case is not entered (never, or returned)."""
    return not_entered(await case_parts(ctx, case), await part_departments(ctx, task))


@dataclass(frozen=True)
class PartStatus:
    """One department's part of a case as 案件 shows it: entered (on which China day; late when
    its first entry was), returned (overdue once its re-entry window has passed), or missing
    (overdue once the case's result deadline has passed) — core.timeliness."""

    department: Department
    state: str  # entered | returned | missing
    entered_on: dt.date | None
    late: bool


async def part_status(
    ctx: Ctx,
    case: Case,
    task: JointTask,
    *,
    parts: dict[int, CasePart] | None = None,
    with_parts: Sequence[Department] | None = None,
) -> list[PartStatus]:
    """`parts`, `with_parts`: the case's parts and the departments with items, if loaded."""
    cal = await ctx.work_calendar()
    due = result_deadline(cal, ctx.rules, case, task)
    if parts is None:
        parts = await case_parts(ctx, case)
    if with_parts is None:
        with_parts = await part_departments(ctx, task)
    # 001 第十六条(三): judged by each department's first entry, a returned part by its re-entry
    # window (core.timeliness) — looked up only when a part could be late: entered (last) after
    # the deadline, or returned and the deadline passed
    today = ctx.clock.today()
    entered_after = any(
        p.state == PartState.ENTERED and china_date(p.entered_at) > due.day for p in parts.values()
    )
    returned_after = today > due.day and any(p.state == PartState.RETURNED for p in parts.values())
    firsts = await first_entries(ctx.session, [case.id]) if entered_after or returned_after else {}
    returned_on = (
        (await last_returns(ctx.session, [case.id])).get(case.id) if returned_after else None
    )
    found = []
    for d in with_parts:
        part = parts.get(d.id)
        if part is None:
            found.append(PartStatus(d, "missing", None, today > due.day))
            continue
        on = china_date(part.entered_at)
        first = firsts.get((case.id, d.id), on)
        if part.state == PartState.ENTERED:
            found.append(PartStatus(d, "entered", on, entered_late(first, due.day)))
        else:
            owed = owed_by(cal, ctx.rules, due, first, returned_on)
            found.append(PartStatus(d, "returned", on, today > owed.day))
    return found


async def part_enterers(
    ctx: Ctx, parts: dict[int, CasePart], departments: Sequence[Department]
) -> list[str]:
    """Who entered each department's entered part (谁检查、谁录入, 000 §九–十), as
    "县市场监督管理局 张检查", in the departments' order."""
    named = []
    for d in departments:
        part = parts.get(d.id)
        if part is not None and part.state == PartState.ENTERED:
            officer = await ctx.session.get(Officer, part.entered_by_id)  # usually in the map
            assert officer is not None  # a foreign key
            named.append(f"{d.name} {officer.name}")
    return named


async def enter_part(
    ctx: Ctx,
    case: Case,
    department_id: int,
    result: CaseResult,
    actor: Officer,
    parts: dict[int, CasePart],
    own: dict[str, Any],
) -> None:
    """The department's part entered with `result`, with its own case-level fields (`own`,
    `OWN_FIELDS`); `parts`: the case's parts as loaded (with the case row locked), the new
    one added to them."""
    part = parts.get(department_id)
    now = ctx.clock.now()
    if part is None:
        part = CasePart(
            case_id=case.id,
            department_id=department_id,
            state=PART.start(PartState.ENTERED),
            version=result.version,
            entered_by_id=actor.id,
            entered_at=now,
        )
        ctx.session.add(part)
        parts[department_id] = part
    else:
        PART.move(part, PartState.ENTERED)
        part.version, part.entered_by_id, part.entered_at = result.version, actor.id, now
    set_own_fields(part, own)


def set_own_fields(part: CasePart, own: dict[str, Any]) -> None:
    """The department's own case-level fields (`OWN_FIELDS`) as entered or corrected."""
    for name in OWN_FIELDS:
        setattr(part, name, list(own[name]) if isinstance(own[name], list) else own[name])
