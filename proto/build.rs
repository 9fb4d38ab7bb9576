//! Generates the tonic/prost code for `proto/scrapegrid/v1/*.proto`,
//! `proto/prometheus/*.proto` (Prometheus's remote write/read messages) and
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
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    tonic_prost_build::configure().compile_protos(&files, &["proto"])?;
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
