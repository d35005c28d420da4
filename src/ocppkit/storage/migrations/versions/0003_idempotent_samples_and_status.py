"""Resent meter values and status notifications are stored once: meter_values.sample_key
with a unique index per station, and a unique index on status_history's content.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meter_values") as batch:
        batch.add_column(sa.Column("sample_key", sa.String(length=255), nullable=True))
    op.create_index(
        "uq_meter_values_sample", "meter_values", ["station_id", "sample_key"], unique=True
    )
    # Resends stored before this revision: keep the first of each.
    op.execute(
        "DELETE FROM status_history WHERE id NOT IN (SELECT MIN(id) FROM status_history "
        "GROUP BY station_id, evse_id, connector_id, timestamp, status)"
    )
    op.create_index(
        "uq_status_history_event",
        "status_history",
        ["station_id", "evse_id", "connector_id", "timestamp", "status"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_status_history_event", table_name="status_history")
    op.drop_index("uq_meter_values_sample", table_name="meter_values")
    with op.batch_alter_table("meter_values") as batch:
        batch.drop_column("sample_key")
