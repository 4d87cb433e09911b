"""XLSX templates for every importer (`lianjian template KIND -o F.xlsx`).

Each template has the importer's headers, example rows (core.imports.examples), a notes sheet
explaining every column and, where Excel supports it, a drop-down list of the allowed values.
The example rows of all templates fit together (the plan's names the items', the conflict the
example officer and target); the fictitious ones are refused by the import, naming the row to
delete, so an example left in a file never becomes county data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.imports import IMPORT_ORDER, annual_plan
from core.imports.conflicts import CONFLICT_COLUMNS
from core.imports.departments import DEPARTMENT_COLUMNS
from core.imports.examples import example_rows
from core.imports.exclusions import EXCLUSION_COLUMNS
from core.imports.inspectors import ACCOUNT_FIELDS, INSPECTOR_COLUMNS, LEAVE_WORDS, RESTORE_WORD
from core.imports.items import ITEM_COLUMNS
from core.imports.reading import DATA_SHEET, Column
from core.imports.targets import TARGET_COLUMNS
from core.models import TARGET_FLAGS, TARGET_KINDS, TARGET_STATUSES, ChatPlatform

TEMPLATE_ORDER = IMPORT_ORDER
NOTES_SHEET = "填写说明"
VALIDATED_ROWS = 5000  # drop-down lists cover this many data rows


@dataclass(frozen=True)
class Template:
    columns: Sequence[Column]
    notes: dict[str, str]  # field → what to write
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)  # field → drop-down list


def _templates() -> dict[str, Template]:
    return {
        "departments": Template(
            DEPARTMENT_COLUMNS,
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
            {
                "name": "姓名",
                "department": "部门编码、全称或简称",
                "cert_no": "执法证号；执法检查人员必填",
                "code": "人员编号，留空则用 部门编码-执法证号",
                "expertise": "专业领域，多个用、分隔；任务要求专业领域时据此匹配",
                "region": "负责区域",
                "mobile": "11 位手机号码，或带区号的固定电话（如 0571-88881234）",
                "roles": "执法检查人员、联络员、分管领导、"
                "管理员、专家，多个用、分隔；以本表为准，未列出的角色会取消（管理员除外）；"
                "留空则新人员为执法检查人员、已有人员保持原角色",
                ACCOUNT_FIELDS[ChatPlatform.WECOM]: "企业微信（政务微信）账号，"
                "可留空以后用“绑定”指令绑定",
                ACCOUNT_FIELDS[ChatPlatform.DINGTALK]: "钉钉（浙政钉）账号，可留空",
                "on_duty": f"在岗，或 {'、'.join(LEAVE_WORDS)}（停用人员，不删除，不再被抽取）；"
                f"已离岗人员填“在岗”不会恢复，确需恢复请填 {RESTORE_WORD}",
            },
            {"on_duty": ("在岗", *LEAVE_WORDS, RESTORE_WORD)},
        ),
        "targets": Template(
            TARGET_COLUMNS,
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
            {
                "officer": "执法检查人员的人员编号（见执法检查人员名录）",
                "uscc": "有利害关系的检查对象的统一社会信用代码（须已在检查对象名录库中）",
                "reason": "利害关系，例如：本人配偶在该企业任职；该人员不会被匹配到此对象",
            },
        ),
        "plan": Template(
            annual_plan.PLAN_COLUMNS,
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

    template = _templates()[kind]
    wb = Workbook()
    data = wb.active
    assert data is not None  # a new workbook has one sheet
    data.title = DATA_SHEET
    data.append([c.label for c in template.columns])
    for cell in data[1]:
        cell.font = Font(bold=True)
    for row in example_rows(kind, template.columns, year):
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
