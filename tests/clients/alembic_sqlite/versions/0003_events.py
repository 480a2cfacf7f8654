import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

def upgrade():
    op.create_table("events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("weight", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint("weight > 0", name="events_weight_positive"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("invoice_id", "kind", name="events_invoice_kind"))
    op.create_index("ix_events_kind_pattern", "events", ["kind"], unique=False, postgresql_ops={"kind": "varchar_pattern_ops"})
    op.add_column("customers", sa.Column("tier", sa.SmallInteger(), server_default="0", nullable=False))
    op.create_index("ix_customers_tier", "customers", ["tier"], unique=False)
    op.alter_column("invoices", "issued", new_column_name="issued_at")
    op.alter_column("invoices", "customer_id", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)

def downgrade():
    op.alter_column("invoices", "customer_id", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)
    op.alter_column("invoices", "issued_at", new_column_name="issued")
    op.drop_index("ix_customers_tier", table_name="customers")
    op.drop_column("customers", "tier")
    op.drop_index("ix_events_kind_pattern", table_name="events")
    op.drop_table("events")
