//! OpenMetrics 1.0 (placeholder until the parser lands).

use super::{Entry, ParseError};

#[derive(Debug)]
pub(super) struct OpenMetricsParser<'a> {
    body: &'a [u8],
}

impl<'a> OpenMetricsParser<'a> {
    pub(super) fn new(body: &'a [u8]) -> Self {
        OpenMetricsParser { body }
    }

    pub(super) fn next_entry(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        Err(ParseError::at(self.body, 0, "OpenMetrics is not supported yet".into()))
    }
}
