"""The Core columns the obligations are read through: plain rows, not ORM objects, since a
tick reads thousands of cases and group members and every kind of obligation, found or not."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from core.models import (
    Case,
    CaseResult,
    GroupMember,
    Invitation,
    JointTask,
    Objection,
    Officer,
    Referral,
    Review,
    Target,
)

CASE = cast(Table, Case.__table__).c
TARGET = cast(Table, Target.__table__).c
TASK = cast(Table, JointTask.__table__).c
MEMBER = cast(Table, GroupMember.__table__).c
RESULT = cast(Table, CaseResult.__table__).c
REVIEW = cast(Table, Review.__table__).c
INVITATION = cast(Table, Invitation.__table__).c
OBJECTION = cast(Table, Objection.__table__).c
REFERRAL = cast(Table, Referral.__table__).c
OFFICER = cast(Table, Officer.__table__).c
