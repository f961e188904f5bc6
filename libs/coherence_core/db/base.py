"""Declarative base with stable constraint names, and the tenant-ownership mixin."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import DateTime, Enum, ForeignKey, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def utcnow_column() -> Mapped[datetime]:
    """A creation time set in Python (so it is known after a flush) with a server default."""
    return mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), nullable=False
    )


def status_column_type(enum: type[StrEnum]) -> Enum:
    """A status stored as its value in a VARCHAR(16) (the migrations' column type, no CHECK),
    read back as the enum member."""
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class TenantOwned:
    """A row that belongs to one organisation.

    Every ORM statement on a subclass is filtered to the session's organisation by
    `coherence_core.db.tenancy`; nothing else needs to remember to do it.
    """

    @declared_attr
    def organization_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(
            ForeignKey("organization.id", ondelete="CASCADE"), nullable=False, index=False
        )
