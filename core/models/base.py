"""Schema foundation (docs/architecture.md §5): the declarative base, the UTC datetime and
state column types every table uses, and the row-id bound."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import JSON, DateTime, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores naive UTC, returns aware UTC, so SQLite and PostgreSQL behave the same."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


S = TypeVar("S", bound=StrEnum)


class StateType(TypeDecorator[S], Generic[S]):
    """A state column: stored as its plain string value (no database enum type, so adding a
    state needs no migration), read back as the entity's enum; an unknown value is refused."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[S]) -> None:
        super().__init__(16)
        self.enum = enum

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> S | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


# Row ids are INTEGER columns: 32 bits on PostgreSQL. An id from outside (a card key, a link,
# a query) past this cannot name a row, and the driver refuses to send it (OverflowError).
MAX_ROW_ID = 2**31 - 1
