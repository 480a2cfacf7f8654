"""Generates a SQLite database shaped like an application's: users, orders, events.
Usage: python3 gen_sqlite.py PATH ROWS   (ROWS is the total, split 1:3:2)."""
import random
import sqlite3
import sys

path, total = sys.argv[1], int(sys.argv[2])
users, orders = total // 6, total // 2
events = total - users - orders
random.seed(7)
c = sqlite3.connect(path)
c.executescript("""
PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, email VARCHAR(120) NOT NULL UNIQUE, name TEXT,
  is_active BOOLEAN NOT NULL DEFAULT 1, created_at DATETIME NOT NULL, score REAL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), total DECIMAL(10,2) NOT NULL,
  status VARCHAR(20) NOT NULL, placed_at DATETIME NOT NULL, note TEXT);
CREATE INDEX ix_orders_user ON orders (user_id);
CREATE TABLE events (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), kind TEXT NOT NULL,
  payload JSON, at INTEGER NOT NULL, flag BOOLEAN);
""")
c.executemany("INSERT INTO users (email, name, is_active, created_at, score) VALUES (?, ?, ?, ?, ?)",
              ((f"user{i}@example.com", f"User {i}", i % 7 != 0, f"2023-{1 + i % 12:02}-{1 + i % 28:02} 12:{i % 60:02}:{i % 60:02}.{i % 1000000:06}",
                random.random() * 100) for i in range(users)))
c.executemany("INSERT INTO orders (user_id, total, status, placed_at, note) VALUES (?, ?, ?, ?, ?)",
              ((1 + i % users, f"{random.randint(1, 99999) / 100:.2f}", random.choice(["new", "paid", "shipped", "returned"]),
                f"2024-{1 + i % 12:02}-{1 + i % 28:02} 08:30:00", None if i % 3 else f"note {i}") for i in range(orders)))
c.executemany("INSERT INTO events (user_id, kind, payload, at, flag) VALUES (?, ?, ?, ?, ?)",
              ((1 + i % users, random.choice(["view", "click", "buy"]), f'{{"n": {i}, "tags": ["a", "b"]}}',
                1700000000 + i, i % 2) for i in range(events)))
c.commit()
print(f"{path}: {users} users, {orders} orders, {events} events")
