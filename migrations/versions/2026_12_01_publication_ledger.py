"""publication ledger; previews

Revision ID: 3c1f0b7d9a21
Revises: 7eab02e1f403
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "3c1f0b7d9a21"
down_revision: str | None = "7eab02e1f403"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "round_summary",
        sa.Column("preview", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "publication",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("round_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("input_version", sa.BigInteger(), nullable=False),
        sa.Column("method_version", sa.String(length=64), nullable=False),
        sa.Column("min_group_size", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows_published", sa.Integer(), nullable=False),
        sa.Column("rows_suppressed", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("summary", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("linked", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_publication_organization_id_organization"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["round_id"], ["round.id"], name=op.f("fk_publication_round_id_round"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publication")),
    )
    op.create_index("ix_publication_round", "publication", ["round_id", "id"], unique=False)
    op.create_table(
        "publication_respondent",
        sa.Column("publication_id", sa.BigInteger(), nullable=False),
        sa.Column("respondent_key", sa.LargeBinary(length=16), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_publication_respondent_organization_id_organization"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["publication_id"],
            ["publication.id"],
            name=op.f("fk_publication_respondent_publication_id_publication"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "publication_id", "respondent_key", name=op.f("pk_publication_respondent")
        ),
    )
    op.create_index(
        "ix_publication_respondent_key", "publication_respondent", ["respondent_key"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_publication_respondent_key", table_name="publication_respondent")
    op.drop_table("publication_respondent")
    op.drop_index("ix_publication_round", table_name="publication")
    op.drop_table("publication")
    op.drop_column("round_summary", "preview")
