//! SQL text from clients: the relay's statement scanner (every simple query and Parse
//! passes through it) and the PostgreSQL → SQLite translator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::testing::sql::translate;
use switchyard::testing::sql::sqlscan;

fuzz_target!(|data: &[u8]| {
    let _ = sqlscan::classify(data);
    if let Ok(sql) = std::str::from_utf8(data) {
        let _ = translate(sql);
    }
});
