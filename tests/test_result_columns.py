"""The result columns are the engine's output schemas: the tables the worker writes, the ORM
models the API reads them with, and the API's row schemas all have exactly those columns."""

from __future__ import annotations

import polars as pl
import pytest
from pydantic import BaseModel

from coherence_api.results.schemas import TieScoreOut, UnitScoreOut
from coherence_core.db.models import TieScore, UnitParticipation, UnitScore
from coherence_scoring.engine.types import (
    TIE_SCORES_SCHEMA,
    UNIT_PARTICIPATION_SCHEMA,
    UNIT_SCORES_SCHEMA,
)
from coherence_scoring.repository.results import RESULT_TABLES, RUN_COLUMNS
from coherence_scoring.writing import TABLE_SCHEMAS

MODELS = {"unit_score": UnitScore, "tie_score": TieScore, "unit_participation": UnitParticipation}
PYTHON_TYPES = {pl.String: str, pl.Int32: int, pl.Float64: float, pl.Boolean: bool}


def test_the_worker_writes_every_result_table_by_its_engine_schema() -> None:
    assert set(TABLE_SCHEMAS) == set(RESULT_TABLES) == set(MODELS)
    assert TABLE_SCHEMAS == {
        "unit_score": UNIT_SCORES_SCHEMA,
        "tie_score": TIE_SCORES_SCHEMA,
        "unit_participation": UNIT_PARTICIPATION_SCHEMA,
    }


@pytest.mark.parametrize("table", sorted(MODELS))
def test_the_orm_models_have_the_engine_columns_and_types(table: str) -> None:
    columns = MODELS[table].__table__.columns
    schema = TABLE_SCHEMAS[table]
    assert set(columns.keys()) == {*RUN_COLUMNS, *schema}
    for name, dtype in schema.items():
        assert columns[name].type.python_type is PYTHON_TYPES[dtype], name


@pytest.mark.parametrize(
    ("model", "schema"), [(UnitScoreOut, UNIT_SCORES_SCHEMA), (TieScoreOut, TIE_SCORES_SCHEMA)]
)
def test_the_api_rows_are_the_engine_columns_in_order(
    model: type[BaseModel], schema: dict[str, pl.DataType]
) -> None:
    assert list(model.model_fields) == list(schema)
