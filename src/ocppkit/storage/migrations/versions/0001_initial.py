"""Initial schema: stations, connectors, id tags, transactions, meter values, device model,
security events, message log.

Written to match ocppkit.storage.models exactly (tests/storage/test_migrations.py checks it).
Timestamps are plain ``DateTime(timezone=True)`` here: the models' ``UTCDateTime`` is a
Python-side decorator over that column type, and migrations must not import the models.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "id_tags",
        sa.Column("id_tag", sa.String(length=255), nullable=False),
        sa.Column("token_type", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expiry_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parent_id_tag", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "status IN ('Accepted', 'Blocked', 'Expired', 'Invalid')",
            name=op.f("ck_id_tags_status"),
        ),
        sa.PrimaryKeyConstraint("id_tag", name=op.f("pk_id_tags")),
    )
    op.create_table(
        "message_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("message_type", sa.SmallInteger(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_message_log_direction")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_log")),
    )
    op.create_index(
        "ix_message_log_station_id_time", "message_log", ["station_id", "time"], unique=False
    )
    op.create_index("ix_message_log_time", "message_log", ["time"], unique=False)
    op.create_table(
        "stations",
        sa.Column("id", sa.String(length=48), nullable=False),
        sa.Column("ocpp_version", sa.String(length=16), nullable=True),
        sa.Column("vendor", sa.String(length=50), nullable=True),
        sa.Column("model", sa.String(length=50), nullable=True),
        sa.Column("serial_number", sa.String(length=50), nullable=True),
        sa.Column("firmware_version", sa.String(length=50), nullable=True),
        sa.Column("registration_status", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("security_profile", sa.Integer(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_boot", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "registration_status IN ('Accepted', 'Pending', 'Rejected')",
            name=op.f("ck_stations_registration_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
    )
    op.create_table(
        "connector_status",
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.String(length=50), nullable=True),
        sa.Column("info", sa.String(length=255), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_connector_status_station_id_stations")
        ),
        sa.PrimaryKeyConstraint(
            "station_id", "evse_id", "connector_id", name=op.f("pk_connector_status")
        ),
    )
    op.create_table(
        "device_model",
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("component", sa.String(length=50), nullable=False),
        sa.Column("component_instance", sa.String(length=50), nullable=False),
        sa.Column("evse_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("variable", sa.String(length=50), nullable=False),
        sa.Column("variable_instance", sa.String(length=50), nullable=False),
        sa.Column("attribute_type", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_device_model_station_id_stations")
        ),
        sa.PrimaryKeyConstraint(
            "station_id",
            "component",
            "component_instance",
            "evse_id",
            "variable",
            "variable_instance",
            "attribute_type",
            name=op.f("pk_device_model"),
        ),
    )
    op.create_table(
        "security_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tech_info", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_security_events_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_events")),
    )
    op.create_index(
        "ix_security_events_station_id_timestamp",
        "security_events",
        ["station_id", "timestamp"],
        unique=False,
    )
    op.create_table(
        "status_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.String(length=50), nullable=True),
        sa.Column("info", sa.String(length=255), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_status_history_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_history")),
    )
    op.create_index(
        "ix_status_history_station_id_timestamp",
        "status_history",
        ["station_id", "timestamp"],
        unique=False,
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("transaction_uid", sa.String(length=36), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("connector_id", sa.Integer(), nullable=True),
        sa.Column("id_tag", sa.String(length=255), nullable=True),
        sa.Column("meter_start", sa.BigInteger(), nullable=True),
        sa.Column("meter_stop", sa.BigInteger(), nullable=True),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stop_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("last_seq_no", sa.Integer(), nullable=True),
        sa.Column("energy_wh", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("state IN ('Active', 'Ended')", name=op.f("ck_transactions_state")),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_transactions_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint(
            "station_id",
            "connector_id",
            "id_tag",
            "start_time",
            "meter_start",
            name="uq_transactions_start_dedupe",
        ),
        sa.UniqueConstraint("station_id", "transaction_uid", name="uq_transactions_station_uid"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_transactions_station_id_state", "transactions", ["station_id", "state"], unique=False
    )
    op.create_table(
        "meter_values",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("measurand", sa.String(length=64), nullable=True),
        sa.Column("phase", sa.String(length=8), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.Column("context", sa.String(length=32), nullable=True),
        sa.Column("location", sa.String(length=16), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("raw_value", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_meter_values_station_id_stations")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_meter_values_transaction_id_transactions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_values")),
    )
    op.create_index(
        "ix_meter_values_station_id_timestamp",
        "meter_values",
        ["station_id", "timestamp"],
        unique=False,
    )
    op.create_index(
        "ix_meter_values_transaction_id", "meter_values", ["transaction_id"], unique=False
    )
    op.create_table(
        "transaction_events",
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("seq_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("trigger_reason", sa.String(length=32), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_transaction_events_transaction_id_transactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("transaction_id", "seq_no", name=op.f("pk_transaction_events")),
    )


def downgrade() -> None:
    op.drop_table("transaction_events")
    op.drop_index("ix_meter_values_transaction_id", table_name="meter_values")
    op.drop_index("ix_meter_values_station_id_timestamp", table_name="meter_values")
    op.drop_table("meter_values")
    op.drop_index("ix_transactions_station_id_state", table_name="transactions")
    op.drop_table("transactions")
    op.drop_index("ix_status_history_station_id_timestamp", table_name="status_history")
    op.drop_table("status_history")
    op.drop_index("ix_security_events_station_id_timestamp", table_name="security_events")
    op.drop_table("security_events")
    op.drop_table("device_model")
    op.drop_table("connector_status")
    op.drop_table("stations")
    op.drop_index("ix_message_log_time", table_name="message_log")
    op.drop_index("ix_message_log_station_id_time", table_name="message_log")
    op.drop_table("message_log")
    op.drop_table("id_tags")
