"""Stages 5–6, result entry and review: what the result form and the review page show, and the
form's way into the case services.

The form enters a result through the same `core.result_entry.enter_result` the chat `提交` uses,
and a referral through the chat `移送`'s `referrals.refer`, so every rule holds on both paths
(a department referred to is told and must sign); this module only adds what a form needs:
the case sheet it shows, the case conclusion derived from the per-item categories, the other
departments' parts carried over unchanged, and idempotency of a second identical submit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select

from core import cases, results
from core.attachments import Stored, attachment_row
from core.changes import Ctx, record
from core.errors import InvalidTransition, NotFound, ValidationFailed
from core.inspection import check_day
from core.models import (
    Attachment,
    AuditEvent,
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
    Review,
)
from core.publication import correct_result, recheck_departments
from core.referrals import receiver, refer
from core.result_entry import (
    CaseRead,
    EntryState,
    enter_result,
    read_case,
    referral_problem,
    result_fields,
)
from core.result_parts import PartStatus, departments_with_items, part_status
from core.results import Category, case_codes, ordered_categories
from core.states import CaseState, PartState


@dataclass
class ItemPart:
    item: Item
    department: Department
    result: ItemResult | None  # in the latest version, if any
    own: bool  # the viewing officer's department checks this item, or `recheck`
    # the lead enters its re-check result: the department entered the situation the lead
    # corrects away and never published an inspection outcome (publication.recheck_departments)
    recheck: bool = False


@dataclass
class CaseSheet:
    """One case as the form and the review page show it."""

    case: Case
    task: JointTask
    members: list[GroupMember]
    departments: list[Department]
    categories: list[Category]  # every code's label: national tree order, department children
    items: list[ItemPart]
    result: CaseResult | None  # the latest version
    reviews: list[Review]  # of the latest version
    return_reason: str  # the reviewer's reason when the case was sent back
    referrals: list[Referral]
    attachments: list[Attachment]  # of the latest version
    history: list[AuditEvent]  # the case's audit events: the review page's (`review_sheet`)
    department_id: int  # whose view (the officer's department)
    parts: list[PartStatus] = field(default_factory=list)  # each department's part (000 §九–十)
    latest_items: list[ItemResult] = field(default_factory=list)  # the latest version's, all
    targets_locked_at: dt.datetime | None = None  # inspections are dated from then
    stored_parts: dict[int, CasePart] = field(default_factory=dict)  # as read, by department
    uploaders: dict[int, int] = field(default_factory=dict)  # files' uploaders: department

    @property
    def own_items(self) -> list[ItemPart]:
        return [p for p in self.items if p.own]

    @property
    def own_part(self) -> CasePart | None:
        """The viewing department's part as stored (its own methods, follow-ups, remarks)."""
        return self.stored_parts.get(self.department_id)

    def files_of(self, own: bool) -> list[Attachment]:
        """The latest version's files uploaded by the viewing department (`own`) or by the
        others: each department keeps or drops its own files only (谁检查、谁录入)."""
        return [
            a
            for a in self.attachments
            if (self.uploaders.get(a.uploaded_by_id) == self.department_id) == own
        ]

    def label(self, code: str) -> str:
        found = next((c for c in self.categories if c.code == code), None)
        return found.label if found else code

    def tag(self, code: str) -> str:
        """The code as the form names it (5-卫健)."""
        return results.tag(code, self.categories)

    def choices(self, ticked: Collection[str]) -> list[Category]:
        """What the form offers for an item, each choice once (core.results.choices);
        `ticked`: the codes the form shows ticked, which stay offered as they are."""
        return results.choices(cases.department_categories(self.departments), ticked)


@dataclass(frozen=True)
class ItemEntry:
    item_id: int
    codes: list[str]
    problems: str = ""
    handling: str = ""


@dataclass(frozen=True)
class ReferralEntry:
    kind: str
    to_department: str
    content: str


@dataclass(frozen=True)
class ResultEntry:
    """One department's part of a case result as the form posts it."""

    inspected_on: dt.date | None
    methods: list[str]
    followups: list[str]
    items: list[ItemEntry]
    followup_done: bool = False
    followup_done_on: dt.date | None = None
    remarks: str = ""
    referral: ReferralEntry | None = None
    attachments: tuple[Stored, ...] = ()  # checked and stored files, kept ones included


# The sheet's look-ups, built once with bound parameters (building one cost about as much CPU
# as running it, #9).
_ATTACHMENTS = (
    select(Attachment, Officer.department_id)
    .join(Officer, Officer.id == Attachment.uploaded_by_id)
    .where(Attachment.result_id == bindparam("result_id"))
    .order_by(Attachment.id)
)
_ITEM_RESULTS = select(ItemResult).where(ItemResult.result_id == bindparam("result_id"))
_REVIEWS = select(Review).where(Review.result_id == bindparam("result_id")).order_by(Review.id)
_REFERRALS = select(Referral).where(Referral.case_id == bindparam("case_id")).order_by(Referral.id)
_HISTORY = (
    select(AuditEvent).where(AuditEvent.subject == bindparam("subject")).order_by(AuditEvent.id)
)


async def _sheet(
    ctx: Ctx,
    read: CaseRead,
    department_id: int,
    *,
    loaded: tuple[list[Department], list[tuple[Item, Department]]] | None = None,
    page_parts: bool = True,
) -> CaseSheet:
    """`loaded`: the task's departments and items (`cases.departments_and_items`) if read."""
    departments, rows = loaded or await cases.departments_and_items(ctx, read.task)
    sheet = CaseSheet(
        case=read.case,
        task=read.task,
        members=read.members,
        departments=departments,
        categories=ordered_categories(cases.department_categories(departments)),
        items=[ItemPart(item, dept, None, dept.id == department_id) for item, dept in rows],
        result=read.latest,
        targets_locked_at=read.targets_locked_at,
        stored_parts=read.parts,
        reviews=[],
        return_reason="",
        referrals=[],
        attachments=[],
        history=[],
        department_id=department_id,
    )
    return await after_entry(ctx, sheet, page_parts=page_parts)


async def after_entry(ctx: Ctx, sheet: CaseSheet, *, page_parts: bool = True) -> CaseSheet:
    """The sheet with its latest version's (`result`, as read with the case) item results,
    files and reviews, and (`page_parts`) what only the page shows (`with_page_parts`). The
    task, its departments and items and the group are kept as loaded."""
    session, result = ctx.session, sheet.result
    by_item: dict[int, ItemResult] = {}
    reviews: list[Review] = []
    attachments: list[Attachment] = []
    uploaders: dict[int, int] = {}
    if result is not None:
        of_result = {"result_id": result.id}
        for row, department_id in (await session.execute(_ATTACHMENTS, of_result)).all():
            attachments.append(row)
            uploaders[row.uploaded_by_id] = department_id
        by_item = {r.item_id: r for r in await session.scalars(_ITEM_RESULTS, of_result)}
        reviews = list(await session.scalars(_REVIEWS, of_result))
    sheet = dataclasses.replace(
        sheet,
        items=[dataclasses.replace(p, result=by_item.get(p.item.id)) for p in sheet.items],
        latest_items=list(by_item.values()),
        reviews=reviews,
        return_reason=await _return_reason(ctx, sheet, reviews),
        attachments=attachments,
        uploaders=uploaders,
    )
    return await with_page_parts(ctx, sheet) if page_parts else sheet


_LAST_RETURN = (
    select(Review.reason)
    .join(CaseResult, CaseResult.id == Review.result_id)
    .where(CaseResult.case_id == bindparam("case_id"), Review.decision == "return")
    .order_by(Review.id.desc())
    .limit(1)
)


async def _return_reason(ctx: Ctx, sheet: CaseSheet, reviews: Sequence[Review]) -> str:
    """The reviewer's reason while the case is returned, or while the viewer's department's
    part is: another department's re-entry adds a version no one reviewed (the case 部分录入),
    and the department still to re-enter must still read why (004 第十九条)."""
    part = sheet.stored_parts.get(sheet.department_id)
    if sheet.case.state != CaseState.RETURNED and (
        part is None or part.state != PartState.RETURNED
    ):
        return ""
    returned = [r.reason for r in reviews if r.decision == "return"]
    if returned:
        return returned[-1]
    return await ctx.session.scalar(_LAST_RETURN, {"case_id": sheet.case.id}) or ""


async def with_page_parts(
    ctx: Ctx, sheet: CaseSheet, parts: dict[int, CasePart] | None = None
) -> CaseSheet:
    """The sheet with what only the page shows read again: referrals and each department's
    part (`parts`: the case's parts as this transaction has left them, else as read with the
    case). The case's history is the review page's alone (`review_sheet`)."""
    session, case = ctx.session, sheet.case
    referrals = list(await session.scalars(_REFERRALS, {"case_id": case.id}))
    with_parts = departments_with_items(sheet.task, [(p.item, p.department) for p in sheet.items])
    return dataclasses.replace(
        sheet,
        referrals=referrals,
        parts=await part_status(
            ctx,
            case,
            sheet.task,
            parts=sheet.stored_parts if parts is None else parts,
            with_parts=with_parts,
        ),
    )


async def _entered(
    ctx: Ctx, sheet: CaseSheet, loaded: EntryState, result: CaseResult, files: list[Attachment]
) -> CaseSheet:
    """The sheet as the entry this transaction has just made leaves it: `after_entry` with
    what the entry added (the version, its item results and files, the parts) as it is
    in hand instead of read back: the parts too, so the page after the entry shows the
    department's part as stored, as the link opened afresh does (`prefill` reads `own_part`)."""
    by_item = {r.item_id: r for r in loaded.entered}
    sheet = dataclasses.replace(
        sheet,
        items=[dataclasses.replace(p, result=by_item.get(p.item.id)) for p in sheet.items],
        latest_items=list(loaded.entered),
        result=result,
        reviews=[],
        return_reason="",
        attachments=files,
        uploaders={**sheet.uploaders, result.entered_by_id: sheet.department_id},
        stored_parts=dict(loaded.parts),
    )
    return await with_page_parts(ctx, sheet)


async def _case(ctx: Ctx, case_id: int, *, for_update: bool = False) -> CaseRead:
    """A case by id (signed links name cases by id), locked like `cases.get_case` if asked,
    as `result_entry.read_case` reads it."""
    read = await read_case(ctx, case_id, for_update=for_update)
    if read is None:
        raise NotFound("找不到该案件，可能已被撤销。")
    return read


async def entry_sheet(
    ctx: Ctx, case_id: int, action: str = "case.result.form", *, for_update: bool = False
) -> CaseSheet:
    """The case as its group member sees it on the result form (members only); `action` is
    what a refusal is audited as. A sheet to submit from is loaded `for_update`: the case row
    stays locked, so the version the entry is compared with is the latest until commit; it
    leaves out what only the page shows (`with_page_parts` adds it)."""
    read = await _case(ctx, case_id, for_update=for_update)
    actor = await cases.require_member(ctx, read.case, action, read.members)
    return await _sheet(ctx, read, actor.department_id, page_parts=not for_update)


async def _staff_sheet(
    ctx: Ctx, case_id: int, verb: str, action: str, *, for_update: bool = False
) -> CaseSheet:
    """The case as the lead's or a participant's liaison or leader sees it, from their
    department's view."""
    read = await _case(ctx, case_id, for_update=for_update)
    departments, rows = await cases.departments_and_items(ctx, read.task)
    actor = cases.require_staff(ctx, [d.id for d in departments], verb, action, read.case)
    return await _sheet(ctx, read, actor.department_id, loaded=(departments, rows))


async def review_sheet(ctx: Ctx, case_id: int) -> CaseSheet:
    """The case as a reviewer sees it: the lead's or a participant's liaison or leader."""
    sheet = await _staff_sheet(ctx, case_id, "审核", "case.result.review")
    history = await ctx.session.scalars(_HISTORY, {"subject": f"case:{sheet.case.code}"})
    return dataclasses.replace(sheet, history=list(history))


async def correction_sheet(ctx: Ctx, case_id: int, *, for_update: bool = False) -> CaseSheet:
    """The case as those who may correct its published result see it (004 第二十条): the lead's
    or a participant's liaison or leader, their own department's items to correct (004 第三条);
    a sheet to correct from is loaded `for_update`, as `entry_sheet`. The lead's sheet of a
    situation (注销 …) also offers the items of each department that entered it and never
    published an inspection outcome, for the re-check's result (`ItemPart.recheck`, 004
    第二十条) should the correction leave the situation; one correcting to a situation leaves
    them out (`correct_entry`)."""
    sheet = await _staff_sheet(ctx, case_id, "更正", "case.result.correct", for_update=for_update)
    assert ctx.actor is not None  # staff checked above
    recheck = await recheck_departments(ctx, sheet.case, sheet.task, sheet.result, ctx.actor)
    if not recheck:
        return sheet
    items = [
        dataclasses.replace(p, own=True, recheck=True) if p.department.id in recheck else p
        for p in sheet.items
    ]
    return dataclasses.replace(sheet, items=items)


async def correct_entry(ctx: Ctx, sheet: CaseSheet, entry: ResultEntry, reason: str) -> CaseResult:
    """The form's correction of the officer's department's part through the chat's
    `correct_result` (004 第二十条): its items as posted, each keeping what its check covered
    (检查内容, which the form does not show); the other departments' parts stay (004 第三条)."""
    _refuse_unoffered(sheet, entry)
    content = {p.item.id: p.result.content for p in sheet.own_items if p.result is not None}
    items = [
        {**i, "content": content.get(i["item_id"], "")}
        for i in _item_dicts(entry, {p.item.id for p in sheet.own_items}, ())
    ]
    mine = {p.item.id for p in sheet.own_items if not p.recheck}
    if not any(i["item_id"] in mine for i in items):
        raise ValidationFailed("请为本部门的检查事项选择更正后的检查结果", field="items")
    # the department's own conclusion; the re-checked items are entered beside it …
    codes = case_codes(i["codes"] for i in items if i["item_id"] in mine)
    if results.situations(codes):
        # … only when the correction leaves the situation (004 第二十条): one kept, or another
        # (注销 → 迁出), is every department's items' (004 第十八条), which correct_result sets
        items = [i for i in items if i["item_id"] in mine]
    return await correct_result(
        ctx,
        sheet.case.code,
        reason=reason,
        codes=codes,
        methods=entry.methods,
        followups=entry.followups,
        followup_done=entry.followup_done,
        followup_done_on=entry.followup_done_on,
        inspected_on=entry.inspected_on,
        item_results=items,
        remarks=entry.remarks,
    )


def _unoffered(sheet: CaseSheet, entry: ResultEntry) -> list[tuple[int, ValidationFailed]]:
    """The entry's items (id, refusal) naming a national code the form does not offer them
    (`results.unoffered_problem`: 5 and the replaced 3 / 4 / G name no department); an item's
    codes as stored (chat, an older entry, the published version) stay as they are."""
    extra = cases.department_categories(sheet.departments)
    stored = {p.item.id: p.result.codes for p in sheet.items if p.result and not p.recheck}
    found = []
    for item in entry.items:
        err = results.unoffered_problem(item.codes, extra, stored.get(item.item_id, ()))
        if err is not None:
            found.append((item.item_id, err))
    return found


def _refuse_unoffered(sheet: CaseSheet, entry: ResultEntry) -> None:
    """`_unoffered`'s first, as the entry itself checks it (the form shows them all first)."""
    for item_id, err in _unoffered(sheet, entry)[:1]:
        raise ValidationFailed(err.message, field=f"item.{item_id}.codes")


def _item_dicts(
    entry: ResultEntry, own: set[int], carried: Sequence[ItemResult]
) -> list[dict[str, Any]]:
    for item in entry.items:
        if item.item_id not in own:
            raise ValidationFailed("只能填写本部门负责的检查事项", field="items")
    mine = [
        {
            "item_id": i.item_id,
            "codes": list(i.codes),
            "problems": i.problems.strip(),
            "handling": i.handling.strip(),
            "content": "",
        }
        for i in entry.items
        if i.codes
    ]
    others = [
        {
            "item_id": r.item_id,
            "codes": list(r.codes),
            "problems": r.problems,
            "handling": r.handling,
            "content": r.content,
        }
        for r in carried
        if r.item_id not in own
    ]
    return mine + others


def _same(
    result: CaseResult,
    part: CasePart | None,
    entry: ResultEntry,
    codes: list[str],
    items: list[dict[str, Any]],
    stored: Sequence[ItemResult],
    files: Sequence[Attachment],
) -> bool:
    """Whether a stored version, with the department's `part` and own `files`, is exactly
    what this entry would submit."""
    as_stored = sorted((r.item_id, list(r.codes), r.problems, r.handling) for r in stored)
    as_posted = sorted((i["item_id"], i["codes"], i["problems"], i["handling"]) for i in items)
    return (
        part is not None
        and list(result.codes) == codes
        and list(part.methods) == entry.methods
        and list(part.followups) == entry.followups
        and part.followup_done == entry.followup_done
        and part.followup_done_on == entry.followup_done_on
        and part.remarks == entry.remarks.strip()
        and (entry.inspected_on is None or result.inspected_on == entry.inspected_on)
        and as_stored == as_posted
        and sorted(f.sha256 for f in files) == sorted(a.sha256 for a in entry.attachments)
    )


def entry_state(sheet: CaseSheet) -> EntryState:
    """What `enter_result` decides on, from a sheet loaded to submit from (`entry_sheet(...,
    for_update=True)`): the chat's `提交` loads the same itself
    (`result_entry.load_entry_state`)."""
    return EntryState(
        case=sheet.case,
        task=sheet.task,
        members=sheet.members,
        departments=sheet.departments,
        task_items=[(p.item, p.department) for p in sheet.items],
        latest=sheet.result,
        latest_items=sheet.latest_items,
        parts=dict(sheet.stored_parts),  # the entry adds its own: the sheet's stay as read
        targets_locked_at=sheet.targets_locked_at,
    )


async def entry_problems(ctx: Ctx, sheet: CaseSheet, entry: ResultEntry) -> dict[str, str]:
    """Every rule the entry breaks, the first of each form field's (an item's as
    `item.<id>.codes` / `.problems`, the case conclusion's own under "items"), so the form
    shows them all at once; `submit_entry` checks them again as it enters the result."""
    extra = cases.department_categories(sheet.departments)
    found: dict[str, str] = {}
    for item_id, err in _unoffered(sheet, entry):
        found[f"item.{item_id}.codes"] = err.message
    for item in entry.items:
        for err in results.item_problems(item.codes, item.problems, item.handling, extra):
            found.setdefault(f"item.{item.item_id}.{err.field}", err.message)
    own = {p.item.id for p in sheet.own_items}
    carried = [p.result.codes for p in sheet.items if p.result and p.item.id not in own]
    codes = case_codes([i.codes for i in entry.items if i.codes] + carried)
    if not codes:
        found.setdefault("items", "请至少为一项检查事项选择检查结果")
    # a department answers for its own codes, as submit_entry checks them…
    entered = case_codes([i.codes for i in entry.items if i.codes and i.item_id in own])
    problems = results.result_problems(
        entered or codes,
        entry.methods,
        entry.followups,
        entry.inspected_on or sheet.case.inspected_on,
        today=ctx.clock.today(),
        extra=extra,
        followup_done=entry.followup_done,
        followup_done_on=entry.followup_done_on,
    )
    if carried:  # …and the case's conclusion, with the other departments' codes, must fit
        try:
            results.check_codes(codes, extra)
        except ValidationFailed as misfit:
            problems.append(misfit)
    day_problem = _day_problem(ctx, sheet, entry.inspected_on)
    per_item = any(key.endswith(".codes") for key in found)
    for err in [*problems, *([day_problem] if day_problem else [])]:
        if err.field or not per_item:  # the codes' rules: said per item where one breaks them
            found.setdefault(err.field or "items", err.message)
    published = sheet.result is not None and sheet.result.published_at is not None
    published_own = [c for p in sheet.own_items if p.result for c in p.result.codes]
    disproved = published and results.problem_disproved(published_own, entered)
    for key, message in (await _referral_problems(ctx, sheet, entry, disproved)).items():
        found.setdefault(key, message)
    return found


def _day_problem(ctx: Ctx, sheet: CaseSheet, day: dt.date | None) -> ValidationFailed | None:
    """A new inspection date outside the task's window (000 §五.3), as `new_version` checks
    it (`check_day`)."""
    if day is None or day == sheet.case.inspected_on:
        return None
    try:
        check_day(sheet.task, sheet.case, day, ctx.clock.today(), sheet.targets_locked_at)
    except ValidationFailed as err:
        return err
    return None


async def _referral_problems(
    ctx: Ctx, sheet: CaseSheet, entry: ResultEntry, disproved: bool
) -> dict[str, str]:
    """The receiver the entry's referral names, and the follow-ups against the case's
    referrals and the entry's own (`result_entry.referral_problem`, as the entry checks them;
    `disproved`: a correction found the published problem did not exist)."""
    found: list[ValidationFailed | None] = []
    referral = entry.referral
    to = referral.to_department.strip() if referral is not None else ""
    if referral is not None and to:
        try:
            to, _ = await receiver(ctx, referral.kind, to)
        except ValidationFailed as err:
            found.append(err)
    adding = (referral.kind, to) if referral is not None else None
    found.append(
        await referral_problem(
            ctx.session,
            sheet.case,
            entry.followups,
            sheet.department_id,
            adding,
            disproved=disproved,
        )
    )
    return {err.field: err.message for err in found if err is not None}


async def submit_entry(ctx: Ctx, sheet: CaseSheet, entry: ResultEntry) -> tuple[CaseSheet, bool]:
    """Submit the officer's part through the chat's services; (the sheet after it, True) when
    the very same entry was already submitted by this officer (a double tap or a resent form).
    `sheet` is the officer's `entry_sheet(..., "case.result.submit", for_update=True)` of this
    transaction: what the form was checked against is what the entry is compared with."""
    case, actor = sheet.case, ctx.actor
    assert actor is not None  # entry_sheet let only a group member through
    carried = [p.result for p in sheet.items if p.result is not None]
    _refuse_unoffered(sheet, entry)
    items = _item_dicts(entry, {p.item.id for p in sheet.own_items}, carried)
    codes = case_codes([i["codes"] for i in items])
    if not codes:
        raise ValidationFailed("请至少为一项检查事项选择检查结果", field="items")
    previous = sheet.result
    if (
        previous is not None
        # a resent form: review started, or the officer's own part is the latest entry
        and (case.state not in cases.OPEN_FOR_ENTRY or case.state == CaseState.PART_ENTERED)
        and previous.entered_by_id == actor.id
        and _same(previous, sheet.own_part, entry, codes, items, carried, sheet.files_of(True))
    ):
        return await after_entry(ctx, sheet), True
    if case.state not in cases.OPEN_FOR_ENTRY:
        raise InvalidTransition(
            "结果已提交，正在审核中"
            if case.state == CaseState.SUBMITTED
            else "结果已审核通过，不能重新提交；如有错误请由审核部门更正"
        )
    if entry.referral is not None:
        await refer(
            ctx,
            case.code,
            entry.referral.to_department,
            entry.referral.content,
            entry.referral.kind,
        )
    loaded = entry_state(sheet)
    result = await enter_result(
        ctx,
        loaded,
        result_fields(
            codes,
            entry.methods,
            entry.followups,
            entry.followup_done,
            entry.followup_done_on,
            entry.inspected_on,
            items,
            entry.remarks,
        ),
    )
    files = await _attach(ctx, sheet, result, entry.attachments)
    return await _entered(ctx, sheet, loaded, result, files), False


async def _attach(
    ctx: Ctx, sheet: CaseSheet, result: CaseResult, files: Sequence[Stored]
) -> list[Attachment]:
    """The version's files: the department's own as posted (kept and new, audited with their
    content hashes) and the other departments' carried over as they are, each with who
    uploaded it when."""
    others = sheet.files_of(False)
    if not files and not others:
        return []
    assert ctx.actor is not None  # a group member submitted
    await ctx.session.flush()  # the version's id
    kept = {(a.sha256, a.name): a for a in sheet.files_of(True)}
    uploads = [(f, kept.get((f.sha256, f.name))) for f in files]
    now = ctx.clock.now()
    rows = [
        attachment_row(result.id, f, ctx.actor.id, now)
        if old is None
        else attachment_row(result.id, f, old.uploaded_by_id, old.uploaded_at)
        for f, old in uploads
    ] + [attachment_row(result.id, a, a.uploaded_by_id, a.uploaded_at) for a in others]
    ctx.session.add_all(rows)
    if not files:
        return rows
    case = sheet.case
    await record(
        ctx,
        "case.result.attachments",
        f"case:{case.code}",
        {
            "version": result.version,
            "files": [{"sha256": f.sha256, "name": f.name, "size": f.size} for f in files],
        },
    )
    return rows


async def attachment(ctx: Ctx, sheet: CaseSheet, attachment_id: int) -> Attachment:
    """One file of the case shown on the sheet (any version); NotFound for another case's."""
    found = await ctx.session.scalar(
        select(Attachment)
        .join(CaseResult, CaseResult.id == Attachment.result_id)
        .where(Attachment.id == attachment_id, CaseResult.case_id == sheet.case.id)
    )
    if found is None:
        raise NotFound("附件不存在或不属于该案件。")
    return found
