//! Fuzzes the storage node's ingest stream: the bytes are read as the
//! length-delimited `WriteRequest`s of one stream, and every batch is
//! resolved against the stream's reference table as the ingest handler
//! does. Nothing panics, and a batch that resolves has every sample,
//! histogram and exemplar pointing at one of its series, and the stream's
//! table holds at least as many references as the batch named new series.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use scrapegrid_proto::v1 as pb;
use storage_node::batch::{resolve, RefTable};

fuzz_target!(|data: &[u8]| {
    let mut refs = RefTable::default();
    let mut rest = data;
    while !rest.is_empty() {
        let Ok(request) = pb::WriteRequest::decode_length_delimited(&mut rest) else {
            break;
        };
        let Some(pb::write_request::Msg::Batch(batch)) = request.msg else {
            continue;
        };
        if let Ok(b) = resolve(&mut refs, batch) {
            let n = b.series.len();
            assert!(b.samples.iter().all(|s| (s.series as usize) < n), "{b:?}");
            assert!(
                b.histograms.iter().all(|h| (h.series as usize) < n),
                "{b:?}"
            );
            assert!(b.exemplars.iter().all(|e| (e.series as usize) < n), "{b:?}");
            assert!(n == 0 || !refs.is_empty(), "series without references");
        }
    }
});
