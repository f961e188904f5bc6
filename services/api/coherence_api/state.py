"""What the app holds for its lifetime: the database engine, Redis, secrets."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from coherence_core.security import RespondentHasher
from coherence_core.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    admin_token: str
    hasher: RespondentHasher
