"""SQLAlchemy 2 ORM through switchyard, as an app would use it: create_all, CRUD through
relationships, a join, with_for_update, a nested transaction (SAVEPOINT) rolled back,
reflection. Runs with psycopg 3, with psycopg2, and with asyncpg through SQLAlchemy's
asyncio extension (as FastAPI apps use it).
Usage: python3 orm.py postgresql://app:secret@127.0.0.1:PORT/app
Prints "OK <checks>" and exits 0, or raises."""

import asyncio
import datetime
import decimal
import sys

from sqlalchemy import (JSON, Boolean, Date, DateTime, ForeignKey, Numeric, String, create_engine,
                        func, inspect, select)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

BASE_URL = sys.argv[1].split("://", 1)[1]
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise AssertionError(what)
    checks += 1


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "orm_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(120), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    tasks: Mapped[list["Task"]] = relationship(back_populates="user", cascade="all, delete-orphan")


class Task(Base):
    __tablename__ = "orm_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("orm_users.id"))
    title: Mapped[str] = mapped_column(String(200))
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    due: Mapped[datetime.date | None] = mapped_column(Date)
    score: Mapped[decimal.Decimal | None] = mapped_column(Numeric(8, 2))
    user: Mapped[User] = relationship(back_populates="tasks")


def run(dialect):
    engine = create_engine(f"postgresql+{dialect}://{BASE_URL}")
    scenario(engine)
    engine.dispose()


async def run_asyncpg():
    from sqlalchemy.ext.asyncio import create_async_engine
    engine = create_async_engine(f"postgresql+asyncpg://{BASE_URL.replace('sslmode=', 'ssl=')}")
    async with engine.connect() as conn:
        await conn.run_sync(lambda c: scenario(c.engine))
    await engine.dispose()


def scenario(engine):
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    check(set(inspect(engine).get_table_names()) >= {"orm_users", "orm_tasks"}, "reflection sees the tables")
    with Session(engine) as s:
        for i in range(5):
            u = User(email=f"u{i}@example.com", settings={"theme": "dark", "n": i})
            u.tasks = [Task(title=f"t{i}.{j}", due=datetime.date(2026, 1, 1 + j), score=decimal.Decimal(f"{j}.25"))
                       for j in range(3)]
            s.add(u)
        s.commit()
        check(s.scalar(select(func.count()).select_from(Task)) == 15, "15 tasks")
        u = s.scalars(select(User).where(User.email == "u2@example.com")).one()
        check(u.active is True and u.settings == {"theme": "dark", "n": 2}, f"user row: {u.active} {u.settings}")
        check(isinstance(u.created_at, datetime.datetime), f"created_at: {u.created_at!r}")
        check(sorted(t.title for t in u.tasks) == ["t2.0", "t2.1", "t2.2"], "relationship loads")
        check(u.tasks[0].score in (decimal.Decimal("0.25"), decimal.Decimal("1.25"), decimal.Decimal("2.25")), "numeric")
        rows = s.execute(select(User.email, func.count(Task.id)).join(Task).group_by(User.email)
                         .order_by(User.email)).all()
        check(rows == [(f"u{i}@example.com", 3) for i in range(5)], f"join + group by: {rows}")
        # Row lock, then update inside the same transaction.
        t = s.scalars(select(Task).where(Task.title == "t1.1").with_for_update()).one()
        t.done = True
        s.commit()
        check(s.scalar(select(Task.done).where(Task.title == "t1.1")) is True, "update after FOR UPDATE")
        # A nested transaction rolled back keeps the outer one.
        s.add(User(email="kept@example.com"))
        s.flush()
        nested = s.begin_nested()
        s.add(User(email="dropped@example.com"))
        s.flush()
        nested.rollback()
        s.commit()
        emails = set(s.scalars(select(User.email)))
        check("kept@example.com" in emails and "dropped@example.com" not in emails, "savepoint rollback")
        # Delete with cascade.
        s.delete(s.scalars(select(User).where(User.email == "u0@example.com")).one())
        s.commit()
        check(s.scalar(select(func.count()).select_from(Task)) == 12, "cascade delete")
    Base.metadata.drop_all(engine)


for d in ("psycopg", "psycopg2"):
    run(d)
asyncio.run(run_asyncpg())
print(f"OK {checks}")
