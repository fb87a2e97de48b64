//! The operator's side of forwarding through the real binary: dead deliveries listed and
//! replayed with `events`, and `check-config` refusing a bad target.

use std::path::{Path, PathBuf};
use std::process::Output;

use audian_receiver::config::TargetSettings;

use crate::common::{SECRET, TestApp};
use crate::sink::Sink;
use crate::{all_delivered, fast, free_port, http_target, post_ok, reaches_state, typed_event};

const BIN: &str = env!("CARGO_BIN_EXE_audian-receiver");

/// Runs the binary with a clean environment (no inherited secrets or DATABASE_URL, no `.env`).
async fn receiver(dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AUDIAN_WEBHOOK_SECRET", SECRET)
        .args(args)
        .output()
        .await
        .expect("running the receiver binary")
}

/// `events <args…> --config FILE`, the order the README documents.
async fn events(config: &Path, args: &[&str]) -> Output {
    let mut all = vec!["events"];
    all.extend_from_slice(args);
    all.extend(["--config", config.to_str().unwrap()]);
    receiver(config.parent().unwrap(), &all).await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// A configuration file for the app's database with the given `[[forward.targets]]` TOML.
fn config_file(dir: &Path, app: &TestApp, targets: &str) -> PathBuf {
    let path = dir.join("receiver.toml");
    let toml = format!(
        "[tls]\nmode = \"self-signed\"\n[database]\nurl = {:?}\n{targets}",
        app.db.url()
    );
    std::fs::write(&path, toml).unwrap();
    path
}

fn http_target_toml(name: &str, url: &str, max_attempts: i32) -> String {
    format!(
        "[[forward.targets]]\nname = {name:?}\nkind = \"http\"\nurl = {url:?}\nmax_attempts = {max_attempts}\n"
    )
}

#[tokio::test]
async fn an_unreachable_target_ends_dead_and_a_cli_replay_delivers_it_exactly_once() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let targets = vec![TargetSettings {
        max_attempts: Some(2),
        ..http_target("flaky", &url)
    }];
    let app = TestApp::spawn_with(|s| fast(&mut s.forward, targets)).await;
    post_ok(&app, &typed_event("evt_dead", "job.completed")).await;

    let dead = reaches_state(&app, "evt_dead", "flaky", "dead").await;
    assert_eq!(
        dead.attempts, 2,
        "the per-target max_attempts wins: {dead:?}"
    );
    let error = dead.last_error.expect("a dead delivery says why");
    assert!(error.contains("HTTP request failed"), "{error}");

    let sink = Sink::start_on_port(port).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &app, &http_target_toml("flaky", &url, 2));
    let output = events(&config, &["replay", "evt_dead"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        text(&output.stdout).contains("replayed 1"),
        "{}",
        describe(&output)
    );

    let row = reaches_state(&app, "evt_dead", "flaky", "delivered").await;
    assert_eq!(row.attempts, 1, "a replay starts a fresh attempt count");
    assert_eq!(sink.count("evt_dead"), 1);
}

#[tokio::test]
async fn dead_deliveries_of_one_target_are_listed_and_replayed_by_state_from_the_cli() {
    let (port, ok) = (free_port(), Sink::start().await);
    let url = format!("http://127.0.0.1:{port}/hook");
    let targets = vec![
        TargetSettings {
            max_attempts: Some(1),
            ..http_target("flaky", &url)
        },
        http_target("ok", &ok.url),
    ];
    let app = TestApp::spawn_with(|s| fast(&mut s.forward, targets)).await;
    for id in ["evt_st_1", "evt_st_2"] {
        post_ok(&app, &typed_event(id, "job.completed")).await;
        reaches_state(&app, id, "flaky", "dead").await;
        reaches_state(&app, id, "ok", "delivered").await;
    }
    let dir = tempfile::tempdir().unwrap();
    let toml = http_target_toml("flaky", &url, 1) + &http_target_toml("ok", &ok.url, 5);
    let config = config_file(dir.path(), &app, &toml);
    let config = config.to_str().unwrap();

    let listed = receiver(
        dir.path(),
        &["events", "--config", config, "list", "--state", "dead"],
    )
    .await;
    assert_eq!(listed.status.code(), Some(0), "{}", describe(&listed));
    let stdout = text(&listed.stdout);
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, id) in lines.iter().zip(["evt_st_1", "evt_st_2"]) {
        assert!(
            line.starts_with(&format!("{id}\tflaky\tdead\tattempts=1\t")),
            "{line}"
        );
    }

    let sink = Sink::start_on_port(port).await;
    let replay = ["events", "--config", config, "replay", "--state", "dead"];
    let replayed = receiver(dir.path(), &[&replay[..], &["--target", "flaky"]].concat()).await;
    assert_eq!(replayed.status.code(), Some(0), "{}", describe(&replayed));
    assert!(
        text(&replayed.stdout).contains("replayed 2"),
        "{}",
        describe(&replayed)
    );

    all_delivered(&app, 4).await;
    for id in ["evt_st_1", "evt_st_2"] {
        assert_eq!(sink.count(id), 1, "{id} replayed to flaky once");
        assert_eq!(
            ok.count(id),
            1,
            "{id} not re-sent to the target that had it"
        );
    }
}

#[tokio::test]
async fn events_commands_refuse_an_unknown_id_or_target_with_exit_2_naming_it() {
    let sink = Sink::start().await;
    let targets = vec![http_target("real", &sink.url)];
    let app = TestApp::spawn_with(|s| fast(&mut s.forward, targets)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &app, &http_target_toml("real", &sink.url, 5));

    let replay = events(&config, &["replay", "evt_nosuch_id"]).await;
    assert_eq!(replay.status.code(), Some(2), "{}", describe(&replay));
    let stderr = text(&replay.stderr);
    assert!(
        stderr.contains("no event") && stderr.contains("evt_nosuch_id"),
        "{}",
        describe(&replay)
    );

    let list = events(&config, &["list", "--target", "nosuch"]).await;
    assert_eq!(list.status.code(), Some(2), "{}", describe(&list));
    let stderr = text(&list.stderr);
    assert!(
        stderr.contains("unknown target") && stderr.contains("nosuch"),
        "{}",
        describe(&list)
    );
}

#[tokio::test]
async fn check_config_refuses_an_invalid_target_naming_the_target_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown kind",
            "name = \"jobs_kind\"\nkind = \"kafka\"\nurl = \"http://127.0.0.1:1/x\"\n",
            &["jobs_kind", "kind", "kafka"][..],
        ),
        (
            "missing url",
            "name = \"billing_nourl\"\nkind = \"http\"\n",
            &["billing_nourl", "url"],
        ),
        (
            "unknown subject placeholder",
            "name = \"events_bad\"\nkind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nsubject = \"a.{typo}\"\n",
            &["events_bad", "subject", "{typo}"],
        ),
    ];
    let mut wrong = Vec::new();
    for (case, target, named) in cases {
        let path = dir.path().join("receiver.toml");
        let toml = format!("[tls]\nmode = \"self-signed\"\n[[forward.targets]]\n{target}");
        std::fs::write(&path, toml).unwrap();
        let output = receiver(
            dir.path(),
            &["check-config", "--config", path.to_str().unwrap()],
        )
        .await;
        let stderr = text(&output.stderr);
        let missing: Vec<&str> = named
            .iter()
            .copied()
            .filter(|word| !stderr.contains(word))
            .collect();
        if output.status.code() != Some(2) || !missing.is_empty() {
            wrong.push(format!(
                "{case}: expected exit 2 naming {missing:?}; got {}",
                describe(&output)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
