//! The console's pages and actions. Reads go through `store::browse`, replay and forget
//! through the same `store` functions as `events replay|forget`; each action writes one
//! audit line. A failure of the database is a 503 page that says so, never its error text.

// A page is a response either way: the "error" is the login redirect or a problem page,
// answered once per request, so its size on the stack costs nothing worth boxing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use time::OffsetDateTime;

use super::Console;
use super::history::{outcome_totals, target_series};
use super::session::{LoginRefused, Session, cleared_cookie};
use super::views::{self, action, ago, chart, live_page, page, problem, query, when};
use crate::store::browse::{self, After, Search};
use crate::store::operator::{self, DeliveryState};
use crate::store::retention;
use crate::telemetry::TargetLabel;

type Params = HashMap<String, String>;
const PAGE: i64 = 50;
/// The overview reloads itself this often, when asked to (`?live=1`).
const OVERVIEW_REFRESH_SECS: u32 = 10;

/// A page, or the answer that replaces it (login, a problem page).
type Page = Result<Response, Response>;

fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

impl Console {
    /// The session, or a redirect to the login page.
    fn session(&self, headers: &HeaderMap) -> Result<Session, Response> {
        self.sessions
            .current(headers)
            .ok_or_else(|| see_other("/console/login"))
    }

    /// The session of a POST whose CSRF token matches it, on a console that may act.
    fn authorized(&self, headers: &HeaderMap, form: &Params) -> Result<Session, Response> {
        let session = self.session(headers)?;
        let offered = form.get("csrf").map(String::as_str).unwrap_or("");
        if !session.csrf_matches(offered) {
            return Err(html(
                StatusCode::FORBIDDEN,
                problem(
                    "Forbidden",
                    "This form has expired or was not sent by this console: nothing was done. Go back, reload and try again.",
                    Some(&session.csrf),
                ),
            ));
        }
        if self.settings.read_only {
            return Err(html(
                StatusCode::FORBIDDEN,
                problem(
                    "Read only",
                    "This console is read only (console.read_only): nothing was done.",
                    Some(&session.csrf),
                ),
            ));
        }
        Ok(session)
    }

    fn unavailable(&self, session: &Session, error: sqlx::Error) -> Response {
        tracing::warn!(%error, "console: database query failed");
        html(
            StatusCode::SERVICE_UNAVAILABLE,
            problem(
                "Database unreachable",
                "The database is unreachable or too slow; this page will work again once it answers. Nothing was changed.",
                Some(&session.csrf),
            ),
        )
    }

    fn bad_request(&self, session: &Session, message: &str) -> Response {
        html(
            StatusCode::BAD_REQUEST,
            problem("Bad request", message, Some(&session.csrf)),
        )
    }

    fn not_found(&self, session: &Session, what: &str) -> Response {
        html(
            StatusCode::NOT_FOUND,
            problem("Not found", what, Some(&session.csrf)),
        )
    }

    /// The configured target named `name` (name, kind), or a 404 page.
    fn known_target(
        &self,
        session: &Session,
        name: &str,
    ) -> Result<&(String, &'static str), Response> {
        self.targets.iter().find(|(n, _)| n == name).ok_or_else(|| {
            self.not_found(
                session,
                "No target has that name in this receiver's configuration.",
            )
        })
    }

    /// Nothing, if `id` is a recorded event; else a 404 page.
    async fn known_event(&self, session: &Session, ids: &[String]) -> Result<(), Response> {
        let unknown = operator::unknown_events(&self.pool, ids)
            .await
            .map_err(|e| self.unavailable(session, e))?;
        match unknown.is_empty() {
            true => Ok(()),
            false => Err(self.not_found(session, "No event has that id.")),
        }
    }

    fn audit(&self, action: &str, client: SocketAddr, events: &[String], target: Option<&str>) {
        tracing::info!(
            audit = true,
            action,
            events = ?events,
            target = target.unwrap_or("*"),
            client = %client.ip(),
            "console action"
        );
    }
}

fn done(page: Page) -> Response {
    page.unwrap_or_else(|refused| refused)
}

pub async fn login_form(State(console): State<Console>, headers: HeaderMap) -> Response {
    match console.sessions.current(&headers) {
        Some(_) => see_other("/console"),
        None => html(StatusCode::OK, views::login(None)),
    }
}

pub async fn login(
    State(console): State<Console>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Form(form): Form<Params>,
) -> Response {
    let offered = form.get("token").map(String::as_str).unwrap_or("");
    match console.sessions.login(client.ip(), offered) {
        Ok(session) => {
            tracing::info!(client = %client.ip(), "console: logged in");
            (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, "/console".to_owned()),
                    (header::SET_COOKIE, console.sessions.cookie_for(&session)),
                ],
            )
                .into_response()
        }
        Err(LoginRefused::WrongToken) => {
            tracing::info!(client = %client.ip(), "console: login refused (wrong token)");
            html(
                StatusCode::UNAUTHORIZED,
                views::login(Some("That token is not right.")),
            )
        }
        Err(LoginRefused::TooManyFailures) => {
            tracing::warn!(client = %client.ip(), "console: login refused (too many failures)");
            html(
                StatusCode::TOO_MANY_REQUESTS,
                views::login(Some(
                    "Too many failed logins from this address: try again in a few minutes.",
                )),
            )
        }
    }
}

pub async fn logout(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<Params>,
) -> Response {
    done((|| {
        let session = console.session(&headers)?;
        if !session.csrf_matches(form.get("csrf").map(String::as_str).unwrap_or("")) {
            return Err(html(
                StatusCode::FORBIDDEN,
                problem(
                    "Forbidden",
                    "This form has expired: nothing was done.",
                    Some(&session.csrf),
                ),
            ));
        }
        console.sessions.logout(&session);
        Ok((
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/console/login".to_owned()),
                (header::SET_COOKIE, cleared_cookie()),
            ],
        )
            .into_response())
    })())
}

pub async fn overview(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let live = params.get("live").is_some_and(|v| v == "1");
    done(overview_page(&console, &headers, live).await)
}

/// `live`: the operator asked for the page to reload itself (never by default: a page that
/// changes under the reader is an accessibility failure unless they chose it).
async fn overview_page(console: &Console, headers: &HeaderMap, live: bool) -> Page {
    let session = console.session(headers)?;
    let counts = browse::target_counts(&console.pool)
        .await
        .map_err(|e| console.unavailable(&session, e))?;
    let samples = console.history.samples();
    let now = OffsetDateTime::now_utc();
    let m = &console.metrics;
    let (outcomes, _) = outcome_totals(&samples);
    let since = samples
        .first()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s.minute as i64 * 60).ok())
        .map_or_else(String::new, when);
    let previous = match (samples.first(), samples.last()) {
        (Some(first), Some(last)) => last.previous_matches - first.previous_matches,
        _ => 0,
    };
    let body = html! {
        section aria-labelledby="targets" {
            h2 id="targets" { "Targets" }
            table {
                thead { tr {
                    th scope="col" { "Target" } th scope="col" { "Kind" } th scope="col" { "State" }
                    th scope="col" { "Backlog" } th scope="col" { "Oldest" } th scope="col" { "Retrying" }
                    th scope="col" { "Dead" } th scope="col" { "Delivered, 5 min" } th scope="col" { "Last error" }
                    th scope="col" { "Last hour" }
                } }
                tbody {
                    @for (name, kind) in console.targets.iter() {
                        @let row = counts.iter().find(|c| &c.target == name).cloned().unwrap_or_default();
                        @let label = TargetLabel::new(name);
                        @let series = target_series(&samples, name);
                        tr {
                            th scope="row" { a href={ "/console/target?name=" (query(name)) } { (name) } }
                            td { (kind) }
                            td { (target_state(&row, now)) }
                            td { (m.pending.get_or_create(&label).get()) }
                            td { (ago(m.oldest_pending.get_or_create(&label).get())) }
                            td { (row.retrying) }
                            td class=[(row.dead > 0).then_some("alarm")] { (row.dead) }
                            td { (series.delivered_5m) }
                            td class="error" { (row.last_error.as_deref().unwrap_or("—")) }
                            td { (chart(&format!("{name}: backlog (solid) and delivered per minute (dashed), last hour"), &series.backlog, &series.delivered)) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="intake" {
            h2 id="intake" { "Intake since " (since) " (the last hour at most)" }
            table {
                thead { tr { th scope="col" { "Outcome" } th scope="col" { "Requests" } } }
                tbody {
                    @for (outcome, count) in &outcomes {
                        @if *count > 0 || *outcome == "accepted" {
                            tr { th scope="row" { (outcome) } td { (count) } }
                        }
                    }
                }
            }
            p { "Watermark lag: " (ago(m.watermark_lag.get())) }
            p {
                "Previous webhook secret: " (previous) " matches since " (since)
                @if let Some(until) = console.previous_valid_until { ", valid until " (when(until)) } @else { ", no end set" }
            }
        }
    };
    let body = html! {
        p {
            @if live { "Reloading every " (OVERVIEW_REFRESH_SECS) " s. " a href="/console" { "Stop live refresh" } }
            @else { a href="/console?live=1" { "Live: reload every " (OVERVIEW_REFRESH_SECS) " s" } }
        }
        (body)
    };
    let page = match live {
        true => live_page("Overview", Some(&session.csrf), OVERVIEW_REFRESH_SECS, body),
        false => page("Overview", Some(&session.csrf), body),
    };
    Ok(html(StatusCode::OK, page))
}

fn target_state(row: &browse::TargetCounts, now: OffsetDateTime) -> String {
    match (row.parked_until, row.lease_until) {
        (Some(until), _) if until > now => format!("parked until {}", when(until)),
        (_, Some(lease)) if lease > now && row.lease_owner.is_some() => "flowing".to_owned(),
        _ => "no lease holder".to_owned(),
    }
}

pub async fn target(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    done(target_page(&console, &headers, &params).await)
}

fn after_param(params: &Params) -> Result<Option<After>, &'static str> {
    match (params.get("after_at"), params.get("after_id")) {
        (None, None) => Ok(None),
        (Some(at), Some(id)) => {
            OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .map(|at| Some(After { at, id: id.clone() }))
                .map_err(|_| "after_at must be an RFC 3339 time, as the next-page link gives it")
        }
        _ => Err("after_at and after_id go together"),
    }
}

async fn target_page(console: &Console, headers: &HeaderMap, params: &Params) -> Page {
    let session = console.session(headers)?;
    let name = params.get("name").map(String::as_str).unwrap_or("");
    let (name, kind) = console.known_target(&session, name)?;
    let state = match params.get("state").map(String::as_str) {
        None | Some("") => None,
        Some(s @ ("retrying" | "dead")) => Some(s),
        Some(_) => return Err(console.bad_request(&session, "state must be retrying or dead")),
    };
    let after = after_param(params).map_err(|m| console.bad_request(&session, m))?;
    let mut rows = browse::failures(&console.pool, name, state, after.as_ref(), PAGE + 1)
        .await
        .map_err(|e| console.unavailable(&session, e))?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let csrf = session.csrf.as_str();
    let acting = !console.settings.read_only;
    let base = format!("/console/target?name={}", query(name));
    let body = html! {
        p { "Kind: " (kind) ". Retrying and dead deliveries, the most recently failed first." }
        nav aria-label="Filter" {
            a href=(base) { "All" } " · "
            a href={ (base) "&state=retrying" } { "Retrying" } " · "
            a href={ (base) "&state=dead" } { "Dead" }
        }
        @if acting {
            (action("/console/target/replay-dead", csrf, &[("name", name)], "Replay all dead…"))
        }
        @if rows.is_empty() { p { "No retrying or dead deliveries." } } @else {
            table {
                thead { tr {
                    th scope="col" { "Event" } th scope="col" { "Type" } th scope="col" { "State" }
                    th scope="col" { "Attempts" } th scope="col" { "Next attempt" } th scope="col" { "Last error" }
                    @if acting { th scope="col" { "Action" } }
                } }
                tbody {
                    @for row in &rows {
                        tr {
                            th scope="row" { a href={ "/console/event?id=" (query(&row.event_id)) } { (row.event_id) } }
                            td { (row.event_type) }
                            td { (row.state) }
                            td { (row.attempts) }
                            td { @if row.state == "retrying" { (when(row.next_attempt_at)) } @else { "—" } }
                            td class="error" { (row.last_error.as_deref().unwrap_or("—")) }
                            @if acting { td { (action("/console/event/replay", csrf, &[("id", &row.event_id), ("target", name)], "Replay")) } }
                        }
                    }
                }
            }
        }
        @if more {
            @if let Some(last) = rows.last() {
                a href={ (base) @if let Some(s) = state { "&state=" (s) } "&after_at=" (query(&when_exact(last.updated_at))) "&after_id=" (query(&last.event_id)) } { "Next page" }
            }
        }
    };
    Ok(html(
        StatusCode::OK,
        page(&format!("Target {name}"), Some(csrf), body),
    ))
}

fn when_exact(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub async fn replay_dead(
    State(console): State<Console>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<Params>,
) -> Response {
    done(replay_dead_action(&console, client, &headers, &form).await)
}

async fn replay_dead_action(
    console: &Console,
    client: SocketAddr,
    headers: &HeaderMap,
    form: &Params,
) -> Page {
    let session = console.authorized(headers, form)?;
    let name = form.get("name").map(String::as_str).unwrap_or("");
    console.known_target(&session, name)?;
    let csrf = session.csrf.as_str();
    if form.get("confirm").map(String::as_str) != Some("yes") {
        let counts = browse::target_counts(&console.pool)
            .await
            .map_err(|e| console.unavailable(&session, e))?;
        let dead = counts
            .iter()
            .find(|c| c.target == name)
            .map_or(0, |c| c.dead);
        let body = html! {
            p { "Replay " strong { (dead) } " dead deliveries of " (name) "? Each is sent again with a fresh attempt count." }
            (action("/console/target/replay-dead", csrf, &[("name", name), ("confirm", "yes")], &format!("Replay {dead} dead deliveries")))
            p { a href={ "/console/target?name=" (query(name)) } { "Cancel" } }
        };
        return Ok(html(
            StatusCode::OK,
            page("Replay all dead?", Some(csrf), body),
        ));
    }
    let replayed = operator::replay(&console.pool, None, Some(DeliveryState::Dead), Some(name))
        .await
        .map_err(|e| console.unavailable(&session, e))?;
    console.audit("replay_dead", client, &[], Some(name));
    tracing::info!(target = name, replayed, "console: dead deliveries replayed");
    Ok(see_other(&format!("/console/target?name={}", query(name))))
}

pub async fn events(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    done(events_page(&console, &headers, &params).await)
}

/// A type glob (`*` any run, `?` one character) as a `LIKE` pattern.
pub fn glob_to_like(glob: &str) -> String {
    let mut like = String::with_capacity(glob.len());
    for c in glob.chars() {
        match c {
            '*' => like.push('%'),
            '?' => like.push('_'),
            '%' | '_' | '\\' => {
                like.push('\\');
                like.push(c);
            }
            c => like.push(c),
        }
    }
    like
}

/// An RFC 3339 time, or a browser's `datetime-local` value (`2026-12-07T10:00`, read as UTC).
fn time_param(params: &Params, key: &'static str) -> Result<Option<OffsetDateTime>, String> {
    let Some(text) = params.get(key).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let rfc3339 = time::format_description::well_known::Rfc3339;
    if let Ok(at) = OffsetDateTime::parse(text, &rfc3339) {
        return Ok(Some(at));
    }
    let local = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    time::PrimitiveDateTime::parse(text, &local)
        .map(|at| Some(at.assume_utc()))
        .map_err(|_| format!("{key} must be a time like 2026-12-07T10:00 (UTC) or RFC 3339"))
}

fn search_params(params: &Params) -> Result<(Search, Option<(i64, i64)>), String> {
    let text = |key: &str| params.get(key).filter(|v| !v.is_empty()).cloned();
    let after = match text("after") {
        None => None,
        Some(after) => {
            let parsed = after
                .split_once('.')
                .and_then(|(t, s)| Some((t.parse().ok()?, s.parse().ok()?)));
            Some(parsed.ok_or("after must be the next-page link's value")?)
        }
    };
    Ok((
        Search {
            id: text("id"),
            type_like: text("type").map(|g| glob_to_like(&g)),
            from: time_param(params, "from")?,
            to: time_param(params, "to")?,
        },
        after,
    ))
}

async fn events_page(console: &Console, headers: &HeaderMap, params: &Params) -> Page {
    let session = console.session(headers)?;
    let (search, after) = search_params(params).map_err(|m| console.bad_request(&session, &m))?;
    let mut found = browse::search(&console.pool, &search, after, PAGE + 1)
        .await
        .map_err(|e| console.unavailable(&session, e))?;
    let more = found.len() as i64 > PAGE;
    found.truncate(PAGE as usize);
    let ids: Vec<String> = found.iter().map(|f| f.event_id.clone()).collect();
    let states = browse::states(&console.pool, &ids)
        .await
        .map_err(|e| console.unavailable(&session, e))?;
    let value = |key: &str| params.get(key).cloned().unwrap_or_default();
    let next = found.last().map(|last| {
        let mut link = String::from("/console/events?");
        for key in ["id", "type", "from", "to"] {
            link.push_str(&format!("{key}={}&", query(&value(key))));
        }
        link.push_str(&format!("after={}.{}", last.txid, last.seq));
        link
    });
    let body = html! {
        form method="get" action="/console/events" class="search" {
            label for="id" { "Event id" } input id="id" name="id" value=(value("id"));
            label for="type" { "Type (glob)" } input id="type" name="type" value=(value("type")) placeholder="job.*";
            label for="from" { "From (UTC)" } input id="from" name="from" value=(value("from")) placeholder="2026-12-07T10:00";
            label for="to" { "To (UTC)" } input id="to" name="to" value=(value("to"));
            button type="submit" { "Search" }
        }
        @if found.is_empty() { p { "No event matches." } } @else {
            table {
                thead { tr { th scope="col" { "Event" } th scope="col" { "Type" } th scope="col" { "Received" } th scope="col" { "Deliveries" } } }
                tbody {
                    @for event in &found {
                        tr {
                            th scope="row" { a href={ "/console/event?id=" (query(&event.event_id)) } { (event.event_id) } }
                            td { (event.event_type) }
                            td { (when(event.received_at)) }
                            td {
                                @for (_, target, state) in states.iter().filter(|s| s.0 == event.event_id) {
                                    span class={ "state " (state) } { (target) ": " (state) } " "
                                }
                            }
                        }
                    }
                }
            }
            @if more { @if let Some(next) = &next { a href=(next) { "Next page" } } }
        }
    };
    Ok(html(
        StatusCode::OK,
        page("Events", Some(&session.csrf), body),
    ))
}

pub async fn event(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    done(event_page(&console, &headers, &params).await)
}

async fn event_page(console: &Console, headers: &HeaderMap, params: &Params) -> Page {
    let session = console.session(headers)?;
    let id = params.get("id").map(String::as_str).unwrap_or("");
    let summary = operator::event_summary(&console.pool, id)
        .await
        .map_err(|e| console.unavailable(&session, e))?
        .ok_or_else(|| console.not_found(&session, "No event has that id."))?;
    let arrival = browse::arrival(&console.pool, id)
        .await
        .map_err(|e| console.unavailable(&session, e))?;
    let deliveries = operator::for_event(&console.pool, id)
        .await
        .map_err(|e| console.unavailable(&session, e))?;
    let csrf = session.csrf.as_str();
    let acting = !console.settings.read_only;
    let storage = match (&summary.payload, &summary.payload_key_id) {
        (None, _) => "payload dropped (retention or erasure)".to_owned(),
        (Some(_), Some(key)) => format!("sealed under key {key}"),
        (Some(_), None) => "stored clear".to_owned(),
    };
    let shown = console.settings.show_payloads.then(|| {
        summary.payload.as_ref().map(|stored| {
            match console
                .payload_keys
                .open(id, summary.payload_key_id.as_deref(), stored)
            {
                Ok(body) => String::from_utf8_lossy(&body).into_owned(),
                Err(error) => format!("(cannot be opened here: {error})"),
            }
        })
    });
    let body = html! {
        ol class="timeline" {
            li {
                strong { "Received" } " " (when(summary.received_at)) ", type " (summary.event_type)
                ", from " (arrival.as_ref().and_then(|a| a.source_ip.as_deref()).unwrap_or("unknown"))
                @if let Some(size) = arrival.as_ref().and_then(|a| a.size) { ", " (size) " bytes stored" }
                ", " (storage) ", sha256 " code { (hex::encode(&summary.sha256)) }
            }
            @for d in &deliveries {
                li {
                    strong { (d.target) } ": " (d.state.as_str())
                    ", " (d.attempts) " attempt(s)"
                    @if let Some(next) = d.next_attempt_at { @if d.state == DeliveryState::Pending { ", next " (when(next)) } }
                    @if let Some(error) = &d.last_error { ", last error: " span class="error" { (error) } }
                    @if acting && summary.payload.is_some() { " " (action("/console/event/replay", csrf, &[("id", id), ("target", &d.target)], "Replay to this target")) }
                }
            }
        }
        @if acting {
            @if summary.payload.is_some() { (action("/console/event/replay", csrf, &[("id", id)], "Replay to every target")) }
            (action("/console/event/forget", csrf, &[("id", id)], "Forget (erase the payload)…"))
        }
        @match shown {
            Some(Some(text)) => { h2 { "Payload" } pre { (text) } }
            Some(None) => { p { "The payload is no longer stored." } }
            None => { p { "Payloads are hidden (console.show_payloads = false)." } }
        }
    };
    Ok(html(
        StatusCode::OK,
        page(&format!("Event {id}"), Some(csrf), body),
    ))
}

pub async fn replay_event(
    State(console): State<Console>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<Params>,
) -> Response {
    done(replay_event_action(&console, client, &headers, &form).await)
}

async fn replay_event_action(
    console: &Console,
    client: SocketAddr,
    headers: &HeaderMap,
    form: &Params,
) -> Page {
    let session = console.authorized(headers, form)?;
    let id = form.get("id").cloned().unwrap_or_default();
    let target = form
        .get("target")
        .filter(|t| !t.is_empty())
        .map(String::as_str);
    if let Some(target) = target {
        console.known_target(&session, target)?;
    }
    let ids = [id];
    console.known_event(&session, &ids).await?;
    operator::replay(&console.pool, Some(&ids), None, target)
        .await
        .map_err(|e| console.unavailable(&session, e))?;
    console.audit("replay", client, &ids, target);
    Ok(see_other(&format!("/console/event?id={}", query(&ids[0]))))
}

pub async fn forget(
    State(console): State<Console>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<Params>,
) -> Response {
    done(forget_action(&console, client, &headers, &form).await)
}

async fn forget_action(
    console: &Console,
    client: SocketAddr,
    headers: &HeaderMap,
    form: &Params,
) -> Page {
    let session = console.authorized(headers, form)?;
    let id = form.get("id").cloned().unwrap_or_default();
    let ids = [id.clone()];
    console.known_event(&session, &ids).await?;
    let csrf = session.csrf.as_str();
    if form.get("confirm_id") != Some(&id) {
        let body = html! {
            p { "Forgetting drops the stored payload of " code { (id) } " and cancels any forwarding still due. The id stays, so Audian's retries remain duplicates. This cannot be undone." }
            form method="post" action="/console/event/forget" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="id" value=(id);
                label for="confirm_id" { "Type the event id to confirm" }
                input id="confirm_id" name="confirm_id" autocomplete="off" required;
                button type="submit" { "Forget this event" }
            }
            p { a href={ "/console/event?id=" (query(&id)) } { "Cancel" } }
        };
        return Ok(html(
            StatusCode::OK,
            page("Forget this event?", Some(csrf), body),
        ));
    }
    retention::forget(&console.pool, &ids)
        .await
        .map_err(|e| console.unavailable(&session, e))?;
    console.audit("forget", client, &ids, None);
    Ok(see_other(&format!("/console/event?id={}", query(&id))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_globs_become_like_patterns_with_like_characters_escaped() {
        assert_eq!(glob_to_like("job.*"), "job.%");
        assert_eq!(glob_to_like("a?c"), "a_c");
        assert_eq!(glob_to_like("100%_\\"), "100\\%\\_\\\\");
    }

    #[test]
    fn times_are_rfc3339_or_a_browsers_local_value() {
        let params = |v: &str| Params::from([("from".to_owned(), v.to_owned())]);
        assert!(
            time_param(&params("2026-12-07T10:00"), "from")
                .unwrap()
                .is_some()
        );
        assert!(
            time_param(&params("2026-12-07T10:00:00Z"), "from")
                .unwrap()
                .is_some()
        );
        assert!(time_param(&params(""), "from").unwrap().is_none());
        assert!(
            time_param(&params("yesterday"), "from")
                .unwrap_err()
                .contains("from")
        );
    }
}
