//! What a differential case is: a named target in one job, a one-line
//! statement of what it proves, and the phases its fixture serves.
//!
//! A phase is one response (status, Content-Type, body, delay, optional
//! redirect or gzip). Scrape `k` of a client gets phase
//! `min(k / repeats, last)`, so content can change between scrapes (to test
//! staleness) and both clients see the same sequence. Bodies are bytes or a
//! function run at serve time (explicit timestamps near "now", an echo of
//! the query string).
//!
//! `expect_up` is what the case expects *Prometheus* to store for `up`, as a
//! token sequence (`"1"`, `"1 0"`, `"1 _"` where `_` is a stale end): a check
//! of the suite itself, so a case that does not test what it claims shows up.

use std::sync::Arc;

use super::jobs::Job;

/// What a body generator gets at serve time.
pub struct Ctx {
    /// Milliseconds since the epoch when the request is served.
    pub now_ms: i64,
    /// The request's raw query string.
    pub query: String,
    /// The request's path as it came on the wire (still percent-encoded).
    pub path: String,
}

/// A body generator.
pub type GenFn = fn(&Ctx) -> Vec<u8>;

/// A response body.
#[derive(Clone)]
pub enum Body {
    Bytes(Vec<u8>),
    Gen(GenFn),
}

/// The Content-Type of the Prometheus text format.
pub const CT_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The Content-Type of OpenMetrics 1.0.
pub const CT_OM: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Content-Type of the delimited protobuf format.
pub const CT_PB: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// One response of a case's fixture.
#[derive(Clone)]
pub struct Phase {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: Body,
    pub delay_ms: u64,
    /// A `Location` header (with a 3xx status).
    pub location: Option<String>,
    /// Sent with `Content-Encoding: gzip`.
    pub gzip: bool,
    /// Extra response headers.
    pub headers: Vec<(&'static str, &'static str)>,
}

impl Phase {
    fn new(content_type: Option<&'static str>, body: Body) -> Phase {
        Phase {
            status: 200,
            content_type,
            body,
            delay_ms: 0,
            location: None,
            gzip: false,
            headers: Vec::new(),
        }
    }

    pub fn status(mut self, status: u16) -> Phase {
        self.status = status;
        self
    }

    pub fn ct(mut self, content_type: Option<&'static str>) -> Phase {
        self.content_type = content_type;
        self
    }

    pub fn delay_ms(mut self, ms: u64) -> Phase {
        self.delay_ms = ms;
        self
    }

    pub fn gzip(mut self) -> Phase {
        self.gzip = true;
        self
    }

    pub fn header(mut self, name: &'static str, value: &'static str) -> Phase {
        self.headers.push((name, value));
        self
    }

    pub fn location(mut self, location: &str) -> Phase {
        self.location = Some(location.into());
        self
    }
}

/// A text-format body (`text/plain; version=0.0.4`).
pub fn text(body: &str) -> Phase {
    Phase::new(Some(CT_TEXT), Body::Bytes(body.as_bytes().to_vec()))
}

/// A body of raw bytes with a text-format Content-Type.
pub fn bytes(body: &[u8]) -> Phase {
    Phase::new(Some(CT_TEXT), Body::Bytes(body.to_vec()))
}

/// A text-format body made at serve time.
pub fn gen_text(f: GenFn) -> Phase {
    Phase::new(Some(CT_TEXT), Body::Gen(f))
}

/// An OpenMetrics body.
pub fn om(body: &str) -> Phase {
    Phase::new(Some(CT_OM), Body::Bytes(body.as_bytes().to_vec()))
}

/// An OpenMetrics body made at serve time.
pub fn gen_om(f: GenFn) -> Phase {
    Phase::new(Some(CT_OM), Body::Gen(f))
}

/// A delimited-protobuf body.
pub fn pb(body: Vec<u8>) -> Phase {
    Phase::new(Some(CT_PB), Body::Bytes(body))
}

/// A delimited-protobuf body made at serve time.
pub fn gen_pb(f: GenFn) -> Phase {
    Phase::new(Some(CT_PB), Body::Gen(f))
}

/// Where a case's target points.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// The fixture server.
    Fixture,
    /// A loopback port nobody listens on.
    Closed,
    /// A literal address, for target relabeling to rewrite.
    Literal(&'static str),
}

/// One differential case.
pub struct Case {
    /// Unique; the target's `instance` label and its path `/case/<name>`.
    pub name: &'static str,
    pub job: Job,
    /// One line: what the case proves.
    pub what: &'static str,
    pub phases: Vec<Phase>,
    /// Scrapes per phase.
    pub repeats: u64,
    /// The `up` tokens Prometheus must store (a check of the suite).
    pub expect_up: &'static str,
    /// Extra static target labels.
    pub labels: Vec<(&'static str, String)>,
    pub address: Address,
    /// Whether the fixture sees its scrapes (false for targets that are
    /// never scraped or never reach the fixture's HTTP layer).
    pub counted: bool,
    /// Whether the static config sets `instance` to the case name (else
    /// `instance` comes from the address, or from relabeling).
    pub static_instance: bool,
    /// Other `instance` values whose series belong to this case.
    pub aliases: Vec<String>,
    /// What `/final/<name>` serves (the target of a redirect).
    pub redirect_final: Option<Phase>,
    /// In file SD: removed from the file after both clients scraped it this
    /// many times.
    pub remove_after: Option<u64>,
    /// A Prometheus 2.42 behaviour scrapegrid does not copy on purpose: why,
    /// and the exact differences it must produce (the case fails on any
    /// other difference, or if these are missing).
    pub deviation: Option<(&'static str, Vec<String>)>,
}

/// Starts a case.
pub fn case(name: &'static str, job: Job, what: &'static str) -> Case {
    Case {
        name,
        job,
        what,
        phases: Vec::new(),
        repeats: 1,
        expect_up: "1",
        labels: Vec::new(),
        address: Address::Fixture,
        counted: true,
        static_instance: true,
        aliases: Vec::new(),
        redirect_final: None,
        remove_after: None,
        deviation: None,
    }
}

impl Case {
    pub fn phase(mut self, p: Phase) -> Case {
        self.phases.push(p);
        self
    }

    pub fn repeats(mut self, n: u64) -> Case {
        self.repeats = n;
        self
    }

    /// Declares a deliberate deviation from Prometheus 2.42: `why`, and the
    /// exact difference lines it produces (`{case}` stands for the name).
    pub fn deviates(mut self, why: &'static str, diffs: &[&str]) -> Case {
        let lines = diffs
            .iter()
            .map(|d| d.replace("{case}", self.name))
            .collect();
        self.deviation = Some((why, lines));
        self
    }

    pub fn up(mut self, tokens: &'static str) -> Case {
        self.expect_up = tokens;
        self
    }

    pub fn label(mut self, name: &'static str, value: &str) -> Case {
        self.labels.push((name, value.into()));
        self
    }

    pub fn address(mut self, a: Address) -> Case {
        self.address = a;
        if a == Address::Closed {
            self.counted = false;
        }
        self
    }

    pub fn uncounted(mut self) -> Case {
        self.counted = false;
        self
    }

    pub fn no_static_instance(mut self) -> Case {
        self.static_instance = false;
        self
    }

    pub fn alias(mut self, instance: &str) -> Case {
        self.aliases.push(instance.into());
        self
    }

    pub fn redirect_to_final(mut self, p: Phase) -> Case {
        self.redirect_final = Some(p);
        self
    }

    pub fn remove_after(mut self, scrapes: u64) -> Case {
        self.remove_after = Some(scrapes);
        self
    }

    /// The phase served on scrape `k` (0-based).
    pub fn phase_for(&self, k: u64) -> &Phase {
        let i = (k / self.repeats.max(1)) as usize;
        &self.phases[i.min(self.phases.len() - 1)]
    }

    /// How many scrapes by each client the comparison waits for.
    pub fn scrapes_needed(&self) -> u64 {
        self.phases.len() as u64 * self.repeats + 2
    }

    /// The case's scrape path.
    pub fn path(&self) -> String {
        format!("/case/{}", self.name)
    }
}

/// Finishes the table: checks names are unique and every case has a phase.
pub fn finish(cases: Vec<Case>) -> Vec<Arc<Case>> {
    let mut seen = std::collections::HashSet::new();
    for c in &cases {
        assert!(seen.insert(c.name), "case {} twice", c.name);
        assert!(!c.phases.is_empty(), "case {} has no phase", c.name);
    }
    cases.into_iter().map(Arc::new).collect()
}
