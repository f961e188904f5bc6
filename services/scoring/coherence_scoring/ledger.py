"""The publication ledger (SCORING.md §5.4): what every scoring run published, and from whom.

Every result set the service serves is recorded as a publication: preview (open round,
perturbed) or final (closed round, exact). A final publication's rows are never deleted, and its
respondents are recorded by a key of their pseudonym and their exact submission. A later final
whose respondents share such a key with an earlier one — the same person, the same answers — is
scored *linked* to it: the engine protects the two publications as one (engine/linking.py).
Previews are not linked: their noise already protects them against every other version.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import uuid
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import polars as pl

from coherence_core.instruments import InstrumentDefinition
from coherence_scoring.engine import (
    TIE_SCORES_SCHEMA,
    UNIT_SCORES_SCHEMA,
    LinkedPublication,
    ScoringInput,
    ScoringResult,
    ScoringSettings,
)
from coherence_scoring.loading import RoundInputs, load_round
from coherence_scoring.repository.inputs import InputRepository
from coherence_scoring.repository.ledger import LedgerRepository
from coherence_scoring.repository.results import ResultRepository


class PublicationKind(StrEnum):
    #: an open round's results: perturbed
    PREVIEW = "preview"
    #: a closed round's results: exact, kept for good
    FINAL = "final"


def preview_noise_key(secret: str, round_id: uuid.UUID) -> int:
    """The secret that keys a round's preview noise: the same for every version of the round,
    unknown to readers."""
    digest = hmac.new(secret.encode(), b"preview:" + round_id.bytes, "sha256").digest()
    return int.from_bytes(digest[:8], "big")


async def respondent_keys(
    connection: Any, round_id: uuid.UUID, inputs: RoundInputs, instrument: InstrumentDefinition
) -> dict[int, bytes]:
    """respondent id → a 16-byte key of the respondent's pseudonym and exact submission (every
    answer: target unit by external id, item key, value or "don't know")."""
    hashes = await InputRepository(connection).respondent_hashes(round_id=round_id)
    item_keys = [item.key for _, item in instrument.items]
    external = inputs.units["external_id"].to_list()
    answers = inputs.answers
    item_hash = _string_hashes(item_keys)
    target_hash = _string_hashes(external)
    target = answers["target"].fill_null(-1).to_numpy().astype(np.int64)
    value = answers["value"].fill_null(-32768).to_numpy().astype(np.int64)
    with np.errstate(over="ignore"):
        h = _mix(
            item_hash[answers["item"].to_numpy().astype(np.int64)]
            ^ _mix(np.where(target >= 0, target_hash[np.maximum(target, 0)], np.uint64(7)))
            ^ _mix((value + 40_000).astype(np.uint64))
        )
    per = (
        pl.DataFrame({"r": answers["respondent"], "h": h})
        .group_by("r")
        .agg(pl.col("h").sum(), n=pl.len())  # a wrapping sum: independent of answer order
    )
    sums = {int(r): (int(s), int(n)) for r, s, n in per.iter_rows()}
    keys = {}
    for respondent, pseudonym in hashes.items():
        total, count = sums.get(respondent, (0, 0))
        material = pseudonym + total.to_bytes(8, "big") + count.to_bytes(8, "big")
        keys[respondent] = hashlib.blake2b(material, digest_size=16).digest()
    return keys


def _string_hashes(values: list[str]) -> np.ndarray:
    return np.array(
        [int.from_bytes(hashlib.blake2b(v.encode(), digest_size=8).digest(), "big") for v in values]
        or [0],
        dtype=np.uint64,
    )


def _mix(values: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.uint64]:
    z: npt.NDArray[np.uint64] = values.astype(np.uint64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


async def linked_finals(
    connection: Any,
    *,
    organization_id: uuid.UUID,
    round_id: uuid.UUID,
    settings: ScoringSettings,
    method_version: str,
    keys: dict[int, bytes],
) -> list[tuple[int, LinkedPublication]]:
    """Every earlier final publication of the organisation holding a respondent with one of
    ``keys`` (the same person, the same answers), with its id, loaded as the engine needs it.

    An earlier final of this very round made from exactly these submissions, with the same
    minimum group size and method, is the publication this scoring is about to repeat (the
    engine is deterministic): it is not linked, since the two are one and the same."""
    if not keys:
        return []
    by_key = {key: respondent for respondent, key in keys.items()}
    ledger = LedgerRepository(connection)
    shared = await ledger.holding(
        organization_id=organization_id, kind=PublicationKind.FINAL.value, keys=list(by_key)
    )
    if not shared:
        return []
    facts = await ledger.facts(publication_ids=list(shared))
    everyone = len(by_key)
    repeats = {
        f["id"]
        for f in facts
        if f["round_id"] == round_id
        and f["min_group_size"] == settings.min_group_size
        and f["method_version"] == method_version
        and f["respondents"] == everyone == len(shared[f["id"]])
    }
    return [
        (publication_id, await _load_publication(connection, publication_id, keys_there, by_key))
        for publication_id, keys_there in shared.items()
        if publication_id not in repeats
    ]


async def _load_publication(
    connection: Any, publication_id: int, shared_keys: list[bytes], here_by_key: dict[bytes, int]
) -> LinkedPublication:
    publication = await LedgerRepository(connection).get(publication_id=publication_id)
    round_id = publication["round_id"]
    inputs = await load_round(connection, round_id)
    instrument = InstrumentDefinition.model_validate(_json(publication["instrument"]))
    there_keys = await respondent_keys(connection, round_id, inputs, instrument)
    wanted = set(shared_keys)
    same = {respondent: here_by_key[key] for respondent, key in there_keys.items() if key in wanted}
    unit_scores = await _frame(
        connection,
        "unit_score",
        ["unit", "scale", "measure", "perspective", "rollup", "suppressed"],
        round_id,
        publication["run_id"],
    )
    tie_scores = await _frame(
        connection,
        "tie_score",
        ["from_unit", "to_unit", "scale", "measure", "suppressed"],
        round_id,
        publication["run_id"],
    )
    return LinkedPublication(
        inputs=ScoringInput(
            instrument=instrument,
            units=inputs.units,
            respondents=inputs.respondents,
            answers=inputs.answers,
            settings=ScoringSettings(min_group_size=publication["min_group_size"]),
        ),
        unit_scores=unit_scores,
        tie_scores=tie_scores,
        summary=_json(publication["summary"]),
        same_respondents=same,
    )


_SCHEMAS = {**UNIT_SCORES_SCHEMA, **TIE_SCORES_SCHEMA}


async def _frame(
    connection: Any, table: str, columns: list[str], round_id: uuid.UUID, run_id: int
) -> pl.DataFrame:
    """A published run's rows of ``table``: its keys and whether each was suppressed."""
    rows = await ResultRepository(connection).published_rows(
        table=table, columns=columns, round_id=round_id, run_id=run_id
    )
    return pl.DataFrame(rows, schema={c: _SCHEMAS[c] for c in columns}, orient="row")


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def digest(result: ScoringResult) -> str:
    """SHA-256 of the published tables (Arrow IPC) and summary: what this publication showed.
    CPU work: call it off the event loop."""
    sha = hashlib.sha256()
    for frame in (result.unit_scores, result.tie_scores, result.participation):
        buffer = io.BytesIO()
        frame.write_ipc(buffer, compression="uncompressed")
        sha.update(buffer.getvalue())
    sha.update(orjson.dumps(result.summary, option=orjson.OPT_SERIALIZE_NUMPY))
    return sha.hexdigest()


async def record_publication(
    connection: Any,
    *,
    organization_id: uuid.UUID,
    round_id: uuid.UUID,
    run_id: int,
    input_version: int,
    method_version: str,
    settings: ScoringSettings,
    result: ScoringResult,
    content_digest: str,
    keys: dict[int, bytes],
    linked: list[int],
) -> int:
    """Add the publication to the ledger (inside the transaction that writes it)."""
    units, ties = result.unit_scores, result.tie_scores
    suppressed = int(units["suppressed"].sum()) + int(ties["suppressed"].sum())
    summary = orjson.dumps(result.summary, option=orjson.OPT_SERIALIZE_NUMPY)
    ledger = LedgerRepository(connection)
    publication_id = await ledger.add(
        organization_id=organization_id,
        round_id=round_id,
        run_id=run_id,
        kind=(PublicationKind.PREVIEW if result.preview else PublicationKind.FINAL).value,
        input_version=input_version,
        method_version=method_version,
        min_group_size=settings.min_group_size,
        rows_published=units.height + ties.height - suppressed,
        rows_suppressed=suppressed,
        digest=content_digest,
        summary=summary.decode(),
        linked=linked,
    )
    if not result.preview and keys:
        await ledger.add_respondents(
            organization_id=organization_id,
            publication_id=publication_id,
            keys=sorted(set(keys.values())),
        )
    return publication_id
