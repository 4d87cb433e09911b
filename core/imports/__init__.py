"""Setup and planning (before any task): bulk import of a county's libraries from offices'
spreadsheets (CSV, XLSX), one module per library: `departments`, `items`, `conflicts`,
`targets`, `inspectors`, `exclusions` and the `annual_plan`; `reading` and `flow` are shared by
all of them.

Files come from offices' spreadsheets: Chinese headers (English aliases accepted), UTF-8,
UTF-8 with BOM, GB18030/GBK or UTF-16 text, or .xlsx. Every row is checked before anything is
written, so the default all-or-nothing import leaves the database untouched when one row is bad
and reports every bad row by the line number the spreadsheet shows. With `skip_invalid` the good
rows are written and the bad ones go to a rejects CSV or XLSX (original columns + 错误原因). An
import is one audited change; the caller commits (core.changes contract).
"""

# The libraries in the order a county imports them (later files refer to earlier ones); each has
# an XLSX template (core.sheets). Here, not there: the CLI's parser lists them without loading
# the importers.
IMPORT_ORDER = (
    "departments",
    "items",
    "inspectors",
    "targets",
    "exclusions",
    "conflicts",
    "plan",
)
