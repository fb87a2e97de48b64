//! The release binary as an operator runs it: a config file, secrets in the environment,
//! logs to a file; started, killed with SIGKILL and started again on the same ports.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const SECRET: &str = "whsec_faults_0123456789";

/// `AUDIAN_RECEIVER_BIN`, or the release build next to this crate.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("AUDIAN_RECEIVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/audian-receiver")
        });
    assert!(
        path.exists(),
        "the fault suite drives the release binary, and {} does not exist: run \
         `cargo build --release --locked` first (or set AUDIAN_RECEIVER_BIN)",
        path.display()
    );
    path
}

pub struct Receiver {
    pub name: String,
    pub port: u16,
    pub admin_port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Receiver {
    /// Writes the config for this replica (`config` is the shared part, without `[server]`
    /// and `[admin]`) and starts it.
    pub async fn start(name: &str, dir: &Path, port: u16, admin_port: u16, config: &str) -> Self {
        let path = dir.join(format!("{name}.toml"));
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace_ms = 2000\n\n\
             [admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\n{config}"
        );
        std::fs::write(&path, text).expect("writing the receiver's config");
        let mut receiver = Receiver {
            name: name.to_owned(),
            port,
            admin_port,
            config: path,
            log: dir.join(format!("{name}.log")),
            child: None,
        };
        receiver.spawn().await;
        receiver
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}/webhook", self.port)
    }

    /// Starts the process and waits until `/healthz` answers.
    pub async fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("opening the receiver's log");
        let child = Command::new(binary())
            .args(["serve", "--config"])
            .arg(&self.config)
            .current_dir(self.config.parent().unwrap())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AUDIAN_WEBHOOK_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting the receiver");
        self.child = Some(child);
        let health = format!("http://127.0.0.1:{}/healthz", self.admin_port);
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "{} exited at start with {status}:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            if let Ok(response) = client.get(&health).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not answer /healthz within 30 s:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no drain, no cleanup, whatever was in flight is cut.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaping the receiver");
        }
    }

    /// Sends `SIG<name>` (STOP, CONT) to the running replica.
    pub fn signal(&self, name: &str) {
        if let Some(child) = &self.child {
            let pid = child.id().to_string();
            let status = Command::new("kill")
                .args([&format!("-{name}"), &pid])
                .status();
            assert!(status.is_ok_and(|s| s.success()), "kill -{name} {pid}");
        }
    }

    /// SIGTERM and wait for the drain to finish; the exit must be clean.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let status = child.wait().expect("waiting for the receiver");
            assert!(
                status.success(),
                "{} exited with {status} after SIGTERM\n{}",
                self.name,
                self.log_tail()
            );
        }
    }

    /// The last lines of this replica's log, for a failure message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.kill();
    }
}
