"""The result form and the review page: parse the posted fields, call core, render the page.

Like the chat handlers these are thin: pydantic checks each field on its own (Chinese message
next to the field), core decides everything else through the same services the chat commands
use, and a refused entry is shown again with everything the officer typed. Before submitting,
core lists every rule the entry breaks (`case_forms.entry_problems`), so all are shown at once.
A form carries the version it was opened on (`base`): a post from an older one than is stored
overwrites nothing (`_stale`, `_overtaken`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from core import access, attachments, case_forms, cases
from core.attachments import FileStore, Limits, Stored, Upload
from core.case_forms import CaseSheet, ItemEntry, ReferralEntry, ResultEntry
from core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from core.models import Attachment
from core.publication import correction_reason
from core.referrals import REFERRAL_KINDS
from core.results import FOLLOWUPS, METHODS, NO_FOLLOWUP
from core.states import CASE, CaseState
from core.validation_zh import reason_zh
from handlers.pages import Page, PageCtx, denied, first, page

RawForm = dict[str, list[str]]  # posted field name -> values, echoed back on an error
FILES = "attachments"  # the form field of the files, and where their errors are shown
# an attachment, opened with the form's own link token (a link opens its own action's page only)
RESULT_FILE_PATH = "/h5/result/file"
CORRECTION_FILE_PATH = "/h5/correction/file"
MAX_TEXT = 2000  # characters of one text field


# ---------------------------------------------------------------- field checks (pydantic)


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


Text = Annotated[str, Field(max_length=MAX_TEXT)]
Day = Annotated[dt.date | None, BeforeValidator(_blank_is_none)]


# the error types of this form's own validators, whose messages are already Chinese
CHOICE_ERROR, REFERRAL_ERROR = "choice", "referral"
OWN_ERRORS = (CHOICE_ERROR, REFERRAL_ERROR)


class ItemForm(BaseModel):
    item_id: int
    codes: list[str] = []
    problems: Text = ""
    handling: Text = ""


class ResultForm(BaseModel):
    inspected_on: Day = None
    methods: list[str] = []
    followups: list[str] = []
    followup_done: bool = False
    followup_done_on: Day = None
    remarks: Text = ""
    referral_kind: str = ""
    referral_to: Annotated[str, Field(max_length=100)] = ""
    referral_content: Text = ""
    items: list[ItemForm] = []

    @field_validator("methods")
    @classmethod
    def _methods(cls, values: list[str]) -> list[str]:
        return _allowed(values, METHODS, "检查方式")

    @field_validator("followups")
    @classmethod
    def _followups(cls, values: list[str]) -> list[str]:
        return _allowed(values, FOLLOWUPS, "后续处置")

    @field_validator("referral_kind")
    @classmethod
    def _referral_kind(cls, value: str) -> str:
        if value and value not in REFERRAL_KINDS:
            raise PydanticCustomError(REFERRAL_ERROR, "请从列表中选择移送方式")
        return value

    def entry(self) -> ResultEntry:
        referral = (
            ReferralEntry(self.referral_kind, self.referral_to, self.referral_content)
            if self.referral_kind
            else None
        )
        return ResultEntry(
            inspected_on=self.inspected_on,
            methods=self.methods,
            followups=self.followups,
            followup_done=self.followup_done,
            followup_done_on=self.followup_done_on,
            remarks=self.remarks,
            referral=referral,
            items=[ItemEntry(i.item_id, i.codes, i.problems, i.handling) for i in self.items],
        )


def _allowed(values: list[str], allowed: Sequence[str], what: str) -> list[str]:
    if any(v not in allowed for v in values):
        raise PydanticCustomError(CHOICE_ERROR, f"请从列表中选择{what}")
    return list(dict.fromkeys(values))


def _item_ids(raw: RawForm) -> list[int]:
    """Items the form carried, in page order (`item.<id>.codes` etc.); ids are digits only."""
    ids: list[int] = []
    for name in raw:
        parts = name.split(".")
        if (
            len(parts) == 3
            and parts[0] == "item"
            and parts[1].isascii()
            and parts[1].isdigit()
            and len(parts[1]) <= 9
            and int(parts[1]) not in ids
        ):
            ids.append(int(parts[1]))
    return ids


def form_data(raw: RawForm) -> dict[str, Any]:
    scalars = (
        "inspected_on",
        "followup_done_on",
        "remarks",
        "referral_kind",
        "referral_to",
        "referral_content",
    )
    data: dict[str, Any] = {name: first(raw, name).strip() for name in scalars}
    data["methods"], data["followups"] = raw.get("methods", []), raw.get("followups", [])
    data["followup_done"] = first(raw, "followup_done").strip() == "1"
    data["items"] = [
        {
            "item_id": i,
            "codes": raw.get(f"item.{i}.codes", []),
            "problems": first(raw, f"item.{i}.problems").strip(),
            "handling": first(raw, f"item.{i}.handling").strip(),
        }
        for i in _item_ids(raw)
    ]
    return data


def _parsed(data: dict[str, Any]) -> tuple[ResultForm | None, dict[str, str]]:
    """The form as pydantic reads it, and its field errors; a field it refuses is read as
    left blank, so that core can check every other field as typed (None: not even then)."""
    try:
        return ResultForm.model_validate(data), {}
    except ValidationError as err:
        errors = field_errors(err, data["items"])
        try:
            return ResultForm.model_validate(_blanked(data, err)), errors
        except ValidationError:
            return None, errors


def _blanked(data: dict[str, Any], err: ValidationError) -> dict[str, Any]:
    """`data` without the fields pydantic refused (their defaults stand in)."""
    data = {**data, "items": [dict(i) for i in data["items"]]}
    for e in err.errors():
        loc = e["loc"]
        if loc[:1] == ("items",) and len(loc) >= 3 and isinstance(loc[1], int):
            data["items"][loc[1]].pop(loc[2], None)
        elif loc:
            data.pop(str(loc[0]), None)
    return data


_REFERRAL_FIELDS = {
    "referral_kind": "请选择移送方式",
    "referral_to": "请填写接收单位",
    "referral_content": "请填写移送内容",
}


def _referral_incomplete(data: dict[str, Any]) -> dict[str, str]:
    """A referral begun: each of its fields left blank is said next to that field."""
    if not any(data[name] for name in _REFERRAL_FIELDS):
        return {}
    return {name: why for name, why in _REFERRAL_FIELDS.items() if not data[name]}


_PYDANTIC_MESSAGES = {
    "date_from_datetime_parsing": "日期格式不正确，请选择日期",
    "date_parsing": "日期格式不正确，请选择日期",
    "date_type": "请选择日期",
    "string_too_long": "内容过长，请精简后再提交",
    "bool_parsing": "请勾选或取消勾选此项",
}


def field_errors(err: ValidationError, items: list[dict[str, Any]]) -> dict[str, str]:
    """Pydantic's errors keyed by the form field they belong next to, in Chinese."""
    found: dict[str, str] = {}
    for e in err.errors():
        loc = list(e["loc"])
        if loc and loc[0] == "items" and len(loc) >= 2 and isinstance(loc[1], int):
            prefix = f"item.{items[loc[1]]['item_id']}"
            name = f"{prefix}.{loc[2]}" if len(loc) > 2 else f"{prefix}.{e['type']}"
        else:
            name = str(loc[0]) if loc else e["type"]
        message = _PYDANTIC_MESSAGES.get(e["type"]) or (
            # our validators' own (Chinese) words; any other type (only a tampered post)
            # still in Chinese
            e["msg"] if e["type"] in OWN_ERRORS else reason_zh(e)
        )
        found.setdefault(name, message)
    return found


# ---------------------------------------------------------------- the result form


def prefill(sheet: CaseSheet) -> RawForm:
    """The form as the department's own part left it (a returned part opens with it), or
    empty: the other departments' methods, follow-ups, remarks and files are theirs, shown
    beside the form and kept as they are (谁检查、谁录入)."""
    raw: RawForm = {
        "inspected_on": [sheet.case.inspected_on.isoformat()] if sheet.case.inspected_on else []
    }
    own = sheet.own_part
    if sheet.result is None:
        return raw
    if own is not None:
        raw.update(
            {
                "methods": list(own.methods),
                "followups": list(own.followups),
                "followup_done": ["1"] if own.followup_done else [],
                "followup_done_on": [own.followup_done_on.isoformat()]
                if own.followup_done_on
                else [],
                "remarks": [own.remarks],
            }
        )
    raw["keep"] = [a.sha256 + a.name for a in sheet.files_of(True)]
    for part in sheet.own_items:
        if part.result is not None and not part.recheck:  # a re-check's result starts empty
            raw[f"item.{part.item.id}.codes"] = list(part.result.codes)
            raw[f"item.{part.item.id}.problems"] = [part.result.problems]
            raw[f"item.{part.item.id}.handling"] = [part.result.handling]
    return raw


def _form_page(
    pc: PageCtx,
    sheet: CaseSheet,
    raw: RawForm,
    limits: Limits,
    *,
    errors: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
    correction: bool = False,
    corrected: bool = False,
    unsaved: Sequence[tuple[str, str]] = (),
    offered: Sequence[str] = (),
) -> Page:
    """The result form, or (`correction`) the correction form of a published result;
    `corrected`: the correction just made, shown read-only (a further one starts afresh);
    `unsaved`: what a post overtaken by another entry carried (`_overtaken`), listed above
    the stored content; `offered`: its new uploads, offered unticked."""
    errors = errors or {}
    files_path = CORRECTION_FILE_PATH if correction else RESULT_FILE_PATH
    return page(
        "result_form.html",
        status,
        correction=correction,
        corrected=corrected,
        sheet=sheet,
        case=sheet.case,
        task=sheet.task,
        raw=raw,
        errors=errors,
        top_error=errors.get("", ""),
        notice=notice,
        token=pc.token,
        csrf=pc.csrf,
        officer=pc.officer,
        methods=METHODS,
        followups=FOLLOWUPS,
        no_followup=NO_FOLLOWUP,
        referral_kinds=REFERRAL_KINDS,
        ack_workdays=pc.rules.referral_ack_workdays,
        open_for_entry=not corrected and CASE.allows(sheet.case.state, CaseState.CORRECTED)
        if correction
        else sheet.case.state in cases.OPEN_FOR_ENTRY,
        states=CASE.labels,
        max_text=MAX_TEXT,
        depth=_depths(sheet),
        choices=sheet.choices(
            {c for key, codes in raw.items() if key.endswith(".codes") for c in codes}
        ),
        files=_file_choices(sheet, raw, offered),
        base=opened_on(sheet, correction=correction),
        unsaved=unsaved,
        overtaken=OVERTAKEN,
        other_parts=_other_parts(pc, sheet, files_path),
        attachments=file_links(pc, sheet, files_path),
        limits=limits,
    )


def _file_choices(
    sheet: CaseSheet, raw: RawForm, offered: Sequence[str] = ()
) -> list[tuple[str, str, bool]]:
    """(keep value, name, ticked) for the department's own files of the latest version, any
    kept new uploads and the `offered` ones."""
    kept = raw.get("keep", [])
    choices = {a.sha256 + a.name: a.name for a in sheet.files_of(True)}
    choices.update({v: v[64:] for v in [*kept, *offered]})
    return [(value, name, value in kept) for value, name in choices.items()]


@dataclass(frozen=True)
class FileLink:
    name: str
    mime: str
    size: int
    url: str


def file_links(
    pc: PageCtx, sheet: CaseSheet, path: str, files: Sequence[Attachment] | None = None
) -> list[FileLink]:
    """The latest version's files (or `files` of it) as links the page's own token opens."""
    query = urlencode({"t": pc.token})
    return [
        FileLink(a.name, a.mime, a.size, f"{path}?{query}&a={a.id}")
        for a in (sheet.attachments if files is None else files)
    ]


@dataclass(frozen=True)
class OtherPart:
    """Another department's own case-level fields, shown beside the form, not editable."""

    department: str
    methods: list[str]
    followups: list[str]
    remarks: str
    files: list[FileLink]


def _other_parts(pc: PageCtx, sheet: CaseSheet, files_path: str) -> list[OtherPart]:
    names = {p.department.id: p.department.name for p in sheet.items}
    files = sheet.files_of(False)
    found = []
    for department_id, part in sheet.stored_parts.items():
        if department_id == sheet.department_id or department_id not in names:
            continue
        theirs = [a for a in files if sheet.uploaders.get(a.uploaded_by_id) == department_id]
        found.append(
            OtherPart(
                names[department_id],
                list(part.methods),
                list(part.followups),
                part.remarks,
                file_links(pc, sheet, files_path, theirs),
            )
        )
    return found


def _depths(sheet: CaseSheet) -> dict[str, int]:
    """How far each category is indented in the tree (A → 2 → B …)."""
    parents = {c.code: c.parent for c in sheet.categories}
    depth: dict[str, int] = {}
    for code in parents:
        n, up = 0, parents[code]
        while up is not None:
            n, up = n + 1, parents.get(up)
        depth[code] = n
    return depth


async def result_form(pc: PageCtx, case_id: int, limits: Limits) -> Page:
    return await refusals_on_record(pc, _show(pc, case_id, limits), writes=False)


async def _show(pc: PageCtx, case_id: int, limits: Limits) -> Page:
    sheet = await case_forms.entry_sheet(pc.core, case_id)
    return _form_page(pc, sheet, prefill(sheet), limits)


@dataclass(frozen=True)
class Files:
    """The files posted with a form and where accepted ones are kept."""

    uploads: list[Upload]
    store: FileStore
    limits: Limits


async def submit_result_form(pc: PageCtx, case_id: int, raw: RawForm, files: Files) -> Page:
    return await refusals_on_record(pc, _submit(pc, case_id, raw, files))


async def result_file(pc: PageCtx, case_id: int, attachment_id: int, store: FileStore) -> Page:
    """One attachment of the case, for a group member."""
    return await attachment_page(pc, case_forms.entry_sheet(pc.core, case_id), attachment_id, store)


async def correction_file(pc: PageCtx, case_id: int, attachment_id: int, store: FileStore) -> Page:
    """One attachment of the published result, for whoever may correct it (004 第二十条)."""
    return await attachment_page(
        pc, case_forms.correction_sheet(pc.core, case_id), attachment_id, store
    )


async def attachment_page(
    pc: PageCtx, sheet_of: Awaitable[CaseSheet], attachment_id: int, store: FileStore
) -> Page:
    """A file of the case whose sheet the officer may see (the sheet checks who they are);
    a refusal is audited."""
    return await refusals_on_record(
        pc, _attachment(pc, sheet_of, attachment_id, store), writes=False
    )


async def _attachment(
    pc: PageCtx, sheet_of: Awaitable[CaseSheet], attachment_id: int, store: FileStore
) -> Page:
    found = await case_forms.attachment(pc.core, await sheet_of, attachment_id)
    if not store.has(found.sha256):
        raise NotFound("附件文件已不在服务器上，请联系管理员。")
    return Page("", file=store.read(found.sha256), mime=found.mime, filename=found.name)


def _accept_files(raw: RawForm, files: Files) -> tuple[list[Stored], str, list[str]]:
    """Kept files (ticked `keep` values: sha256 + name) and new uploads, checked by content;
    new ones are stored at once and become `keep` values, so an error elsewhere in the form
    does not make the officer upload them again. (files, the errors or "": each refused
    upload named, the names of uploads already among the files: kept once, under the name
    they were first given)."""
    errors: list[str] = []
    accepted: dict[str, Stored] = {}
    again: list[str] = []
    for value in raw.get("keep", []):
        sha, name = value[:64], value[64:]
        if files.store.has(sha):
            data = files.store.read(sha)
            accepted.setdefault(sha, attachments.check(Upload(name, data, len(data)), files.limits))
    for upload in files.uploads:
        try:
            stored = attachments.check(upload, files.limits)
        except ValidationFailed as err:
            errors.append(err.message)
            continue
        if stored.sha256 in accepted:
            again.append(stored.name)
            continue
        files.store.put(upload.data)
        accepted[stored.sha256] = stored
    raw["keep"] = [f.sha256 + f.name for f in accepted.values()]
    if len(accepted) > files.limits.max_files:
        errors.append(f"附件最多 {files.limits.max_files} 个，请取消勾选部分附件")
    return list(accepted.values()), "；".join(errors), again


# ---------------------------------------------------------------- two tabs, one part

OVERTAKEN = "该结果已在其他页面或聊天中更新，请核对后再提交"
RESENT = "该结果已提交过，无需重复提交。"
BASE = "base"  # the hidden field: the version the form was opened on


def opened_on(sheet: CaseSheet, *, correction: bool = False) -> int:
    """The version of what the form shows: the department's part as last entered (another
    department's entry does not touch it), or the published result a correction corrects."""
    if correction:
        return sheet.result.version if sheet.result is not None else 0
    part = sheet.own_part
    return part.version if part is not None else 0


def _posted_base(raw: RawForm) -> int | None:
    """The form's `base`; None from a page without it (opened before it was added)."""
    value = first(raw, BASE).strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


_NOT_CONTENT = {"t", "csrf", BASE, "reason"}


def _as_stored(raw: RawForm, stored: RawForm) -> bool:
    """Whether the post is the stored content itself (`prefill`'s): a resend, not a change."""

    def values(form: RawForm, name: str) -> list[str]:
        return sorted(v.strip() for v in form.get(name, []) if v.strip())

    names = (set(raw) | set(stored)) - _NOT_CONTENT
    return all(values(raw, n) == values(stored, n) for n in names)


def _unsaved(sheet: CaseSheet, raw: RawForm, uploads: Sequence[str]) -> list[tuple[str, str]]:
    """What the overtaken post carried, as (what, typed) lines a phone shows above the form."""
    lines: list[tuple[str, str]] = []

    def add(label: str, values: Sequence[str]) -> None:
        said = "、".join(v.strip() for v in values if v.strip())
        if said:
            lines.append((label, said))

    add("检查日期", raw.get("inspected_on", []))
    add("检查方式", raw.get("methods", []))
    for part in sheet.own_items:
        key, name = f"item.{part.item.id}", part.item.name
        add(f"{name} 检查结果", [sheet.label(c) for c in raw.get(f"{key}.codes", [])])
        add(f"{name} 发现的问题", raw.get(f"{key}.problems", []))
        add(f"{name} 处理情况", raw.get(f"{key}.handling", []))
    add("后续处置", raw.get("followups", []))
    if first(raw, "followup_done") == "1":
        add("后续处置已完成", raw.get("followup_done_on") or ["是"])
    add("移送", [" ".join(first(raw, f"referral_{n}") for n in ("kind", "to", "content"))])
    add("备注", raw.get("remarks", []))
    add("新上传的附件", [v[64:] for v in uploads])
    return lines


def _stale(sheet: CaseSheet, raw: RawForm, *, correction: bool = False) -> bool:
    """A post from a form opened on an older version than is stored: a second tab, or the
    chat entered meanwhile."""
    base = _posted_base(raw)
    return base is not None and base < opened_on(sheet, correction=correction)


def _overtaken(
    pc: PageCtx, sheet: CaseSheet, raw: RawForm, limits: Limits, *, correction: bool = False
) -> Page:
    """The page for a `_stale` post: the stored content with the notice and, above it, what
    the post carried, unsaved; the stored content sent again is a resend, said so."""
    stored = prefill(sheet)
    if _as_stored(raw, stored):
        return _form_page(
            pc, sheet, stored, limits, notice=RESENT, correction=correction, corrected=correction
        )
    uploads = [v for v in raw.get("keep", []) if v not in stored.get("keep", [])]
    if correction:  # the reason is the officer's own, not part of what is stored
        stored["reason"] = raw.get("reason", [])
    return _form_page(
        pc,
        sheet,
        stored,
        limits,
        status=409,
        correction=correction,
        unsaved=_unsaved(sheet, raw, uploads),
        offered=uploads,
    )


async def refusals_on_record(pc: PageCtx, call: Awaitable[Page], *, writes: bool = True) -> Page:
    """A denied officer gets the denied page, and the attempt stays in the audit log; `writes`:
    whether the call may write. The call is all its page's transaction writes, so an error
    undoes the whole transaction (no savepoint on the way that succeeds)."""
    try:
        async with access.denials_on_record(pc.core, savepoint=False, whole=writes):
            return await call
    except PermissionDenied as err:
        return denied(err)


async def _submit(pc: PageCtx, case_id: int, raw: RawForm, files: Files) -> Page:
    """Check the fields, then submit through core; any refusal re-shows the typed form. The
    case is loaded once, locked, for the checks, the entry and the page after it."""
    sheet = await case_forms.entry_sheet(pc.core, case_id, "case.result.submit", for_update=True)
    accepted, file_error, again = _accept_files(raw, files)
    if _stale(sheet, raw):
        return _overtaken(pc, await case_forms.with_page_parts(pc.core, sheet), raw, files.limits)
    data = form_data(raw)
    form, errors = _parsed(data)
    if file_error:
        errors[FILES] = file_error
    errors = {**_referral_incomplete(data), **errors}
    if form is not None:  # every rule at once, each next to its field
        errors = {**await case_forms.entry_problems(pc.core, sheet, form.entry()), **errors}
    if errors:
        sheet = await case_forms.with_page_parts(pc.core, sheet)
        return _form_page(pc, sheet, raw, files.limits, errors=errors, status=422)
    assert form is not None  # unread only with pydantic's errors, shown above
    entry = dataclasses.replace(form.entry(), attachments=tuple(accepted))
    try:
        sheet, repeated = await case_forms.submit_entry(pc.core, sheet, entry)
    except (ValidationFailed, InvalidTransition) as err:
        # nothing else in the page's transaction to keep: undone whole, not by a savepoint
        await access.undo(pc.core)
        where = err.field if isinstance(err, ValidationFailed) else ""
        sheet = await case_forms.entry_sheet(pc.core, case_id)
        return _form_page(pc, sheet, raw, files.limits, errors={where: err.message}, status=422)
    if repeated:  # a photo picked again is no double submit: it is said to be attached
        notice = "录入的内容没有变化。" if again else RESENT
    elif sheet.case.state == CaseState.PART_ENTERED:
        notice = (
            "本部门事项的结果已录入；尚待其他部门录入本部门事项（谁检查、谁录入），"
            "全部录入后送审核。"
        )
    else:
        notice = "结果已提交，等待牵头部门和参与部门审核。"
    if again:
        attached = "、".join(f"“{name}”" for name in again)
        notice = f"{attached}已在附件中，只保留一份。{notice}"
    return _form_page(pc, sheet, prefill(sheet), files.limits, notice=notice)


# ---------------------------------------------------------------- the correction form


async def correction_form(pc: PageCtx, case_id: int) -> Page:
    """A published result's correction form (004 第二十条): the officer's department's part as
    published, to correct, the other departments' shown as they stand (004 第三条)."""

    async def show() -> Page:
        sheet = await case_forms.correction_sheet(pc.core, case_id)
        return _correction_page(pc, sheet, prefill(sheet))

    return await refusals_on_record(pc, show(), writes=False)


def _correction_page(pc: PageCtx, sheet: CaseSheet, raw: RawForm, **shown: Any) -> Page:
    """The correction form has no files to upload: the published version's files stay."""
    return _form_page(pc, sheet, raw, Limits(0, 0, 0), correction=True, **shown)


async def submit_correction_form(pc: PageCtx, case_id: int, raw: RawForm) -> Page:
    return await refusals_on_record(pc, _submit_correction(pc, case_id, raw))


async def _submit_correction(pc: PageCtx, case_id: int, raw: RawForm) -> Page:
    """Check the fields as the result form does, then correct through core; any refusal
    re-shows the typed form."""
    sheet = await case_forms.correction_sheet(pc.core, case_id, for_update=True)
    if _stale(sheet, raw, correction=True):
        return _overtaken(pc, sheet, raw, Limits(0, 0, 0), correction=True)
    data = form_data(raw)
    form, errors = _parsed(data)
    reason = first(raw, "reason")
    try:  # shown with the other fields' problems; core checks it again as it corrects
        reason = correction_reason(reason)
    except ValidationFailed as err:
        errors["reason"] = err.message
    if form is not None:
        errors = {**await case_forms.entry_problems(pc.core, sheet, form.entry()), **errors}
    if errors:
        return _correction_page(pc, sheet, raw, errors=errors, status=422)
    assert form is not None  # unread only with pydantic's errors, shown above
    try:
        result = await case_forms.correct_entry(pc.core, sheet, form.entry(), reason)
    except (ValidationFailed, InvalidTransition) as err:
        await access.undo(pc.core)
        where = err.field if isinstance(err, ValidationFailed) else ""
        sheet = await case_forms.correction_sheet(pc.core, case_id)
        return _correction_page(pc, sheet, raw, errors={where: err.message}, status=422)
    sheet = await case_forms.correction_sheet(pc.core, case_id)
    notice = f"已更正公示结果（第 {result.edition} 版），已通知各参与部门。"
    return _correction_page(pc, sheet, prefill(sheet), notice=notice, corrected=True)
