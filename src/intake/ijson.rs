//! The signed body checked as I-JSON (RFC 7493) before anything is stored: a body that is
//! valid JSON to the envelope parser can still break a consumer's parser — too deep for its
//! recursion, a byte that is not UTF-8, a lone surrogate, or a member named twice that two
//! parsers resolve differently — and a consumer that cannot parse it redelivers it forever.
//! One pass over the bytes, no tree and no copy: what is stored stays what Audian signed.

use std::borrow::Cow;
use std::collections::HashSet;

/// Which rule a body broke, first in reading order (UTF-8 is checked first, for the whole
/// body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Not one JSON text (RFC 8259).
    Malformed,
    InvalidUtf8,
    /// A `\uD800`–`\uDFFF` escape that is not half of a surrogate pair.
    LoneSurrogate,
    /// Two members of one object whose names are equal once unescaped.
    DuplicateMember,
    /// More arrays and objects open at once than allowed.
    TooDeep,
}

impl Rule {
    /// The refusal's reason and metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::LoneSurrogate => "lone_surrogate",
            Self::DuplicateMember => "duplicate_member",
            Self::TooDeep => "too_deep",
        }
    }
}

/// Checks that `body` is one JSON text that is also I-JSON, nested at most `max_depth`
/// (the top-level value's own brackets count as 1). Numbers are not range-checked: Audian
/// may send integers beyond 2^53, and the bytes are passed on as they are.
pub fn validate(body: &[u8], max_depth: usize) -> Result<(), Rule> {
    std::str::from_utf8(body).map_err(|_| Rule::InvalidUtf8)?;
    Scanner {
        bytes: body,
        at: 0,
        max_depth,
    }
    .document()
}

/// Objects with more members than this track their names in a hash set; fewer, in a list
/// compared one by one (cheaper for the handful of members most objects have).
const LINEAR_NAMES: usize = 16;

/// An open container: arrays need nothing more; objects remember their member names.
enum Open<'a> {
    Array,
    Object(Names<'a>),
}

/// The member names seen so far in one object, as UTF-8 bytes: borrowed from the body where
/// a name holds no escape, decoded where it does — equal names are equal bytes either way.
#[derive(Default)]
struct Names<'a> {
    list: Vec<Cow<'a, [u8]>>,
    set: HashSet<Cow<'a, [u8]>>,
}

impl<'a> Names<'a> {
    /// Adds `name`, or fails if the object already has it.
    fn insert(&mut self, name: Cow<'a, [u8]>) -> Result<(), Rule> {
        if self.set.is_empty() && self.list.len() < LINEAR_NAMES {
            if self.list.contains(&name) {
                return Err(Rule::DuplicateMember);
            }
            self.list.push(name);
            return Ok(());
        }
        if self.set.is_empty() {
            self.set.extend(self.list.drain(..));
        }
        if self.set.insert(name) {
            Ok(())
        } else {
            Err(Rule::DuplicateMember)
        }
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
    max_depth: usize,
}

impl<'a> Scanner<'a> {
    /// One value and nothing after it but whitespace. Containers are walked with an explicit
    /// stack, so no input can overflow the call stack.
    fn document(&mut self) -> Result<(), Rule> {
        let mut stack: Vec<Open<'a>> = Vec::new();
        self.skip_space();
        'value: loop {
            // At the start of a value.
            match self.peek() {
                Some(b'{') | Some(b'[') => {
                    if stack.len() >= self.max_depth {
                        return Err(Rule::TooDeep);
                    }
                    let object = self.bytes[self.at] == b'{';
                    self.at += 1;
                    self.skip_space();
                    if object {
                        if self.eat(b'}') {
                            // An empty object: a complete value.
                        } else {
                            stack.push(Open::Object(Names::default()));
                            self.member_name(&mut stack)?;
                            continue 'value;
                        }
                    } else if !self.eat(b']') {
                        stack.push(Open::Array);
                        continue 'value;
                    }
                }
                Some(b'"') => {
                    self.string(false)?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(Rule::Malformed),
            }
            // After a complete value: close containers until one wants another value.
            loop {
                self.skip_space();
                let Some(open) = stack.last() else {
                    return if self.at == self.bytes.len() {
                        Ok(())
                    } else {
                        Err(Rule::Malformed)
                    };
                };
                let close = match open {
                    Open::Array => b']',
                    Open::Object(_) => b'}',
                };
                if self.eat(b',') {
                    self.skip_space();
                    if matches!(open, Open::Object(_)) {
                        self.member_name(&mut stack)?;
                    }
                    continue 'value;
                }
                if !self.eat(close) {
                    return Err(Rule::Malformed);
                }
                stack.pop();
            }
        }
    }

    /// A member name, checked against its object's others, and the colon after it.
    fn member_name(&mut self, stack: &mut [Open<'a>]) -> Result<(), Rule> {
        if self.peek() != Some(b'"') {
            return Err(Rule::Malformed);
        }
        let name = self.string(true)?;
        if let Some(Open::Object(names)) = stack.last_mut() {
            names.insert(name)?;
        }
        self.skip_space();
        if !self.eat(b':') {
            return Err(Rule::Malformed);
        }
        self.skip_space();
        Ok(())
    }

    /// A string at `"`. With `decode`, returns its content (raw when it has no escape);
    /// without, only checks it and returns nothing worth reading.
    fn string(&mut self, decode: bool) -> Result<Cow<'a, [u8]>, Rule> {
        self.at += 1;
        let start = self.at;
        let mut decoded: Option<Vec<u8>> = None;
        loop {
            let run = self.bytes[self.at..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .ok_or(Rule::Malformed)?;
            if let Some(text) = decoded.as_mut() {
                text.extend_from_slice(&self.bytes[self.at..self.at + run]);
            }
            self.at += run;
            match self.bytes[self.at] {
                b'"' => {
                    self.at += 1;
                    return Ok(match decoded {
                        Some(text) => Cow::Owned(text),
                        None => Cow::Borrowed(&self.bytes[start..self.at - 1]),
                    });
                }
                b'\\' => {
                    if decode && decoded.is_none() {
                        decoded = Some(self.bytes[start..self.at].to_vec());
                    }
                    self.at += 1;
                    let character = self.escape()?;
                    if let Some(text) = decoded.as_mut() {
                        let mut utf8 = [0u8; 4];
                        text.extend_from_slice(character.encode_utf8(&mut utf8).as_bytes());
                    }
                }
                _ => return Err(Rule::Malformed),
            }
        }
    }

    /// After a backslash: the one escaped character.
    fn escape(&mut self) -> Result<char, Rule> {
        let escape = self.peek().ok_or(Rule::Malformed)?;
        self.at += 1;
        Ok(match escape {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => self.unicode_escape()?,
            _ => return Err(Rule::Malformed),
        })
    }

    /// After `\u`: four hex digits, and for a high surrogate the `\uDC00`–`\uDFFF` that must
    /// follow it.
    fn unicode_escape(&mut self) -> Result<char, Rule> {
        let first = self.hex4()?;
        match first {
            0xd800..=0xdbff => {
                if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                    return Err(Rule::LoneSurrogate);
                }
                self.at += 2;
                let second = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&second) {
                    // Not a pair: the high half stands alone, whatever the next escape is.
                    return Err(Rule::LoneSurrogate);
                }
                let code = 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
                char::from_u32(code).ok_or(Rule::LoneSurrogate)
            }
            0xdc00..=0xdfff => Err(Rule::LoneSurrogate),
            code => char::from_u32(code).ok_or(Rule::Malformed),
        }
    }

    fn hex4(&mut self) -> Result<u32, Rule> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .ok_or(Rule::Malformed)?;
        let mut code = 0u32;
        for &digit in digits {
            let value = (digit as char).to_digit(16).ok_or(Rule::Malformed)?;
            code = code << 4 | value;
        }
        self.at += 4;
        Ok(code)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` whose magnitude a double can hold
    /// (RFC 7493 §2.2; serde_json refuses larger ones too). Precision is not checked:
    /// integers beyond 2^53 pass, as they are.
    fn number(&mut self) -> Result<(), Rule> {
        let start = self.at;
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Rule::Malformed),
        }
        let integer_digits = self.at - start;
        if self.eat(b'.') {
            self.required_digits()?;
        }
        let mut exponent = false;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            exponent = true;
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.required_digits()?;
        }
        // Only an exponent or some 300 digits can go past f64::MAX (1.8e308).
        if exponent || integer_digits > 300 {
            let text =
                std::str::from_utf8(&self.bytes[start..self.at]).map_err(|_| Rule::Malformed)?;
            if !text.parse::<f64>().is_ok_and(f64::is_finite) {
                return Err(Rule::Malformed);
            }
        }
        Ok(())
    }

    fn required_digits(&mut self) -> Result<(), Rule> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(Rule::Malformed);
        }
        self.digits();
        Ok(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Rule> {
        if self.bytes.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Rule::Malformed)
        }
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.peek() == Some(byte);
        self.at += usize::from(matched);
        matched
    }
}

#[cfg(test)]
mod tests;
