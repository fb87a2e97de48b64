//! Reading the two forwarding headers into chains of hops, left (the first sender) to right
//! (the proxy nearest us). Lenient about what proxies really write (ports, brackets, both
//! quoted and bare values); an entry that names no address becomes an empty hop, which only
//! matters if a trusted proxy vouches for it.

use std::iter::Peekable;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::Chars;

use axum::http::HeaderMap;
use axum::http::header::{FORWARDED, HeaderName};

use super::{Hop, MalformedChain};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Every `X-Forwarded-For` instance, in order, as one chain; `None` when there is none.
pub(super) fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Hop>> {
    let mut values = headers.get_all(X_FORWARDED_FOR).iter().peekable();
    values.peek()?;
    let chain = values
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        // Empty list members are ignored, as in any HTTP list (RFC 9110 §5.6.1).
        .filter(|entry| !entry.trim_ascii().is_empty())
        .map(|entry| std::str::from_utf8(entry).ok().and_then(parse_node))
        .collect();
    Some(chain)
}

/// Every `Forwarded` instance, in order, as the chain of its `for=` parameters; `None` when
/// there is none, `Err` when it cannot even be split into elements.
pub(super) fn forwarded(headers: &HeaderMap) -> Option<Result<Vec<Hop>, MalformedChain>> {
    let mut values = headers.get_all(FORWARDED).iter().peekable();
    values.peek()?;
    let mut chain = Vec::new();
    for value in values {
        let elements = value
            .to_str()
            .map_err(|_| MalformedChain)
            .and_then(elements);
        match elements {
            Ok(elements) => chain.extend(elements.iter().map(|e| for_node(e))),
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok(chain))
}

/// An element's `for=` value (the name is case-insensitive); an element without one names
/// no address.
fn for_node(element: &[(String, String)]) -> Hop {
    let (_, value) = element
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("for"))?;
    parse_node(value)
}

type Element = Vec<(String, String)>;

/// `forwarded-element *( "," forwarded-element )`, each `pair *( ";" pair )`, `pair` =
/// `token "=" ( token / quoted-string )` (RFC 7239 §4). Quoted strings may hold `,` and `;`.
fn elements(text: &str) -> Result<Vec<Element>, MalformedChain> {
    let mut elements = vec![Element::new()];
    let mut chars = text.chars().peekable();
    loop {
        skip_space(&mut chars);
        let name: String = std::iter::from_fn(|| chars.next_if(|c| is_tchar(*c))).collect();
        match chars.next() {
            Some('=') if !name.is_empty() => {
                let value = value(&mut chars)?;
                elements
                    .last_mut()
                    .expect("never empty")
                    .push((name, value));
                skip_space(&mut chars);
                match chars.next() {
                    Some(';') => {}
                    Some(',') => elements.push(Element::new()),
                    None => break,
                    Some(_) => return Err(MalformedChain),
                }
            }
            // Empty list members (`a=1,,b=2`) are ignored, as in any HTTP list.
            Some(',') if name.is_empty() => elements.push(Element::new()),
            None if name.is_empty() => break,
            _ => return Err(MalformedChain),
        }
    }
    elements.retain(|element| !element.is_empty());
    Ok(elements)
}

fn skip_space(chars: &mut Peekable<Chars<'_>>) {
    while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
}

/// A token, or a quoted string with its `\` escapes undone.
fn value(chars: &mut Peekable<Chars<'_>>) -> Result<String, MalformedChain> {
    if chars.next_if_eq(&'"').is_none() {
        return Ok(std::iter::from_fn(|| chars.next_if(|c| is_tchar(*c) || *c == ':')).collect());
    }
    let mut value = String::new();
    loop {
        match chars.next().ok_or(MalformedChain)? {
            '"' => return Ok(value),
            '\\' => value.push(chars.next().ok_or(MalformedChain)?),
            c => value.push(c),
        }
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A node as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]`
/// or `[2001:db8::1]:4711`. `unknown` and obfuscated names (`_hidden`) name no address.
fn parse_node(node: &str) -> Hop {
    let node = node.trim();
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return inside.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let (host, port) = node.rsplit_once(':')?;
    let ip = host.parse::<Ipv4Addr>().ok()?;
    is_port(port).then_some(IpAddr::V4(ip))
}

/// A port number, or an obfuscated port (`_abc`) as RFC 7239 §6.3 allows.
fn is_port(port: &str) -> bool {
    let obfuscated = port
        .strip_prefix('_')
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()));
    obfuscated || port.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> Hop {
        Some(text.parse().unwrap())
    }

    #[test]
    fn nodes_are_read_with_or_without_ports_and_brackets() {
        assert_eq!(parse_node(" 192.0.2.1 "), ip("192.0.2.1"));
        assert_eq!(parse_node("192.0.2.1:4711"), ip("192.0.2.1"));
        assert_eq!(parse_node("2001:db8::1"), ip("2001:db8::1"));
        assert_eq!(parse_node("[2001:db8::1]"), ip("2001:db8::1"));
        assert_eq!(parse_node("[2001:db8::1]:4711"), ip("2001:db8::1"));
        assert_eq!(parse_node("[2001:db8::1]:_port"), ip("2001:db8::1"));
    }

    #[test]
    fn nodes_that_name_no_address_are_empty_hops() {
        for node in [
            "unknown",
            "_hidden",
            "",
            "192.0.2.1:port",
            "192.0.2.1:99999",
            "[2001:db8::1",
            "[2001:db8::1]x",
            "[192.0.2.1]",
            "example.com",
            "2001:db8::1:80x",
        ] {
            assert_eq!(parse_node(node), None, "{node:?}");
        }
    }

    #[test]
    fn forwarded_elements_respect_quotes_and_list_syntax() {
        let parsed = elements(
            r#"for="[2001:db8:cafe::17]:4711";proto=https, For=192.0.2.60;by="a,b;c",,for=_x"#,
        )
        .unwrap();
        let hops: Vec<Hop> = parsed.iter().map(|e| for_node(e)).collect();
        assert_eq!(hops, [ip("2001:db8:cafe::17"), ip("192.0.2.60"), None]);
    }

    #[test]
    fn quoted_pairs_are_unescaped() {
        let parsed = elements(r#"for="192.0.2.\60""#).unwrap();
        assert_eq!(for_node(&parsed[0]), ip("192.0.2.60"));
    }

    #[test]
    fn forwarded_syntax_errors_are_malformed() {
        for text in [
            "for=\"192.0.2.1",
            "for",
            "=192.0.2.1",
            "for=192.0.2.1 garbage",
            "for=192.0.2.1;;",
            "for=\"x\\",
        ] {
            assert_eq!(elements(text), Err(MalformedChain), "{text:?}");
        }
    }

    #[test]
    fn empty_list_members_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static(", 192.0.2.1,,"));
        headers.append("forwarded", HeaderValue::from_static(",for=192.0.2.2, ,"));
        assert_eq!(x_forwarded_for(&headers).unwrap(), [ip("192.0.2.1")]);
        assert_eq!(forwarded(&headers).unwrap().unwrap(), [ip("192.0.2.2")]);
    }

    #[test]
    fn an_unquoted_ipv4_with_port_is_tolerated() {
        let parsed = elements("for=192.0.2.1:8080").unwrap();
        assert_eq!(for_node(&parsed[0]), ip("192.0.2.1"));
    }
}
