//! Forwarding verified events to downstream targets through the Postgres outbox.

/// Checks a subject or routing-key template: only `{type}` may appear in braces.
pub fn validate_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(format!("has an unmatched `}}` in {template:?}"));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("has an unclosed `{{` in {template:?}"))?;
        if &after[..close] != "type" {
            return Err(format!(
                "has an unknown placeholder `{{{}}}` (only `{{type}}` exists)",
                &after[..close]
            ));
        }
        rest = &after[close + 1..];
    }
    if template.is_empty() {
        return Err("is empty".to_owned());
    }
    Ok(())
}
