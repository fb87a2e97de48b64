//! Where a URL carries a credential: the password of its user part, a NATS token (a user part
//! without a password, which NATS reads as a token), or a query parameter named like a
//! password (`?password=`, `?token=`, …). Found by position, so that each can be refused in
//! the file, redacted when printed, and scrubbed from error text.

use std::ops::Range;

/// Query parameters whose value is a secret: compared case-insensitively, after
/// percent-decoding the name.
pub const SECRET_PARAMETERS: [&str; 11] = [
    "password",
    "pass",
    "passwd",
    "secret",
    "token",
    "access_token",
    "sslpassword",
    "auth_token",
    "api_key",
    "apikey",
    "client_secret",
];

/// Schemes whose user part, without a password, is a token (NATS: `nats://TOKEN@host`).
const TOKEN_SCHEMES: [&str; 2] = ["nats", "tls"];

/// Which credential a URL holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// `scheme://user:PASSWORD@host`
    Password,
    /// `nats://TOKEN@host`
    Token,
    /// `?name=VALUE`, with the parameter's name as written.
    Query(String),
}

impl Place {
    /// For error messages: what and where, never the value.
    pub fn describe(&self) -> String {
        match self {
            Place::Password => "a password in its user part".to_owned(),
            Place::Token => "a NATS token in its user part".to_owned(),
            Place::Query(name) => format!("a secret in its query string (`{name}=`)"),
        }
    }
}

/// A credential's kind and the byte range of its value in the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub place: Place,
    pub span: Range<usize>,
}

impl Credential {
    /// Whether the value is written out, rather than empty or only `${NAME}` placeholders.
    pub fn is_literal(&self, url: &str) -> bool {
        let value = &url[self.span.clone()];
        !value.is_empty() && !is_placeholder(value)
    }
}

/// Every credential in `url`, left to right.
pub fn credentials(url: &str) -> Vec<Credential> {
    let Some(scheme_end) = url.find("://") else {
        return Vec::new();
    };
    let scheme = &url[..scheme_end];
    let start = scheme_end + 3;
    let rest = &url[start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let mut found = Vec::new();
    if let Some(userinfo_len) = rest[..authority_len].rfind('@') {
        let userinfo = &rest[..userinfo_len];
        let token_scheme = TOKEN_SCHEMES.iter().any(|s| scheme.eq_ignore_ascii_case(s));
        let place_and_from = match userinfo.find(':') {
            Some(colon) => Some((Place::Password, colon + 1)),
            None if token_scheme => Some((Place::Token, 0)),
            None => None,
        };
        if let Some((place, from)) = place_and_from {
            let span = start + from..start + userinfo_len;
            found.push(Credential { place, span });
        }
    }
    found.extend(query_credentials(url, start + authority_len));
    found
}

/// Credentials among the query parameters after `from` (the end of the authority).
fn query_credentials(url: &str, from: usize) -> Vec<Credential> {
    let Some(question) = url[from..].find('?') else {
        return Vec::new();
    };
    let query_start = from + question + 1;
    let query_end = url[query_start..]
        .find('#')
        .map_or(url.len(), |i| query_start + i);
    let mut found = Vec::new();
    let mut at = query_start;
    for pair in url[query_start..query_end].split('&') {
        if let Some((name, _)) = pair.split_once('=') {
            let decoded = percent_decode(name);
            if SECRET_PARAMETERS
                .iter()
                .any(|p| decoded.eq_ignore_ascii_case(p))
            {
                let span = at + name.len() + 1..at + pair.len();
                let place = Place::Query(name.to_owned());
                found.push(Credential { place, span });
            }
        }
        at += pair.len() + 1;
    }
    found
}

/// Whether `value` is made only of `${NAME}` placeholders (filled from the environment).
pub fn is_placeholder(value: &str) -> bool {
    let mut rest = value;
    while let Some(after) = rest.strip_prefix("${") {
        match after.find('}') {
            Some(end) if end > 0 => rest = &after[end + 1..],
            _ => return false,
        }
    }
    rest.is_empty() && !value.is_empty()
}

/// `%XX` sequences decoded; anything else kept as is.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(url: &str) -> Vec<(Place, &str)> {
        credentials(url)
            .into_iter()
            .map(|c| (c.place, &url[c.span]))
            .collect()
    }

    #[test]
    fn finds_the_password_of_the_user_part() {
        assert_eq!(
            places("amqp://guest:pw@h:5672/%2f"),
            [(Place::Password, "pw")]
        );
        assert_eq!(places("amqp://guest@h/"), []);
        assert_eq!(places("redis://:pw@h"), [(Place::Password, "pw")]);
    }

    #[test]
    fn a_nats_user_part_without_a_password_is_a_token() {
        assert_eq!(places("nats://s3cr3t@h:4222"), [(Place::Token, "s3cr3t")]);
        assert_eq!(places("TLS://s3cr3t@h:4222"), [(Place::Token, "s3cr3t")]);
        assert_eq!(places("nats://u:p@h"), [(Place::Password, "p")]);
        assert_eq!(places("nats://h:4222"), []);
    }

    #[test]
    fn finds_secret_query_parameters_whatever_their_case_or_encoding() {
        let url = "postgres://u@h/db?sslmode=require&PassWord=a&x=1&sslpassword=b&pass%77d=c#f";
        let query = |name: &str| Place::Query(name.to_owned());
        assert_eq!(
            places(url),
            [
                (query("PassWord"), "a"),
                (query("sslpassword"), "b"),
                (query("pass%77d"), "c"),
            ]
        );
        for name in SECRET_PARAMETERS {
            assert_eq!(places(&format!("http://h/?{name}=v")).len(), 1, "{name}");
        }
        assert_eq!(places("http://h/?passwords=v&token"), []);
    }

    #[test]
    fn placeholders_are_not_literal_credentials() {
        assert!(is_placeholder("${A}"));
        assert!(is_placeholder("${A}${B}"));
        for value in ["", "x${A}", "${A}x", "${", "${}", "$A"] {
            assert!(!is_placeholder(value), "{value:?}");
        }
        let url = "nats://${NATS_TOKEN}@h";
        assert!(!credentials(url)[0].is_literal(url));
    }

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(percent_decode("a%20b%zz%"), "a b%zz%");
    }
}
