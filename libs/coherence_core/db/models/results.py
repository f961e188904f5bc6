"""Published results: written whole per scoring run with COPY, read by the results API.

Only values that passed the anonymity rules are ever stored in these tables. Rows are keyed by
their scoring run: a new run's rows never collide with the previous run's, and readers follow
`round_summary.run_id`, which switches in the same transaction that writes the new rows. The
score tables carry no foreign keys: per-row FK checks would dominate the COPY, and only the
scoring job writes them.
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
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from coherence_core.db.base import Base, TenantOwned, status_column_type
from coherence_core.lifecycle import ScoringStatus


class ScoringRun(TenantOwned, Base):
    """One attempt to score a round at an `input_version` (history and diagnostics)."""

    __tablename__ = "scoring_run"
    __table_args__ = (Index("ix_scoring_run_round", "round_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    round_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"))
    input_version: Mapped[int] = mapped_column(BigInteger)
    method_version: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB)
    #: `running`, then `scored` or `failed`
    status: Mapped[ScoringStatus] = mapped_column(status_column_type(ScoringStatus))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class _ResultRow:
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    round_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class _ScoreColumns(_ResultRow):
    n: Mapped[int | None] = mapped_column(Integer)
    mean: Mapped[float | None] = mapped_column(Float)
    sd: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str | None] = mapped_column(String(16))
    suppressed: Mapped[bool] = mapped_column(Boolean)
    suppression_reason: Mapped[str | None] = mapped_column(String(32))


class UnitScore(_ScoreColumns, TenantOwned, Base):
    __tablename__ = "unit_score"
    __table_args__ = (
        PrimaryKeyConstraint(
            "round_id", "run_id", "scale", "measure", "perspective", "unit", "rollup"
        ),
    )

    scale: Mapped[str] = mapped_column(String(64), primary_key=True)
    measure: Mapped[str] = mapped_column(String(64), primary_key=True)
    perspective: Mapped[str] = mapped_column(String(16), primary_key=True)
    rollup: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    unit: Mapped[str] = mapped_column(String(200), primary_key=True)
    rwg: Mapped[float | None] = mapped_column(Float)
    low_agreement: Mapped[bool | None] = mapped_column(Boolean)


class TieScore(_ScoreColumns, TenantOwned, Base):
    __tablename__ = "tie_score"
    __table_args__ = (
        PrimaryKeyConstraint("round_id", "run_id", "scale", "measure", "from_unit", "to_unit"),
    )

    scale: Mapped[str] = mapped_column(String(64), primary_key=True)
    measure: Mapped[str] = mapped_column(String(64), primary_key=True)
    from_unit: Mapped[str] = mapped_column(String(200), primary_key=True)
    to_unit: Mapped[str] = mapped_column(String(200), primary_key=True)


class UnitParticipation(_ResultRow, TenantOwned, Base):
    __tablename__ = "unit_participation"
    __table_args__ = (PrimaryKeyConstraint("round_id", "run_id", "unit", "rollup"),)

    rollup: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    unit: Mapped[str] = mapped_column(String(200), primary_key=True)
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
    #: True while the round is open: the results are a perturbed preview (SCORING.md §5.3)
    preview: Mapped[bool] = mapped_column(Boolean, default=False)


class Publication(TenantOwned, Base):
    """The publication ledger: one row per result set ever served (SCORING.md §5.4).

    ``kind`` is ``preview`` (an open round: perturbed) or ``final`` (a closed round: exact). A
    final publication's result rows are kept for good (its run is never deleted), and its
    respondents are listed in ``publication_respondent`` by a key of who they are and exactly what
    they answered, so that any later publication sharing a respondent's identical answers is
    audited together with it. ``linked`` lists the earlier finals a publication was audited with.
    """

    __tablename__ = "publication"
    __table_args__ = (Index("ix_publication_round", "round_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    round_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    input_version: Mapped[int] = mapped_column(BigInteger)
    method_version: Mapped[str] = mapped_column(String(64))
    min_group_size: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rows_published: Mapped[int] = mapped_column(Integer)
    rows_suppressed: Mapped[int] = mapped_column(Integer)
    #: SHA-256 of the published tables, as written
    digest: Mapped[str] = mapped_column(String(64))
    #: the summary as published (the unit and tie rows stay under ``run_id``)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB)
    linked: Mapped[list[int]] = mapped_column(JSONB, default=list)


class PublicationRespondent(TenantOwned, Base):
    """Whose responses a final publication holds: a 16-byte key of the respondent's pseudonym
    and their exact submission, never the answers themselves."""

    __tablename__ = "publication_respondent"
    __table_args__ = (Index("ix_publication_respondent_key", "respondent_key"),)

    publication_id: Mapped[int] = mapped_column(
        ForeignKey("publication.id", ondelete="CASCADE"), primary_key=True
    )
    respondent_key: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
