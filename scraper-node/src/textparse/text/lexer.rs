//! The text-format tokenizer: the automaton of Prometheus 2.42's `promlex.l`
//! (as golex generates it), reimplemented byte for byte, because what 2.42
//! accepts and which token its errors name are defined by it.
//!
//! Each start condition is a [`State`]; a token is read from the byte at the
//! cursor with the transitions of that state:
//!
//! | state     | tokens                                                     |
//! |-----------|------------------------------------------------------------|
//! | Init      | `\0` EOF, `\n`, blanks, `#` comment, `# ` keyword, name    |
//! | Comment   | `HELP` / `TYPE` plus blanks; else the line is a comment    |
//! | Meta1     | the metric name of a HELP or TYPE line                     |
//! | Meta2     | the rest of that line (TEXT), or blanks before it          |
//! | Value     | `{`, or the value `[^{ \t\n]+`                             |
//! | Labels    | label name, `=`, `,`, `}`                                  |
//! | LValue    | `"(\\.\|[^\\"])*"`                                         |
//! | Timestamp | `[0-9]+`, `\n`                                             |
//!
//! Blanks are a WHITESPACE token in every state. Behaviours of the generated
//! code that decide acceptance, all kept:
//! - the body is read as if a `\n` followed it (2.42 appends one);
//! - the lexer reads one byte ahead, and [`Lexer::advance`] is called once
//!   more after the last byte of fixed tokens (`}`, `=`, `"`, `\n`);
//! - the end of the input and a NUL byte both read as byte 0, which no
//!   transition accepts past a token's first byte; as a first byte in `Init`
//!   a NUL is the end of the input;
//! - in the states `Comment`, `Meta2` and `LValue`, [`Lexer::advance`] skips
//!   NUL bytes (2.42's `next()`), so they end up inside the token, also right
//!   after a closing quote or a backslash; the state is the one in force when
//!   the byte is read, so the NUL right after `# ` is not skipped (and ends
//!   the input), while one inside `HELP` is.

use super::{is_label_name_char, is_label_name_start, is_metric_name_char, is_metric_name_start};
use crate::textparse::token::Token;

/// The lexer's start conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Where a line starts.
    Init,
    /// After `#` and blanks: `HELP` or `TYPE` may follow.
    Comment,
    /// After `HELP ` or `TYPE `: a metric name follows.
    Meta1,
    /// After the metric name of a HELP or TYPE line: the rest of the line.
    Meta2,
    /// After a metric name or a label block: `{` or the value.
    Value,
    /// Inside a label block.
    Labels,
    /// After `=` in a label block: a quoted value follows.
    LValue,
    /// After the value: a timestamp or the end of the line.
    Timestamp,
}

impl State {
    /// Whether [`Lexer::advance`] skips NUL bytes in this state.
    fn skips_nul(self) -> bool {
        matches!(self, State::Comment | State::Meta2 | State::LValue)
    }
}

/// The tokenizer's cursor over a body.
#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    body: &'a [u8],
    /// The lookahead byte's offset; after a token, the end of that token.
    /// At most `body.len() + 1`: the implied final `\n` is at `body.len()`.
    pub(crate) pos: usize,
    /// Where the last token started.
    pub(crate) start: usize,
    state: State,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Lexer {
            body,
            pos: 0,
            start: 0,
            state: State::Init,
        }
    }

    /// Returns the bytes of the last token, without the implied final `\n`.
    pub(crate) fn token(&self) -> &'a [u8] {
        let end = self.pos.min(self.body.len());
        &self.body[self.start.min(end)..end]
    }

    /// Returns the byte at `i`: the implied `\n` at the end, 0 past it.
    fn byte(&self, i: usize) -> u8 {
        match self.body.get(i) {
            Some(&c) => c,
            None if i == self.body.len() => b'\n',
            None => 0,
        }
    }

    /// Moves to the next byte and returns it, 0 past the end (2.42's
    /// `next()`), skipping NULs in some states.
    fn advance(&mut self) -> u8 {
        self.pos = (self.pos + 1).min(self.body.len() + 1);
        if self.state.skips_nul() {
            while self.body.get(self.pos) == Some(&0) {
                self.pos += 1;
            }
        }
        self.byte(self.pos)
    }

    /// Reads the next token, blanks included.
    pub(crate) fn lex(&mut self) -> Token {
        self.start = self.pos;
        if self.pos > self.body.len() {
            return Token::Eof;
        }
        let c = self.byte(self.pos);
        match self.state {
            State::Init => self.init(c),
            State::Comment => self.keyword(c),
            State::Meta1 => match c {
                b' ' | b'\t' => self.blanks(),
                c if is_metric_name_start(c) => {
                    self.skip_while(is_metric_name_char);
                    self.state = State::Meta2;
                    Token::MName
                }
                _ => Token::Invalid,
            },
            State::Meta2 => self.meta_text(c),
            State::Value => match c {
                b' ' | b'\t' => self.blanks(),
                b'{' => {
                    self.advance();
                    self.state = State::Labels;
                    Token::BraceOpen
                }
                c if is_value_byte(c) => {
                    self.skip_while(is_value_byte);
                    self.state = State::Timestamp;
                    Token::Value
                }
                _ => Token::Invalid,
            },
            State::Labels => match c {
                b' ' | b'\t' => self.blanks(),
                b',' => {
                    self.advance();
                    Token::Comma
                }
                b'=' => {
                    self.advance();
                    self.state = State::LValue;
                    Token::Equal
                }
                b'}' => {
                    self.advance();
                    self.state = State::Value;
                    Token::BraceClose
                }
                c if is_label_name_start(c) => {
                    self.skip_while(is_label_name_char);
                    Token::LName
                }
                _ => Token::Invalid,
            },
            State::LValue => match c {
                b' ' | b'\t' => self.blanks(),
                b'"' => self.quoted(),
                _ => Token::Invalid,
            },
            State::Timestamp => match c {
                b' ' | b'\t' => self.blanks(),
                b'\n' => {
                    self.advance();
                    self.state = State::Init;
                    Token::Linebreak
                }
                b'0'..=b'9' => {
                    self.skip_while(|c| c.is_ascii_digit());
                    Token::Timestamp
                }
                _ => Token::Invalid,
            },
        }
    }

    /// Reads a token where a line starts, from its first byte `c`.
    fn init(&mut self, c: u8) -> Token {
        match c {
            0 => {
                self.advance();
                Token::Eof
            }
            b'\n' => {
                self.advance();
                Token::Linebreak
            }
            b' ' | b'\t' => self.blanks(),
            b'#' => {
                let mut c = self.advance();
                if !is_blank(c) {
                    return self.comment_line();
                }
                while is_blank(c) {
                    c = self.advance();
                }
                self.state = State::Comment;
                self.keyword(c)
            }
            c if is_metric_name_start(c) => {
                self.skip_while(is_metric_name_char);
                self.state = State::Value;
                Token::MName
            }
            _ => Token::Invalid,
        }
    }

    /// After `#` and blanks, reads `HELP` or `TYPE` and the blanks after it
    /// from the byte `c`; anything else makes the line a comment.
    fn keyword(&mut self, c: u8) -> Token {
        let (rest, token): (&[u8], Token) = match c {
            b'H' => (b"ELP", Token::Help),
            b'T' => (b"YPE", Token::Type),
            b' ' | b'\t' => return self.blanks(),
            _ => return self.comment_line(),
        };
        for &want in rest {
            if self.advance() != want {
                return self.comment_line();
            }
        }
        if !is_blank(self.advance()) {
            return self.comment_line();
        }
        while is_blank(self.advance()) {}
        self.state = State::Meta1;
        token
    }

    /// Consumes the rest of a comment line up to its `\n` (2.42's
    /// `consumeComment`), or returns [`Token::Eof`] at a byte 0.
    fn comment_line(&mut self) -> Token {
        let mut c = self.byte(self.pos);
        loop {
            match c {
                0 => return Token::Eof,
                b'\n' => {
                    self.state = State::Init;
                    return Token::Comment;
                }
                _ => c = self.advance(),
            }
        }
    }

    /// Reads the rest of a HELP or TYPE line after its metric name, from its
    /// first byte `c`: blanks then nothing are WHITESPACE, anything else is
    /// TEXT up to the end of the line, maybe empty.
    fn meta_text(&mut self, c: u8) -> Token {
        let mut c = c;
        if is_blank(c) {
            while is_blank(c) {
                c = self.advance();
            }
            if matches!(c, 0 | b'\n') {
                return Token::Whitespace;
            }
        }
        if !matches!(c, 0 | b'\n') {
            while !matches!(self.advance(), 0 | b'\n') {}
        }
        self.state = State::Init;
        Token::Text
    }

    /// Reads a quoted label value from its opening quote at the cursor.
    /// Only `"` and `\\` matter inside it (the NULs this state skips and the
    /// implied final `\n` are ordinary bytes here), so it scans for them.
    fn quoted(&mut self) -> Token {
        loop {
            let from = self.pos + 1;
            let rest = self.body.get(from..).unwrap_or_default();
            let Some(i) = rest.iter().position(|&c| c == b'"' || c == b'\\') else {
                // Past the end without a closing quote.
                self.pos = self.body.len() + 1;
                return Token::Invalid;
            };
            self.pos = from + i;
            if rest[i] == b'"' {
                break;
            }
            if matches!(self.advance(), 0 | b'\n') {
                return Token::Invalid;
            }
        }
        self.advance();
        self.state = State::Labels;
        Token::LValue
    }

    /// Reads a whole label block from its `{` at the cursor, in state
    /// `Value`, when it has the plain form almost every exposition uses:
    /// `name="value"` pairs, each followed by a `,` or the closing `}`, no
    /// blanks, no backslash and no byte past ASCII in a value. Then the
    /// cursor is past the `}` in state `Value`, where lexing the block
    /// token by token would leave it (that path accepts every plain block,
    /// with the same bytes). Otherwise it returns `false` with the cursor
    /// unchanged, and the caller lexes the block token by token, which
    /// decides everything else. A scrape reads most series from its cache
    /// by their text, so this one pass over the block is all most lines get.
    pub(crate) fn plain_label_block(&mut self) -> bool {
        let body = self.body;
        if self.state != State::Value || body.get(self.pos) != Some(&b'{') {
            return false;
        }
        let mut i = self.pos + 1;
        loop {
            match body.get(i) {
                Some(b'}') => break,
                Some(&c) if is_label_name_start(c) => {}
                _ => return false,
            }
            let name = &body[i + 1..];
            i += 1 + name
                .iter()
                .position(|&c| !is_label_name_char(c))
                .unwrap_or(name.len());
            if body.get(i..i + 2) != Some(b"=\"".as_slice()) {
                return false;
            }
            i += 2;
            let value = &body[i..];
            let Some(n) = value
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || !c.is_ascii())
            else {
                return false;
            };
            if value[n] != b'"' {
                return false;
            }
            i += n + 1;
            match body.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => return false,
            }
        }
        self.start = i;
        self.pos = i + 1;
        true
    }

    /// Moves past the bytes after the cursor that `keep` accepts, as
    /// repeated [`Lexer::advance`] calls would in a state that keeps NULs;
    /// `keep` must refuse `\n` and NUL. Returns the byte it stops at.
    fn skip_while(&mut self, keep: impl Fn(u8) -> bool) -> u8 {
        debug_assert!(!self.state.skips_nul() && !keep(b'\n') && !keep(0));
        let from = (self.pos + 1).min(self.body.len());
        let rest = &self.body[from..];
        self.pos = from + rest.iter().position(|&c| !keep(c)).unwrap_or(rest.len());
        self.byte(self.pos)
    }

    /// Reads blanks from the first one at the cursor.
    fn blanks(&mut self) -> Token {
        while is_blank(self.advance()) {}
        Token::Whitespace
    }
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// The bytes of a value, `[^{ \t\n]` as the generated lexer has them: NUL
/// excluded, as it reads as the end of the input.
fn is_value_byte(c: u8) -> bool {
    !matches!(c, 0 | b'{' | b' ' | b'\t' | b'\n')
}
