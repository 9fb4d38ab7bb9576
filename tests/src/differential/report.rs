//! The suite's verdicts: one [`CaseResult`] per case and the [`Report`]
//! that renders the PASS/FAIL table and every difference.

use std::time::Duration;

/// The verdict on one case.
pub struct CaseResult {
    pub name: &'static str,
    pub job: &'static str,
    pub what: &'static str,
    /// How scrapegrid differs from Prometheus.
    pub diffs: Vec<String>,
    /// Where Prometheus did not do what the case expects: a suite bug.
    pub suite_errors: Vec<String>,
    /// Differences that come from a Prometheus bug the suite does not ask
    /// scrapegrid to copy; shown, not failed.
    pub ignored: Vec<String>,
}

impl CaseResult {
    pub fn verdict(&self) -> &'static str {
        if !self.suite_errors.is_empty() {
            "SUITE"
        } else if !self.diffs.is_empty() {
            "FAIL"
        } else {
            "PASS"
        }
    }
}

/// What the suite found.
pub struct Report {
    pub cases: Vec<CaseResult>,
    /// Differences that belong to no single case (headers, unattributed
    /// series or targets).
    pub global: Vec<String>,
    /// The scrape headers each client sent (all values seen).
    pub headers: Vec<String>,
    pub elapsed: Duration,
}

impl Report {
    /// Renders the per-case table and every difference.
    pub fn render(&self) -> String {
        let mut s = String::from("differential cases (Prometheus 2.42 vs scrapegrid):\n");
        for c in &self.cases {
            s.push_str(&format!(
                "  {:5} {:8} {:24} {}\n",
                c.verdict(),
                c.job,
                c.name,
                c.what
            ));
        }
        for h in &self.headers {
            s.push_str(&format!("  header {h}\n"));
        }
        let pass = self.cases.iter().filter(|c| c.verdict() == "PASS").count();
        s.push_str(&format!(
            "{pass}/{} cases pass, {} global differences, {:.1}s\n",
            self.cases.len(),
            self.global.len(),
            self.elapsed.as_secs_f64()
        ));
        for c in self
            .cases
            .iter()
            .filter(|c| c.verdict() != "PASS" || !c.ignored.is_empty())
        {
            s.push_str(&format!(
                "--- {} {} ({}): {}\n",
                c.verdict(),
                c.name,
                c.job,
                c.what
            ));
            for d in c.suite_errors.iter().chain(&c.diffs).chain(&c.ignored) {
                s.push_str(&format!("    {}\n", shorten(d)));
            }
        }
        if !self.global.is_empty() {
            s.push_str("--- global\n");
            for d in &self.global {
                s.push_str(&format!("    {d}\n"));
            }
        }
        s
    }

    pub fn all_pass(&self) -> bool {
        self.global.is_empty() && self.cases.iter().all(|c| c.verdict() == "PASS")
    }
}

/// Cuts a very long difference line (a 1 KB label value) in the middle.
pub(super) fn shorten(line: &str) -> String {
    const MAX: usize = 600;
    if line.len() <= MAX {
        return line.to_string();
    }
    let mut head = MAX / 2;
    while !line.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = line.len() - MAX / 2;
    while !line.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{} [...] {}", &line[..head], &line[tail..])
}
