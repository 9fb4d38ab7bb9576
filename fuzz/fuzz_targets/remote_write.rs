//! Fuzzes the storage node's remote write body: the bytes as the snappy
//! block it receives (held to the decompressed limit before it is
//! inflated), and as the protobuf inside one. Nothing panics, and a request
//! that validates has every sample and histogram pointing at one of its
//! series.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use scrapegrid_proto::prometheus as prom;
use storage_node::http_api::remote::{decode, RemoteWrite, MAX_DECOMPRESSED_BYTES};

fn check(request: prom::WriteRequest) {
    if let Ok(w) = RemoteWrite::try_from(request) {
        let n = w.series.len();
        assert!(w.samples.iter().all(|s| (s.series as usize) < n));
        assert!(w.histograms.iter().all(|h| (h.series as usize) < n));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode::<prom::WriteRequest>(data, MAX_DECOMPRESSED_BYTES) {
        check(request);
    }
    if let Ok(request) = prom::WriteRequest::decode(data) {
        check(request);
    }
});
