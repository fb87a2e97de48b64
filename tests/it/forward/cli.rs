//! The operator's side of forwarding through the real binary: dead deliveries listed and
//! replayed with `events`, and `check-config` refusing a bad target.

use audian_receiver::config::TargetSettings;

use super::{all_delivered, fast, http_target, post_ok, reaches_state, typed_event};
use crate::fixtures::{Binary, Run, SECRET, Sink, TestApp, free_port};

/// The binary with a configuration file for the app's database and the given
/// `[[forward.targets]]` TOML; returns it and the file's path.
fn operator(app: &TestApp, targets: &str) -> (Binary, String) {
    let binary = Binary::new().env("AUDIAN_WEBHOOK_SECRET", SECRET);
    let config = binary.write_config(&format!(
        "[tls]\nmode = \"self-signed\"\n[database]\nurl = {:?}\n{targets}",
        app.db.url()
    ));
    (binary, config)
}

/// `events <args…> --config FILE`, the order the README documents.
async fn events(binary: &Binary, config: &str, args: &[&str]) -> Run {
    let all = [&["events"][..], args, &["--config", config]].concat();
    binary.run(&all).await
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
    let (binary, config) = operator(&app, &http_target_toml("flaky", &url, 2));
    let replay = events(&binary, &config, &["replay", "evt_dead"]).await;
    assert_eq!(replay.code, Some(0), "{replay}");
    assert!(replay.stdout.contains("replayed 1"), "{replay}");

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
    let toml = http_target_toml("flaky", &url, 1) + &http_target_toml("ok", &ok.url, 5);
    let (binary, config) = operator(&app, &toml);

    // `--config` also works before the subcommand.
    let listed = binary
        .run(&["events", "--config", &config, "list", "--state", "dead"])
        .await;
    assert_eq!(listed.code, Some(0), "{listed}");
    let mut lines: Vec<&str> = listed.stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines.len(), 2, "{listed}");
    for (line, id) in lines.iter().zip(["evt_st_1", "evt_st_2"]) {
        assert!(
            line.starts_with(&format!("{id}\tflaky\tdead\tattempts=1\t")),
            "{line}"
        );
    }

    let sink = Sink::start_on_port(port).await;
    let replay = ["events", "--config", &config, "replay", "--state", "dead"];
    let replayed = binary
        .run(&[&replay[..], &["--target", "flaky"]].concat())
        .await;
    assert_eq!(replayed.code, Some(0), "{replayed}");
    assert!(replayed.stdout.contains("replayed 2"), "{replayed}");

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
    let (binary, config) = operator(&app, &http_target_toml("real", &sink.url, 5));

    let replay = events(&binary, &config, &["replay", "evt_nosuch_id"]).await;
    assert_eq!(replay.code, Some(2), "{replay}");
    assert!(
        replay.stderr.contains("no event") && replay.stderr.contains("evt_nosuch_id"),
        "{replay}"
    );

    let list = events(&binary, &config, &["list", "--target", "nosuch"]).await;
    assert_eq!(list.code, Some(2), "{list}");
    assert!(
        list.stderr.contains("unknown target") && list.stderr.contains("nosuch"),
        "{list}"
    );
}

#[tokio::test]
async fn check_config_refuses_an_invalid_target_naming_the_target_and_the_key() {
    let binary = Binary::new().env("AUDIAN_WEBHOOK_SECRET", SECRET);
    let cases = [
        (
            "unknown kind",
            "name = \"jobs_kind\"\nkind = \"pulsar\"\nurl = \"http://127.0.0.1:1/x\"\n",
            &["jobs_kind", "kind", "pulsar"][..],
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
        let toml = format!("[tls]\nmode = \"self-signed\"\n[[forward.targets]]\n{target}");
        let config = binary.write_config(&toml);
        let run = binary.run(&["check-config", "--config", &config]).await;
        let missing: Vec<&str> = named
            .iter()
            .copied()
            .filter(|word| !run.stderr.contains(word))
            .collect();
        if run.code != Some(2) || !missing.is_empty() {
            wrong.push(format!(
                "{case}: expected exit 2 naming {missing:?}; got {run}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn events_list_and_show_escape_control_and_bidi_characters_that_came_from_outside() {
    let sink = Sink::start().await;
    let hostile = sink.url_for("/hostile");
    let targets = vec![TargetSettings {
        max_attempts: Some(1),
        ..http_target("raw", &hostile)
    }];
    let app = TestApp::spawn_with(|s| fast(&mut s.forward, targets)).await;
    // Intake refuses control characters in ids and types, but not bidi controls: a
    // right-to-left override makes this id read as "evt_exe.gpj" on a terminal.
    post_ok(
        &app,
        r#"{"id":"evt_\u202egpj.exe","type":"job.\u2066completed"}"#,
    )
    .await;
    let id = "evt_\u{202e}gpj.exe";
    reaches_state(&app, id, "raw", "dead").await;
    // A legitimate event is still taken, once; the target's hostile answer kills its delivery.
    post_ok(&app, &typed_event("evt_plain", "job.completed")).await;
    assert_eq!(app.count_events("evt_plain").await, 1);
    reaches_state(&app, "evt_plain", "raw", "dead").await;

    let (binary, config) = operator(&app, &http_target_toml("raw", &hostile, 1));
    let escaped_id = r"evt_\u{202e}gpj.exe";
    let list = events(&binary, &config, &["list"]).await;
    let show = events(&binary, &config, &["show", id]).await;
    for run in [&list, &show] {
        assert_eq!(run.code, Some(0), "{run}");
        let raw = ['\u{1b}', '\u{7}', '\u{202e}', '\u{2066}'];
        assert!(
            !run.stdout.contains(raw),
            "raw control characters printed: {run}"
        );
    }
    assert!(
        list.stdout
            .contains(&format!("{escaped_id}\traw\tdead\tattempts=1\t")),
        "{list}"
    );
    let error =
        r"evt_plain	raw	dead	attempts=1	HTTP 400 Bad Request: \u{1b}]0;pwned\u{7}\u{202e}evil";
    assert!(list.stdout.contains(error), "{list}");
    assert!(
        show.stdout
            .contains(&format!("event_id:    {escaped_id}\n")),
        "{show}"
    );
    let escaped_type = r"type:        job.\u{2066}completed";
    assert!(show.stdout.contains(escaped_type), "{show}");
}
