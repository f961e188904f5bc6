"""Tenants and their API keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Float, Integer, String, Uuid
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from coherence_core.db.base import Base, TenantOwned, utcnow_column


class Organization(Base):
    __tablename__ = "organization"
    __table_args__ = (
        CheckConstraint("min_group_size >= 3", name="min_group_size_at_least_3"),
        CheckConstraint("weak_below <= strong_above", name="bands_ordered"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    min_group_size: Mapped[int] = mapped_column(Integer, default=5)
    weak_below: Mapped[float] = mapped_column(Float, default=3.5)
    strong_above: Mapped[float] = mapped_column(Float, default=4.0)
    created_at: Mapped[datetime] = utcnow_column()


class ApiKey(TenantOwned, Base):
    """A bearer key; only its SHA-256 is stored. `prefix` identifies it in listings."""

    __tablename__ = "api_key"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    created_at: Mapped[datetime] = utcnow_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
