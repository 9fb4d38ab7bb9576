//! The scrapegrid wire contract.
//!
//! `proto/scrapegrid/v1/` holds the documented `.proto` files: `types.proto`
//! (labels and relabel rules, shared by the others), `control.proto` (the
//! scraper membership and assignment stream), `ingest.proto` (batches from
//! scrapers to the storage node, acked once durable) and `query.proto` (series
//! selection on the storage node). `proto/prometheus/` holds Prometheus's
//! remote write and remote read messages (package `prometheus`, Prometheus's
//! field numbers) and, under `client/`, the protobuf exposition format that
//! targets serve (package `io.prometheus.client`). `build.rs` generates the
//! tonic/prost code with the system's `protoc` (Debian `protobuf-compiler`),
//! re-exported here as [`v1`], [`prometheus`] and [`prometheus_client`], with
//! the [`prost`] it was generated for, so that users decode and encode with
//! the same version. No etcd protos live here: the control plane talks to
//! etcd through the `etcd-client` crate.
//! [`FILE_DESCRIPTOR_SET`] is what gRPC server reflection serves.
//! [`STALE_NAN_BITS`] is the one constant every plane must agree on.

/// Generated messages, clients and servers of package `scrapegrid.v1`.
pub mod v1 {
    pub use super::scrapegrid_v1::scrapegrid::v1::*;
}

/// The generated package nested as its name is, so that its references to
/// package `prometheus` (`super::super::prometheus`) resolve.
mod scrapegrid_v1 {
    pub mod scrapegrid {
        pub mod v1 {
            tonic::include_proto!("scrapegrid.v1");
        }
    }
    pub use super::prometheus;
}

/// Generated messages of Prometheus's remote write and remote read
/// protocols (package `prometheus`).
pub mod prometheus {
    tonic::include_proto!("prometheus");
}

/// Generated messages of the Prometheus protobuf exposition format (package
/// `io.prometheus.client`): length-delimited `MetricFamily` messages. Text
/// fields are `Vec<u8>` and a metric's values and the exemplars are boxed,
/// see `metrics.proto` and `build.rs`.
pub mod prometheus_client {
    tonic::include_proto!("io.prometheus.client");
}

pub use prost;

/// The encoded `FileDescriptorSet` of every `.proto` file here, served by
/// gRPC server reflection (`grpcurl list`, `grpcurl describe`).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("scrapegrid_descriptor");

/// Bits of the NaN that marks a series as stale, as in Prometheus.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Returns whether `v` is the stale marker (bit-exact, not any NaN).
pub fn is_stale_marker(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Returns the stale marker value.
pub fn stale_marker() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}
