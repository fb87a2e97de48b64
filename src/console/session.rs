//! Who is logged in to the console: a random session id in an HttpOnly, SameSite=Strict
//! cookie, a CSRF token bound to each session for every POST, and a limit on failed logins
//! per client address. Sessions live in memory: a restart logs everyone out, nothing else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

pub const COOKIE_NAME: &str = "audian_console";
/// Failed logins allowed per client address within [`FAILURE_WINDOW`].
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(300);

/// A logged-in operator.
#[derive(Clone)]
pub struct Session {
    pub id: String,
    /// Must come back in every form this session posts.
    pub csrf: String,
    expires: Instant,
}

impl Session {
    /// Whether `offered` is this session's CSRF token, compared in constant time.
    pub fn csrf_matches(&self, offered: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(offered.as_bytes()))
    }
}

#[derive(Clone)]
pub struct Sessions {
    token: Arc<SecretString>,
    lifetime: Duration,
    open: Arc<Mutex<HashMap<String, Session>>>,
    failures: Arc<Mutex<HashMap<IpAddr, (u32, Instant)>>>,
}

/// Why a login did not open a session.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginRefused {
    WrongToken,
    TooManyFailures,
}

impl Sessions {
    pub fn new(token: SecretString, lifetime: Duration) -> Self {
        Self {
            token: Arc::new(token),
            lifetime,
            open: Arc::default(),
            failures: Arc::default(),
        }
    }

    /// Opens a session if `offered` is the token (compared in constant time), unless this
    /// client has failed too often lately.
    pub fn login(&self, client: IpAddr, offered: &str) -> Result<Session, LoginRefused> {
        let now = Instant::now();
        {
            let mut failures = self.failures.lock().expect("failures lock");
            failures.retain(|_, (_, since)| now.duration_since(*since) < FAILURE_WINDOW);
            if failures
                .get(&client)
                .is_some_and(|(n, _)| *n >= MAX_FAILURES)
            {
                return Err(LoginRefused::TooManyFailures);
            }
        }
        let expected = self.token.expose_secret().as_bytes();
        if !bool::from(expected.ct_eq(offered.as_bytes())) {
            let mut failures = self.failures.lock().expect("failures lock");
            failures.entry(client).or_insert((0, now)).0 += 1;
            return Err(LoginRefused::WrongToken);
        }
        let session = Session {
            id: random_hex(),
            csrf: random_hex(),
            expires: now + self.lifetime,
        };
        let mut open = self.open.lock().expect("sessions lock");
        open.retain(|_, s| s.expires > now);
        open.insert(session.id.clone(), session.clone());
        Ok(session)
    }

    /// The live session the request's cookie names, if any.
    pub fn current(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE_NAME)?;
        let mut open = self.open.lock().expect("sessions lock");
        match open.get(id) {
            Some(session) if session.expires > Instant::now() => Some(session.clone()),
            Some(_) => {
                open.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn logout(&self, session: &Session) {
        self.open.lock().expect("sessions lock").remove(&session.id);
    }

    /// The `Set-Cookie` value that carries `session`.
    pub fn cookie_for(&self, session: &Session) -> String {
        format!(
            "{COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={}",
            session.id,
            self.lifetime.as_secs()
        )
    }
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie() -> String {
    format!("{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0")
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn sessions() -> Sessions {
        Sessions::new(SecretString::from("right-token"), Duration::from_secs(60))
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_right_token_opens_a_session_the_cookie_finds() {
        let sessions = sessions();
        let session = sessions
            .login([127, 0, 0, 1].into(), "right-token")
            .unwrap();
        let headers = with_cookie(&format!("other=1; {COOKIE_NAME}={}", session.id));
        assert_eq!(sessions.current(&headers).unwrap().id, session.id);
        sessions.logout(&session);
        assert!(sessions.current(&headers).is_none());
    }

    #[test]
    fn failed_logins_are_limited_per_client() {
        let sessions = sessions();
        let client: IpAddr = [192, 0, 2, 1].into();
        for _ in 0..MAX_FAILURES {
            assert_eq!(
                sessions.login(client, "wrong").err(),
                Some(LoginRefused::WrongToken)
            );
        }
        assert_eq!(
            sessions.login(client, "right-token").err(),
            Some(LoginRefused::TooManyFailures)
        );
        assert!(sessions.login([192, 0, 2, 2].into(), "right-token").is_ok());
    }

    #[test]
    fn the_csrf_token_must_match_exactly() {
        let session = sessions()
            .login([127, 0, 0, 1].into(), "right-token")
            .unwrap();
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches(""));
        assert!(!session.csrf_matches(&session.csrf[1..]));
    }
}
