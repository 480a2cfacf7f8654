"""Real Python drivers through switchyard: psycopg 3 (server-side prepared statements after
five executions), asyncpg (always prepares named statements) and psycopg2 (simple protocol).
Usage: python3 drivers.py postgresql://app:secret@127.0.0.1:PORT/app [WORKERS]
Several workers run at once on their own connections, so that through a transaction pooler
their statements land on shared server connections.
Prints "OK <checks>" and exits 0, or raises."""

import asyncio
import sys
import threading

import asyncpg
import psycopg
import psycopg2

DSN = sys.argv[1]
WORKERS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
checks = 0
lock = threading.Lock()
failures = []


def check(cond, what):
    global checks
    if not cond:
        raise AssertionError(what)
    with lock:
        checks += 1


def run_psycopg3(w):
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS drv_items_{w}")
        conn.execute(f"CREATE TABLE drv_items_{w} (id int PRIMARY KEY, name text)")
        for i in range(20):  # prepared server-side from the 6th execution on
            row = conn.execute("SELECT %s::int + 1, %s::text", (i, f"n{i}")).fetchone()
            check(row == (i + 1, f"n{i}"), f"psycopg3 select {i}: {row}")
        with conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO drv_items_{w} (id, name) VALUES (%s, %s)", [(i, f"item{i}") for i in range(50)])
        for i in range(10):
            row = conn.execute(f"SELECT name FROM drv_items_{w} WHERE id = %s", (i,)).fetchone()
            check(row == (f"item{i}",), f"psycopg3 item {i}")
        with conn.transaction():
            conn.execute(f"UPDATE drv_items_{w} SET name = 'x' WHERE id = %s", (1,))
            try:
                with conn.transaction():  # a savepoint
                    conn.execute(f"INSERT INTO drv_items_{w} (id, name) VALUES (%s, %s)", (1, "dup"))
            except psycopg.errors.UniqueViolation:
                check(True, "unique violation inside savepoint")
        check(conn.execute(f"SELECT name FROM drv_items_{w} WHERE id = 1").fetchone() == ("x",), "savepoint rollback kept update")
        conn.execute("DEALLOCATE ALL")
        check(conn.execute(f"SELECT count(*) FROM drv_items_{w} WHERE id < %s", (100,)).fetchone() == (50,), "after DEALLOCATE ALL")


async def run_asyncpg(w):
    conn = await asyncpg.connect(DSN)
    try:
        for i in range(20):
            v = await conn.fetchval("SELECT $1::int * 2", i)
            check(v == i * 2, f"asyncpg fetchval {i}")
        stmt = await conn.prepare(f"SELECT name FROM drv_items_{w} WHERE id = $1")
        for i in range(10, 20):
            check(await stmt.fetchval(i) == f"item{i}", f"asyncpg prepared {i}")
        async with conn.transaction():
            await conn.executemany(f"UPDATE drv_items_{w} SET name = $2 WHERE id = $1", [(i, f"a{i}") for i in range(20, 30)])
        rows = await conn.fetch(f"SELECT id, name FROM drv_items_{w} WHERE id >= $1 AND id < $2 ORDER BY id", 20, 30)
        check([r["name"] for r in rows] == [f"a{i}" for i in range(20, 30)], "asyncpg executemany")
    finally:
        await conn.close()


def run_psycopg2(w):
    conn = psycopg2.connect(DSN)
    cur = conn.cursor()
    cur.execute(f"SELECT count(*) FROM drv_items_{w} WHERE name LIKE %s", ("a%",))
    check(cur.fetchone() == (10,), "psycopg2 count")
    conn.rollback()
    conn.close()


def worker(w):
    try:
        run_psycopg3(w)
        asyncio.run(run_asyncpg(w))
        run_psycopg2(w)
    except Exception as e:  # reported after all workers finish
        failures.append(f"worker {w}: {type(e).__name__}: {e}")


threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"OK {checks}")
