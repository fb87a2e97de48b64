//! The binary as an operator runs it: `sign`, `check-config`, start-up errors, commands that
//! need only the database, `healthcheck` as a container engine runs it, and a SIGTERM that
//! drains an in-flight request over real TLS.

use std::sync::Arc;

use audian_receiver::signing::sign;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::fixtures::{
    Binary, PATIENCE, POSTGRES_ADDR, Proxy, Run, SECRET, Sink, TestApp, TestCerts, TestDb, event,
    eventually, free_port,
};

/// The binary with the webhook secret set, as every command but `sign` without it needs.
fn with_secret() -> Binary {
    Binary::new().env("AUDIAN_WEBHOOK_SECRET", SECRET)
}

/// Runs `check-config` on a file holding `text`, with only `env` set.
pub async fn check_config(text: &str, env: &[(&str, &str)]) -> Run {
    let binary = env.iter().fold(Binary::new(), |binary, (name, value)| {
        binary.env(name, value)
    });
    let config = binary.write_config(text);
    binary.run(&["check-config", "--config", &config]).await
}

#[tokio::test]
async fn sign_prints_the_signature_of_stdin() {
    let body = br#"{"id":"evt_1","type":"job.completed"}"#;
    let run = with_secret().run_with_stdin(&["sign"], body).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(run.stdout.trim(), sign(SECRET.as_bytes(), body));
}

#[tokio::test]
async fn serve_without_a_secret_exits_2_naming_the_variable() {
    let binary = Binary::new();
    let config = binary.write_config("[tls]\nmode = \"self-signed\"\n");
    let run = binary.run(&["serve", "--config", &config]).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("AUDIAN_WEBHOOK_SECRET"), "{run}");
}

#[tokio::test]
async fn check_config_rejects_an_unknown_key_naming_it() {
    let run = check_config(
        "[server]\nlisten = \"127.0.0.1:8443\"\nlistn = 1\n",
        &[("AUDIAN_WEBHOOK_SECRET", SECRET)],
    )
    .await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("listn"), "{run}");
}

#[tokio::test]
async fn check_config_refuses_a_secret_written_in_the_file() {
    let run = check_config(
        "[server]\nwebhook_secret = \"hunter2\"\n",
        &[("AUDIAN_WEBHOOK_SECRET", SECRET)],
    )
    .await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr
            .contains("secrets are never read from the configuration file"),
        "{run}"
    );
    assert!(!run.stderr.contains("hunter2"));
}

#[tokio::test]
async fn check_config_prints_the_effective_config_with_secrets_redacted() {
    let env = [
        ("AUDIAN_WEBHOOK_SECRET", SECRET),
        (
            "DATABASE_URL",
            "postgres://app:db-password-123@127.0.0.1:5432/x",
        ),
        ("AUDIAN_RECEIVER__SERVER__MAX_BODY_BYTES", "2048"),
    ];
    let run = check_config("[tls]\nmode = \"self-signed\"\n", &env).await;
    assert_eq!(run.code, Some(0), "{run}");
    let stdout = &run.stdout;
    assert!(stdout.contains("max_body_bytes = 2048"), "{stdout}");
    assert!(
        stdout.contains("postgres://app:[redacted]@127.0.0.1:5432/x"),
        "{stdout}"
    );
    assert!(stdout.contains("AUDIAN_WEBHOOK_SECRET = [set]"), "{stdout}");
    assert!(!stdout.contains("db-password-123") && !stdout.contains(SECRET));
}

#[tokio::test]
async fn check_config_lists_every_problem_and_exits_non_zero() {
    let run = check_config(
        "[server]\npath = \"webhook\"\n[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
        &[("AUDIAN_WEBHOOK_SECRET", SECRET)],
    )
    .await;
    assert_eq!(run.code, Some(2), "{run}");
    for key in ["server.path", "tls.cert", "tls.key"] {
        assert!(run.stderr.contains(key), "{key} missing from: {run}");
    }
}

const AMQP_TARGET: &str = "[tls]\nmode = \"self-signed\"\n[[forward.targets]]\nname = \"audit\"\nkind = \"amqp\"\nexchange = \"audian\"\nrouting_key = \"events.{type}\"\n";

#[tokio::test]
async fn check_config_fills_url_placeholders_from_the_environment_and_prints_them_unexpanded() {
    let text =
        format!("{AMQP_TARGET}url = \"amqp://guest:${{RABBITMQ_PASSWORD}}@127.0.0.1:5672/%2f\"\n");
    let env = [
        ("AUDIAN_WEBHOOK_SECRET", SECRET),
        ("RABBITMQ_PASSWORD", "rabbit-pw-42"),
    ];
    let run = check_config(&text, &env).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout
            .contains("amqp://guest:${RABBITMQ_PASSWORD}@127.0.0.1:5672/%2f"),
        "{run}"
    );
    assert!(!run.stdout.contains("rabbit-pw-42"));
}

#[tokio::test]
async fn check_config_refuses_a_url_placeholder_whose_variable_is_not_set() {
    let text =
        format!("{AMQP_TARGET}url = \"amqp://guest:${{RABBITMQ_PASSWORD}}@127.0.0.1:5672/%2f\"\n");
    let run = check_config(&text, &[("AUDIAN_WEBHOOK_SECRET", SECRET)]).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("RABBITMQ_PASSWORD"), "{run}");
}

#[tokio::test]
async fn check_config_refuses_a_literal_password_in_a_target_url() {
    let text = format!("{AMQP_TARGET}url = \"amqp://guest:guest-pw@127.0.0.1:5672/%2f\"\n");
    let run = check_config(&text, &[("AUDIAN_WEBHOOK_SECRET", SECRET)]).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr
            .contains("forward.targets[0].url holds a password"),
        "{run}"
    );
    assert!(!run.stderr.contains("guest-pw"));
}

#[tokio::test]
async fn check_config_refuses_a_key_of_another_kind_naming_the_target_and_the_key() {
    let text = format!("{AMQP_TARGET}url = \"amqp://127.0.0.1:5672/%2f\"\nstream = \"s\"\n");
    let run = check_config(&text, &[("AUDIAN_WEBHOOK_SECRET", SECRET)]).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr
            .contains("forward.targets[0] (`audit`): `stream`: unknown field"),
        "{run}"
    );
}

#[tokio::test]
async fn check_config_refuses_an_unknown_target_kind_naming_the_key() {
    let text = "[[forward.targets]]\nname = \"audit\"\nkind = \"pulsar\"\nurl = \"pulsar://h\"\n";
    let run = check_config(text, &[("AUDIAN_WEBHOOK_SECRET", SECRET)]).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr
            .contains("forward.targets[0] (`audit`): `kind`: unknown variant"),
        "{run}"
    );
}

#[tokio::test]
async fn check_config_refuses_a_secret_key_in_a_target_naming_it() {
    let text =
        format!("{AMQP_TARGET}url = \"amqp://127.0.0.1:5672/%2f\"\nhmac_secret = \"hunter2\"\n");
    let run = check_config(&text, &[("AUDIAN_WEBHOOK_SECRET", SECRET)]).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains("(forward.targets.0.hmac_secret)"),
        "{run}"
    );
    assert!(!run.stderr.contains("hunter2"));
}

#[tokio::test]
async fn migrate_and_events_do_not_need_the_listener_certificate() {
    let db = TestDb::create().await;
    let binary = Binary::new();
    // tls.mode defaults to "rustls" and the certificate files do not exist here.
    let config = binary.write_config(&format!("[database]\nurl = {:?}\n", db.url()));
    for args in [&["migrate"][..], &["events", "list"][..]] {
        let run = binary.run(&[args, &["--config", &config]].concat()).await;
        assert_eq!(run.code, Some(0), "{args:?}: {run}");
    }
}

/// Runs `healthcheck` the way the image's HEALTHCHECK does: a config naming `admin.listen`,
/// and no secret, `DATABASE_URL` or certificate (tls.mode is the default "rustls" and the
/// certificate files do not exist).
async fn healthcheck(admin_listen: &str) -> Run {
    healthcheck_with(admin_listen, &[]).await
}

async fn healthcheck_with(admin_listen: &str, extra: &[&str]) -> Run {
    let binary = Binary::new();
    let config = binary.write_config(&format!("[admin]\nlisten = {admin_listen:?}\n"));
    let args = [&["healthcheck", "--config", &config][..], extra].concat();
    binary.run(&args).await
}

/// A failed probe is one line on stderr naming the URL it asked, and exit 1.
fn assert_unhealthy(run: &Run, url: &str) {
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
    assert!(run.stderr.contains(url), "{run}");
}

#[tokio::test]
async fn healthcheck_exits_0_when_the_admin_listener_answers() {
    let app = TestApp::spawn().await;
    let admin = app.admin.trim_start_matches("http://");
    let run = healthcheck(admin).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(
        run.stdout.trim(),
        format!("{}/readyz answered 200 OK", app.admin)
    );
    let live = healthcheck_with(admin, &["--live"]).await;
    assert_eq!(live.code, Some(0), "{live}");
    assert_eq!(
        live.stdout.trim(),
        format!("{}/healthz answered 200 OK", app.admin)
    );
}

/// The image's HEALTHCHECK turns unhealthy while the database is unreachable (every event
/// would get 503) and healthy again when it returns; `--live` stays healthy throughout.
#[tokio::test]
async fn healthcheck_is_unhealthy_while_the_database_is_cut_and_healthy_after() {
    let proxy = Proxy::start(POSTGRES_ADDR).await;
    let app = TestApp::spawn_via(&proxy).await;
    let admin = app.admin.trim_start_matches("http://").to_owned();
    assert_eq!(healthcheck(&admin).await.code, Some(0));

    proxy.cut();
    let run = eventually("healthcheck to report the cut database", || async {
        let run = healthcheck(&admin).await;
        (run.code == Some(1)).then_some(run)
    })
    .await;
    assert_unhealthy(&run, &format!("{}/readyz", app.admin));
    assert!(run.stderr.contains("503"), "{run}");
    let live = healthcheck_with(&admin, &["--live"]).await;
    assert_eq!(live.code, Some(0), "--live with the database cut: {live}");

    proxy.restore();
    eventually("healthcheck to pass once the database is back", || async {
        (healthcheck(&admin).await.code == Some(0)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn healthcheck_reaches_an_admin_listener_on_every_interface_through_loopback() {
    let db = TestDb::create().await;
    let binary = with_secret();
    let config = binary.write_config(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"0.0.0.0:0\"\n[tls]\nmode = \"self-signed\"\n[database]\nurl = {:?}\n",
        db.url()
    ));
    let receiver = binary.spawn(&["serve", "--config", &config]);
    let listening = receiver.wait_for_log("listening").await;
    let port = listening["admin_port"].as_u64().expect("the admin port");

    let run = healthcheck(&format!("0.0.0.0:{port}")).await;
    assert_eq!(run.code, Some(0), "{run}\n{receiver}");
    assert!(
        run.stdout
            .contains(&format!("http://127.0.0.1:{port}/readyz")),
        "{run}"
    );
}

#[tokio::test]
async fn healthcheck_against_an_address_nobody_listens_on_exits_1_naming_it() {
    let port = free_port();
    let run = healthcheck(&format!("127.0.0.1:{port}")).await;
    assert_unhealthy(&run, &format!("http://127.0.0.1:{port}/readyz"));
}

#[tokio::test]
async fn healthcheck_exits_1_when_the_answer_is_not_2xx() {
    // Something else holds the port: the sink answers 404 to /readyz.
    let sink = Sink::start().await;
    let addr = sink.url_for("").trim_start_matches("http://").to_owned();
    let run = healthcheck(&addr).await;
    assert_unhealthy(&run, &format!("http://{addr}/readyz"));
    assert!(run.stderr.contains("404"), "{run}");
}

#[tokio::test]
async fn healthcheck_gives_up_on_a_listener_that_never_answers() {
    // Connections are accepted by the kernel, but nothing ever reads or answers them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let run = healthcheck(&addr.to_string()).await;
    assert_unhealthy(&run, &format!("http://{addr}/readyz"));
    assert!(run.stderr.contains("timed out"), "{run}");
}

#[tokio::test]
async fn healthcheck_with_a_missing_configuration_exits_1_not_2() {
    // Docker reserves a health command's exit status 2.
    let run = Binary::new()
        .run(&["healthcheck", "--config", "/nonexistent/receiver.toml"])
        .await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("/nonexistent/receiver.toml"), "{run}");
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let db = TestDb::create().await;
    let certs = TestCerts::generate();
    let binary = with_secret();
    let config = binary.write_config(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[tls]\ncert = {:?}\nkey = {:?}\n[database]\nurl = {:?}\n[log]\nformat = \"json\"\n",
        certs.cert_path(),
        certs.key_path(),
        db.url()
    ));
    let mut receiver = binary.spawn(&["serve", "--config", &config]);
    let listening = receiver.wait_for_log("listening").await;
    let port = listening["port"].as_u64().expect("the port it listens on") as u16;

    let body = event("evt_drain");
    let (mut tls, half) = start_request(&certs, port, &body).await;
    receiver.terminate();
    // The signal has been handled and the drain begun while the request is still in flight.
    receiver
        .wait_for_log("shutting down: draining requests")
        .await;

    let rest = tls.write_all(&body.as_bytes()[half..]).await;
    rest.unwrap_or_else(|e| panic!("sending the rest of the body: {e}\n{receiver}"));
    let mut response = String::new();
    tls.read_to_string(&mut response).await.ok();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "{response}\n{receiver}"
    );
    assert_eq!(receiver.wait_for_exit().await, Some(0), "{receiver}");
    let mut conn = db.connect().await;
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_id = 'evt_drain'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(stored, 1);
}

/// Opens a TLS connection and starts a request: the headers, then, once the server has begun
/// reading the body (it answers `100 Continue` when it first polls it, so the request is
/// certainly in flight), the first half of the body. Returns the connection and where the
/// rest of the body starts.
async fn start_request(certs: &TestCerts, port: u16, body: &str) -> (TlsStream<TcpStream>, usize) {
    let config = certs.client_config(rustls::ALL_VERSIONS);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nx-audian-signature: {}\r\ncontent-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
        sign(SECRET.as_bytes(), body.as_bytes()),
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let interim = tokio::time::timeout(PATIENCE, read_head(&mut tls))
        .await
        .expect("the server answers the headers");
    assert!(interim.starts_with("HTTP/1.1 100 "), "{interim}");
    let half = body.len() / 2;
    tls.write_all(&body.as_bytes()[..half]).await.unwrap();
    tls.flush().await.unwrap();
    (tls, half)
}

/// Reads one response head, up to and including its blank line.
async fn read_head(tls: &mut TlsStream<TcpStream>) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tls.read_u8().await.expect("reading a response head"));
    }
    String::from_utf8_lossy(&head).into_owned()
}
