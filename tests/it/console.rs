//! The console's answers that a browser test need not drive: off without a token, a 404
//! page for an unknown event, a 400 page naming the bad parameter, a 503 page while the
//! database is unreachable (never its error text), and a read-only console that refuses to
//! act. The pages themselves are driven in Chromium by tests/browser/.

use audian_receiver::config::{SecretUrl, Settings};
use secrecy::SecretString;

use crate::fixtures::{POSTGRES_ADDR, Proxy, TestApp, TestDb, event, test_secrets};

const TOKEN: &str = "console-test-token-0123456789";
const FORM: &str = "application/x-www-form-urlencoded";

async fn console_app(adjust: impl FnOnce(&TestDb, &mut Settings)) -> TestApp {
    let secrets = audian_receiver::config::Secrets {
        console_token: Some(SecretString::from(TOKEN)),
        ..test_secrets()
    };
    TestApp::spawn_with_secrets(secrets, adjust).await
}

/// Logs in and returns the session cookie and the page's CSRF token.
async fn login(app: &TestApp) -> (String, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = client
        .post(format!("{}/console/login", app.admin))
        .header("content-type", FORM)
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let cookie = answer.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = get(app, &cookie, "/console").await;
    let csrf = page
        .1
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned();
    (cookie, csrf)
}

async fn get(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let answer = reqwest::Client::new()
        .get(format!("{}{path}", app.admin))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

#[tokio::test]
async fn without_a_token_the_console_is_off() {
    let app = TestApp::spawn().await;
    let answer = reqwest::get(format!("{}/console/login", app.admin))
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
}

#[tokio::test]
async fn an_unknown_event_is_a_404_page_and_a_bad_parameter_a_400_page_naming_it() {
    let app = console_app(|_, _| {}).await;
    let (cookie, _) = login(&app).await;
    let (status, page) = get(&app, &cookie, "/console/event?id=evt_nobody").await;
    assert_eq!(status, 404);
    assert!(page.contains("No event has that id."));
    let (status, page) = get(&app, &cookie, "/console/events?from=yesterday").await;
    assert_eq!(status, 400);
    assert!(page.contains("from must be a time"), "{page}");
    let (status, page) = get(&app, &cookie, "/console/target?name=nobody").await;
    assert_eq!(status, 404);
    assert!(page.contains("No target has that name"));
}

#[tokio::test]
async fn while_the_database_is_unreachable_pages_say_so_with_503_and_no_error_text() {
    let proxy = Proxy::start(POSTGRES_ADDR).await;
    let via = proxy.addr();
    let app = console_app(move |db, s| {
        s.database.url = SecretUrl::new(&db.url_via(&via));
        s.database.acquire_timeout_ms = 500;
    })
    .await;
    let (cookie, _) = login(&app).await;
    proxy.cut();
    for path in ["/console", "/console/events", "/console/event?id=evt_x"] {
        let (status, page) = get(&app, &cookie, path).await;
        assert_eq!(status, 503, "{path}");
        assert!(
            page.contains("The database is unreachable"),
            "{path}: {page}"
        );
        for leak in ["sqlx", "pool timed out", "127.0.0.1", "postgres"] {
            assert!(!page.contains(leak), "{path} shows {leak:?}");
        }
    }
    proxy.restore();
}

#[tokio::test]
async fn a_read_only_console_shows_no_actions_and_refuses_them() {
    let app = console_app(|_, s| s.console.read_only = true).await;
    assert_eq!(app.post_signed(&event("evt_ro")).await.status(), 200);
    let (cookie, csrf) = login(&app).await;
    let (status, page) = get(&app, &cookie, "/console/event?id=evt_ro").await;
    assert_eq!(status, 200);
    assert!(!page.contains("Forget"), "no forget button");
    let answer = reqwest::Client::new()
        .post(format!("{}/console/event/forget", app.admin))
        .header("cookie", &cookie)
        .header("content-type", FORM)
        .body(format!("csrf={csrf}&id=evt_ro&confirm_id=evt_ro"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    let mut conn = app.db.connect().await;
    let kept: bool =
        sqlx::query_scalar("SELECT payload IS NOT NULL FROM events WHERE event_id = 'evt_ro'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(kept, "the payload is still stored");
}
