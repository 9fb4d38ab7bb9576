//! [`OwnerWatch`]: who owned each target when, as the control planes said,
//! polled through the chaos run; the checker credits a scraper's fault to
//! the targets it owned, also those it had not scraped yet.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::audit::now_ms;
use crate::ha::owners_in;

/// How often the owners are asked for.
const POLL: Duration = Duration::from_millis(250);

type History = Vec<(i64, BTreeMap<String, String>)>;

/// Polls `/api/v1/targets` (a follower forwards it to the leader) and
/// keeps every change of owners with its time.
pub struct OwnerWatch {
    history: Arc<Mutex<History>>,
    task: tokio::task::JoinHandle<()>,
}

impl OwnerWatch {
    /// Starts polling the control planes at `http` (`host:port` each).
    pub fn start(client: reqwest::Client, http: Vec<String>) -> Self {
        let history: Arc<Mutex<History>> = Arc::default();
        let h = history.clone();
        let task = tokio::spawn(async move {
            loop {
                for addr in &http {
                    let url = format!("http://{addr}/api/v1/targets");
                    let answer = client.get(&url).timeout(Duration::from_secs(1)).send();
                    let Ok(Ok(v)) = (match answer.await {
                        Ok(r) => Ok(r.json::<Value>().await),
                        Err(e) => Err(e),
                    }) else {
                        continue;
                    };
                    let owners = owners_in(&v["data"]);
                    if owners.is_empty() {
                        continue;
                    }
                    let mut h = h.lock().unwrap();
                    if h.last().is_none_or(|(_, last)| *last != owners) {
                        h.push((now_ms(), owners));
                    }
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
        });
        Self { history, task }
    }

    /// Whether scraper `id` owned target `t` at some time in `[from, to]`
    /// (the owners in effect at `from` included).
    pub fn owned_during(&self, t: &str, id: &str, from: i64, to: i64) -> bool {
        owned_during(&self.history.lock().unwrap(), t, id, from, to)
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for OwnerWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn owned_during(
    history: &[(i64, BTreeMap<String, String>)],
    t: &str,
    id: &str,
    from: i64,
    to: i64,
) -> bool {
    let in_effect = history.iter().rposition(|(at, _)| *at <= from).unwrap_or(0);
    history[in_effect..]
        .iter()
        .enumerate()
        .take_while(|(k, (at, _))| *k == 0 || *at <= to)
        .any(|(_, (_, owners))| owners.get(t).is_some_and(|o| o == id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(t, s)| (t.to_string(), s.to_string()))
            .collect()
    }

    #[test]
    fn owners_in_effect_and_changes_within_the_span_count() {
        let h = vec![
            (100, owners(&[("0", "a"), ("1", "b")])),
            (500, owners(&[("0", "b"), ("1", "b")])),
            (900, owners(&[("0", "c"), ("1", "b")])),
        ];
        // In effect at 300 (from 100).
        assert!(owned_during(&h, "0", "a", 300, 400));
        assert!(!owned_during(&h, "0", "b", 300, 400));
        // A change inside the span.
        assert!(owned_during(&h, "0", "b", 300, 600));
        assert!(!owned_during(&h, "0", "c", 300, 600));
        assert!(owned_during(&h, "0", "c", 950, 2000));
        // Before anything was seen: the first answer stands in.
        assert!(owned_during(&h, "1", "b", 0, 50));
        assert!(!owned_during(&[], "1", "b", 0, 50));
    }
}
