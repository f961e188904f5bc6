"""What every job is given: the worker's settings and database, built once at worker startup."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from coherence_core.db.session import create_engine, create_sessionmaker
from coherence_core.db.tenancy import system_sessionmaker
from coherence_core.settings import Settings


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    #: the application role's: jobs, under row-level security
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    #: the owner's (`COHERENCE_OWNER_DATABASE_URL`): the two sweeps across organisations, the
    #: outbox relay and the expiry cron (coherence_core.db.tenancy)
    system_engine: AsyncEngine
    system_sessionmaker: async_sessionmaker[AsyncSession]
    #: keys the preview noise of every round (never shown to readers)
    secret_key: str

    @classmethod
    def open(cls, settings: Settings, *, pool_size: int = 4) -> WorkerContext:
        if not settings.database_url:
            raise RuntimeError("DATABASE_URL must be set (`coherence run` sets it).")
        if not settings.secret_key:
            raise RuntimeError("COHERENCE_SECRET_KEY must be set (`coherence run` sets it).")
        engine = create_engine(settings.database_url, pool_size=pool_size)
        system_engine = create_engine(settings.owner_url or settings.database_url, pool_size=2)
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            system_engine=system_engine,
            system_sessionmaker=system_sessionmaker(
                system_engine, reason="worker: outbox relay across organisations"
            ),
            secret_key=settings.secret_key,
        )

    async def close(self) -> None:
        await self.engine.dispose()
        await self.system_engine.dispose()
