"""Published results: written whole per scoring run with COPY, read by the results API.

Only values that passed the anonymity rules are ever stored in these tables.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from coherence_core.db.base import Base, TenantOwned


class ScoringRun(TenantOwned, Base):
    """One attempt to score a round at an `input_version` (history and diagnostics)."""

    __tablename__ = "scoring_run"
    __table_args__ = (Index("ix_scoring_run_round", "round_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    round_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"))
    input_version: Mapped[int] = mapped_column(BigInteger)
    method_version: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class _ScoreColumns:
    n: Mapped[int | None] = mapped_column(Integer)
    mean: Mapped[float | None] = mapped_column(Float)
    sd: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str | None] = mapped_column(String(16))
    suppressed: Mapped[bool] = mapped_column(Boolean)
    suppression_reason: Mapped[str | None] = mapped_column(String(32))


class UnitScore(TenantOwned, _ScoreColumns, Base):
    __tablename__ = "unit_score"

    round_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("round.id", ondelete="CASCADE"), primary_key=True
    )
    scale: Mapped[str] = mapped_column(String(64), primary_key=True)
    measure: Mapped[str] = mapped_column(String(64), primary_key=True)
    perspective: Mapped[str] = mapped_column(String(16), primary_key=True)
    rollup: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    unit: Mapped[str] = mapped_column(String(200), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger)
    rwg: Mapped[float | None] = mapped_column(Float)
    low_agreement: Mapped[bool | None] = mapped_column(Boolean)


class TieScore(TenantOwned, _ScoreColumns, Base):
    __tablename__ = "tie_score"

    round_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("round.id", ondelete="CASCADE"), primary_key=True
    )
    scale: Mapped[str] = mapped_column(String(64), primary_key=True)
    measure: Mapped[str] = mapped_column(String(64), primary_key=True)
    from_unit: Mapped[str] = mapped_column(String(200), primary_key=True)
    to_unit: Mapped[str] = mapped_column(String(200), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger)


class UnitParticipation(TenantOwned, Base):
    __tablename__ = "unit_participation"

    round_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("round.id", ondelete="CASCADE"), primary_key=True
    )
    rollup: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    unit: Mapped[str] = mapped_column(String(200), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger)
    respondents: Mapped[int | None] = mapped_column(Integer)
    headcount: Mapped[int | None] = mapped_column(Integer)
    response_rate: Mapped[float | None] = mapped_column(Float)
    suppressed: Mapped[bool] = mapped_column(Boolean)
    suppression_reason: Mapped[str | None] = mapped_column(String(32))


class RoundSummary(TenantOwned, Base):
    __tablename__ = "round_summary"

    round_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("round.id", ondelete="CASCADE"), primary_key=True
    )
    run_id: Mapped[int] = mapped_column(BigInteger)
    input_version: Mapped[int] = mapped_column(BigInteger)
    method_version: Mapped[str] = mapped_column(String(64))
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB)
