//! Template rendering and validation, which decide subjects and routing keys.

use audian_receiver::forward::targets::{render_template, validate_template};

#[test]
fn type_placeholder_is_replaced_by_the_event_type_everywhere() {
    assert_eq!(
        render_template("audian.{type}", "call.completed"),
        "audian.call.completed"
    );
    assert_eq!(render_template("{type}.{type}", "a"), "a.a");
    assert_eq!(render_template("fixed.subject", "a"), "fixed.subject");
}

#[test]
fn templates_with_only_type_placeholders_are_valid() {
    for template in [
        "audian.{type}",
        "{type}",
        "no.placeholder",
        "",
        "x.{type}.y.{type}",
    ] {
        assert_eq!(validate_template(template), Ok(()), "{template:?}");
    }
}

#[test]
fn unknown_placeholders_are_rejected_with_their_name() {
    let err = validate_template("audian.{event}").unwrap_err();
    assert!(err.contains("{event}"), "{err}");
    assert!(validate_template("audian.{}").is_err());
    assert!(validate_template("audian.{Type}").is_err());
}

#[test]
fn unbalanced_braces_are_rejected() {
    for template in [
        "audian.{type",
        "audian.type}",
        "{{type}}",
        "a.{ty{pe}",
        "}{type}",
    ] {
        let err = validate_template(template).expect_err(template);
        assert!(
            err.contains("unbalanced") || err.contains("unknown"),
            "{template:?}: {err}"
        );
    }
}
