"""intel type page index

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 04:50:53.211011
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # match[type] pages are ordered by (date_added, id) too: with them in the type index a
    # page reads the index in order and stops (SQLite scanned the whole collection for a type
    # with no objects).
    op.drop_index("ix_intel_objects_type", table_name="intel_objects")
    op.create_index(
        "ix_intel_objects_type",
        "intel_objects",
        ["collection_id", "type", "date_added", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_intel_objects_type", table_name="intel_objects")
    op.create_index(
        "ix_intel_objects_type", "intel_objects", ["collection_id", "type"], unique=False
    )
