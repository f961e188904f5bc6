"""row-level security: every tenant table is held to the transaction's organisation

Revision ID: b7637354183b
Revises: 3c1f0b7d9a21
Create Date: 2026-12-01 12:00:00

Runs as the schema owner. Every table with an ``organization_id`` gets row-level security,
enabled and forced (the owner is held to it too), and the policy ``tenant_isolation``: a row is
visible and writable only when its organisation is the transaction's
``coherence.organization_id`` setting. Two narrow additions (coherence_core.db.tenancy):
``api_key_lookup`` shows the one API key whose hash a caller presents, and ``owner_sweep`` lets
the role running this migration — the owner — see every row of ``outbox`` and
``idempotency_key`` (the worker's relay and expiry cron).

The application role (the user of ``DATABASE_URL`` when it is not the owner; passed in as the
``app_role`` attribute) must exist already; it is granted what the API and the worker need, now
and on tables later migrations create. Without one, nothing is granted (a single-role setup).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "b7637354183b"
down_revision: str | None = "3c1f0b7d9a21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (
    "answer",
    "api_key",
    "idempotency_key",
    "instrument",
    "outbox",
    "publication",
    "publication_respondent",
    "respondent",
    "round",
    "round_summary",
    "round_unit",
    "scoring_run",
    "tie_score",
    "unit",
    "unit_participation",
    "unit_score",
)
#: Every application table at this revision (``organization`` is the tenants' registry).
TABLES = ("organization", *TENANT_TABLES)
SWEPT_BY_OWNER = ("outbox", "idempotency_key")

# A sub-select, so Postgres evaluates the setting once per statement, not once per row.
ORGANIZATION = "(SELECT nullif(current_setting('coherence.organization_id', true), '')::uuid)"
API_KEY_HASH = "(SELECT nullif(current_setting('coherence.api_key_hash', true), ''))"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _app_role() -> str | None:
    role: str | None = context.config.attributes.get("app_role")
    if role is None:
        return None
    exists = op.get_bind().execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    if exists.scalar() is None:
        raise RuntimeError(
            f"the application role {role!r} (the user of DATABASE_URL) does not exist: "
            "create it first (README, 'Tenancy and row-level security')"
        )
    return _quote(role)


def _schema() -> str:
    return _quote(op.get_bind().execute(sa.text("SELECT current_schema()")).scalar_one())


def upgrade() -> None:
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (organization_id = {ORGANIZATION}) "
            f"WITH CHECK (organization_id = {ORGANIZATION})"
        )
    op.execute(f"CREATE POLICY api_key_lookup ON api_key FOR SELECT USING (key_hash = {API_KEY_HASH})")
    for table in SWEPT_BY_OWNER:
        op.execute(f"CREATE POLICY owner_sweep ON {table} TO CURRENT_USER USING (true) WITH CHECK (true)")

    role = _app_role()
    if role is None:
        return
    schema = _schema()
    op.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO {role}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
    )
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {role}")


def downgrade() -> None:
    role = _app_role()
    if role is not None:
        schema = _schema()
        op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE USAGE, SELECT ON SEQUENCES FROM {role}")
        op.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
            f"REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {role}"
        )
        op.execute(f"REVOKE USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}")
        op.execute(f"REVOKE SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} FROM {role}")
        op.execute(f"REVOKE USAGE ON SCHEMA {schema} FROM {role}")
    for table in SWEPT_BY_OWNER:
        op.execute(f"DROP POLICY owner_sweep ON {table}")
    op.execute("DROP POLICY api_key_lookup ON api_key")
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
