//! STUB until the validator lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Malformed,
    InvalidUtf8,
    LoneSurrogate,
    DuplicateMember,
    TooDeep,
}
impl Rule {
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
pub fn validate(body: &[u8], _max_depth: usize) -> Result<(), Rule> {
    std::str::from_utf8(body)
        .map(|_| ())
        .map_err(|_| Rule::InvalidUtf8)
}
