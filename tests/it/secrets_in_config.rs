//! Secrets never sit in the configuration file and are never printed: a password in a URL's
//! query string, a NATS token or a secret in `[secrets]` is refused naming the key (never
//! the value); `check-config` shows URLs as written, `${NAME}` placeholders unexpanded, while
//! `serve` connects with the expanded value; `[secrets] previous_valid_until` is accepted.

use audian_receiver::signing::sign;

use crate::cli::check_config;
use crate::fixtures::{Binary, SECRET, Served, TestDb, assert_answer, event};

const OK: &str = r#"{"status":"ok"}"#;

const SELF_SIGNED: &str = "[tls]\nmode = \"self-signed\"\n";

fn nats_target(url: &str) -> String {
    format!(
        "[[forward.targets]]\nname = \"jobs\"\nkind = \"nats\"\nurl = {url:?}\nsubject = \"audian.{{type}}\"\n"
    )
}

/// Refused with exit 2 and a message naming `key` and the kind of credential, never `value`.
async fn assert_refused(text: &str, key_and_place: &str, value: &str) {
    let run = check_config(text, &[("AUDIAN_WEBHOOK_SECRET", SECRET)]).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains(key_and_place), "{run}");
    assert!(run.stderr.contains("${NAME}"), "{run}");
    assert!(
        !run.stderr.contains(value) && !run.stdout.contains(value),
        "{run}"
    );
}

#[tokio::test]
async fn a_password_in_a_url_query_string_is_refused_in_the_file() {
    let text = format!(
        "{SELF_SIGNED}[database]\nurl = \"postgres://app@127.0.0.1:5432/x?sslmode=disable&PassWord=qs-pw-1\"\n"
    );
    let place = "database.url holds a secret in its query string (`PassWord=`)";
    assert_refused(&text, place, "qs-pw-1").await;
    let text = format!(
        "{SELF_SIGNED}{}",
        nats_target("nats://127.0.0.1:4222/?access_token=qs-tok-2")
    );
    let place = "forward.targets[0].url holds a secret in its query string (`access_token=`)";
    assert_refused(&text, place, "qs-tok-2").await;
}

#[tokio::test]
async fn a_nats_token_url_is_refused_in_the_file() {
    let text = format!(
        "{SELF_SIGNED}{}",
        nats_target("nats://nats-tok-3@127.0.0.1:4222")
    );
    let place = "forward.targets[0].url holds a NATS token in its user part";
    assert_refused(&text, place, "nats-tok-3").await;
}

#[tokio::test]
async fn check_config_prints_placeholders_unexpanded_and_no_credential() {
    let text = format!(
        "{SELF_SIGNED}[database]\nurl = \"postgres://app:${{DB_PASSWORD}}@127.0.0.1:5432/x?sslpassword=${{KEY_PW}}\"\n{}",
        nats_target("nats://${NATS_TOKEN}@127.0.0.1:4222")
    );
    let env = [
        ("AUDIAN_WEBHOOK_SECRET", SECRET),
        ("DB_PASSWORD", "db-pw-4"),
        ("KEY_PW", "key-pw-5"),
        ("NATS_TOKEN", "nats-tok-6"),
    ];
    let run = check_config(&text, &env).await;
    assert_eq!(run.code, Some(0), "{run}");
    let stdout = &run.stdout;
    assert!(
        stdout.contains(
            "url = \"postgres://app:${DB_PASSWORD}@127.0.0.1:5432/x?sslpassword=${KEY_PW}\""
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("url = \"nats://${NATS_TOKEN}@127.0.0.1:4222\""),
        "{stdout}"
    );
    for value in ["db-pw-4", "key-pw-5", "nats-tok-6"] {
        assert!(!stdout.contains(value), "{value} printed: {stdout}");
    }
}

#[tokio::test]
async fn check_config_redacts_a_query_password_from_the_environment() {
    let env = [
        ("AUDIAN_WEBHOOK_SECRET", SECRET),
        (
            "DATABASE_URL",
            "postgres://app@127.0.0.1:5432/x?password=env-pw-7",
        ),
    ];
    let run = check_config(SELF_SIGNED, &env).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout
            .contains("url = \"postgres://app@127.0.0.1:5432/x?password=[redacted]\""),
        "{run}"
    );
    assert!(!run.stdout.contains("env-pw-7"), "{run}");
}

#[tokio::test]
async fn serve_connects_with_the_expanded_placeholder_while_printing_the_template() {
    // The file names the database through a placeholder; serving with it stores there.
    let db = TestDb::create().await;
    let binary = Binary::new()
        .env("AUDIAN_WEBHOOK_SECRET", SECRET)
        .env("DB_NAME", &db.name);
    let template = "postgres://postgres@127.0.0.1:5432/${DB_NAME}";
    let served = Served::start_with_database_url(binary, template, db).await;
    let body = event("evt_expanded");
    let signature = sign(SECRET.as_bytes(), body.as_bytes());
    assert_answer(served.post(&body, &signature, &[]).await, 200, OK).await;
    assert_eq!(served.count_events("evt_expanded").await, 1);
}

#[tokio::test]
async fn a_secret_in_the_secrets_section_is_refused_but_previous_valid_until_is_accepted() {
    for text in ["[secrets]\nwebhook = \"sec-8\"\n", "secrets = \"sec-8\"\n"] {
        let run = check_config(text, &[("AUDIAN_WEBHOOK_SECRET", SECRET)]).await;
        assert_eq!(run.code, Some(2), "{run}");
        assert!(
            run.stderr
                .contains("secrets are never read from the configuration file (secrets"),
            "{run}"
        );
        assert!(!run.stderr.contains("sec-8"), "{run}");
    }
    let text = format!("{SELF_SIGNED}[secrets]\nprevious_valid_until = 2030-01-31T12:00:00Z\n");
    let env = [
        ("AUDIAN_WEBHOOK_SECRET", SECRET),
        ("AUDIAN_WEBHOOK_PREVIOUS_SECRET", "prev-9"),
    ];
    let run = check_config(&text, &env).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout
            .contains("[secrets]\nprevious_valid_until = \"2030-01-31T12:00:00Z\""),
        "{run}"
    );
    assert!(!run.stdout.contains("prev-9"), "{run}");
}
