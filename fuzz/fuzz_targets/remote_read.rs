//! Fuzzes the storage node's remote read body: the bytes as the snappy
//! block it receives, and as the protobuf inside one, validated into
//! queries (matchers compiled, regular expressions included). Nothing
//! panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use scrapegrid_proto::prometheus as prom;
use storage_node::http_api::remote::{decode, read_queries, MAX_DECOMPRESSED_BYTES};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode::<prom::ReadRequest>(data, MAX_DECOMPRESSED_BYTES) {
        let _ = read_queries(&request);
    }
    if let Ok(request) = prom::ReadRequest::decode(data) {
        let _ = read_queries(&request);
    }
});
