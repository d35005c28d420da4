"""Firmware and log-upload status on stations; the station_events table (2.x NotifyEvent);
security events unique by (station, type, timestamp) so a resent one is stored once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.add_column(sa.Column("firmware_status", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("firmware_status_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("log_status", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("log_status_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("security_events") as batch:
        batch.create_unique_constraint(
            "uq_security_events_event", ["station_id", "type", "timestamp"]
        )
    op.create_table(
        "station_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("component", sa.String(length=50), nullable=False),
        sa.Column("component_instance", sa.String(length=50), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("variable", sa.String(length=50), nullable=False),
        sa.Column("variable_instance", sa.String(length=50), nullable=True),
        sa.Column("actual_value", sa.String(length=2500), nullable=False),
        sa.Column("event_notification_type", sa.String(length=40), nullable=False),
        sa.Column("cleared", sa.Boolean(), nullable=True),
        sa.Column("tech_code", sa.String(length=50), nullable=True),
        sa.Column("tech_info", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_station_events_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_station_events")),
        sa.UniqueConstraint("station_id", "event_id", "timestamp", name="uq_station_events_event"),
    )
    op.create_index(
        "ix_station_events_station_id_timestamp",
        "station_events",
        ["station_id", "timestamp"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_station_events_station_id_timestamp", table_name="station_events")
    op.drop_table("station_events")
    with op.batch_alter_table("security_events") as batch:
        batch.drop_constraint("uq_security_events_event", type_="unique")
    with op.batch_alter_table("stations") as batch:
        batch.drop_column("log_status_at")
        batch.drop_column("log_status")
        batch.drop_column("firmware_status_at")
        batch.drop_column("firmware_status")
