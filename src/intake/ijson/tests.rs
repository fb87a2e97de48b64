use proptest::prelude::*;

use super::{Rule, validate};

fn check(body: &str) -> Result<(), Rule> {
    validate(body.as_bytes(), 8)
}

#[test]
fn a_realistic_event_is_accepted() {
    let body = r#"{"id":"evt_1","type":"job.completed","created_at":"2026-12-07T10:00:00Z",
        "data":{"job_id":"j_1","duration_ms":1234,"ratio":-0.5e-3,"ok":true,"gone":null,
        "tags":["a","b\n\"c\"","\u00e9\ud83d\ude00"],"nested":{"empty":{},"list":[]}}}"#;
    assert_eq!(check(body), Ok(()));
}

#[test]
fn any_json_value_may_be_the_whole_text() {
    for body in ["1", "\"x\"", "[]", "{}", " null ", "true", "-0", "1E+5"] {
        assert_eq!(check(body), Ok(()), "{body}");
    }
}

#[test]
fn malformed_texts_are_refused_as_malformed() {
    for body in [
        "",
        " ",
        "{",
        "}",
        "[1,]",
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        r#"{a:1}"#,
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "+1",
        "tru",
        "nul",
        "[1 2]",
        r#"{"a":1}x"#,
        "{}{}",
        r#""tab	in""#,
        r#""\x""#,
        r#""\u12""#,
        r#""\u12g4""#,
        "'a'",
        "[1]]",
        "\u{feff}{}",
        "NaN",
    ] {
        assert_eq!(check(body), Err(Rule::Malformed), "{body:?}");
    }
}

#[test]
fn numbers_pass_as_they_are_within_a_doubles_range() {
    assert_eq!(check("123456789012345678901234567890"), Ok(()));
    assert_eq!(check("1.7976931348623157e308"), Ok(()));
    assert_eq!(check("1e-400"), Ok(()));
    assert_eq!(check("1e400"), Err(Rule::Malformed));
    assert_eq!(check(&"9".repeat(400)), Err(Rule::Malformed));
}

#[test]
fn a_byte_that_is_not_utf8_is_refused_before_anything_else() {
    assert_eq!(validate(b"{\"a\":\"\xff\"}", 8), Err(Rule::InvalidUtf8));
    // Even when the text is malformed elsewhere.
    assert_eq!(validate(b"{\"a\":\"\xc3\"", 8), Err(Rule::InvalidUtf8));
}

#[test]
fn surrogate_pairs_are_accepted_and_lone_halves_refused() {
    assert_eq!(check(r#""\ud83d\ude00""#), Ok(()));
    assert_eq!(check(r#""\uD83D\uDE00""#), Ok(()));
    for body in [
        r#""\ud800""#,
        r#""\ud800x""#,
        r#""\ud800\n""#,
        r#""\ud800\u0041""#,
        r#""\ud800\ud800""#,
        r#""\udc00""#,
        r#""a\ude00b""#,
        r#"{"\ud800":1}"#,
    ] {
        assert_eq!(check(body), Err(Rule::LoneSurrogate), "{body}");
    }
}

#[test]
fn a_duplicate_name_three_levels_down_is_refused() {
    let body = r#"{"id":"e","data":{"job":{"tags":{"a":1,"b":2,"a":3}}}}"#;
    assert_eq!(check(body), Err(Rule::DuplicateMember));
}

#[test]
fn names_are_compared_once_unescaped() {
    assert_eq!(check(r#"{"a":1,"\u0061":2}"#), Err(Rule::DuplicateMember));
    assert_eq!(check(r#"{"\n":1,"\u000a":2}"#), Err(Rule::DuplicateMember));
    assert_eq!(check(r#"{"a":1,"A":2,"a ":3}"#), Ok(()));
}

#[test]
fn the_same_name_in_sibling_objects_is_no_duplicate() {
    assert_eq!(check(r#"[{"a":1},{"a":2}]"#), Ok(()));
    assert_eq!(check(r#"{"a":{"a":{"a":1}}}"#), Ok(()));
}

#[test]
fn a_duplicate_among_many_members_is_found() {
    let members: Vec<String> = (0..10_000).map(|i| format!(r#""m{i}":{i}"#)).collect();
    let unique = format!("{{{}}}", members.join(","));
    assert_eq!(validate(unique.as_bytes(), 8), Ok(()));
    let twice = format!("{{{},\"m9999\":0}}", members.join(","));
    assert_eq!(validate(twice.as_bytes(), 8), Err(Rule::DuplicateMember));
    let escaped = format!("{{{},\"\\u006d17\":0}}", members.join(","));
    assert_eq!(validate(escaped.as_bytes(), 8), Err(Rule::DuplicateMember));
}

#[test]
fn nesting_at_max_depth_is_accepted_and_one_more_refused() {
    let arrays = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert_eq!(check(&arrays(8)), Ok(()));
    assert_eq!(check(&arrays(9)), Err(Rule::TooDeep));
    let objects = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
    assert_eq!(check(&objects(8)), Ok(()));
    assert_eq!(check(&objects(9)), Err(Rule::TooDeep));
    let inside = |n: usize| format!(r#"{{"id":"x","data":{}1{}}}"#, "[".repeat(n), "]".repeat(n));
    assert_eq!(check(&inside(7)), Ok(()));
    assert_eq!(check(&inside(8)), Err(Rule::TooDeep));
}

#[test]
fn a_million_open_brackets_are_refused_without_recursion() {
    let body = "[".repeat(1_000_000);
    assert_eq!(validate(body.as_bytes(), 64), Err(Rule::TooDeep));
    assert_eq!(validate(body.as_bytes(), 2_000_000), Err(Rule::Malformed));
}

/// Random JSON values up to depth 7: serde_json writes them with unique member names and no
/// lone surrogate, so each must be accepted.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".*".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,6}", inner, 0..8)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn whatever_is_accepted_serde_json_reads_back(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if validate(&bytes, 64).is_ok() {
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok());
        }
    }

    #[test]
    fn whatever_serde_json_writes_is_accepted(value in json_value()) {
        // Serialised maps have unique names, strings no lone surrogate, depth at most 7.
        let text = serde_json::to_vec(&value).unwrap();
        prop_assert_eq!(validate(&text, 64), Ok(()));
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        prop_assert_eq!(validate(&pretty, 64), Ok(()));
    }

    #[test]
    fn json_like_texts_agree_with_serde_json(text in r#"[\[\]{}",:0-9a-z\\ .eE+-]{0,24}"#) {
        if validate(text.as_bytes(), 64).is_ok() {
            prop_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok(), "{}", text);
        }
    }
}
