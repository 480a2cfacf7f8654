import sqlalchemy as sa
from alembic import op
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

def upgrade():
    op.add_column("customers", sa.Column("name", sa.String(length=80), server_default="anon", nullable=False))
    op.alter_column("customers", "email", existing_type=sa.String(length=120), type_=sa.String(length=200), existing_nullable=False)

def downgrade():
    op.alter_column("customers", "email", existing_type=sa.String(length=200), type_=sa.String(length=120), existing_nullable=False)
    op.drop_column("customers", "name")
