"""Values stations send fit their columns: 64-bit integers, a 20-character unit.

The OCPP schemas bound no connector or EVSE id, seqNo or event id, and the decoder takes
any 64-bit value; on PostgreSQL a 32-bit INTEGER column failed the write, so a station
sending one was answered InternalError on every retry. SQLite's INTEGER is 64-bit already.
A 2.x ``unitOfMeasure.unit`` may be 20 characters, ``meter_values.unit`` held 16 (a failed
write on PostgreSQL; SQLite does not enforce lengths, its column is retyped to match).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column) of every such integer.
COLUMNS = (
    ("connector_status", "evse_id"),
    ("connector_status", "connector_id"),
    ("status_history", "evse_id"),
    ("status_history", "connector_id"),
    ("transactions", "evse_id"),
    ("transactions", "connector_id"),
    ("transactions", "last_seq_no"),
    ("transaction_events", "seq_no"),
    ("meter_values", "evse_id"),
    ("device_model", "evse_id"),
    ("station_events", "event_id"),
    ("station_events", "evse_id"),
)


def _retype(old: sa.types.TypeEngine[int], new: sa.types.TypeEngine[int]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, existing_type=old, type_=new)


def _unit_length(old: int, new: int) -> None:
    # SQLite cannot alter a column: batch mode copies the table (once, at the upgrade).
    with op.batch_alter_table("meter_values") as batch:
        batch.alter_column("unit", existing_type=sa.String(old), type_=sa.String(new))


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger())
    _unit_length(16, 20)


def downgrade() -> None:
    _unit_length(20, 16)
    _retype(sa.BigInteger(), sa.Integer())
