"""meter_values indexed in the order samples arrive: the unique sample index leads with the
sample's time, and the (station_id, timestamp) index, which no query used, is gone.

Samples arrive in time order, so an index led by time grows at its right edge; the two
indexes led by the station put every station's rows in a different page, and a commit of
many stations' samples rewrote a page per station in each (see models.MeterValue).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_meter_values_station_id_timestamp", table_name="meter_values")
    op.drop_index("uq_meter_values_sample", table_name="meter_values")
    op.create_index(
        "uq_meter_values_sample",
        "meter_values",
        ["timestamp", "station_id", "sample_key"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_meter_values_sample", table_name="meter_values")
    op.create_index(
        "uq_meter_values_sample", "meter_values", ["station_id", "sample_key"], unique=True
    )
    op.create_index(
        "ix_meter_values_station_id_timestamp", "meter_values", ["station_id", "timestamp"]
    )
