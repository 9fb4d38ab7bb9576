//! Fuzzes the openmetrics parser: any input either parses or fails with an error,
//! never panics, and every sample's series re-reads into a label set that
//! has the sample's metric name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scraper_node::textparse::{Entry, Format, Parser};

fuzz_target!(|data: &[u8]| {
    for entry in Parser::new(Format::OpenMetrics, data) {
        match entry {
            Ok(Entry::Sample(s)) => {
                let labels = s.labels();
                let name = labels.get("__name__").unwrap_or_default();
                assert!(s.series.starts_with(name), "{:?} {labels}", s.series);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
});
