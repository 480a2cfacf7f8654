#!/usr/bin/env bash
# The rehearsal "app": creates its table once, then inserts and updates orders forever,
# counting failures. Every statement goes through switchyard.
set -u
until psql -qAtc "SELECT 1" >/dev/null 2>&1; do sleep 1; done
psql -q <<'SQL'
CREATE TABLE IF NOT EXISTS orders (
    id bigserial PRIMARY KEY,
    customer text NOT NULL,
    amount numeric(12,2) NOT NULL,
    status text NOT NULL DEFAULT 'new',
    created_at timestamptz NOT NULL DEFAULT now()
);
SQL
ok=0 failed=0
while true; do
    if psql -qAt -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
BEGIN;
INSERT INTO orders (customer, amount) VALUES ('c' || (random() * 100)::int, round((random() * 500)::numeric, 2));
UPDATE orders SET status = 'paid' WHERE id = (SELECT max(id) - 5 FROM orders);
COMMIT;
SQL
    then ok=$((ok + 1)); else failed=$((failed + 1)); fi
    if [ $(((ok + failed) % 100)) = 0 ]; then echo "app: $ok transactions ok, $failed failed"; fi
    sleep 0.05
done
