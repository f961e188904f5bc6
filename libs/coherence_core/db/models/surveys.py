"""The org chart, instruments, rounds and what respondents sent."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from coherence_core.db.base import Base, TenantOwned, status_column_type, utcnow_column
from coherence_core.lifecycle import RoundStatus, ScoringStatus

#: `answer.target_idx` for items asked once (not about a target unit).
NO_TARGET = -1


class Unit(TenantOwned, Base):
    """A unit of the current org chart, named by the HR system's `external_id`."""

    __tablename__ = "unit"
    __table_args__ = (UniqueConstraint("organization_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    parent_external_id: Mapped[str | None] = mapped_column(String(200))
    headcount: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = utcnow_column()
    updated_at: Mapped[datetime] = utcnow_column()


class Instrument(TenantOwned, Base):
    """An organisation's custom instrument; built-in ones ship as data files."""

    __tablename__ = "instrument"
    __table_args__ = (UniqueConstraint("organization_id", "key"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = utcnow_column()


class Round(TenantOwned, Base):
    """A survey wave. `input_version` moves with every accepted change to its responses."""

    __tablename__ = "round"
    __table_args__ = (Index("ix_round_org_created", "organization_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    instrument_key: Mapped[str] = mapped_column(String(64))
    #: The instrument definition as it was when the round opened.
    instrument: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[RoundStatus] = mapped_column(
        status_column_type(RoundStatus), default=RoundStatus.OPEN
    )
    respondents: Mapped[int] = mapped_column(Integer, default=0)
    input_version: Mapped[int] = mapped_column(BigInteger, default=0)
    scoring_status: Mapped[ScoringStatus] = mapped_column(
        status_column_type(ScoringStatus), default=ScoringStatus.PENDING
    )
    scored_version: Mapped[int | None] = mapped_column(BigInteger)
    scored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scoring_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = utcnow_column()
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RoundUnit(TenantOwned, Base):
    """The unit tree frozen into a round when it opens; `idx` is the round-local unit number."""

    __tablename__ = "round_unit"
    __table_args__ = (UniqueConstraint("round_id", "external_id"),)

    round_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("round.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    parent_idx: Mapped[int | None] = mapped_column(Integer)
    headcount: Mapped[int | None] = mapped_column(Integer)


class Respondent(TenantOwned, Base):
    """A pseudonymous respondent: a keyed hash of the sender's id, never the id itself."""

    __tablename__ = "respondent"
    __table_args__ = (UniqueConstraint("round_id", "respondent_hash"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    round_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"))
    respondent_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    unit_idx: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = utcnow_column()


class Answer(TenantOwned, Base):
    """One answer. Written and read in bulk with COPY, never row by row.

    No foreign keys: per-row FK checks would dominate bulk COPY, and answers are only written and
    deleted by the ingest service together with their respondent, in one transaction.
    `target_idx` is the round-local target unit, or `NO_TARGET` for items asked once.
    """

    __tablename__ = "answer"

    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    round_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    respondent_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    target_idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_idx: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    value: Mapped[int | None] = mapped_column(SmallInteger)
