//! Process telemetry shared by every scrapegrid binary: `tracing` logs to
//! stderr (filtered by `RUST_LOG`, `info` by default) and one global `metrics`
//! recorder whose Prometheus exposition each node serves on `/metrics`;
//! [`announce`], the one line on stdout per listener that tells scripts
//! and tests which address a node got (bind port 0 to let the OS pick); and
//! [`run_until_signal`], which runs a node until SIGTERM or SIGINT and gives
//! it a deadline to drain; and [`Progress`], the periodic log line of a long
//! operation (recovery, compaction, a drain) with its counts.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Prints `listening <kind> <addr>` on stdout (flushed): how a node bound
/// to port 0 tells its caller the port it got. `kind` is `grpc` or `http`.
pub fn announce(kind: &str, listener: &tokio::net::TcpListener) -> std::io::Result<()> {
    use std::io::Write;
    let addr = listener.local_addr()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {kind} {addr}")?;
    out.flush()
}

/// Installs the tracing subscriber; later calls do nothing.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Returns the handle of the process-wide metrics recorder, installing it on
/// first use (several nodes may run in one test process; they share it).
pub fn metrics_handle() -> PrometheusHandle {
    install_metrics(PrometheusBuilder::new)
}

/// Returns the handle of the process-wide metrics recorder; the first call
/// installs the recorder `builder` builds (a node with its own histogram
/// buckets calls this before anything else in its process). Every node of a
/// process (a scraper with an embedded storage node, the tests) shares it.
pub fn install_metrics(builder: impl FnOnce() -> PrometheusBuilder) -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = builder().build_recorder();
            let handle = recorder.handle();
            // Fails only if a recorder from elsewhere is installed; then
            // ours stays empty.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder is installed already; /metrics stays empty");
            }
            handle
        })
        .clone()
}

/// Resolves on the first SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot install a SIGTERM handler; waiting for SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Why a node run ended other than with a clean shutdown.
#[derive(Debug, thiserror::Error)]
pub enum NodeExit<E: std::error::Error + 'static> {
    #[error(transparent)]
    Failed(E),
    #[error("node task panicked: {0}")]
    Panicked(tokio::task::JoinError),
    #[error("shutdown took longer than {0:?}")]
    Deadline(std::time::Duration),
}

/// Runs a node until it ends or SIGTERM/SIGINT arrives; on a signal cancels
/// `shutdown` and waits at most `deadline` for the node to drain. Every
/// binary's `main` ends with this.
pub async fn run_until_signal<E>(
    node: impl std::future::Future<Output = Result<(), E>> + Send + 'static,
    shutdown: tokio_util::sync::CancellationToken,
    deadline: std::time::Duration,
) -> Result<(), NodeExit<E>>
where
    E: std::error::Error + Send + 'static,
{
    let mut task = tokio::spawn(node);
    let joined = tokio::select! {
        r = &mut task => r,
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            shutdown.cancel();
            match tokio::time::timeout(deadline, task).await {
                Ok(r) => r,
                Err(_) => return Err(NodeExit::Deadline(deadline)),
            }
        }
    };
    joined
        .map_err(NodeExit::Panicked)?
        .map_err(NodeExit::Failed)
}

/// Progress of a long operation, logged at most every [`Progress::EVERY`]
/// with its counts so far: one line at `info` while it runs (only once it
/// has run that long: short operations stay quiet), and [`Progress::done`]
/// at the end when it logged any. `what` names the operation
/// (`replaying the open chunks' WAL`).
pub struct Progress {
    what: &'static str,
    started: std::time::Instant,
    last: std::time::Instant,
    every: std::time::Duration,
    logged: bool,
}

impl Progress {
    /// How often a running operation logs.
    pub const EVERY: std::time::Duration = std::time::Duration::from_secs(5);

    pub fn new(what: &'static str) -> Self {
        Self::every(what, Self::EVERY)
    }

    /// As [`Progress::new`], logging every `every`.
    pub fn every(what: &'static str, every: std::time::Duration) -> Self {
        let now = std::time::Instant::now();
        Self {
            what,
            every,
            started: now,
            last: now,
            logged: false,
        }
    }

    /// Logs `done` of `total` (if known) when the last line is
    /// [`Progress::EVERY`] old.
    pub fn tick(&mut self, done: u64, total: Option<u64>) {
        if self.last.elapsed() < self.every {
            return;
        }
        self.last = std::time::Instant::now();
        self.logged = true;
        let elapsed = format!("{:.1}s", self.started.elapsed().as_secs_f64());
        match total {
            Some(total) => tracing::info!(done, total, %elapsed, "{}: in progress", self.what),
            None => tracing::info!(done, %elapsed, "{}: in progress", self.what),
        }
    }

    /// Logs the end with `done`, if it logged progress before.
    pub fn done(self, done: u64) {
        if self.logged {
            let elapsed = format!("{:.1}s", self.started.elapsed().as_secs_f64());
            tracing::info!(done, %elapsed, "{}: done", self.what);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// What `f` logs, as text.
    fn logs(f: impl FnOnce()) -> String {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Sink(writer.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = buf.lock().unwrap().clone();
        String::from_utf8(text).unwrap()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_short_operation_is_quiet_and_a_long_one_logs_its_counts() {
        let quiet = logs(|| {
            let mut p = Progress::new("quick");
            p.tick(1, Some(2));
            p.done(2);
        });
        assert!(quiet.is_empty(), "{quiet}");
        // An operation past its interval (zero here) logs each tick.
        let long = logs(|| {
            let mut p = Progress::every("replaying", Duration::ZERO);
            p.tick(7, Some(10));
            p.done(10);
        });
        let lines: Vec<&str> = long.lines().collect();
        assert_eq!(lines.len(), 2, "{long}");
        assert!(
            lines[0].contains("replaying: in progress") && lines[0].contains("done=7 total=10"),
            "{long}"
        );
        assert!(
            lines[1].contains("replaying: done") && lines[1].contains("done=10"),
            "{long}"
        );
    }
}
