//! Fuzzes the configuration loader with any text as the TOML file: it must answer with
//! settings or a `ConfigError`, never panic, and settings it accepts must pass their own
//! checks and print (`Debug`, as `check-config` does) without panicking either.

#![no_main]

use audian_receiver::config::{Scope, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for scope in [Scope::Everything, Scope::DatabaseOnly] {
        match Settings::from_toml_str(&text, scope) {
            Ok(settings) => {
                assert!(
                    settings.problems(scope).is_empty(),
                    "accepted with problems"
                );
                let _ = format!("{settings:?}");
            }
            Err(error) => {
                let _ = error.to_string();
            }
        }
    }
});
