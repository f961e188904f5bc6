"""All tables, by domain. Importing this package registers every table on `Base.metadata`."""

from coherence_core.db.models.idempotency import IdempotencyKey
from coherence_core.db.models.organizations import ApiKey, Organization
from coherence_core.db.models.outbox import Outbox
from coherence_core.db.models.results import (
    Publication,
    PublicationRespondent,
    RoundSummary,
    ScoringRun,
    TieScore,
    UnitParticipation,
    UnitScore,
)
from coherence_core.db.models.surveys import Answer, Instrument, Respondent, Round, RoundUnit, Unit

__all__ = [
    "Answer",
    "ApiKey",
    "IdempotencyKey",
    "Instrument",
    "Organization",
    "Outbox",
    "Publication",
    "PublicationRespondent",
    "Respondent",
    "Round",
    "RoundSummary",
    "RoundUnit",
    "ScoringRun",
    "TieScore",
    "Unit",
    "UnitParticipation",
    "UnitScore",
]
