//! The loader on a text (`Settings::from_toml_str`): the same refusals and key names as a
//! file, since both go through one layering path.

use super::*;

#[test]
fn a_password_in_a_url_is_refused_from_text_as_from_a_file() {
    let text = "[database]\nurl = \"postgres://app:hunter2@db/x\"\n";
    let error = Settings::from_toml_str(text, Scope::DatabaseOnly).unwrap_err();
    assert!(
        matches!(error, ConfigError::CredentialInUrl { .. }),
        "{error}"
    );
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[test]
fn an_error_in_a_target_names_the_target_from_text_too() {
    let text = "[[forward.targets]]\nname = \"jobs\"\nkind = \"nats\"\n\
                url = \"nats://h:4222\"\nsubject = \"a\"\nsubjekt = \"b\"\n";
    let error = Settings::from_toml_str(text, Scope::DatabaseOnly).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("forward.targets[0] (`jobs`): `subjekt`"),
        "{error}"
    );
}

#[test]
fn text_that_is_not_toml_is_an_error_naming_the_place() {
    let error = Settings::from_toml_str("[server\nlisten = 1", Scope::Everything).unwrap_err();
    assert!(matches!(error, ConfigError::Problems(_)), "{error}");
}

#[test]
fn an_empty_text_is_the_defaults() {
    let settings = Settings::from_toml_str("", Scope::DatabaseOnly).unwrap();
    assert_eq!(settings.server.path, "/webhook");
}
