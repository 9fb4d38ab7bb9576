//! The protobuf format (placeholder until the parser lands).

use super::{Entry, ParseError};

#[derive(Debug)]
pub(super) struct ProtobufParser<'a> {
    body: &'a [u8],
}

impl<'a> ProtobufParser<'a> {
    pub(super) fn new(body: &'a [u8]) -> Self {
        ProtobufParser { body }
    }

    pub(super) fn next_entry(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        Err(ParseError::at(self.body, 0, "protobuf is not supported yet".into()))
    }
}
