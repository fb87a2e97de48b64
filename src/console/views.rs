//! The console's HTML, from compile-time-checked maud templates: every value from outside
//! (event ids, types, errors, payloads) is escaped by the template, and nothing here runs
//! script or carries inline style, so the Content-Security-Policy can forbid both.

use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Every page: a title, the navigation (when logged in) and the body.
pub fn page(title: &str, csrf: Option<&str>, body: Markup) -> Markup {
    document(title, csrf, None, body)
}

/// A page that reloads itself every `seconds`: live without a line of script (a meta
/// refresh, which the CSP allows and a browser with JavaScript off still follows).
pub fn live_page(title: &str, csrf: Option<&str>, seconds: u32, body: Markup) -> Markup {
    document(title, csrf, Some(seconds), body)
}

fn document(title: &str, csrf: Option<&str>, refresh: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh { meta http-equiv="refresh" content=(seconds); }
                title { (title) " · audian-receiver" }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                header {
                    nav aria-label="Console" {
                        a href="/console" { "audian-receiver" }
                        @if let Some(csrf) = csrf {
                            a href="/console" { "Overview" }
                            a href="/console/events" { "Events" }
                            form method="post" action="/console/logout" class="inline" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page that says what went wrong, and nothing internal.
pub fn problem(title: &str, message: &str, csrf: Option<&str>) -> Markup {
    page(title, csrf, html! { p role="alert" { (message) } })
}

pub fn login(message: Option<&str>) -> Markup {
    page(
        "Log in",
        None,
        html! {
            @if let Some(message) = message { p role="alert" { (message) } }
            form method="post" action="/console/login" {
                label for="token" { "Console token" }
                input id="token" name="token" type="password" autocomplete="current-password" required;
                button type="submit" { "Log in" }
            }
        },
    )
}

/// A form that posts `fields` (plus the CSRF token) to `action`, with one button.
pub fn action(action: &str, csrf: &str, fields: &[(&str, &str)], label: &str) -> Markup {
    html! {
        form method="post" action=(action) class="inline" {
            input type="hidden" name="csrf" value=(csrf);
            @for (name, value) in fields {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" { (label) }
        }
    }
}

pub fn when(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

pub fn ago(seconds: f64) -> String {
    match seconds {
        s if s < 1.0 => "—".to_owned(),
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

/// A small line chart of two series over the last hour: backlog (solid) and delivered per
/// minute (dashed), each scaled to its own maximum. Presentation attributes only: no style.
pub fn chart(label: &str, backlog: &[i64], delivered: &[u64]) -> Markup {
    const WIDTH: f64 = 180.0;
    const HEIGHT: f64 = 36.0;
    let line = |values: Vec<f64>| -> String {
        let max = values.iter().cloned().fold(1.0_f64, f64::max);
        let step = WIDTH / (values.len().max(2) - 1) as f64;
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{:.1},{:.1}",
                    i as f64 * step,
                    HEIGHT - v / max * (HEIGHT - 2.0) - 1.0
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let backlog = line(backlog.iter().map(|&v| v.max(0) as f64).collect());
    let delivered = line(delivered.iter().map(|&v| v as f64).collect());
    html! {
        svg width="180" height="36" viewBox="0 0 180 36" role="img" aria-label=(label) {
            title { (label) }
            polyline points=(backlog) fill="none" stroke="#b3261e" stroke-width="1.5" {}
            polyline points=(delivered) fill="none" stroke="#1b6e3a" stroke-width="1.5" stroke-dasharray="3 2" {}
        }
    }
}

/// Percent-encodes a query-string value.
pub fn query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_is_escaped() {
        let markup = problem(
            "x",
            r#"<script>alert(1)</script>"onmouseover=alert(1)"#,
            None,
        );
        let text = markup.into_string();
        assert!(!text.contains("<script>alert"));
        assert!(text.contains("&lt;script&gt;"));
        assert!(!text.contains(r#""onmouseover"#));
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(query("evt 1&x=<y>"), "evt%201%26x%3D%3Cy%3E");
    }
}
