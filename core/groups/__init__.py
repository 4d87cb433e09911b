"""Stage 3, inspection groups: inspectors drawn and matched into one group per case, then
recusal and replacement (seeds 001 第十四–十五条, 004 第十三/十六条).

locked → inspecting. `matching` draws every participating department's inspectors with the
targets' seed and beacon and deals them into groups, and tells each inspector their cases;
`member_changes` changes one member of a group once the department leader approved it
(core.replacements asks and decides, 001 第十四条): 回避 (the next eligible inspector in draw
order) or 更换 (named by the leader). Every change is recorded with its notices in the same
session; the caller commits. Refusals raise a DomainError and change nothing.
"""
