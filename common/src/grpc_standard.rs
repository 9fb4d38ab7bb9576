//! The standard gRPC services every scrapegrid gRPC server adds beside its
//! own, so that standard tools work on it: the health service
//! (`grpc.health.v1.Health`: Kubernetes' `grpc` probes, `grpc_health_probe`,
//! `grpcurl ... grpc.health.v1.Health/Check`) and server reflection, v1 and
//! v1alpha (`grpcurl list`, `grpcurl describe`). Neither asks for the
//! node's tokens: they say whether the node serves and what its services
//! look like, nothing of its data.
//!
//! Health: the whole server (service `""`) and each of the node's services
//! by name are `SERVING` from the start and `NOT_SERVING` once the node
//! begins to shut down ([`Health::serve_until`]), so a probe stops sending
//! traffic before the port closes.

use tokio_util::sync::CancellationToken;
use tonic_health::pb::health_server::{Health as HealthApi, HealthServer};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tonic_reflection::server::{v1, v1alpha};

/// The health service's statuses for one server.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    services: Vec<&'static str>,
}

impl Health {
    /// Sets every status to `SERVING` now and to `NOT_SERVING` once
    /// `shutdown` is cancelled.
    pub async fn serve_until(self, shutdown: CancellationToken) {
        self.set(ServingStatus::Serving).await;
        shutdown.cancelled().await;
        self.set(ServingStatus::NotServing).await;
    }

    async fn set(&self, status: ServingStatus) {
        for name in std::iter::once("").chain(self.services.iter().copied()) {
            self.reporter.set_service_status(name, status).await;
        }
    }
}

/// The health service for a server of `services` (their full names, such
/// as `scrapegrid.v1.ControlPlane`), and reflection over every scrapegrid
/// `.proto` file and the health service's.
#[allow(clippy::type_complexity)]
pub fn services(
    services: &[&'static str],
) -> (
    Health,
    HealthServer<impl HealthApi>,
    v1::ServerReflectionServer<impl v1::ServerReflection>,
    v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>,
) {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(scrapegrid_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    // Both sets are compiled in and decode: a failure is a build defect.
    let v1 = reflection()
        .build_v1()
        .expect("the compiled-in descriptor sets decode");
    let v1alpha = reflection()
        .build_v1alpha()
        .expect("the compiled-in descriptor sets decode");
    (
        Health {
            reporter,
            services: services.to_vec(),
        },
        health,
        v1,
        v1alpha,
    )
}
