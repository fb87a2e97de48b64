//! Shared test fixtures: a fresh database per test, test certificates, the service started
//! in-process on port 0, an HTTPS client that trusts the test CA, and a cuttable TCP proxy.
#![allow(dead_code)]

pub mod proxy;

use std::path::PathBuf;
use std::sync::Arc;

use audian_receiver::config::{Secrets, Settings, TlsMode};
use audian_receiver::intake::signature::sign;
use audian_receiver::server::Application;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use secrecy::SecretString;
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "whsec_test_current_0123456789";
pub const PREVIOUS_SECRET: &str = "whsec_test_previous_9876543210";

/// Postgres as the machine runs it; `TEST_DATABASE_URL` points elsewhere.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A database of its own, dropped (with its connections) when the test ends.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("audian_test_{}", rand::random::<u64>());
        let mut conn = PgConnection::connect(&admin_url())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Postgres is required for these tests and is not reachable at {}: {e}",
                    admin_url()
                )
            });
        sqlx::query(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut conn)
            .await
            .expect("creating the test database");
        Self { name }
    }

    /// The URL of this database, optionally through another host:port (a proxy).
    pub fn url(&self) -> String {
        let base = admin_url();
        let cut = base.rfind('/').expect("a database URL has a path");
        format!("{}/{}", &base[..cut], self.name)
    }

    pub fn url_via(&self, host_port: &str) -> String {
        format!("postgres://postgres@{host_port}/{}", self.name)
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url())
            .await
            .expect("connecting to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime we may block: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                    let sql = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A CA and a server certificate for localhost/127.0.0.1 signed by it, as PEM files.
pub struct TestCerts {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
}

impl TestCerts {
    pub fn generate() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "audian-receiver test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).unwrap();
        Self {
            dir,
            ca_pem: ca_cert.pem(),
        }
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// A rustls client config trusting only the test CA, limited to `versions`.
    pub fn client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        let ca = rustls::pki_types::CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap();
        roots.add(ca).unwrap();
        rustls::ClientConfig::builder_with_protocol_versions(versions)
            .with_root_certificates(roots)
            .with_no_client_auth()
    }

    pub fn client(&self) -> reqwest::Client {
        let config = self.client_config(rustls::ALL_VERSIONS);
        reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .build()
            .expect("building the test client")
    }
}

use rustls::pki_types::pem::PemObject;

/// Settings for a test: real TLS with the test certificate, ports chosen by the OS.
pub fn test_settings(db: &TestDb, certs: &TestCerts) -> Settings {
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.admin.listen = "127.0.0.1:0".parse().unwrap();
    settings.tls.mode = TlsMode::Rustls;
    settings.tls.cert = certs.cert_path();
    settings.tls.key = certs.key_path();
    settings.database.url = audian_receiver::config::SecretUrl::new(&db.url());
    settings
}

pub fn test_secrets() -> Secrets {
    Secrets {
        webhook: SecretString::from(SECRET),
        webhook_previous: Some(SecretString::from(PREVIOUS_SECRET)),
        forward_signing: None,
    }
}

/// The service running in this process.
pub struct TestApp {
    pub base: String,
    pub admin: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub certs: Arc<TestCerts>,
    pub shutdown: CancellationToken,
    pub task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the service after `adjust` has changed the test settings.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_through_db(|_, settings| adjust(settings)).await
    }

    /// Like [`TestApp::spawn_with`], with the test database at hand (to route it via a proxy).
    pub async fn spawn_through_db(adjust: impl FnOnce(&TestDb, &mut Settings)) -> Self {
        Self::spawn_with_secrets(test_secrets(), adjust).await
    }
}

impl TestApp {
    /// Like [`TestApp::spawn_through_db`], with the secrets given (e.g. [`signing_secrets`]).
    pub async fn spawn_with_secrets(
        secrets: Secrets,
        adjust: impl FnOnce(&TestDb, &mut Settings),
    ) -> Self {
        init();
        let db = TestDb::create().await;
        let certs = Arc::new(TestCerts::generate());
        let mut settings = test_settings(&db, &certs);
        adjust(&db, &mut settings);
        let app = Application::build(settings, secrets)
            .await
            .expect("building the app");
        let (port, admin_port) = (app.port(), app.admin_port());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run(shutdown.clone()));
        Self {
            base: format!("https://localhost:{port}"),
            admin: format!("http://127.0.0.1:{admin_port}"),
            client: certs.client(),
            db,
            certs,
            shutdown,
            task: Some(task),
        }
    }

    /// POSTs `body` to /webhook signed with the current secret.
    pub async fn post_signed(&self, body: &str) -> reqwest::Response {
        self.post_with_signature(body, &sign(SECRET.as_bytes(), body.as_bytes()))
            .await
    }

    pub async fn post_with_signature(&self, body: &str, signature: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/webhook", self.base))
            .header("content-type", "application/json")
            .header("x-audian-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .expect("the request reaches the server")
    }

    pub async fn count_events(&self, id: &str) -> i64 {
        let mut conn = self.db.connect().await;
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_id = $1")
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }

    pub async fn total_events(&self) -> i64 {
        let mut conn = self.db.connect().await;
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A small, distinct, signed-able event body.
pub fn event(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"job.completed","data":{{"job_id":"j_{id}","duration_ms":1234}}}}"#
    )
}

/// Asserts status and the exact JSON body of a response.
pub async fn assert_answer(response: reqwest::Response, status: u16, body: &str) {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.text().await.unwrap(), body);
}

/// The key forwarded messages are signed with in tests that turn signing on.
pub const FORWARD_SIGNING_SECRET: &str = "fwd_test_signing_0123456789";

/// [`test_secrets`] plus a forward signing key.
pub fn signing_secrets() -> Secrets {
    Secrets {
        forward_signing: Some(SecretString::from(FORWARD_SIGNING_SECRET)),
        ..test_secrets()
    }
}
