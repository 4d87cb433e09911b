"""Across stages: which obligations are open — what is due or overdue, for whom and by when
(docs/architecture.md §4). `model` is an obligation and the people a department's reminders
name; `cases` finds a case's open result entry (the whole group's, or each missing department's
part) and review; `due` lists everything open — those, invitation replies, objection steps,
publications and referral acknowledgements — soonest first. core.nudges turns them into
reminders.
"""
