//! What the real binary says at start about payload keys: a warning (once) when payloads
//! stay clear, which key seals when set, and a malformed AUDIAN_PAYLOAD_KEYS refused with
//! exit 2, naming the variable and never echoing key material.

use super::{named_key, serve};
use crate::fixtures::{Binary, SECRET, TestDb};

const CLEAR_WARNING: &str =
    "AUDIAN_PAYLOAD_KEYS is not set: payloads are stored in clear; set it to encrypt them at rest";

/// No target answers here; these tests never forward.
const NOWHERE: &str = "http://127.0.0.1:9/hook";

#[tokio::test]
async fn serve_without_payload_keys_warns_once_that_payloads_are_stored_clear() {
    let db = TestDb::create().await;
    let (_binary, receiver) = serve(&db, NOWHERE, &[]);
    let warning = receiver.wait_for_log(CLEAR_WARNING).await;
    assert_eq!(warning["level"], "WARN", "{warning}");
    receiver.wait_for_log("listening").await;
    let output = receiver.to_string();
    assert_eq!(output.matches(CLEAR_WARNING).count(), 1, "{output}");
}

#[tokio::test]
async fn serve_with_payload_keys_names_the_sealing_key_and_never_logs_key_material() {
    let db = TestDb::create().await;
    let value = format!("{},{}", named_key("k2", 2), named_key("k1", 1));
    let (_binary, receiver) = serve(&db, NOWHERE, &[("AUDIAN_PAYLOAD_KEYS", &value)]);
    let sealed = receiver
        .wait_for_log("payloads are sealed at rest (AES-256-GCM)")
        .await;
    assert_eq!(sealed["key_id"], "k2", "{sealed}");
    assert_eq!(sealed["keys"], 2, "{sealed}");
    receiver.wait_for_log("listening").await;
    let output = receiver.to_string();
    assert!(!output.contains(CLEAR_WARNING), "{output}");
    for key in value.split(',') {
        let material = key.split_once(':').unwrap().1;
        assert!(!output.contains(material), "key material in the log");
    }
}

#[tokio::test]
async fn malformed_payload_keys_stop_the_start_with_exit_2_naming_the_variable_and_not_the_key() {
    let good = named_key("k1", 1);
    let short = format!("k2:{}", &named_key("x", 2)[2..24]);
    let cases = [
        (short.clone(), "key `k2` is not valid base64"),
        (
            "k2:AAAAAAAAAAAAAAAAAAAAAA==".to_owned(),
            "key `k2` is 16 bytes",
        ),
        (format!("{good},{good}"), "key id `k1` is used twice"),
        (
            format!("{good},:{}", &good[3..]),
            "entry 2 has an empty key id",
        ),
        (
            format!("k\u{202e}1:{}", &good[3..]),
            "entry 1 has a key id that is not",
        ),
    ];
    let db = TestDb::create().await;
    let mut wrong = Vec::new();
    for (value, expected) in cases {
        for via_file in [false, true] {
            let binary = Binary::new().env("AUDIAN_WEBHOOK_SECRET", SECRET);
            let path = binary.write_config(&format!(
                "[tls]\nmode = \"self-signed\"\n[database]\nurl = {:?}\n",
                db.url()
            ));
            let binary = if via_file {
                let keys = format!("{path}.keys");
                std::fs::write(&keys, format!("{value}\n")).unwrap();
                binary.env("AUDIAN_PAYLOAD_KEYS_FILE", &keys)
            } else {
                binary.env("AUDIAN_PAYLOAD_KEYS", &value)
            };
            let run = binary.run(&["serve", "--config", &path]).await;
            let echoed = value.split(',').any(|entry| {
                let material = entry.split_once(':').map_or(entry, |(_, key)| key);
                material.len() > 8 && run.stderr.contains(material)
            });
            let named = run.stderr.contains("AUDIAN_PAYLOAD_KEYS") && run.stderr.contains(expected);
            if run.code != Some(2) || !named || echoed {
                wrong.push(format!("{value:?} (file: {via_file}): {run}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[tokio::test]
async fn check_config_lists_the_payload_key_ids_and_never_the_keys() {
    let value = format!("{},{}", named_key("k2", 2), named_key("k1", 1));
    let binary = Binary::new()
        .env("AUDIAN_WEBHOOK_SECRET", SECRET)
        .env("AUDIAN_PAYLOAD_KEYS", &value);
    let config = binary.write_config("[tls]\nmode = \"self-signed\"\n");
    let run = binary.run(&["check-config", "--config", &config]).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout
            .contains("# AUDIAN_PAYLOAD_KEYS = [set: key ids k2, k1; the first seals]"),
        "{run}"
    );
    for key in value.split(',') {
        assert!(
            !run.stdout.contains(key.split_once(':').unwrap().1),
            "{run}"
        );
    }
}
