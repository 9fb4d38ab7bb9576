//! The tokens of Prometheus 2.42's text and OpenMetrics lexers
//! (`promlex.l`, `openmetricslex.l`), shared by [`super::text`] and
//! [`super::openmetrics`]. 2.42's errors name the token a parser got, not the
//! input (`expected label name, got "BCLOSE"`), so the names matter.

/// A token, named as Prometheus prints it in errors (`got "BCLOSE"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token {
    /// No rule of the lexer's current state matches.
    Invalid,
    /// The end of the input (also a NUL where a text-format line starts).
    Eof,
    Linebreak,
    /// Spaces and tabs (text format only; its parser skips them).
    Whitespace,
    Help,
    Type,
    Unit,
    EofWord,
    Text,
    /// A plain comment line (text format), or the ` # {` that starts an
    /// OpenMetrics exemplar.
    Comment,
    MName,
    BraceOpen,
    BraceClose,
    LName,
    LValue,
    Comma,
    Equal,
    Timestamp,
    Value,
}

impl Token {
    /// Returns the name Prometheus's `token.String()` gives.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Token::Invalid => "INVALID",
            Token::Eof => "EOF",
            Token::Linebreak => "LINEBREAK",
            Token::Whitespace => "WHITESPACE",
            Token::Help => "HELP",
            Token::Type => "TYPE",
            Token::Unit => "UNIT",
            Token::EofWord => "EOFWORD",
            Token::Text => "TEXT",
            Token::Comment => "COMMENT",
            Token::MName => "MNAME",
            Token::BraceOpen => "BOPEN",
            Token::BraceClose => "BCLOSE",
            Token::LName => "LNAME",
            Token::LValue => "LVALUE",
            Token::Comma => "COMMA",
            Token::Equal => "EQUAL",
            Token::Timestamp => "TIMESTAMP",
            Token::Value => "VALUE",
        }
    }
}
