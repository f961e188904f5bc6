"""Binary COPY of a batch's answers, encoded with numpy: no Python object per answer.

Postgres' binary COPY format: a header, then per row a field count and each field as a length
and big-endian bytes (length −1 for NULL), then a trailer. Rows with and without a value have
two fixed layouts, so each is one numpy structured array.
"""

from __future__ import annotations

import uuid

import numpy as np

from coherence_api.responses.validation import AnswerColumns

COLUMNS = ("organization_id", "round_id", "respondent_id", "target_idx", "item_idx", "value")
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"

_FIELDS = [
    ("count", ">i2"),
    ("organization_len", ">i4"),
    ("organization", "V16"),
    ("round_len", ">i4"),
    ("round", "V16"),
    ("respondent_len", ">i4"),
    ("respondent", ">i8"),
    ("target_len", ">i4"),
    ("target", ">i4"),
    ("item_len", ">i4"),
    ("item", ">i2"),
    ("value_len", ">i4"),
]
_WITH_VALUE = np.dtype([*_FIELDS, ("value", ">i2")])
_NULL_VALUE = np.dtype(_FIELDS)
_LENGTHS = {
    "count": 6,
    "organization_len": 16,
    "round_len": 16,
    "respondent_len": 8,
    "target_len": 4,
    "item_len": 2,
}


def encode_answers(
    answers: AnswerColumns,
    respondent_ids: np.ndarray,
    *,
    organization_id: uuid.UUID,
    round_id: uuid.UUID,
) -> bytes:
    """The COPY payload for `answers`; `respondent_ids[i]` is the id of the batch's i-th
    submission."""
    positions = np.asarray(answers.respondent, dtype=np.int64)
    target = np.asarray(answers.target, dtype=np.int32)
    item = np.asarray(answers.item, dtype=np.int16)
    known = np.fromiter((v is not None for v in answers.value), dtype=bool, count=len(answers))
    value = np.fromiter(
        (v if v is not None else 0 for v in answers.value), dtype=np.int16, count=len(answers)
    )
    parts = [HEADER]
    for mask, dtype in ((known, _WITH_VALUE), (~known, _NULL_VALUE)):
        rows = np.zeros(int(mask.sum()), dtype=dtype)
        for name, length in _LENGTHS.items():
            rows[name] = length
        rows["organization"] = np.frombuffer(organization_id.bytes, dtype="V16")[0]
        rows["round"] = np.frombuffer(round_id.bytes, dtype="V16")[0]
        rows["respondent"] = respondent_ids[positions[mask]]
        rows["target"] = target[mask]
        rows["item"] = item[mask]
        if dtype is _WITH_VALUE:
            rows["value_len"] = 2
            rows["value"] = value[mask]
        else:
            rows["value_len"] = -1
        parts.append(rows.tobytes())
    parts.append(TRAILER)
    return b"".join(parts)
