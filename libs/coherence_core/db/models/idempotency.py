"""Claimed `Idempotency-Key`s and the responses stored with them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, LargeBinary, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from coherence_core.db.base import Base, TenantOwned, utcnow_column


class IdempotencyKey(TenantOwned, Base):
    """A claimed `Idempotency-Key`, and the response once the request that claimed it finished."""

    __tablename__ = "idempotency_key"
    __table_args__ = (
        PrimaryKeyConstraint("organization_id", "key"),
        Index("ix_idempotency_key_created_at", "created_at"),
    )

    key: Mapped[str] = mapped_column(String(255))
    #: Method, path and a SHA-256 of the body: a replay must match it.
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_content_type: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = utcnow_column()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
