"""Stage 7, publication (公示) of approved results, one case or a whole task, and corrections:
results are versioned rows (CaseResult); a published version is never edited — `correct_result`
adds a version and supersedes the old one (004 第二十条).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from core.cases import (
    advance_task,
    departments_and_items,
    get_case,
    get_task,
    latest_result,
    message,
    participating_departments,
    require_lead_staff,
    result_labels,
    staff_case,
)
from core.changes import Ctx, Notice, record
from core.errors import InvalidTransition, ValidationFailed
from core.jointtask import no_task
from core.messages import Destination, OutMessage
from core.models import (
    Case,
    CaseResult,
    Department,
    Item,
    ItemResult,
    JointTask,
    Objection,
    Officer,
)
from core.result_entry import carry_files, new_version, result_data, result_fields
from core.result_parts import (
    case_parts,
    check_agreement,
    merged_fields,
    own_codes,
    own_parts,
    quick_items,
    set_own_fields,
    situation_for_all,
)
from core.results import (
    NO_FOLLOWUP,
    case_codes,
    problem_disproved,
    quick_methods,
    situation_named,
    situations,
    untyped_followups,
)
from core.rules import written_reason
from core.states import (
    CASE,
    OBJECTION,
    RESULT,
    CaseState,
    ObjectionState,
    ResultState,
)
from core.workdays import cn_date


async def publish_approved(ctx: Ctx, case: Case) -> CaseResult:
    result = await latest_result(ctx, case, ResultState.APPROVED)
    if result is None:
        raise CASE.refusal(case.state, "公示（结果尚未审核通过）", case.code)
    CASE.move(case, CaseState.PUBLISHED, what="公示（结果尚未审核通过）", subject=case.code)
    RESULT.move(result, ResultState.PUBLISHED)
    result.published_at = ctx.clock.now()
    return result


async def _department_notices(ctx: Ctx, task: JointTask, msg: OutMessage) -> list[Notice]:
    return [
        Notice(Destination.department(d.id), msg)
        for d in await participating_departments(ctx, task)
    ]


async def publish_case(ctx: Ctx, case_code: str) -> CaseResult:
    case = await get_case(ctx, case_code, for_update=True)
    task = await get_task(ctx, case)
    await require_lead_staff(ctx, task, "case.publish", f"case:{case.code}")
    result = await publish_approved(ctx, case)
    await announce_published(ctx, case, task, result, auto=False)
    return result


async def announce_published(
    ctx: Ctx, case: Case, task: JointTask, result: CaseResult, auto: bool
) -> None:
    msg = message(
        "result_published",
        f"{case.code} 结果已公示",
        task=task,
        cases=[(case, await result_labels(ctx, task, result))],
    )
    data: dict[str, Any] = {"version": result.version, **({"auto": True} if auto else {})}
    await record(
        ctx, "case.published", f"case:{case.code}", data, await _department_notices(ctx, task, msg)
    )
    await advance_task(ctx, task)


async def publish_task_results(ctx: Ctx, task_code: str) -> int:
    """Publish every approved case of the task; one notice per department for the batch."""
    task = await ctx.session.scalar(select(JointTask).where(JointTask.code == task_code))
    if task is None:
        raise no_task(task_code)
    await require_lead_staff(ctx, task, "task.publish", f"task:{task.code}")
    cases = list(
        await ctx.session.scalars(
            select(Case)
            .where(Case.task_id == task.id, Case.state == CaseState.APPROVED)
            .order_by(Case.code)
            .with_for_update(of=Case)
            .execution_options(populate_existing=True)
        )
    )
    if not cases:
        raise ValidationFailed(f"任务 {task.code} 没有审核通过、待公示的结果")
    published = []
    for case in cases:
        result = await publish_approved(ctx, case)
        await record(ctx, "case.published", f"case:{case.code}", {"version": result.version})
        published.append((case, await result_labels(ctx, task, result)))
    msg = message("result_published", f"{task.code} 结果已公示", task=task, cases=published)
    await record(
        ctx,
        "task.results_published",
        f"task:{task.code}",
        {"cases": [c.code for c, _ in published]},
        await _department_notices(ctx, task, msg),
    )
    await advance_task(ctx, task)
    return len(published)


def _quick_items(
    own: Sequence[int], previous_items: Sequence[ItemResult], codes: Sequence[str]
) -> list[dict[str, Any]]:
    """A correction that names no items (the chat's 更正: a quick result) is the result of each
    of the department's own items, as the chat's 提交 is. What each item's check covered (检查内容)
    stays as entered; the problems and their handling were the error corrected."""
    return quick_items(own, codes, {row.item_id: row.content for row in previous_items})


_ITEM_FIELDS = ("codes", "content", "problems", "handling")
_CASE_FIELDS = ("codes", "methods", "followups", "followup_done", "followup_done_on", "remarks")


def _item_rows(items: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            int(i["item_id"]),
            list(i.get("codes") or []),
            str(i.get("content", "")),
            str(i.get("problems", "")).strip(),
            str(i.get("handling", "")).strip(),
        )
        for i in items
    )


def _unchanged(
    case: Case, previous: CaseResult, previous_items: Sequence[ItemResult], fields: dict[str, Any]
) -> bool:
    """Whether the corrected version would say exactly what the published one says."""
    stored = [{k: getattr(r, k) for k in ("item_id", *_ITEM_FIELDS)} for r in previous_items]
    return (
        all(getattr(previous, k) == fields[k] for k in _CASE_FIELDS)
        and (fields["inspected_on"] or case.inspected_on) == previous.inspected_on
        and _item_rows(stored) == _item_rows(fields["item_results"])
    )


async def correctable(ctx: Ctx, case_code: str) -> tuple[Case, JointTask, Objection | None]:
    """The case, locked, if the actor may correct its published result now: a liaison or
    leader of a participating department, the result published (or corrected), an objection
    re-checked first (004 第二十条). The objection the correction resolves, if any."""
    case, task = await staff_case(ctx, case_code, "更正", "case.result.correct")
    if not CASE.allows(case.state, CaseState.CORRECTED):
        raise CASE.refusal(case.state, "更正（只有已公示的结果可以更正）", case.code)
    objection = await ctx.session.scalar(
        select(Objection).where(
            Objection.case_id == case.id,
            Objection.state.in_((ObjectionState.RECEIVED, ObjectionState.ERROR_FOUND)),
        )
    )
    if objection is not None and objection.state == ObjectionState.RECEIVED:
        raise InvalidTransition("该案件的异议尚未复查，请先登记复查结论")
    return case, task, objection


def _for_whole_case(
    task: JointTask,
    departments: Sequence[Department],
    task_items: Sequence[tuple[Item, Department]],
    actor: Officer,
    published: Sequence[str],
    codes: Sequence[str],
) -> bool:
    """Whether the correction (its department's conclusion, `codes`) names a situation of the
    target other than the `published` result's (to one, or away from one), for a case with
    other departments' items: a situation is every item's (004 第十八条; docs/domain.md,
    "Parts that contradict"), so no department's part could change to or from it alone. The
    lead, which re-checks (004 第二十条), corrects the whole case; a participant's correction
    is refused, naming the lead."""
    named, was = situations(codes), situations(published)
    if named == was:
        return False
    if actor.department_id != task.lead_department_id:
        lead = next(d for d in departments if d.id == task.lead_department_id)
        raise ValidationFailed(
            f"{situation_named(codes if named else published)}是检查对象本身的情况，"
            f"是各部门全部检查事项的结果（004 第十八条），由牵头部门{lead.name}的联络员或"
            f"分管领导更正整个案件（004 第二十条）；请将复查情况告知{lead.name}",
            field="items",
        )
    return any(d.id != actor.department_id for _, d in task_items)


async def _published_outcomes(
    ctx: Ctx, case: Case, task_items: Sequence[tuple[Item, Department]], department_id: int
) -> tuple[list[ItemResult], dict[int, tuple[Department, list[Item]]]]:
    """Each other department's items as last published with an inspection outcome (no
    situation on any of them), and the departments that never published one (the situation
    was entered originally), with their items; `department_id`: the lead's."""
    published = list(
        await ctx.session.scalars(
            select(CaseResult)
            .where(CaseResult.case_id == case.id, CaseResult.published_at.is_not(None))
            .order_by(CaseResult.version.desc())
        )
    )
    rows = await ctx.session.scalars(
        select(ItemResult).where(ItemResult.result_id.in_([r.id for r in published]))
    )
    found: dict[tuple[int, int], ItemResult] = {(r.result_id, r.item_id): r for r in rows}
    others: dict[int, tuple[Department, list[Item]]] = {}
    for item, department in task_items:
        if department.id != department_id:
            others.setdefault(department.id, (department, []))[1].append(item)
    outcomes: list[ItemResult] = []
    missing: dict[int, tuple[Department, list[Item]]] = {}
    for department, items in others.values():
        outcome = next(
            (
                said
                for said in ([found.get((r.id, i.id)) for i in items] for r in published)
                if all(row is not None and not situations(row.codes) for row in said)
            ),
            None,
        )
        if outcome is None:
            missing[department.id] = (department, items)
        else:
            outcomes += [row for row in outcome if row is not None]
    return outcomes, missing


async def recheck_departments(
    ctx: Ctx, case: Case, task: JointTask, result: CaseResult | None, actor: Officer
) -> set[int]:
    """The departments whose items the lead (`actor`) enters from its re-check when it corrects
    the published `result`'s situation away (`correct_result`): those that never published an
    inspection outcome. Empty for anyone else, or a result naming no situation."""
    if result is None or actor.department_id != task.lead_department_id:
        return set()
    if result.published_at is None or not situations(result.codes):
        return set()
    _, task_items = await departments_and_items(ctx, task)
    return set((await _published_outcomes(ctx, case, task_items, actor.department_id))[1])


async def _before_situation(
    ctx: Ctx,
    case: Case,
    task_items: Sequence[tuple[Item, Department]],
    actor: Officer,
    previous: CaseResult,
    previous_items: Sequence[ItemResult],
    item_results: Sequence[dict[str, Any]],
) -> tuple[list[ItemResult], list[Department]]:
    """The lead's correction of the target's situation away (found wrong, 004 第二十条): the
    lead's items as published, each other department's as last published before the
    situation was put on them — its inspection outcome, which the whole-case correction
    replaced. A department that never published one (the situation was entered originally)
    has no inspection result to restore: the lead, which re-checked the case, enters each of
    its items' re-check result on the correction form (`item_results`; 004 第二十条), and the
    department is named in the audit and told (it may correct them itself). Refused while an
    item of such a department has no re-check result (a chat 更正 names none: the form's
    link). Returns the rows carried and the departments whose items the lead enters."""
    outcomes, missing = await _published_outcomes(ctx, case, task_items, actor.department_id)
    mine = {item.id for item, d in task_items if d.id == actor.department_id}
    restored = [row for row in previous_items if row.item_id in mine] + outcomes
    situation = situation_named(previous.codes)
    if missing and not item_results:
        names = "、".join(d.name for d, _ in missing.values())
        raise ValidationFailed(
            f"{names}的检查事项录入时即为{situation}，没有公示过本部门的检查结果可以恢复；"
            f"牵头部门按复查结果（004 第二十条）为其检查事项逐项录入，"
            f"请发送“更正 {case.code}”打开更正表单填写",
            field="items",
        )
    given = {int(e["item_id"]): list(e.get("codes") or []) for e in item_results}
    for department, items in missing.values():
        for item in items:
            codes = given.get(item.id)
            if not codes or situations(codes):
                raise ValidationFailed(
                    f"请为{department.name}的检查事项“{item.name}”录入复查结果（该部门录入时即为"
                    f"{situation}，没有公示过检查结果；牵头部门按复查结果录入，004 第二十条）",
                    field=f"item.{item.id}.codes",
                )
    return restored, [d for d, _ in missing.values()]


def _check_same_date(case: Case, day: dt.date | None) -> None:
    """A correction puts the result right, not the visit: every part stands on the case's
    inspection date (004 第十四条), and moving it would move the deadline counted from it (004
    第十九条), making a late entry on time in the evaluation (core.inspection.check_same_visit)."""
    if day is None or case.inspected_on is None or day == case.inspected_on:
        return
    first = cn_date(case.inspected_on)
    raise ValidationFailed(
        f"本案检查日期为 {first}，公示结果按此日期作出，更正不改变检查日期（004 第十四条），"
        f"不能改为 {cn_date(day)}；结果录入期限自 {first} 起算（004 第十九条）。请按 {first} 更正，"
        "或不写检查日期",
        field="inspected_on",
    )


def correction_reason(reason: str) -> str:
    """A 更正's reason (004 第二十条), stripped: the chat's, the correction form's."""
    return written_reason(
        reason,
        "更正理由",
        "请写明更正的原因",
        min_chars=1,
        missing="更正结果时必须写明更正理由",
        field="reason",
    )


async def correct_result(
    ctx: Ctx,
    case_code: str,
    *,
    reason: str,
    codes: Sequence[str],
    methods: Sequence[str] | None,
    followups: Sequence[str] | None,
    followup_done: bool = False,
    followup_done_on: dt.date | None = None,
    inspected_on: dt.date | None = None,
    item_results: Sequence[dict[str, Any]] = (),
    remarks: str | None = None,
) -> CaseResult:
    """A published result is corrected by a new published version; the old one is superseded
    and stays readable. Resolves an objection whose re-check found the error (004 第二十条).

    谁检查、谁录入、谁负责 (004 第三条): the fields are the correcting department's own part —
    its items (`item_results`, or `codes` for each of them when none are named, as the chat's
    更正 gives) and its methods, follow-ups (with whether done) and remarks (None: as published
    — a chat 更正 names no method, and a new conclusion does not undo the inspection; a part
    that named none takes what the codes take, `quick_methods`); every other department's
    items and own fields stay as published, merged into the version as an entry merges them —
    except the lead's correction to a situation of the target the published result did not
    name, which makes it every department's items' (`_for_whole_case`, `situation_for_all`).
    A correction that changes nothing is refused, and so is one giving another inspection date
    (`_check_same_date`)."""
    case, task, objection = await correctable(ctx, case_code)
    actor = ctx.actor
    assert actor is not None  # staff checked above
    previous = await latest_result(ctx, case, ResultState.PUBLISHED)
    if previous is None:
        raise CASE.refusal(case.state, "更正（只有已公示的结果可以更正）", case.code)
    reason = correction_reason(reason)
    _check_same_date(case, inspected_on)
    departments, rows = await departments_and_items(ctx, task)
    own = [item.id for item, d in rows if d.id == actor.department_id]
    if not own:
        raise ValidationFailed(
            "本部门在该任务中没有检查事项，不能更正结果；"
            "请由负责相关事项的部门更正（谁检查、谁录入、谁负责）"
        )
    previous_items = list(
        await ctx.session.scalars(select(ItemResult).where(ItemResult.result_id == previous.id))
    )
    whole_case = _for_whole_case(task, departments, rows, actor, previous.codes, codes)
    away = whole_case and not situations(codes)
    carried, entered_for = (
        await _before_situation(ctx, case, rows, actor, previous, previous_items, item_results)
        if away
        else (previous_items, [])
    )
    # the items the lead enters from its re-check count as its own entry (`_before_situation`)
    for_ids = {d.id for d in entered_for}
    checking = next(d for _, d in rows if d.id == actor.department_id)  # `own` is not empty
    entering = [(i, checking if d.id in for_ids else d) for i, d in rows]
    # only the chat's 更正, naming no items, says the case's conclusion (own_parts); the
    # form's 未发现问题 of its own items beside another's problem is no contradiction
    items = own_parts(
        entering,
        carried,
        actor,
        item_results or _quick_items(own, previous_items, codes),
        () if item_results else codes,
        case.code,
    )
    parts = await case_parts(ctx, case)
    part = parts.get(actor.department_id)
    part_codes = own_codes(entering, actor.department_id, items, codes)
    if whole_case and not away:
        items = situation_for_all(rows, actor.department_id, items)
    check_agreement(actor.department_id, part_codes, entering, items, parts, departments)
    if methods is None:
        methods = part.methods if part is not None and part.methods else quick_methods(codes)
    if followups is None:  # a chat 更正 typing none: the part's published follow-ups stand
        if part is not None and set(part.followups) - {NO_FOLLOWUP}:
            followups = part.followups
            followup_done, followup_done_on = part.followup_done, part.followup_done_on
        else:  # none but 无需后续处置: a code needing one (8) says how to type it
            followups = untyped_followups(codes)
            if part is not None:
                followup_done, followup_done_on = part.followup_done, part.followup_done_on
    fields = result_fields(
        case_codes(i["codes"] for i in items),
        methods,
        followups,
        followup_done,
        followup_done_on,
        inspected_on,
        items,
        remarks if remarks is not None else part.remarks if part is not None else "",
    )
    merged = merged_fields(fields, parts, departments, actor.department_id)
    if _unchanged(case, previous, previous_items, merged):
        raise ValidationFailed(
            "更正后的结果与已公示的结果相同，无需更正；请修改本部门事项的检查结果等内容后再提交",
            field="items",
        )
    result = await new_version(
        ctx,
        case,
        task,
        actor,
        merged,
        ResultState.PUBLISHED,
        departments,
        part={**fields, "codes": part_codes},
        disproved=problem_disproved(
            [c for i in previous_items if i.item_id in own for c in i.codes], part_codes
        ),
    )
    if part is not None:
        set_own_fields(part, fields)
    result.is_correction, result.published_at = True, ctx.clock.now()
    await carry_files(ctx, previous, result)
    RESULT.move(previous, ResultState.SUPERSEDED)
    CASE.move(case, CaseState.CORRECTED)
    if objection is not None:
        OBJECTION.move(objection, ObjectionState.CORRECTED)
    msg = message(
        "result_corrected",
        f"{case.code} 公示结果已更正",
        case=case,
        target=case.target,
        previous=previous,
        result=result,
        reason=reason,
        labels=await result_labels(ctx, task, result),
        situation=situation_named(result.codes) if whole_case and not away else "",
        restored=situation_named(previous.codes)
        if away and any(d.id not in for_ids | {actor.department_id} for _, d in rows)
        else "",
        entered_for=[d.name for d in entered_for],
        situation_before=situation_named(previous.codes),
    )
    await record(
        ctx,
        "case.result.corrected",
        f"case:{case.code}",
        {
            **result_data(result),
            "superseded_version": previous.version,
            "department_id": actor.department_id,
            "whole_case": whole_case,
            **({"away_from": sorted(situations(previous.codes))} if away else {}),
            **({"entered_for": [d.code for d in entered_for]} if entered_for else {}),
            "reason": reason,
            "objection_id": objection.id if objection else None,
        },
        await _department_notices(ctx, task, msg),
    )
    return result
