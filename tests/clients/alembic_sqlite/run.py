"""Alembic revisions (an enum type, a widened varchar, a column added with a server
default) upgraded, downgraded to nothing and upgraded again, then the models used.

    python3 run.py postgresql+psycopg://USER:PW@HOST:PORT/DB [check]

With `check`, `alembic check` must also find the database matching the models.
Prints "OK <steps>" and exits 0, or raises."""
import datetime
import decimal
import os
import sys

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import Customer, Invoice, Status  # noqa: E402

url = sys.argv[1]
cfg = Config()
cfg.set_main_option("script_location", os.path.dirname(os.path.abspath(__file__)))
cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
command.upgrade(cfg, "head")
command.downgrade(cfg, "base")
command.upgrade(cfg, "head")
if "check" in sys.argv[2:]:
    command.check(cfg)

engine = create_engine(url)
with Session(engine) as s:
    c = Customer(email="a" * 150 + "@x.io")
    s.add(c)
    s.flush()
    s.add(Invoice(customer_id=c.id, total=decimal.Decimal("10.50"), status=Status.paid,
                  issued=datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)))
    s.commit()
    inv = s.scalars(select(Invoice)).one()
    assert inv.status is Status.paid, inv.status
    assert inv.total == decimal.Decimal("10.50"), inv.total
    assert s.scalars(select(Customer.name)).one() == "anon"
print("OK")
