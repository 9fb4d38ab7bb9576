//! The source's view of scraping: [`FleetServer`], one HTTP server for many
//! targets that logs when each request arrived.
//!
//! Target `i` is served at `/t/<i>`. Each one is a distinct scrapegrid target
//! because its scrape config group sets `__metrics_path__` and a label
//! `t="<i>"` ([`FleetServer::static_configs`]), so target ids (final labels
//! plus URL) differ while all share one address.
//!
//! A body may hold `{requests}`: it is served as the number of requests the
//! target has answered with its body, this one included, so a counter
//! stored from it steps by exactly one per stored scrape, and a scrape taken
//! but never stored shows as a step of two ([`crate::audit::counter_steps`]).
//! A target can be made to fail ([`FleetServer::set_status`]): it then
//! answers with that status and an empty body, which is logged but does not
//! count. [`FleetServer::log`] gives every request with the value it served,
//! so a checker knows each sample the storage node should hold.
//!
//! Every request is logged with the process that sent it
//! ([`FleetServer::requests_by`]), so a slot scraped twice names both
//! scrapers, and a target can switch its exposition at the first request
//! sent by a process other than a given one
//! ([`FleetServer::switch_unless_from`]): a test can change a target exactly
//! at the first scrape of its new owner. The sender is found once per
//! connection through `/proc`: the peer's port names a socket in
//! `/proc/net/tcp`, whose inode is among the sending process's open files.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Result;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;

/// The placeholder in a body for the target's request count.
pub const REQUESTS: &str = "{requests}";

/// One HTTP server serving many targets, each with its own request log.
pub struct FleetServer {
    pub addr: String,
    fleet: Arc<Fleet>,
    task: tokio::task::JoinHandle<()>,
}

struct Fleet {
    port: u16,
    targets: Vec<Mutex<FleetTarget>>,
}

struct FleetTarget {
    body: String,
    /// The status answered; anything but 200 comes with an empty body.
    status: StatusCode,
    /// Requests answered with the body.
    served: u64,
    requests: Vec<Request>,
    switch: Option<Switch>,
}

/// One request a target received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Arrival, in ms since the Unix epoch.
    pub at_ms: i64,
    /// The sending process, when it could be found.
    pub pid: Option<i32>,
    /// The value of `{requests}` it was served; `None` when the target failed it.
    pub value: Option<u64>,
}

/// One connection: its peer and, once a request asked, the sending process.
#[derive(Clone)]
struct Peer {
    addr: SocketAddr,
    pid: Arc<OnceLock<Option<i32>>>,
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self {
            addr: *stream.remote_addr(),
            pid: Arc::default(),
        }
    }
}

impl Peer {
    /// Returns the process on the other end, found on the first call.
    async fn pid(&self, server_port: u16) -> Option<i32> {
        if let Some(pid) = self.pid.get() {
            return *pid;
        }
        let port = self.addr.port();
        let pid = tokio::task::spawn_blocking(move || socket_owner(port, server_port))
            .await
            .ok()
            .flatten();
        // Only a found sender is kept: a miss is asked again next time.
        if let Some(p) = pid {
            let _ = self.pid.set(Some(p));
        }
        pid
    }
}

/// A body to serve from the first request sent by a process other than `unless_pid`.
struct Switch {
    unless_pid: i32,
    body: String,
    /// When it happened (request arrival, ms since the epoch).
    at: Option<i64>,
}

impl FleetServer {
    /// Starts serving `n` targets; target `i` serves `body(i)` until [`Self::set`].
    pub async fn start(n: usize, body: impl Fn(usize) -> String) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let local = listener.local_addr()?;
        let fleet = Arc::new(Fleet {
            port: local.port(),
            targets: (0..n)
                .map(|i| {
                    Mutex::new(FleetTarget {
                        body: body(i),
                        status: StatusCode::OK,
                        served: 0,
                        requests: Vec::new(),
                        switch: None,
                    })
                })
                .collect(),
        });
        let app = axum::Router::new()
            .route("/t/{i}", axum::routing::get(serve))
            .with_state(fleet.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<Peer>()).await;
        });
        Ok(Self {
            addr: local.to_string(),
            fleet,
            task,
        })
    }

    pub fn len(&self) -> usize {
        self.fleet.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fleet.targets.is_empty()
    }

    /// Returns the `static_configs:` block (indented for a job entry of
    /// `scrape_configs`) with one group per target.
    pub fn static_configs(&self) -> String {
        let mut yaml = String::from("    static_configs:\n");
        for i in 0..self.len() {
            yaml.push_str(&format!(
                "      - targets: ['{}']\n        labels:\n          __metrics_path__: /t/{i}\n          t: '{i}'\n",
                self.addr
            ));
        }
        yaml
    }

    /// Sets the exposition of target `i`.
    pub fn set(&self, i: usize, body: &str) {
        self.target(i).body = body.to_string();
    }

    /// Makes target `i` answer `status` (with an empty body, not counted)
    /// until it is set back to 200.
    pub fn set_status(&self, i: usize, status: u16) {
        self.target(i).status = StatusCode::from_u16(status).expect("an HTTP status");
    }

    /// Returns the arrival times (ms since the epoch) of every request for target `i`.
    pub fn requests(&self, i: usize) -> Vec<i64> {
        self.target(i).requests.iter().map(|r| r.at_ms).collect()
    }

    /// Returns the arrival time and the sender's pid (`None` when it could
    /// not be found) of every request for target `i`.
    pub fn requests_by(&self, i: usize) -> Vec<(i64, Option<i32>)> {
        self.target(i)
            .requests
            .iter()
            .map(|r| (r.at_ms, r.pid))
            .collect()
    }

    /// Returns every request target `i` received, with what it served.
    pub fn log(&self, i: usize) -> Vec<Request> {
        self.target(i).requests.clone()
    }

    /// From the first request for target `i` sent by a process other than
    /// `pid`, serves `body` (that request included).
    pub fn switch_unless_from(&self, i: usize, pid: i32, body: &str) {
        self.target(i).switch = Some(Switch {
            unless_pid: pid,
            body: body.to_string(),
            at: None,
        });
    }

    /// Returns when the switch of target `i` happened, if it did.
    pub fn switched_at(&self, i: usize) -> Option<i64> {
        self.target(i).switch.as_ref().and_then(|s| s.at)
    }

    fn target(&self, i: usize) -> std::sync::MutexGuard<'_, FleetTarget> {
        self.fleet.targets[i].lock().unwrap()
    }
}

impl Drop for FleetServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    State(fleet): State<Arc<Fleet>>,
    Path(i): Path<usize>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Response {
    let now = crate::audit::now_ms();
    let Some(target) = fleet.targets.get(i) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let pid = peer.pid(fleet.port).await;
    let mut guard = target.lock().unwrap();
    let t = &mut *guard;
    if t.status != StatusCode::OK {
        t.requests.push(Request {
            at_ms: now,
            pid,
            value: None,
        });
        return t.status.into_response();
    }
    t.served += 1;
    t.requests.push(Request {
        at_ms: now,
        pid,
        value: Some(t.served),
    });
    if let Some(s) = t.switch.as_mut() {
        if s.at.is_none() && pid.is_some_and(|p| p != s.unless_pid) {
            s.at = Some(now);
            t.body = s.body.clone();
        }
    }
    let body = t.body.replace(REQUESTS, &t.served.to_string());
    drop(guard);
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        body,
    )
        .into_response()
}

/// Returns the pid of the process holding the loopback TCP socket with
/// local port `local_port` connected to port `remote_port`.
fn socket_owner(local_port: u16, remote_port: u16) -> Option<i32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = socket_inode(&table, local_port, remote_port)?;
    let wanted = format!("socket:[{inode}]");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(entry.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|l| l.to_string_lossy() == wanted.as_str())
                })
                .then_some(pid)
        })
}

/// Returns the inode of the socket in a `/proc/net/tcp` table whose local
/// port is `local_port` and remote port is `remote_port`.
fn socket_inode(table: &str, local_port: u16, remote_port: u16) -> Option<u64> {
    let port = |addr: &str| {
        addr.rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (local, remote, inode) = (f.get(1)?, f.get(2)?, f.get(9)?);
        (port(local)? == local_port && port(remote)? == remote_port)
            .then(|| inode.parse().ok())
            .flatten()
            .filter(|&i| i != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn finds_the_clients_socket_not_the_servers() {
        // Server port 8080 (0x1F90), client port 50000 (0xC350).
        assert_eq!(socket_inode(TABLE, 50000, 8080), Some(3333));
        assert_eq!(socket_inode(TABLE, 8080, 50000), Some(2222));
        assert_eq!(socket_inode(TABLE, 50001, 8080), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn logs_requests_and_switches_for_another_process() -> Result<()> {
        let fleet = FleetServer::start(2, |i| format!("v {i}\n")).await?;
        assert!(fleet.static_configs().contains("__metrics_path__: /t/1"));
        let http = reqwest::Client::new();
        let get = |i: usize| {
            let url = format!("http://{}/t/{i}", fleet.addr);
            let http = http.clone();
            async move { http.get(url).send().await?.text().await }
        };
        assert_eq!(get(1).await?, "v 1\n");
        // Requests from this process do not switch; another process's do.
        let me = std::process::id() as i32;
        fleet.switch_unless_from(0, me, "w 0\n");
        assert_eq!(get(0).await?, "v 0\n");
        assert_eq!(fleet.switched_at(0), None);
        let curl = tokio::process::Command::new("curl")
            .args(["-s", &format!("http://{}/t/0", fleet.addr)])
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let curl_pid = curl.id().map(|p| p as i32);
        let out = curl.wait_with_output().await?;
        assert_eq!(String::from_utf8_lossy(&out.stdout), "w 0\n");
        assert!(fleet.switched_at(0).is_some());
        assert_eq!(get(0).await?, "w 0\n");
        let senders: Vec<Option<i32>> = fleet.requests_by(0).iter().map(|(_, p)| *p).collect();
        assert_eq!(senders, vec![Some(me), curl_pid, Some(me)]);
        assert_eq!(fleet.requests(0).len(), 3);
        assert_eq!(fleet.requests_by(1), vec![(fleet.requests(1)[0], Some(me))]);
        // A failing target logs the request but serves no value.
        let counting = FleetServer::start(1, |_| format!("c {REQUESTS}\n")).await?;
        let url = format!("http://{}/t/0", counting.addr);
        assert_eq!(http.get(&url).send().await?.text().await?, "c 1\n");
        counting.set_status(0, 503);
        assert_eq!(http.get(&url).send().await?.status(), 503);
        counting.set_status(0, 200);
        assert_eq!(http.get(&url).send().await?.text().await?, "c 2\n");
        let values: Vec<Option<u64>> = counting.log(0).iter().map(|r| r.value).collect();
        assert_eq!(values, vec![Some(1), None, Some(2)]);
        Ok(())
    }
}
