import enum
import sqlalchemy as sa
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

class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    total: Mapped[float] = mapped_column(sa.Numeric(10, 2))
    status: Mapped[Status] = mapped_column(sa.Enum(Status, name="invoice_status"))
    issued: Mapped[sa.DateTime] = mapped_column(sa.DateTime(timezone=True))
