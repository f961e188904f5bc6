"""The transactional outbox: jobs recorded in the same transaction as the change that needs them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from coherence_core.db.base import Base, TenantOwned, utcnow_column


class Outbox(TenantOwned, Base):
    """A job recorded in the same transaction as the change that needs it.

    The relay enqueues rows whose `available_at` has passed and marks them `enqueued_at`; the job
    id derives from the row, so enqueueing twice is harmless.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "available_at", postgresql_where=text("enqueued_at IS NULL")),
        Index(
            "uq_outbox_pending_dedupe_key",
            "dedupe_key",
            unique=True,
            postgresql_where=text("enqueued_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    #: Jobs with the same dedupe key collapse into one pending row (debouncing).
    dedupe_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = utcnow_column()
    available_at: Mapped[datetime] = utcnow_column()
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
