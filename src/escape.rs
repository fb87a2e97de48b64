//! Text that came from outside (event ids and types from webhooks, error text from targets)
//! made safe to print on an operator's terminal: control characters could move the cursor,
//! rewrite the screen or set the window title, and Unicode bidi controls could make an id
//! read as another. Each is shown as a visible Rust-style escape (`\u{202e}`) instead.

use std::borrow::Cow;

/// `text` with C0 and C1 controls, DEL, bidi controls and line/paragraph separators (and `\`,
/// so an escape cannot be faked) written as escapes; everything else unchanged.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c == '\\' || c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Unicode's explicit directional formatting characters and marks (UAX #9).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
    )
}

#[cfg(test)]
mod tests {
    use super::for_terminal;

    #[test]
    fn plain_text_and_other_unicode_pass_unchanged() {
        assert_eq!(
            for_terminal("evt_123 job.completed"),
            "evt_123 job.completed"
        );
        assert_eq!(for_terminal("événement – 事件 🎧"), "événement – 事件 🎧");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            for_terminal("a\u{1b}[31mb\tc\nd\u{7f}e\u{85}f\u{9b}g\0"),
            "a\\u{1b}[31mb\\u{9}c\\u{a}d\\u{7f}e\\u{85}f\\u{9b}g\\u{0}"
        );
    }

    #[test]
    fn bidi_controls_and_separators_are_escaped() {
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{061c}', '\u{2028}', '\u{2029}',
        ] {
            let text = format!("x{c}y");
            assert_eq!(for_terminal(&text), format!("x\\u{{{:x}}}y", c as u32));
        }
    }

    #[test]
    fn a_backslash_is_doubled_so_an_escape_cannot_be_faked() {
        assert_eq!(for_terminal("evt\\u{202e}"), "evt\\\\u{202e}");
    }
}
