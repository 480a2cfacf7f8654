//! Config files: TOML parsing, `${VAR}` expansion and validation.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use switchyard::testing::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let env: HashMap<String, String> = [("APP_DB_PASSWORD".to_string(), "x".to_string())]
            .into_iter()
            .collect();
        let _ = Config::from_toml(text, &env);
    }
});
