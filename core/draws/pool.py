"""Draw pools: who may be drawn for a task, and why the others may not (docs/architecture.md
§3, docs/domain.md rule 3).

Built for a prefecture's library (up to a few million targets): one scan with the scope filter
in SQL returns four columns of the rows in scope (id, risk level, flags, drawable) as plain
driver tuples (no ORM objects), the exclusions are sets, and the stratum of each distinct
(risk level, flags) pair is computed once.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import zlib
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, String, and_, false, func, or_, select, true
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from core.changes import Ctx
from core.draws import algorithm
from core.models import (
    DRAWABLE_STATUSES,
    Case,
    CaseResult,
    Exclusion,
    Invitation,
    Item,
    JointTask,
    Officer,
    Target,
    TaskItem,
)
from core.results import REGISTRATION_STATUSES
from core.states import InvitationState, ResultState

OUT_OF_SCOPE = "不在抽查范围"
NOT_DRAWABLE = "已注销/吊销/撤销/迁出"
INSPECTED_BY_US = "本年度已被本部门检查"
INSPECTED_ABOVE = "上级部门已检查（导入名单）"
NO_STRATUM = "不在任何分层"
# The order in which a target's first applicable reason is counted (one reason per target).
EXCLUSION_REASONS = (OUT_OF_SCOPE, NOT_DRAWABLE, INSPECTED_BY_US, INSPECTED_ABOVE, NO_STRATUM)
SCOPE_KEYS = ("kinds", "industries", "regions")
# What a task may ask of its inspectors (001 第十条: expertise and region are in the library)
INSPECTOR_KEYS = ("inspector_expertise", "inspector_regions")
_SCOPE_COLUMNS = {"kinds": Target.kind, "industries": Target.industry, "regions": Target.region}


@dataclass
class PoolReport:
    candidates: list[algorithm.Candidate]  # (id, stratum), sorted by id
    exclusions: Counter[str] = field(default_factory=Counter)
    repeat_check_allowed: bool = False  # see repeat_check_reason (001 第十四条)
    repeat_check_reason: str = ""
    sizes: Counter[str] = field(default_factory=Counter)  # candidates per stratum

    def strata_sizes(self) -> dict[str, int]:
        return dict(self.sizes)

    def exclusions_in_order(self) -> dict[str, int]:
        return in_order(self.exclusions)


def in_order(exclusions: Counter[str]) -> dict[str, int]:
    """The reasons that excluded anyone, with their counts, in EXCLUSION_REASONS order."""
    return {r: exclusions[r] for r in EXCLUSION_REASONS if exclusions[r]}


def excluded_note(exclusions: Counter[str], unit: str) -> str:
    """The note "（已排除：reason n unit，…）", or "" when nothing was: a message never claims
    an exclusion that removed nobody."""
    counted = [f"{r} {n} {unit}" for r, n in in_order(exclusions).items()]
    return f"（已排除：{'，'.join(counted)}）" if counted else ""


def scope_clause(scope: dict[str, Any]) -> ColumnElement[bool]:
    """Targets inside the task's scope: each non-empty
    list of kinds/industries/regions must match."""
    parts = [_SCOPE_COLUMNS[k].in_(list(scope[k])) for k in SCOPE_KEYS if scope.get(k)]
    return and_(true(), *parts)


SHOWN_VALUES = 10  # a value with no near one lists the library's, up to these


def library_hint(value: str, known: Collection[str], label: str) -> str:
    """For a scope value the target library does not have: its nearest values there (餐饮服务
    for 餐饮业, 城关镇 for 城关), else the library's `label` values (the first SHOWN_VALUES)."""
    ordered = sorted(known)
    near = [k for k in ordered if value in k or k in value]
    near += [k for k in difflib.get_close_matches(value, ordered, 3, 0.5) if k not in near]
    if near:
        return f"最接近的是：{'、'.join(near[:3])}"
    more = f"等 {len(ordered)} 个" if len(ordered) > SHOWN_VALUES else ""
    return f"库中的{label}有：{'、'.join(ordered[:SHOWN_VALUES])}{more}"


async def task_department_ids(ctx: Ctx, task: JointTask) -> set[int]:
    """The lead plus every department that accepted."""
    accepted = await ctx.session.scalars(
        select(Invitation.department_id).where(
            Invitation.task_id == task.id, Invitation.state == InvitationState.ACCEPTED
        )
    )
    return {task.lead_department_id, *accepted}


async def repeat_check_reason(ctx: Ctx, task: JointTask) -> str:
    """Why this task may re-inspect its departments' targets already inspected this year
    ("" = it may not). Only under `same_year_exclusion = "except_key_items"`, and only when the
    工作方案 asks for it: a complaint-driven task, or a re-check whose items are all key items
    (001 第十四条); otherwise a target is inspected at most once a year (004 第八条)."""
    if ctx.rules.same_year_exclusion != "except_key_items":
        return ""
    if task.scope.get("complaint_driven"):
        return "为投诉举报等引发的抽查（工作方案载明）"
    if not task.scope.get("repeat_check"):
        return ""
    categories = set(
        await ctx.session.scalars(
            select(Item.category)
            .join(TaskItem, TaskItem.item_id == Item.id)
            .where(TaskItem.task_id == task.id)
        )
    )
    return "全部为重点检查事项且工作方案载明可复查" if categories == {"key"} else ""


async def inspected_this_year(
    session: AsyncSession, year: int, deps: set[int], *, except_task_id: int | None = None
) -> set[str]:
    """Targets in cases in which any of the departments took part (the task being drawn left
    out), for task draws and quick draws alike (000 §五.1, 004 第八条): cases of the year's
    tasks, and cases inspected in the year under any task — a task of last year may be
    inspected in January (004 第二十三条: 本年度内不再…检查)."""
    accepted_by_us = select(Invitation.task_id).where(
        Invitation.department_id.in_(deps), Invitation.state == InvitationState.ACCEPTED
    )
    return await _usccs(
        session,
        _case_targets()
        .join(JointTask, JointTask.id == Case.task_id)
        .where(
            or_(
                JointTask.year == year,
                Case.inspected_on.between(dt.date(year, 1, 1), dt.date(year, 12, 31)),
            ),
            JointTask.id != (except_task_id or 0),  # ids start at 1: 0 leaves none out
            or_(JointTask.lead_department_id.in_(deps), JointTask.id.in_(accepted_by_us)),
        ),
    )


async def gone_by_results(session: AsyncSession) -> set[str]:
    """Targets a published result says are gone (注销, 被吊销, 被撤销, 迁出; 004 第十八条): not
    drawable, as when the library's status says so (docs/domain.md rule 3), until corrected.
    Codes are stored as a JSON list of strings, so a quoted code only matches that element."""
    codes = sql_cast(CaseResult.codes, String)
    return await _usccs(
        session,
        _case_targets()
        .join(CaseResult, CaseResult.case_id == Case.id)
        .where(
            CaseResult.state == ResultState.PUBLISHED,
            or_(*(codes.contains(f'"{code}"') for code in REGISTRATION_STATUSES)),
        ),
    )


def _case_targets() -> Select[str]:
    """The USCC of each case's target, for the queries on earlier inspections."""
    return select(Target.uscc).join(Case, Case.target_id == Target.id)


async def _usccs(session: AsyncSession, stmt: Select[str]) -> set[str]:
    return set(map(itemgetter(0), await fetch_plain(session, stmt)))


async def imported_exclusions(session: AsyncSession, year: int, deps: set[int]) -> set[str]:
    """The imported list of the level above for the year (all departments', or one of ours)."""
    return await _usccs(
        session,
        select(Exclusion.uscc).where(
            Exclusion.year == year,
            or_(Exclusion.department_id.is_(None), Exclusion.department_id.in_(deps)),
        ),
    )


async def fetch_plain(
    session: AsyncSession, stmt: Select[*tuple[Any, ...]]
) -> Sequence[Sequence[Any]]:
    """All rows of a Core select straight from the driver, in the session's transaction.

    A city pool is a million rows: SQLAlchemy's async adapters wrap each row several times,
    which costs about twice the query itself; the plain driver call does not."""
    conn = await session.connection()
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params  # a property that rebuilds the dict on every access
    args = [params[name] for name in compiled.positiontup or ()]
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None  # a live connection inside the transaction
    if conn.dialect.name == "sqlite":  # aiosqlite
        cursor = await driver.execute(str(compiled), args)
        return list(await cursor.fetchall())
    if conn.dialect.name == "postgresql":  # asyncpg
        return list(await driver.fetch(str(compiled), *args))
    return list((await conn.execute(stmt)).all())


class _StrataOf(dict[tuple[str, str], str | None]):
    """(risk level, flags) → stratum, worked out on first sight: a city has a million targets
    but only a handful of distinct pairs, and a dict lookup keeps the per-row work in C."""

    def __init__(self, rule: algorithm.SamplingRule) -> None:
        super().__init__()
        self.rule = rule

    def __missing__(self, key: tuple[str, str]) -> str | None:
        risk, flags = key
        stratum = self[key] = self.rule.stratum_of(risk, [f for f in flags.split("|") if f])
        return stratum


async def inspected_this_year_for(
    ctx: Ctx, task: JointTask, repeat_check_allowed: bool
) -> tuple[set[str], set[str]]:
    """The targets the task's draw leaves out as inspected this year (000 §五.1): in its
    departments' other cases (none when a repeat check is allowed), and on the level above's
    imported list (excluded either way)."""
    deps = await task_department_ids(ctx, task)
    ours = (
        set()
        if repeat_check_allowed
        else await inspected_this_year(ctx.session, task.year, deps, except_task_id=task.id)
    )
    return ours, await imported_exclusions(ctx.session, task.year, deps)


async def build_target_pool(ctx: Ctx, task: JointTask, rule: algorithm.SamplingRule) -> PoolReport:
    """Candidates for the task's target draw, and the count of the rest by reason."""
    in_scope = scope_clause(task.scope or {})
    drawable = Target.status.in_(DRAWABLE_STATUSES)
    report = PoolReport(candidates=[])
    report.repeat_check_reason = await repeat_check_reason(ctx, task)
    report.repeat_check_allowed = bool(report.repeat_check_reason)
    ours, above = await inspected_this_year_for(ctx, task, report.repeat_check_allowed)
    # One scan: the rows in scope with their drawable flag. The table's count is cheap, so the
    # out-of-scope and not-drawable counts need no second pass over a million rows.
    total = await ctx.session.scalar(select(func.count()).select_from(Target)) or 0
    rows = await fetch_plain(
        ctx.session, select(Target.uscc, Target.risk_level, Target.flags, drawable).where(in_scope)
    )
    gone = await gone_by_results(ctx.session)
    live = [row for row in rows if row[3] and row[0] not in gone]
    counts = report.exclusions = Counter(
        {OUT_OF_SCOPE: total - len(rows), NOT_DRAWABLE: len(rows) - len(live)}
    )
    # uscc is unique, so each set's hits among the rows are the targets it excludes; a target
    # both inspected by us and on the imported list counts once, as ours.
    uscc_of = itemgetter(0)
    if hits := len(ours.intersection(map(uscc_of, live))):
        counts[INSPECTED_BY_US] += hits
    if hits := len((above - ours).intersection(map(uscc_of, live))):
        counts[INSPECTED_ABOVE] += hits
    excluded, strata = ours | above, _StrataOf(rule)
    out = [(u, strata[r, f]) for u, r, f, _ in live if u not in excluded]
    if None in strata.values():
        placed = [c for c in out if c[1] is not None]
        counts[NO_STRATUM] += len(out) - len(placed)
        out = placed
    report.sizes = Counter(map(itemgetter(1), out))  # before sorting: strata in order of rows
    out.sort(key=uscc_of)  # the (id, stratum) order, as ids are unique
    report.candidates = cast(list[algorithm.Candidate], out)  # no None stratum left
    return report


POOL_HEADER = "id,stratum\n"


@dataclass(frozen=True)
class PoolFile:
    """A frozen pool: its hash and its exported file, zlib-compressed for the draw_pool table."""

    hash: str
    data: bytes


def pool_file(candidates: Sequence[algorithm.Candidate]) -> PoolFile:
    """algorithm.pool_hash and algorithm.pool_csv in one pass over candidates already sorted by id
    (PoolReport.candidates are): a city pool has a million lines, so the body is encoded once
    and compressed in pieces rather than copied into one text first."""
    body = "\n".join(map(",".join, candidates)).encode()
    packer = zlib.compressobj(1)
    data = packer.compress(POOL_HEADER.encode()) + packer.compress(body) + packer.compress(b"\n")
    return PoolFile(hashlib.sha256(body).hexdigest(), data + packer.flush())


def encode_pool(candidates: Iterable[algorithm.Candidate]) -> bytes:
    return pool_file(sorted(candidates)).data


def _pool_body(data: bytes) -> tuple[str, memoryview]:
    """The lines of a stored pool file, without header and final newline, as text and as the
    stored UTF-8 bytes (hashing those needs no second encoding of a million lines)."""
    raw = zlib.decompress(data)
    text = raw.decode()
    if not text.startswith(POOL_HEADER):
        raise ValueError("pool file without the 'id,stratum' header")
    last = len(text[-1].encode())  # the final newline (whatever the last character is, it goes)
    return text[len(POOL_HEADER) : -1], memoryview(raw)[len(POOL_HEADER.encode()) : len(raw) - last]


def _parse_body(body: str) -> list[algorithm.Candidate]:
    if not body:
        return []
    return [
        (ident, stratum) for ident, _, stratum in (line.partition(",") for line in body.split("\n"))
    ]


def stored_pool(data: bytes) -> tuple[str, list[algorithm.Candidate]]:
    """The pool hash of a stored pool file (of its bytes as stored, no re-encoding) and its
    (id, stratum) pairs in file (id) order, from one decompression."""
    body, body_bytes = _pool_body(data)
    return hashlib.sha256(body_bytes).hexdigest(), _parse_body(body)


def decode_pool(data: bytes) -> list[algorithm.Candidate]:
    """Back from the stored bytes to (id, stratum) pairs, in file (id) order."""
    return _parse_body(_pool_body(data)[0])


@dataclass(frozen=True)
class InspectorRow:
    id: int
    code: str
    department_id: int


async def build_inspector_pool(
    ctx: Ctx,
    department_ids: Iterable[int],
    *,
    expertise: Sequence[str] = (),
    regions: Sequence[str] = (),
) -> dict[int, list[InspectorRow]]:
    """Active officers with the inspector role, per department (departments without any map to
    []); when the task asks, only those with one of the expertise fields / in one of the regions."""
    wanted = list(department_ids)
    pool: dict[int, list[InspectorRow]] = {d: [] for d in wanted}
    rows = await ctx.session.execute(
        select(
            Officer.id,
            Officer.code,
            Officer.department_id,
            Officer.roles,
            Officer.expertise,
            Officer.region,
        ).where(Officer.department_id.in_(wanted) if wanted else false(), Officer.active.is_(True))
    )
    for oid, code, dep, roles, fields, region in rows:
        if "inspector" not in (roles or []):
            continue
        if expertise and not set(expertise) & set(fields or []):
            continue
        if regions and region not in regions:
            continue
        pool[dep].append(InspectorRow(oid, code, dep))
    return pool
