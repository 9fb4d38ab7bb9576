//! The one end-to-end test binary of scrapegrid (`e2e`, declared in
//! tests/Cargo.toml with `autotests = false`): every test module of the
//! `scrapegrid-tests` crate, linked once. The harness they share is the
//! crate's library (`tests/src/`).
//!
//! The `storage_*` modules are the storage node's own integration tests: an
//! in-process node (`scrapegrid_tests::storage`) or its real binary
//! (`scrapegrid_tests::start_storage`), on its own.

mod chaos;
mod check_config;
mod clock_skew;
mod cluster;
mod consul_sd;
mod ctl;
mod deploy;
mod differential;
mod direct_remote_write;
mod disk_full;
mod exemplars;
mod failover;
mod fenced;
mod followers;
mod grpc_standard;
mod ha_conformance;
mod handover_back;
mod host_metrics;
mod ingest_rotation;
mod integrations;
mod kubernetes_sd;
mod kubernetes_sd_client;
mod metrics_reference;
mod native_scrape;
mod outbox_spill;
mod overlap;
mod overrun;
mod promql;
mod promql_native;
mod readiness;
mod reload;
mod remote_write_egress;
mod rescale;
mod scrape_http_config;
mod secure_cluster;
mod storage_corruption;
mod storage_exemplars;
mod storage_incarnation;
mod storage_ingest_and_query;
mod storage_process;
mod storage_remote;
mod storage_retention;
mod target_metadata;
mod tsdb_status;
mod web_ui;
