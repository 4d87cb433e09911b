"""Draw stage tables: a verifiable draw (targets, inspectors, quick draw) and its frozen pool
(docs/architecture.md §3)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, StateType
from core.states import DrawState


class Draw(Base):
    """A verifiable draw (docs/architecture.md §3): of targets for a task, or of inspectors, or
    a quick draw."""

    __tablename__ = "draw"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("joint_task.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # targets | inspectors
    task_code: Mapped[str] = mapped_column(String(48))  # the code hashed into every key
    state: Mapped[DrawState] = mapped_column(StateType(DrawState), default=DrawState.FROZEN)
    freeze_no: Mapped[int] = mapped_column(Integer, default=1)  # 1 + freezes before this one
    commitment: Mapped[str] = mapped_column(String(64))
    seed_hex: Mapped[str] = mapped_column(String(64), default="")  # secret until locked
    beacon_source: Mapped[str] = mapped_column(Text, default="")  # announced before the draw
    beacon: Mapped[str] = mapped_column(Text, default="")
    uses_beacon: Mapped[bool] = mapped_column(Boolean, default=True)
    pool_hash: Mapped[str] = mapped_column(String(64))
    pool_size: Mapped[int] = mapped_column(Integer)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)  # rule, scope, counts
    algorithm_version: Mapped[str] = mapped_column(String(32), default="lianjian-draw-1")
    selection: Mapped[list[Any]] = mapped_column(default=list)  # ids in key order
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("officer.id"))
    frozen_at: Mapped[dt.datetime]
    locked_at: Mapped[dt.datetime | None]


class DrawPool(Base):
    """The frozen pool as zlib-compressed CSV ("id,stratum" lines), kept apart from Draw."""

    __tablename__ = "draw_pool"
    draw_id: Mapped[int] = mapped_column(ForeignKey("draw.id"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
