"""Stage 5, result entry: a group member enters the case's result (codes, methods, follow-ups, each
item's findings) as a new version (CaseResult); late entry is accepted and flagged. Review is
core.review; a published version is never edited (core.publication.correct_result).

谁检查、谁录入 (000 §九–十): each department's inspectors enter their own department's items
(its part, CasePart); the case goes to review only when every department with items in the task
has entered its part. Until then it is `part_entered` and each missing department's inspectors
in the group are told which part waits for them, against the case's one result deadline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.attachments import attachment_row
from core.cases import (
    AFTER_APPROVAL,
    advance_task,
    department_categories,
    departments_and_items,
    message,
    participating_departments,
    require_member,
    result_labels,
    reviewers_and_staff,
    with_group,
)
from core.changes import Ctx, Notice, record
from core.codes import case_number
from core.errors import InvalidTransition, NotFound, ValidationFailed
from core.inspection import (
    check_day,
    check_inspection_day,
    check_same_visit,
    result_deadline,
    set_inspected_on,
    targets_locked_at,
)
from core.messages import Destination
from core.models import (
    Attachment,
    Case,
    CasePart,
    CaseResult,
    Department,
    GroupMember,
    Item,
    ItemResult,
    JointTask,
    Officer,
    Referral,
    TaskItem,
)
from core.result_parts import (
    check_agreement,
    departments_with_items,
    enter_part,
    merged_fields,
    not_entered,
    own_codes,
    own_parts,
    part_enterers,
)
from core.results import (
    NO_FOLLOWUP,
    REFERRAL_FOLLOWUPS,
    Category,
    check_codes,
    missing_referral,
    raise_first,
    result_problems,
    unrecorded_referral,
)
from core.states import (
    CASE,
    RESULT,
    CaseState,
    PartState,
    ResultState,
)
from core.timeliness import entered_late, first_entries, reentry_deadlines
from core.workdays import Deadline


def _validated_items(
    task_items: set[int],
    codes: Sequence[str],
    item_results: Sequence[dict[str, Any]],
    extra: Sequence[Category],
) -> list[dict[str, Any]]:
    seen: set[int] = set()
    cleaned: list[dict[str, Any]] = []
    for entry in item_results:
        item_id = int(entry["item_id"])
        if item_id not in task_items:
            raise ValidationFailed(f"事项 {item_id} 不属于本次抽查任务")
        if item_id in seen:
            raise ValidationFailed(f"事项 {item_id} 的结果填写了两次")
        seen.add(item_id)
        item_codes = list(entry.get("codes") or [])
        if item_codes:
            check_codes(item_codes, extra)
        if "1" in codes and any(c != "1" for c in item_codes):
            raise ValidationFailed("有事项发现问题或情况，案件结论不能为“未发现问题”")
        cleaned.append(
            {
                "item_id": item_id,
                "codes": item_codes,
                "content": str(entry.get("content", "")),
                "problems": str(entry.get("problems", "")),
                "handling": str(entry.get("handling", "")),
            }
        )
    return cleaned


_REFERRALS = (
    select(Referral.kind, Referral.to_department, Officer.department_id)
    .join(Officer, Officer.id == Referral.created_by_id)
    .where(Referral.case_id == bindparam("case_id"))
    .order_by(Referral.id)
)


async def own_referrals(
    session: AsyncSession, case_id: int, department_id: int
) -> list[tuple[str, str]]:
    """(kind, receiver) of each referral the department made of the case, in order."""
    rows = (await session.execute(_REFERRALS, {"case_id": case_id})).all()
    return [(kind, to) for kind, to, by in rows if by == department_id]


async def referral_problem(
    session: AsyncSession,
    case: Case,
    followups: Sequence[str],
    department_id: int,
    adding: tuple[str, str] | None = None,
    *,
    disproved: bool = False,
) -> ValidationFailed | None:
    """A department's follow-ups against the case's referrals: a 移送 without its referral
    (`missing_referral`), or 无需后续处置 from a department that referred a clue of the case
    (`unrecorded_referral`) — unless its correction found the problem did not exist
    (`disproved`, `results.problem_disproved`). `adding`: (kind, receiver) of a referral
    entered with the result, not stored yet. Read only when the follow-ups name a 移送 or
    无需后续处置 (statements are the form's cost, #9)."""
    if not any(kind in REFERRAL_FOLLOWUPS or kind == NO_FOLLOWUP for kind in followups):
        return None
    rows = (await session.execute(_REFERRALS, {"case_id": case.id})).all()
    made = [(kind, to) for kind, to, by in rows if by == department_id]
    made += [adding] if adding is not None else []
    kinds = {kind for kind, *_ in rows} | {kind for kind, _ in made}
    return missing_referral(followups, kinds) or (
        None if disproved else unrecorded_referral(followups, made)
    )


def _following(latest: CaseResult | None) -> tuple[int, int]:
    """The version and edition after `latest`: versions count every entry (each department's
    part, each re-entry after a return); the edition, what people read as “第 N 版”, stays
    until the result is published and counts its corrections after that."""
    if latest is None:
        return 1, 1
    return latest.version + 1, latest.edition + (latest.published_at is not None)


async def _next_version(session: AsyncSession, case: Case) -> tuple[int, int]:
    latest = await session.scalar(
        select(CaseResult)
        .where(CaseResult.case_id == case.id)
        .order_by(CaseResult.version.desc())
        .limit(1)
    )
    return _following(latest)


_TASK_ITEM_IDS = select(TaskItem.item_id).where(TaskItem.task_id == bindparam("task_id"))


async def new_version(
    ctx: Ctx,
    case: Case,
    task: JointTask,
    entered_by: Officer,
    fields: dict[str, Any],
    state: ResultState,
    departments: Sequence[Department] | None = None,
    *,
    loaded: EntryState | None = None,
    part: dict[str, Any] | None = None,
    disproved: bool = False,
) -> CaseResult:
    """Validate a result and add it as the next version, in `state`; `departments`: the task's
    participating departments if the caller has them already; `loaded`: the case as read for
    this entry, with the case row locked (its task items and latest version: no look-ups).
    `part`: the entering department's own part (its conclusion, methods and follow-ups), which
    the rules of a result are checked on when `fields` merge every department's (a
    department answers for its own codes, not for another's); the merged conclusion's codes
    must still fit together. `disproved`: a correction found the part's published problem
    did not exist (`results.problem_disproved`)."""
    if departments is None:
        departments = await participating_departments(ctx, task)
    extra = department_categories(departments)
    today = ctx.clock.today()
    inspected_on = fields["inspected_on"] or case.inspected_on
    checked = fields if part is None else part
    if part is not None:
        check_codes(fields["codes"], extra)
    in_task = (
        {item.id for item, _ in loaded.task_items}
        if loaded is not None
        else set(await ctx.session.scalars(_TASK_ITEM_IDS, {"task_id": task.id}))
    )
    # the items first: a conclusion they contradict is refused as such, not by a rule on it
    items = _validated_items(in_task, fields["codes"], fields["item_results"], extra)
    raise_first(
        result_problems(
            checked["codes"],
            checked["methods"],
            checked["followups"],
            inspected_on,
            today=today,
            extra=extra,
            followup_done=checked["followup_done"],
            followup_done_on=checked["followup_done_on"],
        )
    )
    referral = await referral_problem(
        ctx.session, case, checked["followups"], entered_by.department_id, disproved=disproved
    )
    if referral is not None:
        raise referral
    if inspected_on is not None and inspected_on != case.inspected_on:
        if loaded is not None:
            check_day(task, case, inspected_on, today, loaded.targets_locked_at)
        else:
            await check_inspection_day(ctx, task, case, inspected_on)
        await set_inspected_on(ctx, case, inspected_on)
    version, edition = (
        loaded.next_version() if loaded is not None else await _next_version(ctx.session, case)
    )
    result = CaseResult(
        case_id=case.id,
        version=version,
        edition=edition,
        state=RESULT.start(state),
        codes=list(fields["codes"]),
        methods=list(fields["methods"]),
        followups=list(fields["followups"]),
        followup_done=fields["followup_done"],
        followup_done_on=fields["followup_done_on"],
        inspected_on=inspected_on,
        remarks=fields["remarks"],
        entered_by_id=entered_by.id,
        entered_at=ctx.clock.now(),
    )
    ctx.session.add(result)
    # inserted with the version at the next flush (no flush of its own for the version's id)
    rows = [ItemResult(result=result, **item) for item in items]
    ctx.session.add_all(rows)
    if loaded is not None:
        loaded.entered = rows
    return result


@dataclass
class EntryState:
    """What entering a result decides on, read once with the case row locked: the chat's
    `提交` loads it (`load_entry_state`), the result form builds it from the sheet it has
    shown and checked the form against. Every rule is then checked by `enter_result` on it,
    for both paths alike."""

    case: Case  # locked (get_case(..., for_update=True) or the form's locked sheet)
    task: JointTask
    members: Sequence[GroupMember]  # the case's active group
    departments: Sequence[Department]  # the task's participating departments
    task_items: Sequence[tuple[Item, Department]]  # each item with the department checking it
    latest: CaseResult | None  # the latest version
    latest_items: Sequence[ItemResult]  # its item results
    parts: dict[int, CasePart]  # the case's parts by department id, the entered one added
    targets_locked_at: dt.datetime | None  # inspections are dated from then (`check_day`)
    entered: list[ItemResult] = field(default_factory=list)  # the entry's item results

    def next_version(self) -> tuple[int, int]:
        """Version and edition (the row lock serialises entries, so the latest version read
        is the highest)."""
        return _following(self.latest)


_ITEM_RESULTS = select(ItemResult).where(ItemResult.result_id == bindparam("result_id"))
_LATER = aliased(CaseResult)
_CASE_READ = (
    with_group(
        select(
            Case,
            JointTask,
            CaseResult,
            targets_locked_at(Case.task_id).scalar_subquery(),
            GroupMember,
            CasePart,
        )
        .join(JointTask, JointTask.id == Case.task_id)
        .outerjoin(  # the latest version, if any (`latest_result`)
            CaseResult,
            (CaseResult.case_id == Case.id)
            & (
                CaseResult.version
                == select(func.max(_LATER.version))
                .where(_LATER.case_id == Case.id)
                .scalar_subquery()
            ),
        )
    )
    # each member with each part: a group of a few, a part per department with items
    .outerjoin(CasePart, CasePart.case_id == Case.id)
    .order_by(CasePart.id)
)


def _locked(query: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    """Locked until commit and reloaded, as `get_case(..., for_update=True)`."""
    return query.with_for_update(of=Case).execution_options(populate_existing=True)


# by id (signed links) or code (chat), then unlocked or locked; built once (#9)
_CASE_BY = {
    kind: (query, _locked(query))
    for kind, query in (
        (int, _CASE_READ.where(Case.id == bindparam("key"))),
        (str, _CASE_READ.where(Case.code == bindparam("key"))),
    )
}


class CaseRead(NamedTuple):
    """A case with what its result entry and review start from, read in one query."""

    case: Case
    task: JointTask
    latest: CaseResult | None  # the latest version
    targets_locked_at: dt.datetime | None  # when the task's target list was locked
    members: list[GroupMember]  # the active group, as `active_members` orders it
    parts: dict[int, CasePart]  # the parts entered or returned, by department (`case_parts`)


async def read_case(ctx: Ctx, key: int | str, *, for_update: bool = False) -> CaseRead | None:
    """The case with this id or code (None if there is none), locked if asked, with its task,
    its latest version, when its targets were locked, its active group and its parts."""
    query = _CASE_BY[type(key)][for_update]
    rows = (await ctx.session.execute(query, {"key": key})).all()
    if not rows:
        return None
    case, task, latest, locked_at, *_ = rows[0]
    members = dict.fromkeys(m for *_, m, _ in rows if m is not None)
    parts = {p.department_id: p for *_, p in rows if p is not None}
    return CaseRead(case, task, latest, locked_at, list(members), parts)


async def load_entry_state(ctx: Ctx, case_code: str) -> EntryState:
    """The case, locked, and what `enter_result` decides on."""
    read = await read_case(ctx, case_number(case_code), for_update=True)
    if read is None:
        raise NotFound(f"找不到案件 {case_code}")
    departments, items = await departments_and_items(ctx, read.task)
    latest = read.latest
    return EntryState(
        case=read.case,
        task=read.task,
        members=read.members,
        departments=departments,
        task_items=items,
        latest=latest,
        latest_items=list(await ctx.session.scalars(_ITEM_RESULTS, {"result_id": latest.id}))
        if latest is not None
        else [],
        parts=read.parts,
        targets_locked_at=read.targets_locked_at,
    )


def result_fields(
    codes: Sequence[str],
    methods: Sequence[str],
    followups: Sequence[str],
    followup_done: bool,
    followup_done_on: dt.date | None,
    inspected_on: dt.date | None,
    item_results: Sequence[dict[str, Any]],
    remarks: str,
) -> dict[str, Any]:
    return {
        "codes": list(codes),
        "methods": list(methods),
        "followups": list(followups),
        "followup_done": followup_done,
        "followup_done_on": followup_done_on,
        "inspected_on": inspected_on,
        "item_results": list(item_results),
        "remarks": remarks.strip(),
    }


def result_data(result: CaseResult) -> dict[str, Any]:
    return {
        "version": result.version,
        "codes": result.codes,
        "methods": result.methods,
        "followups": result.followups,
        "inspected_on": result.inspected_on.isoformat() if result.inspected_on else None,
    }


async def submit_result(
    ctx: Ctx,
    case_code: str,
    *,
    codes: Sequence[str],
    methods: Sequence[str],
    followups: Sequence[str],
    followup_done: bool = False,
    followup_done_on: dt.date | None = None,
    inspected_on: dt.date | None = None,
    item_results: Sequence[dict[str, Any]] = (),
    remarks: str = "",
    loaded: EntryState | None = None,
) -> CaseResult:
    """A group member enters the result (the chat's `提交`): `enter_result` on the case as
    `loaded` for this entry by the caller, or loaded now, the earlier version's files carried
    over."""
    if loaded is None:
        loaded = await load_entry_state(ctx, case_code)
    result = await enter_result(
        ctx,
        loaded,
        result_fields(
            codes,
            methods,
            followups,
            followup_done,
            followup_done_on,
            inspected_on,
            item_results,
            remarks,
        ),
    )
    await carry_files(ctx, loaded.latest, result)
    return result


_FILES = select(Attachment).where(Attachment.result_id == bindparam("result_id"))


async def carry_files(ctx: Ctx, previous: CaseResult | None, result: CaseResult) -> None:
    """A new version made without the form (`提交`, `更正`) keeps the files of the version
    before it: the review page and a returned form show the latest version's files only, so
    one department's chat entry used to hide the photos another had uploaded for its part.
    (The form carries them itself: the other departments' as they are, its own department's
    as 保留 boxes its sender may untick.) Not audited again: the same files, audited when
    uploaded."""
    if previous is None:
        return
    files = list(await ctx.session.scalars(_FILES, {"result_id": previous.id}))
    if not files:
        return
    await ctx.session.flush()  # the new version's id
    ctx.session.add_all(
        attachment_row(result.id, f, f.uploaded_by_id, f.uploaded_at) for f in files
    )


async def enter_result(ctx: Ctx, loaded: EntryState, fields: dict[str, Any]) -> CaseResult:
    """A group member enters the result (`fields`: `result_fields`; its methods, follow-ups
    and remarks are the department's own, stored with its part and merged with the other
    parts' into the version, `merged_fields`); late entry is accepted and flagged (rule 7).
    Every rule of entry is checked here, on the case as `loaded` with its row locked,
    whichever way the result came (chat or form).

    Lateness is judged from the inspection date, 20 working days after it (000 §十, 001 第十六条
    (三)), whether the date was recorded on site or comes with this result: the leaders'
    summary counts from the same date, so both say the same. Without any inspection date the
    deadline is the window end + result_entry_workdays.
    """
    case, task = loaded.case, loaded.task
    actor = await require_member(ctx, case, "case.result.submit", loaded.members)
    if case.state == CaseState.SUBMITTED:
        raise InvalidTransition("结果已提交，正在审核中")
    if case.state in AFTER_APPROVAL:
        raise InvalidTransition("结果已审核通过，不能重新提交；如有错误请由审核部门更正")
    items = own_parts(
        loaded.task_items, loaded.latest_items, actor, fields["item_results"], fields["codes"]
    )
    fields = {**fields, "item_results": items}
    codes = own_codes(loaded.task_items, actor.department_id, items, fields["codes"])
    with_parts = departments_with_items(task, loaded.task_items)
    own_part = any(d.id == actor.department_id for d in with_parts)
    missing = [
        d
        for d in not_entered(loaded.parts, with_parts)
        if not (own_part and d.id == actor.department_id)
    ]
    departments = loaded.departments
    check_agreement(actor.department_id, codes, loaded.task_items, items, loaded.parts, departments)
    await check_same_visit(ctx, case, fields["inspected_on"], actor.department_id)
    result = await new_version(
        ctx,
        case,
        task,
        actor,
        merged_fields(fields, loaded.parts, departments, actor.department_id),
        ResultState.PART_ENTERED if missing else ResultState.SUBMITTED,
        departments,
        loaded=loaded,
        part={**fields, "codes": codes},
    )
    if own_part:
        await enter_part(ctx, case, actor.department_id, result, actor, loaded.parts, fields)
    due = result_deadline(await ctx.work_calendar(), ctx.rules, case, task)
    # 001 第十六条(三): each part by its department's first entry, not by this re-entry (none
    # can be late before the deadline has passed)
    passed = ctx.clock.today() > due.day
    firsts = await first_entries(ctx.session, [case.id]) if passed else {}
    late = any(entered_late(on, due.day) for on in firsts.values())
    if missing:
        await _part_entered(ctx, case, task, result, actor, missing, due, firsts, loaded)
        return result
    CASE.move(case, CaseState.SUBMITTED)
    reviewers, staff_ids, reached = await reviewers_and_staff(
        ctx, task, participants=ctx.rules.review_requires_participants
    )
    msg = message(
        "result_submitted",
        f"{case.code} 结果待审核",
        case=case,
        target=case.target,
        task=task,
        result=result,
        labels=await result_labels(ctx, task, result, departments),
        late=late,
        due=due.label(),
        entered_by=actor,
        enterers=await part_enterers(ctx, loaded.parts, departments),
    )
    staff = [Notice(Destination.officer(officer_id), msg) for officer_id in staff_ids]
    await record(
        ctx,
        "case.result.submitted",
        f"case:{case.code}",
        {**result_data(result), "late": late, "result_due_on": due.day.isoformat()},
        [Notice(Destination.department(d), msg) for d in reviewers] + staff,
    )
    await advance_task(ctx, task, reached)  # no case changed since the staff were read
    return result


async def _part_entered(
    ctx: Ctx,
    case: Case,
    task: JointTask,
    result: CaseResult,
    actor: Officer,
    missing: Sequence[Department],
    due: Deadline,
    firsts: dict[tuple[int, int], dt.date],
    loaded: EntryState,
) -> None:
    """A part is in, others are not (000 §九–十): the case waits as 部分录入 and the inspectors
    of each missing department in the group are told which part is theirs to enter, and by
    when: the case's deadline, or a returned part's re-entry window (core.timeliness)."""
    CASE.move(case, CaseState.PART_ENTERED)
    entered_by = await ctx.session.get(Department, actor.department_id)
    items = _items_of(loaded.task_items, [d.id for d in missing])
    missing_ids = {d.id for d in missing}
    returned = any(
        (p := loaded.parts.get(d.id)) is not None and p.state == PartState.RETURNED for d in missing
    )
    windows = (
        await reentry_deadlines(ctx.session, await ctx.work_calendar(), ctx.rules, {case.id: due})
        if returned  # only a returned part has a window of its own
        else {}
    )
    owed = {d.id: windows.get((case.id, d.id), due) for d in missing}
    notices = []
    for member in loaded.members:
        if member.department_id not in missing_ids:
            continue
        department = next(d for d in missing if d.id == member.department_id)
        notices.append(
            Notice(
                Destination.officer(member.officer_id),
                message(
                    "result_part_waiting",
                    f"{case.code} 待录入本部门检查结果",
                    case=case,
                    target=case.target,
                    result=result,
                    entered_by=actor,
                    entered_department=entered_by,
                    department=department,
                    items=items.get(department.id, []),
                    missing=missing,
                    due=owed[department.id].label(),
                    late=ctx.clock.today() > owed[department.id].day,
                ),
            )
        )
    await record(
        ctx,
        "case.result.part_entered",
        f"case:{case.code}",
        {
            **result_data(result),
            "department_id": actor.department_id,
            "missing": [d.code for d in missing],
            "late": entered_late(
                firsts.get((case.id, actor.department_id), ctx.clock.today()), due.day
            ),
        },
        notices,
    )


def _items_of(
    task_items: Sequence[tuple[Item, Department]], department_ids: Sequence[int]
) -> dict[int, list[str]]:
    """The names of the departments' items in the task, by item code."""
    found: dict[int, list[str]] = {}
    for item, department in sorted(task_items, key=lambda row: row[0].code):
        if department.id in department_ids:
            found.setdefault(department.id, []).append(item.name)
    return found
