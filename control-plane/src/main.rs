//! `control-plane`: loads prometheus.yml, discovers targets and shards them
//! over the scraper nodes that connect to it ([`control_plane::run`]), until
//! SIGTERM or SIGINT. Once bound it prints `listening grpc <addr>` and
//! `listening http <addr>` on stdout. `control-plane check-config FILE...`
//! checks configuration files as `promtool check config` does.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(
    name = "control-plane",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    flags: Flags,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Checks configuration files like `promtool check config`: prints every
    /// error with its file, job and field; exits 1 if any file is invalid.
    CheckConfig {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
struct Flags {
    /// The Prometheus configuration file.
    #[arg(long, default_value = "prometheus.yml")]
    config: PathBuf,
    /// gRPC listen address (scraper sessions).
    #[arg(long, default_value = "127.0.0.1:9091")]
    grpc_addr: String,
    /// HTTP listen address (/metrics, /api/v1/targets).
    #[arg(long, default_value = "127.0.0.1:9092")]
    http_addr: String,
    /// The storage node's gRPC endpoint, passed on to scrapers.
    #[arg(long, default_value = "http://127.0.0.1:9095")]
    storage: String,
    /// Minimum time between discovery updates reaching sharding (Prometheus duration).
    #[arg(long, default_value = "5s", value_parser = duration)]
    discovery_update_interval: Duration,
    /// A scraper that reports nothing for this long loses its targets.
    #[arg(long, default_value = "15s", value_parser = duration)]
    membership_timeout: Duration,
    /// DNS server (HOST:PORT) for dns_sd_configs; defaults to the first
    /// nameserver of /etc/resolv.conf.
    #[arg(long)]
    dns_resolver: Option<std::net::SocketAddr>,
    /// How long after start the first assignment waits for scrapers to
    /// (re)join, so a restart does not shuffle targets.
    #[arg(long, default_value = "2s", value_parser = duration)]
    startup_grace: Duration,
    /// How far ahead a target moving between two live scrapers is handed
    /// over: both must have their assignment by then.
    #[arg(long, default_value = "500ms", value_parser = duration)]
    handover_lead: Duration,
    /// etcd endpoints (http://host:port,...): control planes elect a leader
    /// and persist the assignment there. Without it this control plane
    /// leads alone and keeps state in memory.
    #[arg(long, value_delimiter = ',')]
    etcd_endpoints: Vec<String>,
    /// Key prefix in etcd; control planes of one cluster share it.
    #[arg(long, default_value = "/scrapegrid/")]
    etcd_prefix: String,
    /// TTL of the leader's etcd lease: a dead leader is replaced this long
    /// after its last keepalive.
    #[arg(long, default_value = "2s", value_parser = duration)]
    etcd_lease_ttl: Duration,
    /// The gRPC URL other control planes give scrapers for this one
    /// (default: http:// and --grpc-addr). An IPv6 address may be written
    /// without brackets (`http://$(POD_IP):9091`).
    #[arg(long, value_parser = control_plane::advertise_url)]
    advertise_url: Option<String>,
    /// Serve gRPC over TLS with this certificate (PEM); with
    /// --grpc-tls-key.
    #[arg(long)]
    grpc_tls_cert: Option<PathBuf>,
    /// The key of --grpc-tls-cert (PEM).
    #[arg(long)]
    grpc_tls_key: Option<PathBuf>,
    /// Mutual TLS: only clients with a certificate from this CA (PEM) may
    /// connect, so only trusted scrapers join.
    #[arg(long)]
    grpc_client_ca: Option<PathBuf>,
    /// A file holding the token scrapers must present to join (and to call
    /// Reload); without it any client may.
    #[arg(long)]
    join_token_file: Option<PathBuf>,
    /// A file holding the token the HTTP API (/api/v1/targets, ...) and
    /// /-/reload require as a bearer token; without it anyone may call them.
    #[arg(long)]
    read_token_file: Option<PathBuf>,
    /// Serve HTTP over TLS with this certificate (PEM); with
    /// --http-tls-key.
    #[arg(long)]
    http_tls_cert: Option<std::path::PathBuf>,
    /// The key of --http-tls-cert (PEM).
    #[arg(long)]
    http_tls_key: Option<std::path::PathBuf>,
    /// Mutual TLS on HTTP: only clients with a certificate from this CA
    /// (PEM) may connect.
    #[arg(long)]
    http_client_ca: Option<std::path::PathBuf>,
}

fn duration(s: &str) -> Result<Duration, String> {
    scrapegrid_common::duration::parse_duration(s).map_err(|e| e.to_string())
}

/// The coordinator's rounds allocate and free millions of small objects
/// (a wire form per target): mimalloc, as the other binaries (glibc's
/// malloc spent a quarter of a round consolidating, in
/// `control_scale`'s profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { files }) => std::process::exit(check_config(&files)),
        None => serve(cli.flags),
    }
}

/// Prints the verdict on each file; returns the exit code.
fn check_config(files: &[PathBuf]) -> i32 {
    let mut code = 0;
    for file in files {
        println!("Checking {}", file.display());
        let errors = scrapegrid_common::config::check_file(file);
        if errors.is_empty() {
            println!(
                "  SUCCESS: {} is a valid prometheus config file",
                file.display()
            );
        } else {
            code = 1;
            for e in &errors {
                println!("  FAILED: {e}");
            }
        }
    }
    code
}

#[tokio::main]
async fn serve(flags: Flags) -> anyhow::Result<()> {
    scrapegrid_common::telemetry::init_tracing();
    let grpc = tokio::net::TcpListener::bind(&flags.grpc_addr)
        .await
        .with_context(|| format!("binding --grpc-addr {}", flags.grpc_addr))?;
    scrapegrid_common::telemetry::announce("grpc", &grpc)?;
    let http = tokio::net::TcpListener::bind(&flags.http_addr)
        .await
        .with_context(|| format!("binding --http-addr {}", flags.http_addr))?;
    scrapegrid_common::telemetry::announce("http", &http)?;
    tracing::info!(grpc = %grpc.local_addr()?, http = %http.local_addr()?, "control plane listening");
    let node = control_plane::NodeConfig {
        config_path: flags.config,
        storage_endpoint: flags.storage,
        discovery_update_interval: flags.discovery_update_interval,
        membership_timeout: flags.membership_timeout,
        dns_resolver: flags.dns_resolver,
        startup_grace: flags.startup_grace,
        handover_lead: flags.handover_lead,
        etcd: (!flags.etcd_endpoints.is_empty()).then(|| control_plane::ha::EtcdOptions {
            endpoints: flags.etcd_endpoints,
            prefix: flags.etcd_prefix,
            lease_ttl: flags.etcd_lease_ttl,
            ..Default::default()
        }),
        advertise_url: flags.advertise_url,
        grpc_tls: scrapegrid_common::security::ServerTls {
            cert: flags.grpc_tls_cert,
            key: flags.grpc_tls_key,
            client_ca: flags.grpc_client_ca,
        },
        http_tls: scrapegrid_common::security::HttpTls {
            cert: flags.http_tls_cert,
            key: flags.http_tls_key,
            client_ca: flags.http_client_ca,
        },
        read_token: flags
            .read_token_file
            .map(|p| scrapegrid_common::security::Token::from_file("--read-token-file", &p))
            .transpose()
            .map_err(anyhow::Error::msg)?,
        join_token: flags
            .join_token_file
            .map(|p| scrapegrid_common::security::Token::from_file("--join-token-file", &p))
            .transpose()
            .map_err(anyhow::Error::msg)?,
    };
    let shutdown = CancellationToken::new();
    let node = control_plane::run(node, grpc, http, shutdown.clone());
    scrapegrid_common::telemetry::run_until_signal(node, shutdown, SHUTDOWN_DEADLINE).await?;
    Ok(())
}

/// How long a graceful shutdown may take.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);
