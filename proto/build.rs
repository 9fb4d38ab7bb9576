//! Generates the tonic/prost code for `proto/scrapegrid/v1/*.proto`,
//! `proto/prometheus/*.proto` (Prometheus's remote write/read messages),
//! and `proto/prometheus/client/metrics.proto` (the protobuf exposition
//! format) into `OUT_DIR`, with the system's `protoc` (Debian
//! `protobuf-compiler`, installed by `scripts/install-deps.sh`; the
//! `etcd-client` crate builds its code with it too).

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    // The encoded descriptors of every file, for gRPC server reflection.
    let descriptors =
        std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("scrapegrid_descriptor.bin");
    boxed
        .iter()
        .fold(tonic_prost_build::configure(), |b, path| b.boxed(path))
        .file_descriptor_set_path(descriptors)
        .compile_protos(&files, &["proto"])?;
    Ok(())
}
