// node-postgres (`pg`) through switchyard: simple and extended queries, named prepared
// statements, RETURNING, type round trips (boolean, date, timestamp, jsonb, bytea), a
// rolled-back transaction, a savepoint after an error, a multi-statement query, and a pool
// of concurrent clients.
// Usage: node node_pg.js postgresql://app:secret@127.0.0.1:PORT/app
// Prints "OK <checks>" and exits 0, or prints the failure and exits 1.
'use strict';
const { Client, Pool } = require('pg');

const DSN = process.argv[2];
let checks = 0;

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  checks++;
}

async function schema(c) {
  await c.query('DROP TABLE IF EXISTS node_tasks');
  await c.query('DROP TABLE IF EXISTS node_users');
  await c.query(`CREATE TABLE node_users (
    id SERIAL PRIMARY KEY, email VARCHAR(120) NOT NULL UNIQUE,
    active BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, settings JSONB)`);
  await c.query(`CREATE TABLE node_tasks (
    id BIGSERIAL PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES node_users(id),
    title TEXT NOT NULL, done BOOLEAN NOT NULL DEFAULT false, due DATE, data BYTEA)`);
}

async function crud(c) {
  const ins = await c.query(
    'INSERT INTO node_users (email, settings) VALUES ($1, $2) RETURNING id, active',
    ['a@example.com', { theme: 'dark' }]);
  check(ins.rowCount === 1 && ins.rows[0].active === true, 'insert returning');
  const uid = ins.rows[0].id;
  for (let i = 0; i < 6; i++) {
    const r = await c.query({
      name: 'add_task',
      text: 'INSERT INTO node_tasks (user_id, title, due, data) VALUES ($1, $2, $3, $4) RETURNING id',
      values: [uid, `task ${i}`, `2025-01-0${i + 1}`, Buffer.from([i, 255])],
    });
    check(r.rows.length === 1, 'prepared insert ' + i);
  }
  const t = await c.query({
    name: 'tasks_of',
    text: 'SELECT title, done, due, data FROM node_tasks WHERE user_id = $1 ORDER BY id',
    values: [uid],
  });
  check(t.rowCount === 6 && t.rows[5].title === 'task 5' && t.rows[0].done === false, 'prepared select');
  check(Buffer.isBuffer(t.rows[1].data) && t.rows[1].data[0] === 1 && t.rows[1].data[1] === 255, 'bytea');
  check(t.rows[0].due instanceof Date && t.rows[0].due.getDate() === 1, 'date');
  const u = await c.query('SELECT email, settings, created_at FROM node_users WHERE id = $1', [uid]);
  check(u.rows[0].settings.theme === 'dark', 'jsonb');
  check(u.rows[0].created_at instanceof Date && !isNaN(u.rows[0].created_at), 'timestamp');
  return uid;
}

async function transactions(c, uid) {
  await c.query('BEGIN');
  await c.query('UPDATE node_tasks SET done = true WHERE user_id = $1', [uid]);
  await c.query('ROLLBACK');
  const open = await c.query('SELECT count(*) AS n FROM node_tasks WHERE done = false');
  check(Number(open.rows[0].n) === 6, 'rollback');
  await c.query('BEGIN');
  await c.query('SAVEPOINT s1');
  let code = null;
  try {
    await c.query('INSERT INTO node_users (email) VALUES ($1)', ['a@example.com']);
  } catch (e) {
    code = e.code;
  }
  check(code === '23505', 'unique violation, got ' + code);
  await c.query('ROLLBACK TO SAVEPOINT s1');
  await c.query('UPDATE node_tasks SET done = true WHERE title = $1', ['task 0']);
  await c.query('COMMIT');
  const done = await c.query('SELECT title FROM node_tasks WHERE done = true');
  check(done.rowCount === 1 && done.rows[0].title === 'task 0', 'savepoint kept the update');
  const multi = await c.query('SELECT 1 AS a; SELECT 2 AS b');
  check(Array.isArray(multi) && multi[1].rows[0].b === 2, 'multi-statement query');
}

async function pooled() {
  const pool = new Pool({ connectionString: DSN, max: 8 });
  await Promise.all(Array.from({ length: 16 }, async (_, i) => {
    const r = await pool.query(
      'INSERT INTO node_users (email, active) VALUES ($1, $2) RETURNING id',
      [`p${i}@example.com`, i % 2 === 0]);
    check(r.rows.length === 1, 'pool insert ' + i);
  }));
  const n = await pool.query({ name: 'count_active', text: 'SELECT count(*) AS n FROM node_users WHERE active = $1', values: [false] });
  check(Number(n.rows[0].n) === 8, 'pool count');
  await pool.end();
}

async function main() {
  const c = new Client({ connectionString: DSN });
  await c.connect();
  await schema(c);
  const uid = await crud(c);
  await transactions(c, uid);
  await c.end();
  await pooled();
  console.log('OK ' + checks);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
