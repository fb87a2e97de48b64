//! Certificate rotation without a restart: on SIGHUP the receiver serves the new certificate
//! to new connections while open ones keep working, refuses a broken pair (keeping the old
//! one), and SIGHUP never ends the process.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::fixtures::{Binary, SECRET, TestCerts, TestDb};

#[tokio::test]
async fn sighup_serves_a_new_certificate_to_new_connections_and_keeps_open_ones() {
    let db = TestDb::create().await;
    let (old, new) = (TestCerts::generate(), TestCerts::generate());
    let live = tempfile::tempdir().unwrap();
    let (cert, key) = (live.path().join("cert.pem"), live.path().join("key.pem"));
    install(&old, &cert, &key);
    let binary = Binary::new().env("AUDIAN_WEBHOOK_SECRET", SECRET);
    let config = binary.write_config(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[tls]\ncert = {cert:?}\nkey = {key:?}\n[database]\nurl = {:?}\n[log]\nformat = \"json\"\n",
        db.url()
    ));
    let mut receiver = binary.spawn(&["serve", "--config", &config]);
    let port = receiver.wait_for_log("listening").await["port"]
        .as_u64()
        .expect("the port it listens on") as u16;
    let trust_both = [&old, &new];

    let mut open = connect(port, &trust_both).await;
    assert_eq!(
        served(&open),
        leaf(&old),
        "before the reload: the old certificate"
    );
    assert!(request(&mut open).await.starts_with("HTTP/1.1 "));

    install(&new, &cert, &key);
    receiver.signal("HUP");
    receiver
        .wait_for_log("TLS certificate reloaded; new connections use it")
        .await;
    let fresh = connect(port, &trust_both).await;
    assert_eq!(
        served(&fresh),
        leaf(&new),
        "a new connection sees the new certificate"
    );
    let answer = request(&mut open).await;
    assert!(
        answer.starts_with("HTTP/1.1 "),
        "the connection opened before the reload still works: {answer:?}"
    );

    // A broken pair is refused; the new certificate stays in use and the process lives on.
    std::fs::write(&cert, "not a certificate").unwrap();
    receiver.signal("HUP");
    receiver
        .wait_for_log("TLS certificate NOT reloaded; still serving the previous one")
        .await;
    let after = connect(port, &trust_both).await;
    assert_eq!(served(&after), leaf(&new));

    receiver.terminate();
    assert_eq!(receiver.wait_for_exit().await, Some(0), "{receiver}");
}

fn install(certs: &TestCerts, cert: &std::path::Path, key: &std::path::Path) {
    std::fs::copy(certs.cert_path(), cert).unwrap();
    std::fs::copy(certs.key_path(), key).unwrap();
}

fn leaf(certs: &TestCerts) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(certs.cert_path()).unwrap()
}

async fn connect(port: u16, trusted: &[&TestCerts]) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for certs in trusted {
        roots.add(certs.ca()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.expect("a TLS handshake")
}

fn served(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref()
        .1
        .peer_certificates()
        .expect("a server certificate")[0]
        .clone()
}

/// One keep-alive request (GET on the webhook path: 405) and its response head.
async fn request(tls: &mut TlsStream<TcpStream>) -> String {
    tls.write_all(b"GET /webhook HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = vec![0u8; 4096];
    let n = tls.read(&mut buffer).await.unwrap_or(0);
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}
