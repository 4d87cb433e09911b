"""Stage 9, closing: 立卷归档 of a joint task (001 第二十条, 004 第二十五条): one ZIP with
everything the task produced — plan, invitations and answers, draw receipts and pool files, notices
and records (DOCX), results (every version) with attachments, reviews, publication, objections, and
the task's audit excerpt with its chain check — then the task is `closed`.

`closing` decides whether a task may be archived, writes the ZIP and its manifest and closes the
task; `contents` gathers the procedure's files; `audit_excerpt` adds the task's audit events
and the chain check. Only a task whose results are all published and whose objections are all
settled is archived. The archive's manifest lists every file with its SHA-256; the `task.closed`
audit event carries the manifest's digest, so a copy of the archive can later be matched to the
record.
"""
