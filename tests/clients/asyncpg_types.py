"""asyncpg against one server: arrays, enums, ANY over array parameters, the columns of
functions in FROM, and a statement that fails to prepare. asyncpg asks the server what
each type it does not know is (its type introspection query over pg_type), so this runs
on both PostgreSQL and the SQLite default and prints what it got; the test compares the
two outputs.
Usage: python3 asyncpg_types.py postgresql://app:secret@127.0.0.1:PORT/app"""

import asyncio
import sys

import asyncpg


async def main():
    conn = await asyncpg.connect(sys.argv[1], timeout=20)
    try:
        for sql in [
            "SELECT ARRAY[1, 2]::int[] AS a, ARRAY['x', 'y z'] AS b, '{1.5,2}'::numeric[] AS c",
            "SELECT '{a,b}'::text[] AS t, 2 = ANY('{1,2}'::int[]) AS found",
        ]:
            print(sql, "->", list(await conn.fetchrow(sql)))
        await conn.execute("DROP TABLE IF EXISTS apt; DROP TYPE IF EXISTS mood")
        await conn.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
        await conn.execute(
            "CREATE TABLE apt (id serial PRIMARY KEY, tags text[], nums int[], m mood)"
        )
        await conn.executemany(
            "INSERT INTO apt (tags, nums, m) VALUES ($1, $2, $3)",
            [(["a", "b c"], [1, 2], "ok"), ([], [3], "happy"), (None, None, None)],
        )
        for row in await conn.fetch("SELECT id, tags, nums, m FROM apt ORDER BY id"):
            print("row", list(row))
        print("any", await conn.fetchval("SELECT count(*) FROM apt WHERE $1 = ANY(nums)", 3))
        print("param", await conn.fetchval("SELECT $1::int[]", [4, 5]))
        print("unnest", [r["n"] for r in await conn.fetch("SELECT unnest(nums) AS n FROM apt ORDER BY n")])
        print("from unnest", [r["n"] for r in await conn.fetch("SELECT n FROM apt, unnest(apt.nums) n ORDER BY n")])
        # FROM functions' columns are typed in Describe (asyncpg read '1' and '{"a": 1}').
        print("series", list(await conn.fetchrow("SELECT g, s FROM generate_series(1, 2) g, generate_series(3::bigint, 3) s")))
        print("elements", [list(r) for r in await conn.fetch("SELECT * FROM jsonb_array_elements('[1, {\"a\": 1}]')")])
        print("each", [list(r) for r in await conn.fetch("SELECT key, value FROM jsonb_each_text('{\"k\": 2}')")])
        print("extract", await conn.fetchval("SELECT extract(second FROM timestamp '2024-05-06 07:08:09.5')"))
        print("concat", await conn.fetchval("SELECT tags || ARRAY['z'] FROM apt WHERE id = 1"))
        try:
            await conn.fetch("SELEC 1")
        except asyncpg.PostgresError as e:
            print("error", e.sqlstate)
        print("after", await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


asyncio.run(main())
