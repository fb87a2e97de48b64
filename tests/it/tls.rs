//! The public listener speaks TLS 1.2 and 1.3 only, with the configured certificate.

use std::time::Duration;

use audian_receiver::signing::sign;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixtures::{SECRET, TestApp, TestCerts, assert_answer, event};

#[tokio::test]
async fn accepts_tls_1_2_and_tls_1_3_clients() {
    let app = TestApp::spawn().await;
    for (name, version) in [
        ("1.2", &rustls::version::TLS12),
        ("1.3", &rustls::version::TLS13),
    ] {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(app.certs.client_config(&[version]))
            .build()
            .unwrap();
        let id = format!("evt_tls_{}", name.replace('.', "_"));
        let body = event(&id);
        let response = client
            .post(format!("{}/webhook", app.base))
            .header(
                "x-audian-signature",
                sign(SECRET.as_bytes(), body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("TLS {name} handshake failed: {e}"));
        assert_answer(response, 200, r#"{"status":"ok"}"#).await;
    }
}

#[tokio::test]
async fn refuses_tls_1_0_and_tls_1_1_with_a_fatal_alert() {
    let app = TestApp::spawn().await;
    let port = app.port();
    // The control: the very same hello offering TLS 1.2 gets a ServerHello (record type
    // 22), so the alerts below are about the version and nothing else.
    assert_eq!(
        first_record(port, 3).await[0],
        22,
        "a TLS 1.2 hello must be answered"
    );
    for (name, minor) in [("1.0", 1u8), ("1.1", 2u8)] {
        let answer = first_record(port, minor).await;
        // Record type 21 = alert; level 2 = fatal.
        assert_eq!(
            answer[0], 21,
            "TLS {name}: expected an alert record, got {answer:?}"
        );
        assert_eq!(
            answer[5], 2,
            "TLS {name}: expected a fatal alert, got {answer:?}"
        );
    }
}

/// Sends a ClientHello whose only version is TLS 1.`minor - 1` and reads the first 7
/// bytes of the answer (a record header plus two bytes).
async fn first_record(port: u16, minor: u8) -> [u8; 7] {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(&client_hello(minor)).await.unwrap();
    let mut answer = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut answer))
        .await
        .expect("the server answers within 5 s")
        .expect("the server answers before closing");
    answer
}

#[tokio::test]
async fn refuses_a_client_that_does_not_trust_the_certificate() {
    let app = TestApp::spawn().await;
    let other_ca = TestCerts::generate();
    let response = other_ca
        .client()
        .post(format!("{}/webhook", app.base))
        .body("{}")
        .send()
        .await;
    assert!(
        response.is_err(),
        "a certificate from another CA must not verify"
    );
}

/// A ClientHello with `legacy_version` 3.`minor` and no supported_versions extension (so
/// it offers that version only), otherwise acceptable: GCM suites and the extensions an
/// ECDSA/RSA server needs.
fn client_hello(minor: u8) -> Vec<u8> {
    let mut hello = vec![0x03, minor];
    hello.extend_from_slice(&[0x42; 32]); // random
    hello.push(0); // session id
    hello.extend_from_slice(&[0x00, 0x06, 0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x2f]); // suites
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    let extensions: &[u8] = &[
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, // groups x25519, p256
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec point formats: uncompressed
        0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, // sig algs
    ];
    hello.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    hello.extend_from_slice(extensions);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&(hello.len() as u16).to_be_bytes());
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}
