//! The binary as an operator runs it: `sign`, `check-config`, start-up errors, and a
//! SIGTERM that drains an in-flight request over real TLS.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use audian_receiver::intake::signature::sign;
use common::{SECRET, TestCerts, TestDb};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_audian-receiver");

/// The binary with a clean environment: no inherited secrets, no `.env` from the repo.
fn receiver(dir: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

fn write_config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("receiver.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `check-config` on a file holding `text`, with only `env` set.
fn check_config(text: &str, env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), text);
    let mut command = receiver(dir.path());
    command.args(["check-config", "--config"]).arg(&config);
    command.envs(env.iter().copied()).output().unwrap()
}

#[test]
fn sign_prints_the_signature_of_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let body = br#"{"id":"evt_1","type":"job.completed"}"#;
    let mut child = receiver(dir.path())
        .arg("sign")
        .env("AUDIAN_WEBHOOK_SECRET", SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        sign(SECRET.as_bytes(), body)
    );
}

#[test]
fn serve_without_a_secret_exits_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[tls]\nmode = \"self-signed\"\n");
    let output = receiver(dir.path())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("AUDIAN_WEBHOOK_SECRET"));
}

#[test]
fn check_config_rejects_an_unknown_key_naming_it() {
    let output = check_config(
        "[server]\nlisten = \"127.0.0.1:8443\"\nlistn = 1\n",
        &[("AUDIAN_WEBHOOK_SECRET", SECRET)],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listn"), "{stderr}");
}

#[test]
fn check_config_refuses_a_secret_written_in_the_file() {
    let output = check_config(
        "[server]\nwebhook_secret = \"hunter2\"\n",
        &[("AUDIAN_WEBHOOK_SECRET", SECRET)],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("secrets are never read from the configuration file"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"));
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_redacted() {
    let env = [
        ("AUDIAN_WEBHOOK_SECRET", SECRET),
        (
            "DATABASE_URL",
            "postgres://app:db-password-123@127.0.0.1:5432/x",
        ),
        ("AUDIAN_RECEIVER__SERVER__MAX_BODY_BYTES", "2048"),
    ];
    let output = check_config("[tls]\nmode = \"self-signed\"\n", &env);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("max_body_bytes = 2048"), "{stdout}");
    assert!(
        stdout.contains("postgres://app:[redacted]@127.0.0.1:5432/x"),
        "{stdout}"
    );
    assert!(stdout.contains("AUDIAN_WEBHOOK_SECRET = [set]"), "{stdout}");
    assert!(!stdout.contains("db-password-123") && !stdout.contains(SECRET));
}

#[test]
fn check_config_lists_every_problem_and_exits_non_zero() {
    let output = check_config(
        "[server]\npath = \"webhook\"\n[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
        &[("AUDIAN_WEBHOOK_SECRET", SECRET)],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for key in ["server.path", "tls.cert", "tls.key"] {
        assert!(stderr.contains(key), "{key} missing from: {stderr}");
    }
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    common::init();
    let db = TestDb::create().await;
    let certs = TestCerts::generate();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[tls]\ncert = {:?}\nkey = {:?}\n[database]\nurl = {:?}\n[log]\nformat = \"json\"\n",
            certs.cert_path(),
            certs.key_path(),
            db.url()
        ),
    );
    let mut child = tokio::process::Command::new(BIN)
        .current_dir(dir.path())
        .args(["serve", "--config"])
        .arg(&config)
        .env("AUDIAN_WEBHOOK_SECRET", SECRET)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut logs = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = wait_for_port(&mut logs).await;
    tokio::spawn(async move { while let Ok(Some(_)) = logs.next_line().await {} });

    let body = common::event("evt_drain");
    let (mut tls, half) = start_request(&certs, port, &body).await;
    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    tls.write_all(&body.as_bytes()[half..]).await.unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.ok();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let mut conn = db.connect().await;
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_id = 'evt_drain'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(stored, 1);
}

async fn wait_for_port(logs: &mut tokio::io::Lines<BufReader<tokio::process::ChildStderr>>) -> u16 {
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = logs.next_line().await.unwrap() {
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
                && json["message"] == "listening"
            {
                return json["port"].as_u64().unwrap() as u16;
            }
        }
        panic!("the receiver exited before listening");
    });
    found.await.expect("the receiver listens within 30 s")
}

/// Opens a TLS connection and sends the headers and the first half of the body.
async fn start_request(
    certs: &TestCerts,
    port: u16,
    body: &str,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    usize,
) {
    let config = certs.client_config(rustls::ALL_VERSIONS);
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nx-audian-signature: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        sign(SECRET.as_bytes(), body.as_bytes()),
        body.len()
    );
    let half = body.len() / 2;
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body.as_bytes()[..half]).await.unwrap();
    tls.flush().await.unwrap();
    (tls, half)
}

const AMQP_TARGET: &str = "[tls]\nmode = \"self-signed\"\n[[forward.targets]]\nname = \"audit\"\nkind = \"amqp\"\nexchange = \"audian\"\nrouting_key = \"events.{type}\"\n";

#[test]
fn check_config_fills_url_placeholders_from_the_environment_and_redacts_them() {
    let text =
        format!("{AMQP_TARGET}url = \"amqp://guest:${{RABBITMQ_PASSWORD}}@127.0.0.1:5672/%2f\"\n");
    let env = [
        ("AUDIAN_WEBHOOK_SECRET", SECRET),
        ("RABBITMQ_PASSWORD", "rabbit-pw-42"),
    ];
    let output = check_config(&text, &env);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("amqp://guest:[redacted]@127.0.0.1:5672/%2f"),
        "{stdout}"
    );
    assert!(!stdout.contains("rabbit-pw-42"));
}

#[test]
fn check_config_refuses_a_literal_password_in_a_target_url() {
    let text = format!("{AMQP_TARGET}url = \"amqp://guest:guest-pw@127.0.0.1:5672/%2f\"\n");
    let output = check_config(&text, &[("AUDIAN_WEBHOOK_SECRET", SECRET)]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("forward.targets[0].url holds a password"),
        "{stderr}"
    );
    assert!(!stderr.contains("guest-pw"));
}

#[tokio::test]
async fn migrate_and_events_do_not_need_the_listener_certificate() {
    common::init();
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    // tls.mode defaults to "rustls" and the certificate files do not exist here.
    let config = write_config(dir.path(), &format!("[database]\nurl = {:?}\n", db.url()));
    for args in [&["migrate"][..], &["events", "list"][..]] {
        let output = receiver(dir.path())
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stderr}");
    }
}
