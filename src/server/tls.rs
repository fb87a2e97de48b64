//! The rustls configuration: TLS 1.2 and 1.3 only, from PEM files or, for development, an
//! ephemeral self-signed certificate; and its reload, on SIGHUP or when the files change,
//! without a restart and without dropping open connections.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// Versions offered. rustls has no TLS 1.0/1.1 at all; naming both keeps the intent explicit.
static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// How often the certificate and key files are checked for a change.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Loads a certificate chain and private key from PEM files.
pub fn from_pem_files(cert: &Path, key: &Path) -> anyhow::Result<RustlsConfig> {
    Ok(RustlsConfig::from_config(load_pem_files(cert, key)?))
}

fn load_pem_files(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("tls.cert: cannot read {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "tls.cert: {} is not a PEM certificate chain",
                cert.display()
            )
        })?;
    anyhow::ensure!(
        !chain.is_empty(),
        "tls.cert: {} holds no certificate",
        cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "tls.key: {} is not a readable PEM private key",
            key.display()
        )
    })?;
    rustls_config(chain, key)
}

/// Makes a certificate for localhost valid for this process only, and logs its fingerprint
/// so a developer can pin it.
pub fn self_signed() -> anyhow::Result<RustlsConfig> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified =
        rcgen::generate_simple_self_signed(names).context("generating a certificate")?;
    let der = certified.cert.der().clone();
    let fingerprint = hex::encode(Sha256::digest(der.as_ref()));
    tracing::warn!(
        sha256_fingerprint = %fingerprint,
        "tls.mode = \"self-signed\": serving an ephemeral certificate. DEVELOPMENT ONLY — \
         Audian cannot trust it; use tls.mode = \"rustls\" with a real certificate in production"
    );
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    Ok(RustlsConfig::from_config(rustls_config(
        vec![der],
        key.into(),
    )?))
}

fn rustls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_protocol_versions(VERSIONS)
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("tls.cert and tls.key do not form a usable pair")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves SIGHUP until `shutdown`: with certificate files (`files`), re-reads them on SIGHUP
/// and whenever either file changes; new connections get the new pair, open ones keep
/// theirs. A pair that does not load is refused with a log line and the old one stays.
/// Without files, SIGHUP is logged and ignored — it never ends the process.
pub async fn reload_on_change(
    config: Option<RustlsConfig>,
    files: Option<(PathBuf, PathBuf)>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => signal,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; certificates reload on file changes only");
            return;
        }
    };
    let mut seen = files.as_ref().map(|(c, k)| (modified(c), modified(k)));
    loop {
        let signalled = tokio::select! {
            _ = hangup.recv() => true,
            _ = tokio::time::sleep(WATCH_INTERVAL) => false,
            _ = shutdown.cancelled() => return,
        };
        let (Some(config), Some((cert, key))) = (&config, &files) else {
            if signalled {
                tracing::info!(
                    "SIGHUP received; no certificate files to reload (tls.mode is not \"rustls\")"
                );
            }
            continue;
        };
        let now = Some((modified(cert), modified(key)));
        if !signalled && now == seen {
            continue;
        }
        seen = now;
        match load_pem_files(cert, key) {
            Ok(new) => {
                config.reload_from_config(new);
                tracing::info!(cert = %cert.display(), "TLS certificate reloaded; new connections use it");
            }
            Err(error) => tracing::error!(
                error = format!("{error:#}"),
                "TLS certificate NOT reloaded; still serving the previous one"
            ),
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
