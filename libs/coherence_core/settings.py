"""Configuration from the environment (and an optional `.env`), in one place."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    #: The application role: the API and the worker, under row-level security.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    #: The role that owns the schema: migrations, and the worker's two sweeps across
    #: organisations (outbox relay, expiry). Defaults to `DATABASE_URL`.
    owner_database_url: str | None = Field(
        default=None, validation_alias="COHERENCE_OWNER_DATABASE_URL"
    )
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    host: str = Field(default="127.0.0.1", validation_alias="COHERENCE_HOST")
    port: int = Field(default=8000, validation_alias="COHERENCE_PORT")
    state_dir: Path = Field(default=Path(".coherence"), validation_alias="COHERENCE_STATE_DIR")
    admin_token: str | None = Field(default=None, validation_alias="COHERENCE_ADMIN_TOKEN")
    #: Secret for keyed hashes of respondent ids; generated into the state folder when unset.
    secret_key: str | None = Field(default=None, validation_alias="COHERENCE_SECRET_KEY")
    #: Largest request body accepted by the ingest endpoints, in bytes.
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, validation_alias="COHERENCE_MAX_BODY_BYTES"
    )
    #: Most responses in one batch.
    max_batch_responses: int = Field(default=5000, validation_alias="COHERENCE_MAX_BATCH_RESPONSES")
    #: Seconds the outbox relay waits between sweeps.
    relay_interval: float = Field(default=2.0, validation_alias="COHERENCE_RELAY_INTERVAL")
    #: Seconds a round's rescoring is deferred after a change, so bursts score once.
    rescore_debounce: float = Field(default=2.0, validation_alias="COHERENCE_RESCORE_DEBOUNCE")
    #: Idempotency-Key claims are kept at least this long, then pruned by the worker.
    idempotency_ttl_hours: float = Field(
        default=24.0, ge=24.0, validation_alias="COHERENCE_IDEMPOTENCY_TTL_HOURS"
    )
    log_level: str = Field(default="info", validation_alias="COHERENCE_LOG_LEVEL")
    #: `auto` (JSON lines unless stderr is a terminal), `json` or `console`.
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", validation_alias="COHERENCE_LOG_FORMAT"
    )

    @property
    def owner_url(self) -> str | None:
        """The schema owner's URL: `COHERENCE_OWNER_DATABASE_URL`, else `DATABASE_URL`."""
        return self.owner_database_url or self.database_url


@cache
def get_settings() -> Settings:
    return Settings()
