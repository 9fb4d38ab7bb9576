//! The processes of end-to-end tests: the path of a workspace binary
//! ([`bin`]), the address binaries are told to listen on ([`ANY_PORT`]) or a
//! free one for those that cannot report theirs ([`free_addr`]), a child
//! process that is killed when dropped and whose `listening <kind> <addr>`
//! line is read from its log ([`Process`]), restarting with the same flags
//! ([`set_flag`]) and waiting until a node is healthy ([`wait_healthy`]).

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::eventually;

/// Returns the path of a workspace binary built next to the test binary.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --bins`, as scripts/test.sh does)",
        path.display()
    );
    path
}

/// The address scrapegrid's binaries are told to listen on: port 0, so the
/// OS picks a free port and the binary reports it ([`Process::listening`]).
pub const ANY_PORT: &str = "127.0.0.1:0";

/// Returns a loopback address with a port that was free a moment ago: only
/// for programs that cannot report the port they got (etcd, Prometheus);
/// another process may take it before they bind.
pub fn free_addr() -> String {
    let l = StdListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").to_string()
}

/// A child process that is SIGKILLed when dropped.
pub struct Process {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    pub fn spawn(name: &str, program: &Path, args: &[String], log_dir: &Path) -> Result<Self> {
        Self::spawn_with_env(name, program, args, log_dir, &[])
    }

    /// As [`Self::spawn`], with these environment variables set as well.
    pub fn spawn_with_env(
        name: &str,
        program: &Path,
        args: &[String],
        log_dir: &Path,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            // Relative defaults (a scraper's --outbox.dir) stay in the
            // test's directory.
            .current_dir(log_dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Self {
            name: name.into(),
            child: Some(child),
            log,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(-1)
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
            let _ = c.wait();
        }
    }

    /// Sends `signal` (SIGSTOP, SIGCONT, SIGHUP, ...) and returns at once.
    pub fn signal(&self, signal: i32) {
        if let Some(c) = &self.child {
            unsafe { libc::kill(c.id() as i32, signal) };
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns its exit status code.
    pub fn terminate(&mut self, deadline: Duration) -> Result<Option<i32>> {
        let Some(c) = self.child.take() else {
            bail!("{} not running", self.name)
        };
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        self.child = Some(c);
        self.wait_exit(deadline)
            .with_context(|| format!("{} after SIGTERM", self.name))
    }

    /// Waits for the process to exit on its own; returns its exit status
    /// code. Past `deadline` it is killed and this fails.
    pub fn wait_exit(&mut self, deadline: Duration) -> Result<Option<i32>> {
        let Some(mut c) = self.child.take() else {
            bail!("{} not running", self.name)
        };
        let start = Instant::now();
        loop {
            if let Some(status) = c.try_wait()? {
                return Ok(status.code());
            }
            if start.elapsed() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                bail!("{} did not exit within {deadline:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to 20 s) for the `listening <kind> <addr>` line that our
    /// binaries print once bound; returns the address.
    pub async fn listening(&mut self, kind: &str) -> Result<String> {
        let prefix = format!("listening {kind} ");
        let start = Instant::now();
        loop {
            let log = self.log();
            if let Some(addr) = log.lines().find_map(|l| l.strip_prefix(&prefix)) {
                return Ok(addr.trim().to_string());
            }
            let exited = match self.child.as_mut() {
                Some(c) => c.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                bail!(
                    "{} exited ({status}) before listening on {kind}:\n{log}",
                    self.name
                );
            }
            if start.elapsed() > Duration::from_secs(20) {
                bail!(
                    "{} did not report its {kind} address in 20 s:\n{log}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Sets the value after `flag` in `args` (a restart passes the addresses the
/// OS picked for the first run).
pub fn set_flag(args: &mut [String], flag: &str, value: &str) {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} is not among {args:?}"));
    args[i + 1] = value.to_string();
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("----- {} log (last {} lines) -----", self.name, tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Waits (up to 20 s) until `http://{addr}/-/healthy` answers 200.
pub async fn wait_healthy(http: &reqwest::Client, addr: &str) -> Result<()> {
    let url = format!("http://{addr}/-/healthy");
    eventually(Duration::from_secs(20), || async {
        let r = http.get(&url).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await
    .with_context(|| format!("{url} never became healthy"))
}
