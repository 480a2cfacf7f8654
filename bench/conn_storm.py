"""Many client connections against one proxy: opens TOTAL connections (trust login),
keeps them all open, then runs `SELECT 1` in a loop on ACTIVE of them for SECS seconds.
Prints one line of figures; the proxy's memory is read from /proc/PID/status.

usage: python3 conn_storm.py PORT PID TOTAL ACTIVE SECS
"""

import asyncio
import statistics
import struct
import sys
import time

PORT, PID, TOTAL, ACTIVE, SECS = (int(a) for a in sys.argv[1:6])
STARTUP = b"user\0app\0database\0app\0\0"
QUERY = b"Q" + struct.pack("!i", 4 + 9) + b"SELECT 1\0"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def until_ready(r):
    while True:
        head = await r.readexactly(5)
        n = struct.unpack("!i", head[1:])[0]
        body = await r.readexactly(n - 4)
        tag = head[:1]
        if tag == b"E":
            raise RuntimeError(body.decode(errors="replace"))
        if tag == b"R" and struct.unpack("!i", body[:4])[0] != 0:
            raise RuntimeError("the proxy asks for a password; the benchmark uses trust")
        if tag == b"Z":
            return


async def login(sem, failed):
    async with sem:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", PORT), 10)
            w.write(struct.pack("!ii", 8 + len(STARTUP), 196608) + STARTUP)
            await w.drain()
            await asyncio.wait_for(until_ready(r), 10)
            return r, w
        except Exception as e:  # counted; the run goes on with the connections it has
            failed.append(repr(e))
            return None


async def active(conn, stop, lats, errors):
    r, w = conn
    while not stop.is_set():
        t = time.perf_counter()
        try:
            w.write(QUERY)
            await w.drain()
            await asyncio.wait_for(until_ready(r), 10)
        except Exception:  # counted, not fatal
            errors.append(1)
            return
        lats.append(time.perf_counter() - t)


async def main():
    base = rss_kb(PID)
    sem = asyncio.Semaphore(128)
    t0 = time.perf_counter()
    failed = []
    conns = await asyncio.gather(*[login(sem, failed) for _ in range(TOTAL)])
    conns = [c for c in conns if c is not None]
    setup = time.perf_counter() - t0
    if not conns:
        print(f"no connection succeeded: {failed[:3]}")
        return
    await asyncio.sleep(1)
    idle_rss = rss_kb(PID)
    stop, lats, errors = asyncio.Event(), [], []
    tasks = [asyncio.create_task(active(c, stop, lats, errors)) for c in conns[:ACTIVE]]
    await asyncio.sleep(SECS)
    stop.set()
    await asyncio.gather(*tasks)
    busy_rss = rss_kb(PID)
    lats.sort()
    p = lambda q: lats[min(len(lats) - 1, int(q * len(lats)))] * 1000
    print(
        f"connected={len(conns)} failed={len(failed)} "
        f"setup_per_s={len(conns) / setup:.0f} kb_per_conn={(idle_rss - base) / len(conns):.1f} "
        f"rss_idle_mb={idle_rss / 1024:.1f} rss_busy_mb={busy_rss / 1024:.1f} "
        f"qps={len(lats) / SECS:.0f} p50_ms={p(0.5):.2f} p99_ms={p(0.99):.2f} "
        f"errors={len(errors)} median_ms={statistics.median(lats) * 1000:.2f}"
    )
    for _, w in conns:
        w.close()


asyncio.run(main())
