import enum
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class Status(enum.Enum):
    new = "new"
    paid = "paid"

class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(200), unique=True)
    name: Mapped[str] = mapped_column(sa.String(80), server_default="anon")
    tier: Mapped[int] = mapped_column(sa.SmallInteger, server_default="0", index=True)

class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    total: Mapped[float] = mapped_column(sa.Numeric(10, 2))
    status: Mapped[Status] = mapped_column(sa.Enum(Status, name="invoice_status"))
    issued_at: Mapped[sa.DateTime] = mapped_column(sa.DateTime(timezone=True))

class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        sa.CheckConstraint("weight > 0", name="events_weight_positive"),
        sa.UniqueConstraint("invoice_id", "kind", name="events_invoice_kind"),
        sa.Index("ix_events_kind_pattern", "kind", postgresql_ops={"kind": "varchar_pattern_ops"}),
    )
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(always=False), primary_key=True)
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    payload = mapped_column(postgresql.JSONB, nullable=True)
    at: Mapped[sa.DateTime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.text("now()"))
    weight: Mapped[int] = mapped_column(server_default="1")
