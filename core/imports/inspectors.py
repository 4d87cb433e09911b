"""Importing the inspector library (执法检查人员名录, 001 第十条): officers with their department,
enforcement certificate, expertise, roles, on-duty state and one chat account per platform.

The file is the roster: a non-blank 角色 cell gives the officer's roles (管理员 excepted: an
import never takes it away), and the report names each role taken away; columns absent from the
file leave stored values alone; an officer who leaves (在岗状态 离岗, 退休 …) is deactivated and
the office is told about their open cases. A departed officer is put back in post only by the
words 恢复在岗, never by a roster that still says 在岗.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select

from core import changes
from core.imports.flow import (
    CHUNK,
    Checked,
    Departments,
    ImportReport,
    Progress,
    assign,
    check_file,
    load_departments,
    run_import,
)
from core.imports.reading import (
    CODE,
    MOBILE,
    Column,
    Layout,
    Row,
    RowError,
    Sheet,
    column_lengths,
    nfkc,
    person_name,
    split_multi,
)
from core.models import ROLES, ChatPlatform, Officer, PlatformAccount
from core.officers import (
    DEFAULT_TENANT,
    PLATFORM_LABELS,
    cert_key,
    left_officers_notes,
    set_account,
)

_ROLE_SPLIT = re.compile(r"[\s/／]+")
ACCOUNT_FIELDS = {p: f"{p}_userid" for p in ChatPlatform}  # import field per platform
INSPECTOR_COLUMNS = (
    Column("name", ("姓名", "name"), required=True),
    Column("department", ("部门", "所属部门", "单位", "department"), required=True, cells=CODE),
    Column("cert_no", ("执法证号", "执法证件号", "执法证编号", "cert_no"), cells=CODE),
    Column("code", ("人员编号", "编号", "code"), cells=CODE),
    Column("expertise", ("专业领域", "专长", "专业特长", "expertise")),
    Column("region", ("区域", "所属区域", "region")),
    Column("mobile", ("手机", "手机号", "手机号码", "mobile"), cells=MOBILE),
    Column("roles", ("角色", "roles", "role")),
    # one column per platform: the officer's account there, headed "企业微信账号" and the like
    *(
        Column(field, (f"{PLATFORM_LABELS[p]}账号", PLATFORM_LABELS[p], field, p), cells=CODE)
        for p, field in ACCOUNT_FIELDS.items()
    ),
    Column("on_duty", ("在岗状态", "人员状态", "在岗", "on_duty")),
)
# 在岗状态: the words that deactivate an officer (kept as the reason) and those that keep one on
LEAVE_WORDS = ("离岗", "调离", "退休", "辞职", "离职", "停职")
ON_DUTY_WORDS = ("在岗", "在职", "正常")
RESTORE_WORD = "恢复在岗"  # the only 在岗状态 that puts a departed officer back in post
# 手机: a mobile number, or a landline with its area code (an office phone), as typed
_PHONE_MARKS = str.maketrans("", "", " -()")
_PHONE = re.compile(r"1\d{10}|0\d{9,11}")

_OFFICERS = cast(Table, Officer.__table__)
_OFFICER_LEN = column_lengths(_OFFICERS)
_ACCOUNT_LEN = column_lengths(cast(Table, PlatformAccount.__table__))["account"]

_ROLES = {r: r for r in ROLES} | {
    "联络员": "liaison",
    "执法检查人员": "inspector",
    "检查人员": "inspector",
    "分管领导": "leader",
    "领导": "leader",
    "管理员": "admin",
    "专家": "expert",
}


@dataclass
class _Accounts:
    """Existing officers' codes and platform accounts, to refuse an account owned by another."""

    officers: dict[str, Officer]
    owners: dict[ChatPlatform, dict[str, str]]  # per platform: account -> officer code

    @classmethod
    def of(cls, officers: dict[str, Officer]) -> _Accounts:
        owners: dict[ChatPlatform, dict[str, str]] = {p: {} for p in ChatPlatform}
        for officer in officers.values():
            for bound in officer.accounts:
                if bound.tenant == DEFAULT_TENANT:
                    owners[ChatPlatform(bound.platform)][bound.account] = officer.code
        return cls(officers, owners)


def _check_inspector(row: Row, departments: Departments, accounts: _Accounts) -> dict[str, Any]:
    name = row.text("name", _OFFICER_LEN["name"], person_name)
    if not name:
        row.error("name", "姓名为空")
    dept_id = departments.find(row, "department", required=True)
    cert_no = cert_key(row.text("cert_no", _OFFICER_LEN["cert_no"]))
    code = nfkc(row.get("code"))
    if not code and cert_no and dept_id is not None:
        code = f"{departments.codes[dept_id]}-{cert_no}"  # stable across re-imports
    if not code and dept_id is not None:
        row.error("code", "人员编号为空，且没有执法证号可用来生成编号")
    elif len(code) > _OFFICER_LEN["code"]:
        row.error("code", f"人员编号“{code}”过长：最多 {_OFFICER_LEN['code']} 个字符")
    existing = accounts.officers.get(code)
    # a blank 角色 keeps an existing officer's roles and makes a new officer an inspector
    roles = _parse_roles(row) or (set(existing.roles) if existing else {"inspector"})
    if (
        "inspector" in roles
        and not cert_no
        and not (existing and existing.cert_no and not row.layout.has("cert_no"))
    ):
        # 001 第十条: only officers with enforcement powers go into the inspector library
        row.error(
            "cert_no",
            "执法检查人员必须填写执法证号；没有执法证的人员请在“角色”中只填"
            "联络员、分管领导等，不要填执法检查人员",
        )
    record = {
        "code": code,
        "name": name,
        "department_id": dept_id,
        "cert_no": cert_no,
        "expertise": split_multi(row.get("expertise")),
        "region": row.text("region", _OFFICER_LEN["region"]),
        "mobile": _mobile(row),
        "roles": [r for r in ROLES if r in roles],
        **_parse_on_duty(row),
    }
    for platform, fld in ACCOUNT_FIELDS.items():
        account = row.text(fld, _ACCOUNT_LEN) or None
        owner = accounts.owners[platform].get(account) if account else None
        if owner is not None and owner != code:
            row.error(fld, f"{PLATFORM_LABELS[platform]}账号“{account}”已属于人员 {owner}")
        record[fld] = account
    return record


def _parse_roles(row: Row) -> set[str]:
    """The roles the row gives (empty when the cell is blank)."""
    roles: set[str] = set()
    # "执法检查人员 联络员", "执法检查人员/联络员": separators people type besides 、
    for part in (p for cell in split_multi(row.get("roles")) for p in _ROLE_SPLIT.split(cell) if p):
        role = _ROLES.get(nfkc(part).lower()) or _ROLES.get(nfkc(part))
        if role is None:
            row.error(
                "roles", f"未知角色“{part}”，可用：联络员、执法检查人员、分管领导、管理员、专家"
            )
        else:
            roles.add(role)
    return roles


def _mobile(row: Row) -> str:
    text = row.text("mobile", _OFFICER_LEN["mobile"])
    if text and not _PHONE.fullmatch(nfkc(text).translate(_PHONE_MARKS)):
        row.error(
            "mobile",
            f"手机“{text}”不是 11 位手机号（1 开头），也不是带区号的固定电话（如 0571-88881234），"
            "请核对",
        )
    return text


def _parse_on_duty(row: Row) -> dict[str, Any]:
    """{} when the row does not say; else active and the reason an officer left ("restore"
    when the row puts a departed officer back in post)."""
    word = nfkc(row.get("on_duty"))
    if not word:
        return {}
    if word in ON_DUTY_WORDS:
        return {"active": True, "inactive_reason": ""}
    if word == RESTORE_WORD:
        return {"active": True, "inactive_reason": "", "restore": True}
    if word in LEAVE_WORDS:
        return {"active": False, "inactive_reason": word}
    row.error(
        "on_duty",
        f"未知在岗状态“{word}”，可用：在岗、{'、'.join(LEAVE_WORDS)}、{RESTORE_WORD}",
    )
    return {}


def _account_duplicates(checked: Checked) -> None:
    """Two rows giving the same platform account: both are refused, naming each other."""
    for platform, fld in ACCOUNT_FIELDS.items():
        label = f"{PLATFORM_LABELS[platform]}账号"
        lines: dict[str, list[int]] = {}
        # the rejected rows too: a duplicate is told beside the row's other errors
        for line, rec in sorted([*checked.records, *checked.bad_records.items()]):
            if rec[fld]:
                lines.setdefault(rec[fld], []).append(line)
        for account, at in lines.items():
            for line in at[1:]:
                checked.bad.setdefault(line, []).append(
                    RowError(
                        line,
                        checked.layout.header[fld],
                        f"{label}“{account}”与第 {at[0]} 行重复（第 {at[0]}、{line} 行）",
                    )
                )
    checked.drop_bad()


def _cert_duplicates(checked: Checked, officers: dict[str, Officer]) -> None:
    """An 执法证号 identifies one officer, on duty or not: a row that would leave two officers
    holding one is refused, naming the other (a stored officer the file does not change, or an
    earlier row). A file that set 王建国 to 离岗 and gave 李秀英 his number was "更新 3 条"."""
    if not checked.layout.has("cert_no"):
        return  # the file changes no certificate
    column = checked.layout.header["cert_no"]
    while True:  # a refused row leaves its officer's stored number in place: check again
        writing = {rec["code"] for _, rec in checked.records}
        holders: dict[str, list[Officer]] = {}  # several where older data already shares one
        for o in officers.values():
            if o.cert_no and o.code not in writing:
                holders.setdefault(cert_key(o.cert_no), []).append(o)
        first: dict[str, tuple[int, dict[str, Any]]] = {}
        refused = False
        for line, rec in checked.records:
            cert = rec["cert_no"]
            if not cert:
                continue
            reason = ""
            if held := [o for o in holders.get(cert, ()) if o.code != rec["code"]]:
                named = "、".join(
                    f"{o.code}（{o.name}）"
                    if o.active
                    else f"{o.code}（{o.name}，{o.inactive_reason or '已停用'}）"
                    for o in held
                )
                state = "在岗人员" if any(o.active for o in held) else "人员"
                reason = (
                    f"执法证号“{cert}”已属于{state} {named}：一个执法证号只属于一人，是同一人请在"
                    f"“人员编号”填 {held[0].code}，不是请核对证号"
                )
            elif (earlier := first.setdefault(cert, (line, rec)))[0] != line:
                other = earlier[1]
                reason = (
                    f"执法证号“{cert}”与第 {earlier[0]} 行（人员 {other['code']} {other['name']}）"
                    f"重复：一个执法证号只属于一人，{other['name']} 和 {rec['name']} 不能共用，"
                    "请核对证号"
                )
            if reason:
                checked.bad.setdefault(line, []).append(RowError(line, column, reason))
                refused = True
        if not refused:
            return
        checked.drop_bad()


def _changes_note(what: str, changed: list[tuple[str, str, str]]) -> list[str]:
    """Every stored officer whose `what` the import changes (who, old, new), for the clerk to
    see: an 执法证号 or a name (a row written over another officer's 人员编号 renamed SJ001
    王伟 to 张三 unseen)."""
    if not changed:
        return []
    listed = "；".join(f"{who}{old or '（空）'} → {new or '（空）'}" for who, old, new in changed)
    return [f"{what}变更 {len(changed)} 人，请核对：{listed}"]


def _duty_notes(kept_departed: list[Officer], restored: list[Officer]) -> list[str]:
    notes = []
    if kept_departed:
        listed = "；".join(
            f"{o.code} {o.name}（已离岗，原因：{o.inactive_reason or '离岗'}）"
            for o in kept_departed
        )
        notes.append(
            f"未恢复在岗：{listed}。名录中仍写“在岗”不会让已离岗人员恢复；如确需恢复，"
            f"请在该行“在岗状态”填“{RESTORE_WORD}”后重新导入"
        )
    if restored:
        listed = "、".join(f"{o.code} {o.name}" for o in restored)
        notes.append(f"恢复在岗 {len(restored)} 人：{listed}，今后会参加抽取")
    return notes


_ROLE_ZH = {
    "liaison": "联络员",
    "inspector": "执法检查人员",
    "leader": "分管领导",
    "expert": "专家",
}


def _role_notes(removed: list[tuple[Officer, str]]) -> list[str]:
    """Each role the file took away (the file is the roster), for the clerk to check."""
    if not removed:
        return []
    listed = "；".join(f"{o.code} {o.name} 不再是{_ROLE_ZH.get(r, r)}" for o, r in removed)
    return [f"按名录取消角色 {len(removed)} 项，请核对：{listed}"]


_STAFFING = {"liaison", "leader"}  # the roles a department is reached through


async def _unstaffed_notes(
    ctx: changes.Ctx, departments: Departments, department_ids: set[int]
) -> list[str]:
    """The departments this import left without an active liaison or leader (those whose
    liaison or leader left or lost the role): invitations and escalations reach no one there."""
    if not department_ids:
        return []
    officers = (
        await ctx.session.scalars(
            select(Officer).where(Officer.department_id.in_(department_ids), Officer.active)
        )
    ).unique()
    held: dict[int, set[str]] = {}
    for o in officers:
        held.setdefault(o.department_id, set()).update(o.roles)
    notes = []
    for dept in departments.departments:
        if dept.id in department_ids:
            lacking = [
                z
                for r, z in (("liaison", "联络员"), ("leader", "分管领导"))
                if r not in held.get(dept.id, set())
            ]
            if lacking:
                notes.append(
                    f"{dept.name} 没有在岗的{'、'.join(lacking)}，请在名录中指定后重新导入"
                )
    return notes


async def import_inspectors(
    ctx: changes.Ctx,
    path: Path,
    *,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the inspector library: same code = update.

    A non-blank 角色 cell gives the officer's roles (an import never takes 管理员 away); columns
    absent from the file leave the stored values alone, and so does a blank account cell (an
    officer bound with 绑定 stays bound). A departed officer stays departed unless the row says
    恢复在岗.
    """
    state: dict[str, Any] = {}

    async def prepare(_sheet: Sheet) -> None:
        state["departments"] = await load_departments(ctx.session)
        officers = {o.code: o for o in (await ctx.session.scalars(select(Officer))).unique()}
        state["accounts"] = _Accounts.of(officers)

    def check(sheet: Sheet, layout: Layout) -> Checked:
        checked = check_file(
            sheet,
            layout,
            lambda row: _check_inspector(row, state["departments"], state["accounts"]),
            lambda r: (r["code"],),
            "code",
            "人员编号",
        )
        _account_duplicates(checked)
        _cert_duplicates(checked, state["accounts"].officers)
        return checked

    async def write(checked: Checked, progress: Progress | None) -> tuple[int, int]:
        officers: dict[str, Officer] = state["accounts"].officers
        fields = [
            "name",
            "department_id",
            *(f for f in ("cert_no", "expertise", "region", "mobile") if checked.layout.has(f)),
        ]
        inserted = updated = 0
        left: list[Officer] = []
        kept_departed: list[Officer] = []
        restored: list[Officer] = []
        removed: list[tuple[Officer, str]] = []
        recertified: list[tuple[str, str, str]] = []
        renamed: list[tuple[str, str, str]] = []
        for done, rec in enumerate(checked.good(), start=1):
            officer = officers.get(rec["code"])
            stored, changed = officer is not None, False
            if officer is None:
                officer = Officer(
                    **{
                        k: v
                        for k, v in rec.items()
                        if k not in (*ACCOUNT_FIELDS.values(), "restore")
                    }
                )
                ctx.session.add(officer)
                inserted += 1
            else:
                was_active, old_cert, old_name = officer.active, officer.cert_no, officer.name
                duty = ("active", "inactive_reason") if "active" in rec else ()
                if not was_active and rec.get("active") and not rec.get("restore"):
                    # a roster still listing them as 在岗 is no return to post (001 第十条)
                    kept_departed.append(officer)
                    duty = ()
                given = (*fields, *duty)
                kept = {"admin"} & set(officer.roles)
                roles = [r for r in ROLES if r in {*rec["roles"], *kept}]
                for role in (r for r in officer.roles if r not in roles):
                    removed.append((officer, role))
                changed = assign(officer, {f: rec[f] for f in given} | {"roles": roles})
                if was_active and not officer.active:
                    left.append(officer)
                elif not was_active and officer.active:
                    restored.append(officer)
                if cert_key(old_cert) != cert_key(officer.cert_no):
                    recertified.append(
                        (f"{officer.code}（{officer.name}）", old_cert, officer.cert_no)
                    )
                if old_name != officer.name:
                    renamed.append((f"{officer.code} ", old_name, officer.name))
            for platform, fld in ACCOUNT_FIELDS.items():
                if rec[fld] is not None:  # blank: "not given", whatever is bound stays
                    changed |= set_account(officer, platform, rec[fld]) != rec[fld]
            updated += stored and changed
            if progress is not None and (done % CHUNK == 0 or done == len(checked.records)):
                progress(done, len(checked.records))
        await ctx.session.flush()
        report.notes.extend(_changes_note("姓名", renamed))
        report.notes.extend(_changes_note("执法证号", recertified))
        report.notes.extend(await left_officers_notes(ctx, left))
        report.notes.extend(_duty_notes(kept_departed, restored))
        report.notes.extend(_role_notes(removed))
        report.notes.extend(
            await _unstaffed_notes(
                ctx,
                state["departments"],
                {
                    *(o.department_id for o in left if _STAFFING & set(o.roles)),
                    *(o.department_id for o, r in removed if r in _STAFFING),
                },
            )
        )
        return inserted, updated

    report = ImportReport(kind="inspectors", file_name=Path(path).name, skip_invalid=skip_invalid)
    return await run_import(
        ctx,
        "inspectors",
        path,
        INSPECTOR_COLUMNS,
        check=check,
        prepare=prepare,
        write=write,
        report=report,
        skip_invalid=skip_invalid,
        rejects_path=rejects_path,
        progress=progress,
    )
