//! Generates the tonic/prost code for `proto/scrapegrid/v1/*.proto`,
//! `proto/prometheus/*.proto` (Prometheus's remote write/read messages),
//! `proto/prometheus/client/metrics.proto` (the protobuf exposition format) and
//! the client side of `proto/etcd/` (the subset of etcd's v3 API used for
//! control-plane HA) into `OUT_DIR`, using the protoc shipped in the
//! `protoc-bin-vendored` crate so no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let files = [
        "proto/scrapegrid/v1/types.proto",
        "proto/scrapegrid/v1/control.proto",
        "proto/scrapegrid/v1/ingest.proto",
        "proto/scrapegrid/v1/query.proto",
        "proto/prometheus/types.proto",
        "proto/prometheus/remote.proto",
        "proto/prometheus/client/metrics.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    // A hostile target can send many empty `Metric`s (2 bytes each) or empty
    // buckets; boxing the optional values keeps the decoded size per encoded
    // byte near gogo-protobuf's, which Prometheus uses.
    let boxed = [
        ".io.prometheus.client.Metric.gauge",
        ".io.prometheus.client.Metric.counter",
        ".io.prometheus.client.Metric.summary",
        ".io.prometheus.client.Metric.untyped",
        ".io.prometheus.client.Metric.histogram",
        ".io.prometheus.client.Counter.exemplar",
        ".io.prometheus.client.Bucket.exemplar",
    ];
    boxed
        .iter()
        .fold(tonic_prost_build::configure(), |b, path| b.boxed(path))
        .compile_protos(&files, &["proto"])?;
    let etcd = [
        "proto/etcd/mvccpb/kv.proto",
        "proto/etcd/etcdserverpb/rpc.proto",
    ];
    for f in etcd {
        println!("cargo:rerun-if-changed={f}");
    }
    // Only clients: scrapegrid talks to etcd, it never serves its API.
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(&etcd, &["proto"])?;
    Ok(())
}
