//! `traceparent` and `tracestate` as W3C Trace Context level 1 reads them.

use axum::http::{HeaderMap, HeaderValue};

use super::*;

const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

#[test]
fn telemetry_a_valid_traceparent_is_read_and_written_back_unchanged() {
    let parent = TraceParent::parse(VALID).unwrap();
    assert_eq!(parent.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(parent.span_id_hex(), "00f067aa0ba902b7");
    assert_eq!(parent.flags, 1);
    assert_eq!(parent.to_string(), VALID);
}

#[test]
fn telemetry_malformed_traceparents_are_refused() {
    for bad in [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
    ] {
        assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn telemetry_a_later_version_may_append_fields() {
    let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes";
    assert!(TraceParent::parse(later).is_some());
    let glued = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01what";
    assert_eq!(TraceParent::parse(glued), None);
}

#[test]
fn telemetry_tracestate_travels_only_with_a_valid_traceparent() {
    let both = headers(&[("traceparent", VALID), ("tracestate", "congo=t61rcWkgMzE")]);
    let context = TraceContext::from_headers(&both).unwrap();
    assert_eq!(context.state.as_deref(), Some("congo=t61rcWkgMzE"));
    let orphan = headers(&[("traceparent", "junk"), ("tracestate", "congo=x")]);
    assert_eq!(TraceContext::from_headers(&orphan), None);
}

#[test]
fn telemetry_several_tracestate_headers_are_one_list_and_a_bad_one_is_dropped_alone() {
    let two = headers(&[
        ("traceparent", VALID),
        ("tracestate", "a=1"),
        ("tracestate", "b=2"),
    ]);
    let context = TraceContext::from_headers(&two).unwrap();
    assert_eq!(context.state.as_deref(), Some("a=1,b=2"));
    let bad = headers(&[("traceparent", VALID), ("tracestate", "novalue")]);
    assert_eq!(TraceContext::from_headers(&bad).unwrap().state, None);
}

#[test]
fn telemetry_two_traceparent_headers_start_a_new_trace() {
    let two = headers(&[("traceparent", VALID), ("traceparent", VALID)]);
    assert_eq!(TraceContext::from_headers(&two), None);
}

#[test]
fn telemetry_the_stored_form_reads_back() {
    let context = TraceContext {
        parent: TraceParent::parse(VALID).unwrap(),
        state: Some("a=1, b=2".to_owned()),
    };
    let stored = context.to_stored();
    assert_eq!(stored, format!("{VALID} a=1, b=2"));
    assert_eq!(TraceContext::from_stored(&stored), Some(context));
}

#[test]
fn telemetry_without_export_a_span_gets_a_child_id_in_its_parents_trace() {
    let parent = TraceContext::from_stored(VALID).unwrap();
    let own = context_of(&Span::none(), Some(&parent));
    assert_eq!(own.parent.trace_id, parent.parent.trace_id);
    assert_ne!(own.parent.span_id, parent.parent.span_id);
    let root = context_of(&Span::none(), None);
    assert_ne!(root.parent.trace_id, parent.parent.trace_id);
}
