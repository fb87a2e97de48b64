//! The loader on a text (`Settings::from_toml_str`): the same refusals and key names as a
//! file, since both go through one layering path.

use super::*;
use crate::forward::targets::TargetKind;

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

/// A Kafka target's keys as TOML, with `extra` lines.
fn kafka_target(extra: &str) -> String {
    format!(
        "[[forward.targets]]\nname = \"events\"\nkind = \"kafka\"\n\
         brokers = [\"kafka:9092\"]\ntopic = \"audian.{{type}}\"\n{extra}"
    )
}

#[test]
fn kafka_a_good_target_loads_with_its_defaults() {
    let settings = Settings::from_toml_str(&kafka_target(""), Scope::DatabaseOnly).unwrap();
    let TargetKind::Kafka(kafka) = &settings.forward.targets[0].kind else {
        panic!("not a Kafka target");
    };
    assert_eq!((kafka.key.as_str(), kafka.acks.as_str()), ("{id}", "all"));
    assert_eq!(kafka.max_batch_bytes, 1_000_000);
}

#[test]
fn kafka_bad_keys_are_problems_naming_the_target_and_the_key() {
    let cases = [
        ("acks = \"1\"", "`acks`"),
        ("key = \"{event}\"", "`key`"),
        ("brokers = [\"kafka\"]", "`brokers`"),
        ("topic = \"a/{type}\"", "`topic`"),
        ("max_batch_bytes = 10", "`max_batch_bytes`"),
        (
            "tls_ca_file = \"/nonexistent/ca.pem\"\ntls = true",
            "`tls_ca_file`",
        ),
        (
            "sasl_mechanism = \"PLAIN\"\nsasl_password_env = \"AUDIAN_TEST_UNSET_PW\"",
            "`sasl_password_env`",
        ),
        ("compression = \"lz5\"", "compression"),
    ];
    for (extra, key) in cases {
        let text = kafka_target(extra).replace(
            "brokers = [\"kafka:9092\"]\n",
            if extra.starts_with("brokers") {
                ""
            } else {
                "brokers = [\"kafka:9092\"]\n"
            },
        );
        let text = if extra.starts_with("topic") {
            text.replace("topic = \"audian.{type}\"\n", "")
        } else {
            text
        };
        let error = Settings::from_toml_str(&text, Scope::DatabaseOnly)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("forward.targets[0] (`events`"),
            "{extra}: {error}"
        );
        assert!(error.contains(key), "{extra}: {error}");
    }
}

#[test]
fn kafka_a_sasl_password_in_the_file_is_refused_without_echoing_it() {
    let text = kafka_target("sasl_mechanism = \"PLAIN\"\nsasl_password = \"hunter2\"");
    let error = Settings::from_toml_str(&text, Scope::DatabaseOnly).unwrap_err();
    assert!(matches!(error, ConfigError::SecretInFile(_)), "{error}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert!(error.to_string().contains("sasl_password_env"), "{error}");
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

#[test]
fn telemetry_export_is_off_by_default() {
    let settings = Settings::from_toml_str("", Scope::DatabaseOnly).unwrap();
    assert!(!settings.telemetry.otlp.enabled);
}

#[test]
fn telemetry_an_unknown_otlp_key_is_refused_naming_it() {
    let text = "[telemetry.otlp]\nenabled = true\nendpiont = \"http://c:4318\"\n";
    let error = Settings::from_toml_str(text, Scope::DatabaseOnly).unwrap_err();
    assert!(error.to_string().contains("endpiont"), "{error}");
}

#[test]
fn telemetry_a_bad_sampler_and_ratio_are_problems_naming_key_and_variable() {
    let text = "[telemetry.otlp]\nsampler = \"sometimes\"\nsampler_arg = 1.5\n";
    let error = Settings::from_toml_str(text, Scope::DatabaseOnly).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("telemetry.otlp.sampler (OTEL_TRACES_SAMPLER)"),
        "{text}"
    );
    assert!(
        text.contains("telemetry.otlp.sampler_arg (OTEL_TRACES_SAMPLER_ARG)"),
        "{text}"
    );
}

#[test]
fn telemetry_the_standard_variables_turn_export_on_and_fill_the_section() {
    let env = |name: &str| {
        let value = match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => "http://collector:4318/",
            "OTEL_SERVICE_NAME" => "billing-receiver",
            "OTEL_TRACES_SAMPLER" => "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG" => "0.1",
            _ => return None,
        };
        Some(value.to_owned())
    };
    let settings = Settings::layered(None, otel_environment(env), Scope::DatabaseOnly).unwrap();
    let otlp = &settings.telemetry.otlp;
    assert!(otlp.enabled);
    assert_eq!(otlp.traces_url(), "http://collector:4318/v1/traces");
    assert_eq!(otlp.service_name, "billing-receiver");
    assert_eq!(otlp.sampler_arg, Some(0.1));
}

#[test]
fn telemetry_otel_sdk_disabled_wins_over_an_endpoint() {
    let env = |name: &str| match name {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318".to_owned()),
        "OTEL_SDK_DISABLED" => Some("true".to_owned()),
        _ => None,
    };
    let settings = Settings::layered(None, otel_environment(env), Scope::DatabaseOnly).unwrap();
    assert!(!settings.telemetry.otlp.enabled);
}

#[test]
fn telemetry_a_sampler_arg_that_is_not_a_number_names_the_key() {
    let env = |name: &str| (name == "OTEL_TRACES_SAMPLER_ARG").then(|| "ten".to_owned());
    let error = Settings::layered(None, otel_environment(env), Scope::DatabaseOnly).unwrap_err();
    assert!(error.to_string().contains("sampler_arg"), "{error}");
}
