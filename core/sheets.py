"""XLSX templates for every importer (`lianjian template KIND -o F.xlsx`).

Each template has the importer's headers, example rows, a notes sheet explaining every column
and, where Excel supports it, a drop-down list of the allowed values. The example rows of all
templates fit together: importing them in TEMPLATE_ORDER into an empty database succeeds, so a
county office can try the whole path before typing its own data over the examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.imports import IMPORT_ORDER, annual_plan
from core.imports.conflicts import CONFLICT_COLUMNS
from core.imports.departments import DEPARTMENT_COLUMNS
from core.imports.exclusions import EXCLUSION_COLUMNS
from core.imports.inspectors import ACCOUNT_FIELDS, INSPECTOR_COLUMNS, LEAVE_WORDS
from core.imports.items import ITEM_COLUMNS
from core.imports.reading import DATA_SHEET, Column
from core.imports.targets import TARGET_COLUMNS
from core.models import TARGET_FLAGS, TARGET_KINDS, TARGET_STATUSES, ChatPlatform

TEMPLATE_ORDER = IMPORT_ORDER
NOTES_SHEET = "填写说明"
VALIDATED_ROWS = 5000  # drop-down lists cover this many data rows
EXAMPLE_USCC = "91330424MA28AQAQXU"


@dataclass(frozen=True)
class Template:
    columns: Sequence[Column]
    examples: list[list[str]]  # in column order
    notes: dict[str, str]  # field → what to write
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)  # field → drop-down list


def _templates(year: int) -> dict[str, Template]:
    return {
        "departments": Template(
            DEPARTMENT_COLUMNS,
            [
                ["SJ", "县市场监督管理局", "市场监管", "是", "市市场监督管理局"],
                ["WJ", "县卫生健康局", "卫健", "否", "市卫生健康委员会"],
            ],
            {
                "code": "本县自定的部门编码，字母和数字，"
                "例如 SJ；其他表格可用编码、全称或简称指代部门",
                "name": "部门全称，不可重复",
                "short_name": "简称，聊天消息中使用",
                "is_market_regulator": "市场监管部门填 "
                "是（检查结果使用市场监管的结果分类），其他填 否",
                "counterpart": "市级对口部门名称，用于导入市级已检查名单",
            },
            {"is_market_regulator": ("是", "否")},
        ),
        "items": Template(
            ITEM_COLUMNS,
            [
                [
                    "SJ",
                    "SJ-01",
                    "食品经营许可情况检查",
                    "重点",
                    "餐饮服务、食品销售",
                    "实地检查、书面检查",
                    "《中华人民共和国食品安全法》第三十五条",
                    "",
                ],
                [
                    "WJ",
                    "WJ-01",
                    "公共场所卫生检查",
                    "一般",
                    "住宿、餐饮服务",
                    "实地检查",
                    "《公共场所卫生管理条例》",
                    "5%",
                ],
            ],
            {
                "department": "部门编码、全称或简称",
                "code": "本部门内唯一的事项编码",
                "name": "事项名称",
                "category": "重点 或 一般",
                "target_scope": "适用的检查对象行业或类型，多个用、分隔",
                "method": "检查方式，多个用、分隔",
                "basis": "法律法规依据",
                "ratio_cap": "一般事项的抽查比例上限，如 "
                "5%；留空用本县统一上限；重点事项不设上限，须留空",
            },
            {"category": ("重点", "一般")},
        ),
        "inspectors": Template(
            INSPECTOR_COLUMNS,
            [
                [
                    "张三",
                    "SJ",
                    "ZF33040001",
                    "SJ001",
                    "食品、特种设备",
                    "城关镇",
                    "13800000000",
                    "执法检查人员、联络员",
                    "",
                    "",
                    "在岗",
                ]
            ],
            {
                "name": "姓名",
                "department": "部门编码、全称或简称",
                "cert_no": "执法证号；执法检查人员必填",
                "code": "人员编号，留空则用 部门编码-执法证号",
                "expertise": "专业领域，多个用、分隔；任务要求专业领域时据此匹配",
                "region": "负责区域",
                "mobile": "手机号码",
                "roles": "执法检查人员、联络员、分管领导、"
                "管理员、专家，多个用、分隔；留空为执法检查人员",
                ACCOUNT_FIELDS[ChatPlatform.WECOM]: "企业微信（政务微信）账号，"
                "可留空以后用“绑定”指令绑定",
                ACCOUNT_FIELDS[ChatPlatform.DINGTALK]: "钉钉（浙政钉）账号，可留空",
                "on_duty": f"在岗，或 {'、'.join(LEAVE_WORDS)}（停用人员，不删除，不再被抽取）",
            },
            {"on_duty": ("在岗", *LEAVE_WORDS)},
        ),
        "targets": Template(
            TARGET_COLUMNS,
            [
                [
                    EXAMPLE_USCC,
                    "某县恒达餐饮有限公司",
                    "企业",
                    "餐饮服务",
                    "城关镇",
                    "某县城关镇人民路1号",
                    "存续",
                    "B",
                    "",
                ]
            ],
            {
                "uscc": "18 位统一社会信用代码；没有的填 15 "
                "位注册号。请把单元格设为文本，以免 Excel 改成科学计数",
                "name": "名称",
                "kind": "、".join(TARGET_KINDS),
                "industry": "行业",
                "region": "所属区域（乡镇、街道）",
                "address": "住所或经营场所",
                "status": "、".join(TARGET_STATUSES) + "（只抽取存续、停业的对象）",
                "risk_level": "A 低风险、B 一般风险、C 较高风险、D 高风险；未分类留空",
                "flags": "、".join(TARGET_FLAGS) + "，多个用、分隔",
            },
            {"kind": TARGET_KINDS, "status": TARGET_STATUSES, "risk_level": ("A", "B", "C", "D")},
        ),
        "exclusions": Template(
            EXCLUSION_COLUMNS,
            [[EXAMPLE_USCC, str(year), "SJ", "市市场监督管理局", "市级双随机抽查已检查"]],
            {
                "uscc": "已被检查对象的统一社会信用代码",
                "year": "检查年度",
                "department": "对应的本县部门（留空表示各部门）",
                "source": "检查单位",
                "reason": "说明",
            },
        ),
        "conflicts": Template(
            CONFLICT_COLUMNS,
            [["SJ001", EXAMPLE_USCC, "本人配偶在该企业任职"]],
            {
                "officer": "执法检查人员的人员编号（见执法检查人员名录）",
                "uscc": "有利害关系的检查对象的统一社会信用代码（须已在检查对象名录库中）",
                "reason": "利害关系，例如：本人配偶在该企业任职；该人员不会被匹配到此对象",
            },
        ),
        "plan": Template(
            annual_plan.PLAN_COLUMNS,
            [
                [
                    f"JH-{year}-01",
                    f"{year}年度餐饮行业部门联合双随机抽查",
                    "SJ",
                    "WJ",
                    "SJ-01、WJ-01",
                    "餐饮服务",
                    "5%",
                    "6",
                ]
            ],
            {
                "code": "本年度唯一的计划编号，发起任务时使用：发起 计划编号",
                "title": "任务名称",
                "lead": "牵头部门（编码、全称或简称）",
                "participants": "参与部门，多个用、分隔",
                "items": "各部门的事项编码，多个用、分隔；牵头部门至少一项",
                "scope": "检查对象行业、类型或区域，多个用、分隔；留空为全部",
                "ratio": "抽查比例（如 5% 或 0.05）或户数（如 30户）；只写整数（如 3）"
                "分不清是比例还是户数，会被退回。一般事项不得超过其抽查比例上限，户数按检查对象"
                "范围内的户数折算",
                "month": "计划实施月份 1–12",
            },
        ),
    }


def write_template(kind: str, path: Path, *, year: int) -> Path:
    """Write the XLSX template of an importer; `year` fills the example rows."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    template = _templates(year)[kind]
    wb = Workbook()
    data = wb.active
    assert data is not None  # a new workbook has one sheet
    data.title = DATA_SHEET
    data.append([c.label for c in template.columns])
    for cell in data[1]:
        cell.font = Font(bold=True)
    for row in template.examples:
        data.append(row)
    for i, col in enumerate(template.columns, start=1):
        letter = get_column_letter(i)
        data.column_dimensions[letter].width = max(12, 2 * len(col.label) + 4)
        data.column_dimensions[letter].number_format = "@"  # text: codes stay codes
        if col.field in template.choices:
            rule = DataValidation(
                type="list",
                allow_blank=True,
                formula1='"' + ",".join(template.choices[col.field]) + '"',
            )
            rule.add(f"{letter}2:{letter}{VALIDATED_ROWS}")
            data.add_data_validation(rule)
    notes = wb.create_sheet(NOTES_SHEET)
    notes.append(["列名", "是否必填", "填写说明", "也可写作"])
    for col in template.columns:
        notes.append(
            [
                col.label,
                "必填" if col.required else "",
                template.notes.get(col.field, ""),
                " / ".join(col.aliases[1:]),
            ]
        )
    for letter, width in zip("ABCD", (16, 10, 70, 30), strict=True):
        notes.column_dimensions[letter].width = width
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
