"""The schema-first move with SQLAlchemy 2: the app's models on SQLite (where it ran), the
same models' create_all() on PostgreSQL (the schema the app's own tooling makes there),
and the app reading and writing the rows switchyard copied between them.
Usage: python3 schema_first.py seed sqlite:///PATH
       python3 schema_first.py create postgresql://USER:PW@HOST:PORT/DB
       python3 schema_first.py alembic postgresql://USER:PW@HOST:PORT/DB
       python3 schema_first.py check postgresql://USER:PW@HOST:PORT/DB
Prints "OK <checks>" and exits 0, or raises."""

import datetime
import decimal
import sys

from sqlalchemy import (JSON, Boolean, DateTime, ForeignKey, Numeric, String, create_engine,
                        select)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise AssertionError(what)
    checks += 1


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(120), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    signed_up: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    prefs: Mapped[dict] = mapped_column(JSON, default=dict)
    invoices: Mapped[list["Invoice"]] = relationship(back_populates="customer")


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    total: Mapped[decimal.Decimal] = mapped_column(Numeric(10, 2))
    issued: Mapped[datetime.datetime] = mapped_column(DateTime)
    customer: Mapped[Customer] = relationship(back_populates="invoices")


UTC = datetime.timezone.utc


def url(u):
    if u.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + u.split("://", 1)[1]
    return u


def seed(engine):
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        for i in range(1, 51):
            c = Customer(email=f"c{i}@example.com", active=i % 3 != 0,
                         signed_up=datetime.datetime(2024, 1, i % 28 + 1, 9, 30, tzinfo=UTC),
                         prefs={"n": i, "tags": ["a", "b"]})
            c.invoices = [Invoice(total=decimal.Decimal(f"{i}.{i % 100:02d}"),
                                  issued=datetime.datetime(2024, 2, 1, 12, 0, i))
                          for _ in range(2)]
            s.add(c)
        s.commit()


def verify(engine):
    with Session(engine) as s:
        c = s.scalars(select(Customer).where(Customer.email == "c10@example.com")).one()
        check(c.signed_up == datetime.datetime(2024, 1, 11, 9, 30, tzinfo=UTC), c.signed_up)
        check(c.signed_up.tzinfo is not None, "aware datetime")
        check(c.active is True and c.prefs == {"n": 10, "tags": ["a", "b"]}, (c.active, c.prefs))
        totals = sorted(i.total for i in c.invoices)
        check(totals == [decimal.Decimal("10.10")] * 2, totals)
        check(str(totals[0]) == "10.10", "numeric keeps its scale")
        check(s.scalars(select(Customer).where(Customer.id == 3)).one().active is False, "boolean")
        # The app's next rows get fresh ids from the target's sequences.
        n = Customer(email="new@example.com", signed_up=datetime.datetime.now(UTC))
        n.invoices = [Invoice(total=decimal.Decimal("1.00"), issued=datetime.datetime(2024, 3, 1))]
        s.add(n)
        s.commit()
        check(n.id == 51, f"new customer id {n.id}")
        check(n.invoices[0].id == 101, f"new invoice id {n.invoices[0].id}")


def main():
    mode, target = sys.argv[1], url(sys.argv[2])
    engine = create_engine(target)
    if mode == "seed":
        seed(engine)
    elif mode == "create":
        Base.metadata.create_all(engine)
    elif mode == "alembic":
        import os

        from alembic import command
        from alembic.config import Config

        cfg = Config()
        here = os.path.dirname(os.path.abspath(__file__))
        cfg.set_main_option("script_location", os.path.join(here, "alembic"))
        cfg.set_main_option("sqlalchemy.url", target.replace("%", "%%"))
        command.upgrade(cfg, "head")
    else:
        verify(engine)
    print(f"OK {checks}")


main()
