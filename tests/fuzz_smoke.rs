//! Bounded random-input runs over the decoders that face untrusted input: the frontend
//! message framer, the startup packet decoder, the extended-protocol message parsers, the
//! PostgreSQL → SQLite translator and the config parser. Inputs are random bytes and
//! mutations of valid inputs from a fixed seed (reproducible); any panic fails the test and
//! prints the input. This is the stable-toolchain companion of the cargo-fuzz targets in
//! `fuzz/` (coverage-guided, nightly); `FUZZ_ITERS` scales it up.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use switchyard::testing::Config;
use switchyard::testing::protocol::{framing, parse, startup};
use switchyard::testing::sql::sqlscan;
use switchyard::testing::sql::translate;

/// xorshift64*: small, deterministic, good enough to spread mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Flips, inserts, deletes or duplicates a few bytes of `seed`.
    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(v.len() + 1);
            match self.below(5) {
                0 if at < v.len() => v[at] = self.next() as u8,
                1 => v.insert(at, self.next() as u8),
                2 if at < v.len() => {
                    v.remove(at);
                }
                3 => {
                    let end = (at + self.below(16)).min(v.len());
                    let chunk = v[at..end].to_vec();
                    v.splice(at..at, chunk);
                }
                _ => v.truncate(at),
            }
        }
        v
    }
}

fn iters(base: usize) -> usize {
    std::env::var("FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(base, |f| base * f)
}

fn no_panic(what: &str, input: &[u8], f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        panic!("{what} panicked on input {input:02x?}");
    }
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn protocol_decoders_survive_random_and_mutated_input() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut bind = b"p1\0s1\0\0\x01\0\0\0\x02\0\0\0\x01\x07\0\x01\0\0".to_vec();
    bind.extend_from_slice(&[0, 0, 0, 4, b'1', b'2', b'3', b'4', 0, 0]);
    let seeds: Vec<Vec<u8>> = vec![
        frame(b'Q', b"SELECT 1\0"),
        frame(b'P', b"s1\0SELECT $1::int\0\0\x01\0\0\0\x17"),
        frame(b'B', &bind),
        frame(b'D', b"Ss1\0"),
        frame(b'E', b"p1\0\0\0\0\0"),
        b"\0\0\0\x08\x04\xd2\x16\x2f".to_vec(),
        [&[0u8, 3, 0, 0][..], b"user\0app\0database\0app\0\0"].concat(),
        vec![b'X', 0x7f, 0xff, 0xff, 0xff],
        vec![b'Q', 0xff, 0xff, 0xff, 0xf0],
    ];
    for i in 0..iters(20_000) {
        let input = if i % 3 == 0 {
            rng.bytes(64)
        } else {
            let s = &seeds[rng.below(seeds.len())];
            rng.mutate(s)
        };
        no_panic("framing::complete", &input, || {
            if let Ok(Some(h)) = framing::complete(&input, 1 << 20) {
                assert!(h.total <= input.len(), "a frame longer than the buffer");
            }
        });
        let body = input.get(5..).unwrap_or(&[]);
        no_panic("startup::decode", &input, || {
            let _ = startup::decode(input.get(4..).unwrap_or(&[]));
        });
        no_panic("parse::*", &input, || {
            let _ = parse::parse_msg(body);
            let _ = parse::bind_msg(body);
            let _ = parse::target_msg(body, "Describe");
            let _ = parse::query_text(body);
            let _ = parse::parameter_status(body);
            let _ = parse::error_fields(body);
            let _ = parse::cstr(body, "name");
        });
    }
}

#[test]
fn sql_translator_survives_mutated_statements() {
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    let seeds = [
        "SELECT id, name FROM users WHERE id = $1 AND name ILIKE $2 ORDER BY id LIMIT 10 OFFSET 5",
        "INSERT INTO tasks (title, done) VALUES ($1, false) ON CONFLICT (id) DO UPDATE SET done = EXCLUDED.done RETURNING id",
        "UPDATE t SET v = v::text || 'x', at = now() WHERE id = ANY(ARRAY[1,2,3]) AND a IS DISTINCT FROM b",
        "CREATE TABLE IF NOT EXISTS \"Order\" (id BIGSERIAL PRIMARY KEY, data JSONB, at TIMESTAMPTZ DEFAULT now())",
        "SELECT DISTINCT ON (a) a, string_agg(b, ',') FROM t GROUP BY a FOR UPDATE",
        "SELECT data->>'k', data->'j' FROM docs WHERE id = gen_random_uuid()",
        "BEGIN; SAVEPOINT s1; ROLLBACK TO SAVEPOINT s1; RELEASE s1; COMMIT",
        "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace",
    ];
    let words = [
        "(",
        ")",
        "((",
        "'",
        "\"",
        "$1",
        "::",
        ";",
        "--",
        "/*",
        "ARRAY[",
        "CASE",
        "WITH",
        "SELECT",
        ",",
        "NULL",
        "\\",
        "E'",
        "$$",
        "\u{1F600}",
        "\0",
    ];
    for _ in 0..iters(3_000) {
        let mut s = seeds[rng.below(seeds.len())].to_string();
        for _ in 0..1 + rng.below(3) {
            let mut at = rng.below(s.len() + 1);
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            match rng.below(3) {
                0 => s.insert_str(at, words[rng.below(words.len())]),
                1 => s.truncate(at),
                _ => {
                    let w = words[rng.below(words.len())].repeat(1 + rng.below(40));
                    s.insert_str(at, &w);
                }
            }
        }
        no_panic("translate", s.as_bytes(), || {
            let _ = translate(&s);
        });
        no_panic("classify", s.as_bytes(), || {
            let _ = sqlscan::classify(s.as_bytes());
        });
    }
    // Inputs the fuzz target found: a lone or unterminated quoted name after a statement
    // head the classifier reads names from.
    for input in [&b"/\""[..], b"listen \"", b"execute \"x", b"prepare \""] {
        no_panic("classify", input, || {
            let _ = sqlscan::classify(input);
        });
    }
}

#[test]
fn config_parser_survives_mutated_files() {
    let mut rng = Rng(0x5eed_1234_abcd_0003);
    let seed = include_str!("../config/switchyard.toml");
    let env: HashMap<String, String> = [
        "APP_DB_PASSWORD",
        "LOCAL_DB_PASSWORD",
        "SUPABASE_REF",
        "SUPABASE_PASSWORD",
        "SUPABASE_REGION",
    ]
    .iter()
    .map(|k| (k.to_string(), "x".to_string()))
    .collect();
    for _ in 0..iters(2_000) {
        let bytes = rng.mutate(seed.as_bytes());
        let text = String::from_utf8_lossy(&bytes);
        no_panic("Config::from_toml", &bytes, || {
            let _ = Config::from_toml(&text, &env);
        });
    }
}
