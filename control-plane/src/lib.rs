//! The scrapegrid control plane.
//!
//! It loads `prometheus.yml` ([`scrapegrid_common::config`]), runs service
//! discovery ([`discovery`]: one provider per SD config, merged and throttled
//! by the manager), turns discovered groups into relabeled targets
//! ([`targets`]), and lets the [`coordinator`] shard them over the scrapers
//! that hold a `Session` stream ([`service`], [`sharding`]). Each scraper gets
//! a full assignment snapshot, then deltas. The coordinator's rules are a
//! pure state machine (`State::plan(now)` returns a `Plan`) inside a thin
//! task that reads the clock, sends and persists. [`http`] serves `/metrics`,
//! `/api/v1/targets`, the cluster's own view and the web UI;
//! [`integrations`] discovers the targets of the built-in integrations
//! (`self`, `host`) from the cluster itself; [`reload`] re-reads the
//! configuration on SIGHUP, `POST /-/reload` or the gRPC `Reload` call.
//! [`metrics`] declares the control plane's own metrics; [`error`] its error
//! type.
//!
//! Data flow: prometheus.yml -> discovery providers -> discovery manager
//! (watch) -> coordinator (relabel, shard) -> per-scraper stream.
//!
//! Only the leader coordinates ([`leader`]): control planes campaign through
//! [`ha`] (etcd through the `etcd-client` crate, or in memory for a single
//! one), the leader persists the owners (queued in [`ha::PersistQueue`], so
//! the coordinator never waits for the store), and followers answer
//! scrapers with the leader's endpoint.
//!
//! [`run`] runs it all on already-bound listeners; the binary prints
//! `listening grpc <addr>` and `listening http <addr>` on stdout once they
//! are bound ([`scrapegrid_common::telemetry::announce`]).

pub mod coordinator;
pub mod discovery;
pub mod error;
pub mod forward;
pub mod ha;
pub mod http;
pub mod integrations;
pub mod leader;
pub mod metrics;
pub mod reload;
pub mod service;
pub mod sharding;
pub mod targets;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::{Error, Result};

/// How the control plane node runs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The prometheus.yml to load.
    pub config_path: PathBuf,
    /// The storage node's gRPC endpoint, passed on to scrapers.
    pub storage_endpoint: String,
    /// Minimum time between two discovery results reaching sharding.
    pub discovery_update_interval: Duration,
    /// A scraper that sends no status for this long is removed.
    pub membership_timeout: Duration,
    /// DNS server for dns_sd_configs; `None` means the system's resolver.
    pub dns_resolver: Option<std::net::SocketAddr>,
    /// How long after start the first assignment waits for scrapers to join.
    pub startup_grace: Duration,
    /// How far ahead a handover between two live scrapers is scheduled.
    pub handover_lead: Duration,
    /// etcd for leader election and persisted state; `None`: this control
    /// plane leads alone, with state in memory.
    pub etcd: Option<ha::EtcdOptions>,
    /// The gRPC endpoint followers give scrapers for this control plane;
    /// `None`: `http://` (`https://` with TLS) and the gRPC listener's
    /// address.
    pub advertise_url: Option<String>,
    /// TLS of the gRPC server; plain gRPC without a certificate.
    pub grpc_tls: scrapegrid_common::security::ServerTls,
    /// The token scrapers present to join; `None` admits any.
    pub join_token: Option<scrapegrid_common::security::Token>,
    /// TLS of the HTTP listener; plain HTTP without a certificate.
    pub http_tls: scrapegrid_common::security::HttpTls,
    /// The token the HTTP API and `/-/reload` require; `None` admits any.
    pub read_token: Option<scrapegrid_common::security::Token>,
}

/// Runs the control plane on already-bound listeners until `shutdown` fires.
pub async fn run(
    node: NodeConfig,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    // The recorder first: descriptions given before it exists are lost.
    scrapegrid_common::telemetry::metrics_handle();
    metrics::describe();
    let config = Arc::new(scrapegrid_common::config::load_file(&node.config_path)?);
    for warning in &config.warnings {
        tracing::warn!(file = %node.config_path.display(), "{warning}");
    }
    tracing::info!(
        file = %node.config_path.display(),
        jobs = config.scrape_configs.len(),
        "loaded configuration"
    );
    let own_http = own_http_addr(http.local_addr()?, node.advertise_url.as_deref());
    let coordinator = coordinator::Coordinator::new(config.clone(), own_http.clone());
    let http_scheme = if node.http_tls.cert.is_some() {
        "https"
    } else {
        "http"
    };
    let options = discovery::DiscoveryOptions {
        update_interval: node.discovery_update_interval,
        dns_resolver: node.dns_resolver,
        endpoints: coordinator.endpoints(),
    };
    let discovery =
        discovery::DiscoveryManager::start(config.clone(), options, shutdown.child_token());
    let config_sender = discovery.config_sender();
    let ha = match node.etcd {
        Some(options) => ha::Ha::etcd(options)?,
        None => ha::Ha::in_memory(),
    };
    let grpc_tls = node.grpc_tls.tonic().map_err(Error::Tls)?;
    let endpoint = match node.advertise_url {
        Some(url) => url,
        None => {
            let scheme = if grpc_tls.is_some() { "https" } else { "http" };
            format!("{scheme}://{}", grpc.local_addr()?)
        }
    };
    let advertised = ha::advertised::Advertised {
        grpc: endpoint,
        http: own_http.map(|h| format!("{http_scheme}://{h}")),
    };
    let options = coordinator::CoordinatorOptions {
        storage_endpoint: node.storage_endpoint,
        membership_timeout: node.membership_timeout,
        startup_grace: node.startup_grace,
        handover_lead: node.handover_lead,
        restored: None,
        persist: None,
    };
    let leading = tokio::spawn(leader::run(
        ha.clone(),
        coordinator.clone(),
        options,
        discovery.targets,
        advertised,
        shutdown.clone(),
    ));

    let reloader =
        reload::Reloader::new(node.config_path.clone(), config_sender, coordinator.clone());
    tokio::spawn(reload_on_sighup(reloader.clone(), shutdown.clone()));
    let grpc_service =
        scrapegrid_proto::v1::control_plane_server::ControlPlaneServer::with_interceptor(
            service::ControlPlaneService::new(
                coordinator.clone(),
                reloader.clone(),
                ha.election.clone(),
                grpc_tls.is_some(),
            ),
            scrapegrid_common::security::require_token(node.join_token.clone()),
        );
    let grpc_shutdown = shutdown.clone();
    let (health, health_service, reflection, reflection_alpha) =
        scrapegrid_common::grpc_standard::services(&[
            scrapegrid_proto::v1::control_plane_server::SERVICE_NAME,
        ]);
    tokio::spawn(health.serve_until(shutdown.clone()));
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = grpc_tls {
        builder = builder
            .tls_config(tls)
            .map_err(|e| Error::Tls(e.to_string()))?;
    }
    let grpc_server = builder
        .http2_keepalive_interval(Some(Duration::from_secs(5)))
        .http2_keepalive_timeout(Some(Duration::from_secs(5)))
        .add_service(grpc_service)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
            async move { grpc_shutdown.cancelled().await },
        );
    let http_shutdown = shutdown.clone();
    let http_tls = node.http_tls.rustls().map_err(Error::Tls)?;
    let http_server = scrapegrid_common::security::serve_http(
        http,
        http::router(
            coordinator.clone(),
            reloader,
            node.read_token.clone(),
            forward::Forward::new(coordinator, ha.election, http_scheme == "https"),
        ),
        http_tls,
        async move { http_shutdown.cancelled().await },
    );
    let (g, h, _) = tokio::join!(grpc_server, http_server, leading);
    g?;
    h?;
    Ok(())
}

/// This control plane's HTTP address as the others reach it: the bound
/// address, or, when bound to every interface, the advertised gRPC URL's
/// host with the HTTP port (`None` without one: the `self` integration
/// then leaves the control plane out).
fn own_http_addr(bound: std::net::SocketAddr, advertise_url: Option<&str>) -> Option<String> {
    if !bound.ip().is_unspecified() {
        return Some(bound.to_string());
    }
    let url = advertise_url?;
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => format!("[{}]", v6.split(']').next()?),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .to_string(),
    };
    Some(format!("{host}:{}", bound.port()))
}

/// Reads `--advertise-url`: `http(s)://host:port`, with an IPv6 host put
/// in brackets when written without (a pod IP substituted into
/// `http://$(POD_IP):9091`).
pub fn advertise_url(url: &str) -> std::result::Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?}: write http://host:port or https://host:port"))?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("{url:?}: the scheme must be http or https"));
    }
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        return Err(format!(
            "{url:?}: write {scheme}://host:port, without a path"
        ));
    }
    // `$(POD_IP):9091` on an IPv6 pod: the last group is the port (the
    // whole may read as an IPv6 address too; a URL needs a port anyway).
    if let Some((host, port)) = authority.rsplit_once(':') {
        if host.parse::<std::net::Ipv6Addr>().is_ok() && port.parse::<u16>().is_ok() {
            return Ok(format!("{scheme}://[{host}]:{port}"));
        }
    }
    if authority.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(format!(
            "{url:?}: an IPv6 address needs a port ({scheme}://[{authority}]:9091)"
        ));
    }
    let Some((host, port)) = authority.rsplit_once(':') else {
        return Err(format!(
            "{url:?}: the port is missing ({scheme}://host:port)"
        ));
    };
    if port.parse::<u16>().is_err() {
        return Err(format!("{url:?}: {port:?} is not a port"));
    }
    let host = match host.strip_prefix('[') {
        Some(v6) => match v6.strip_suffix(']') {
            Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6,
            _ => return Err(format!("{url:?}: {host:?} is not an IPv6 address")),
        },
        None => host,
    };
    if host.is_empty() || host.contains(['[', ']', '@', '?', '#']) {
        return Err(format!("{url:?}: {host:?} is not a host"));
    }
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(format!("{scheme}://[{host}]:{port}"));
    }
    Ok(format!("{scheme}://{host}:{port}"))
}

/// Reloads the configuration on every SIGHUP until shutdown.
async fn reload_on_sighup(reloader: reload::Reloader, shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(%error, "cannot install a SIGHUP handler; reload over HTTP or gRPC");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(()) = hup.recv() => {
                tracing::info!("SIGHUP: reloading configuration");
                // Errors are logged and counted by the reloader.
                let _ = reloader.reload().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{advertise_url, own_http_addr};

    #[test]
    fn advertise_url_brackets_a_bare_ipv6_host() {
        assert_eq!(
            advertise_url("http://fd00::7:9091").as_deref(),
            Ok("http://[fd00::7]:9091")
        );
        assert_eq!(
            advertise_url("https://[fd00::7]:9091/").as_deref(),
            Ok("https://[fd00::7]:9091")
        );
        assert_eq!(
            advertise_url("http://10.0.0.1:9091").as_deref(),
            Ok("http://10.0.0.1:9091")
        );
        assert_eq!(
            advertise_url("http://cp-0.cp:9091").as_deref(),
            Ok("http://cp-0.cp:9091")
        );
        for bad in [
            "10.0.0.1:9091",
            "ftp://x:1",
            "http://x:1/path",
            "http://fd00::7",
        ] {
            assert!(advertise_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn own_http_addr_is_the_bound_one_or_the_advertised_host() {
        let at = |s: &str| s.parse().unwrap();
        assert_eq!(
            own_http_addr(at("127.0.0.1:9092"), None).as_deref(),
            Some("127.0.0.1:9092")
        );
        assert_eq!(own_http_addr(at("0.0.0.0:9092"), None), None);
        assert_eq!(
            own_http_addr(at("0.0.0.0:9092"), Some("http://cp-0.cp:9091")).as_deref(),
            Some("cp-0.cp:9092")
        );
        assert_eq!(
            own_http_addr(at("[::]:9092"), Some("https://[fd00::7]:9091/")).as_deref(),
            Some("[fd00::7]:9092")
        );
    }
}
