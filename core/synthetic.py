"""A synthetic county for the demo, `serve --demo` and benchmarks, written as the files a
county office keeps (CSV under the import templates' headers) and loaded through the real
importers, so the demo exercises the path a real county takes.

Deterministic for a given seed (random.Random), so `lianjian demo --seed N` is reproducible.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.changes import Ctx
from core.imports.departments import DEPARTMENT_COLUMNS, import_departments
from core.imports.exclusions import EXCLUSION_COLUMNS, import_exclusions
from core.imports.inspectors import INSPECTOR_COLUMNS, import_inspectors
from core.imports.items import ITEM_COLUMNS, import_items
from core.imports.reading import Column
from core.imports.targets import TARGET_COLUMNS, import_targets
from core.models import Officer
from core.uscc import ALPHABET, make_uscc

# (code, name, short name, market regulator?, items: (code, name, key?))
DEPARTMENTS: list[tuple[str, str, str, bool, list[tuple[str, str, bool]]]] = [
    (
        "SJ",
        "县市场监督管理局",
        "市场监管",
        True,
        [
            ("SJ-01", "企业公示信息情况检查", True),
            ("SJ-02", "食品经营许可情况检查", True),
            ("SJ-03", "计量器具使用情况检查", False),
        ],
    ),
    (
        "GA",
        "县公安局",
        "公安",
        False,
        [("GA-01", "旅馆业治安管理检查", True), ("GA-02", "印章刻制业检查", False)],
    ),
    (
        "WJ",
        "县卫生健康局",
        "卫健",
        False,
        [("WJ-01", "公共场所卫生检查", True), ("WJ-02", "生活饮用水卫生检查", False)],
    ),
    ("HB", "县生态环境局", "生态环境", False, [("HB-01", "排污许可执行情况检查", True)]),
    (
        "YJ",
        "县应急管理局",
        "应急",
        False,
        [("YJ-01", "安全生产标准化检查", True), ("YJ-02", "危险化学品经营检查", True)],
    ),
    ("ZJ", "县住房和城乡建设局", "住建", False, [("ZJ-01", "建筑市场行为检查", False)]),
    ("JT", "县交通运输局", "交通", False, [("JT-01", "道路运输经营检查", False)]),
    (
        "NY",
        "县农业农村局",
        "农业农村",
        False,
        [("NY-01", "农药经营检查", True), ("NY-02", "种子经营检查", False)],
    ),
    ("WL", "县文化和旅游局", "文旅", False, [("WL-01", "娱乐场所经营检查", False)]),
    ("SW", "县商务局", "商务", False, [("SW-01", "单用途预付卡检查", False)]),
    ("JY", "县教育局", "教育", False, [("JY-01", "校外培训机构检查", True)]),
    ("RS", "县人力资源和社会保障局", "人社", False, [("RS-01", "劳动用工检查", False)]),
    ("SWJ", "国家税务总局某县税务局", "税务", False, [("SWJ-01", "发票使用情况检查", False)]),
    ("XF", "县消防救援大队", "消防", False, [("XF-01", "消防安全检查", True)]),
    ("ZR", "县自然资源局", "自然资源", False, [("ZR-01", "矿产开采检查", False)]),
    ("SL", "县水利局", "水利", False, [("SL-01", "取水许可检查", False)]),
    ("LC", "县林业和草原局", "林草", False, [("LC-01", "木材经营加工检查", False)]),
    ("FG", "县发展和改革局", "发改", False, [("FG-01", "价格行为检查", False)]),
    ("GX", "县工业和信息化局", "工信", False, [("GX-01", "民爆物品检查", True)]),
    ("MZ", "县民政局", "民政", False, [("MZ-01", "社会组织年检", False)]),
]
# 检查依据 of each item, as a county's item list (抽查事项清单) cites it: the notice lists it
# beside the item (004's sample notice) and the record form's 检查内容 names it
BASES = {
    "SJ-01": "《企业信息公示暂行条例》第十四条",
    "SJ-02": "《中华人民共和国食品安全法》第三十五条、第八十七条",
    "SJ-03": "《中华人民共和国计量法》第九条",
    "GA-01": "《旅馆业治安管理办法》第四条、第六条",
    "GA-02": "《印铸刻字业暂行管理规则》第五条",
    "WJ-01": "《公共场所卫生管理条例》第六条、第八条",
    "WJ-02": "《生活饮用水卫生监督管理办法》第六条",
    "HB-01": "《排污许可管理条例》第十七条",
    "YJ-01": "《中华人民共和国安全生产法》第四条",
    "YJ-02": "《危险化学品安全管理条例》第三十三条",
    "ZJ-01": "《中华人民共和国建筑法》第十三条",
    "JT-01": "《中华人民共和国道路运输条例》第二十二条",
    "NY-01": "《农药管理条例》第二十四条",
    "NY-02": "《中华人民共和国种子法》第三十三条",
    "WL-01": "《娱乐场所管理条例》第九条",
    "SW-01": "《单用途商业预付卡管理办法（试行）》第七条",
    "JY-01": "《中华人民共和国民办教育促进法》第十二条",
    "RS-01": "《劳动保障监察条例》第十一条",
    "SWJ-01": "《中华人民共和国发票管理办法》第二十条",
    "XF-01": "《中华人民共和国消防法》第十六条",
    "ZR-01": "《中华人民共和国矿产资源法》第三条",
    "SL-01": "《取水许可和水资源费征收管理条例》第二条",
    "LC-01": "《中华人民共和国森林法》第六十五条",
    "FG-01": "《中华人民共和国价格法》第十三条",
    "GX-01": "《民用爆炸物品安全管理条例》第三条",
    "MZ-01": "《社会团体登记管理条例》第二十八条",
}
REGIONS = ["城关镇", "东风镇", "河西乡", "北山镇", "南湖街道", "新华街道", "桥头乡", "青石镇"]
INDUSTRIES = [
    "餐饮服务",
    "食品销售",
    "住宿",
    "建筑施工",
    "道路运输",
    "危险化学品",
    "批发零售",
    "娱乐场所",
    "教育培训",
    "制造业",
    "农资经营",
    "居民服务",
]
KINDS = [("企业", 55), ("个体工商户", 40), ("农民专业合作社", 3), ("其他组织", 2)]
STATUSES = [("存续", 90), ("停业", 4), ("注销", 4), ("吊销", 2)]
RISKS = [("A", 25), ("B", 45), ("C", 15), ("D", 5), ("", 10)]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰飞鹏辉建国海燕红"
NAME_WORDS = [
    "恒达",
    "鑫源",
    "华兴",
    "瑞丰",
    "金泰",
    "宏图",
    "永盛",
    "佳和",
    "东方",
    "顺通",
    "博雅",
    "德润",
    "天成",
    "汇丰",
    "安康",
    "福满",
    "新越",
    "卓远",
    "众诚",
    "长青",
]


def _weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _target_rows(rng: random.Random, n: int) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    while len(seen) < n:
        kind = _weighted(rng, KINDS)
        entity = {"企业": "91", "个体工商户": "92", "农民专业合作社": "93"}.get(kind, "52")
        body = (
            entity
            + "3304"
            + f"{rng.randrange(100):02d}"
            + "".join(rng.choice(ALPHABET) for _ in range(9))
        )
        uscc = make_uscc(body)
        if uscc in seen:
            continue
        seen.add(uscc)
        industry = rng.choice(INDUSTRIES)
        suffix = {"企业": "有限公司", "个体工商户": "经营部", "农民专业合作社": "专业合作社"}.get(
            kind, "协会"
        )
        flags = [
            f
            for f, p in (
                ("经营异常名录", 0.03),
                ("严重违法失信名单", 0.005),
                ("投诉举报", 0.02),
                ("重点监管", 0.02),
            )
            if rng.random() < p
        ]
        region = rng.choice(REGIONS)
        yield {
            "uscc": uscc,
            "is_legacy_id": False,
            "name": f"某县{rng.choice(NAME_WORDS)}{rng.choice(NAME_WORDS)}{industry[:2]}{suffix}",
            "kind": kind,
            "industry": industry,
            "region": region,
            "address": f"某县{region}{rng.choice(NAME_WORDS)}路{rng.randint(1, 300)}号",
            "status": _weighted(rng, STATUSES),
            "risk_level": _weighted(rng, RISKS),
            "flags": "|".join(flags),
        }


FILE_ORDER = ("departments", "items", "inspectors", "targets", "exclusions")


@dataclass(frozen=True)
class CountyFacts:
    departments: int
    officers: int
    inspectors: int
    targets: int
    exclusions: int


def _write(
    path: Path, header: Sequence[str], rows: Iterator[Sequence[Any]] | list[list[Any]]
) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:  # as Excel saves "CSV UTF-8"
        out = csv.writer(fh)
        out.writerow(header)
        out.writerows(rows)
    return path


def _labels(columns: Sequence[Column]) -> list[str]:
    return [c.label for c in columns]


def _people(rng: random.Random, per_department: int) -> list[list[Any]]:
    """Each department: a liaison, a leader and inspectors with certificates; SJ also an admin."""
    rows = []
    for code, *_rest in DEPARTMENTS:
        people = [("联络员", False), ("分管领导", False)] + [
            ("执法检查人员", True)
        ] * per_department
        if code == "SJ":
            people.append(("管理员、联络员", False))
        for i, (roles, inspector) in enumerate(people, start=1):
            rows.append(
                [
                    person_name(rng),
                    code,
                    f"33042{rng.randrange(10**9):09d}" if inspector else "",
                    f"{code}{i:03d}",
                    "、".join(rng.sample(INDUSTRIES, 2)) if inspector else "",
                    rng.choice(REGIONS),
                    f"139{rng.randrange(10**8):08d}",
                    roles,
                    "",
                    "",
                    "在岗",
                ]
            )
    return rows


def write_county_files(
    folder: Path, *, seed: int, targets: int, year: int, inspectors_per_department: int = 6
) -> dict[str, Path]:
    """The county's spreadsheets as CSV files, in import order; `folder` must exist."""
    rng = random.Random(seed)
    people = _people(rng, inspectors_per_department)
    rows = list(_target_rows(rng, targets))
    # the city-level counterpart already inspected about 1 % this year (000 §五.1)
    excluded = rng.sample([r["uscc"] for r in rows], max(1, targets // 100))
    item_rows = [
        [code, c, n, "重点" if k else "一般", "", "实地检查", BASES[c], ""]
        for code, _n, _s, _m, items in DEPARTMENTS
        for c, n, k in items
    ]
    return {
        "departments": _write(
            folder / "成员单位.csv",
            _labels(DEPARTMENT_COLUMNS),
            [
                [code, name, short, "是" if market else "否", ""]
                for code, name, short, market, _items in DEPARTMENTS
            ],
        ),
        "items": _write(folder / "抽查事项清单.csv", _labels(ITEM_COLUMNS), item_rows),
        "inspectors": _write(folder / "执法检查人员.csv", _labels(INSPECTOR_COLUMNS), people),
        "targets": _write(
            folder / "检查对象.csv",
            _labels(TARGET_COLUMNS),
            (
                [
                    r["uscc"],
                    r["name"],
                    r["kind"],
                    r["industry"],
                    r["region"],
                    r["address"],
                    r["status"],
                    r["risk_level"],
                    "、".join(r["flags"].split("|")) if r["flags"] else "",
                ]
                for r in rows
            ),
        ),
        "exclusions": _write(
            folder / "市级已检查名单.csv",
            _labels(EXCLUSION_COLUMNS),
            [[u, year, "SJ", "市市场监督管理局", "市级双随机抽查已检查"] for u in excluded],
        ),
    }


IMPORTERS = {
    "departments": import_departments,
    "items": import_items,
    "inspectors": import_inspectors,
    "targets": import_targets,
    "exclusions": import_exclusions,
}


async def import_county_files(ctx: Ctx, files: dict[str, Path]) -> CountyFacts:
    """Import the files in order through the real importers (one transaction; caller commits)."""
    counts: dict[str, int] = {}
    for kind in FILE_ORDER:
        report = await IMPORTERS[kind](ctx, files[kind])
        if not report.ok:
            raise ValueError(report.summary_zh())  # generated files are valid by construction
        counts[kind] = report.inserted
    officers = (await ctx.session.scalars(select(Officer))).unique()
    return CountyFacts(
        counts["departments"],
        counts["inspectors"],
        sum(o.has_role("inspector") for o in officers),
        counts["targets"],
        counts["exclusions"],
    )


async def generate_county(
    ctx: Ctx, folder: Path, *, seed: int, targets: int, year: int
) -> CountyFacts:
    """Write the county's files into `folder` and import them."""
    return await import_county_files(
        ctx, write_county_files(folder, seed=seed, targets=targets, year=year)
    )
