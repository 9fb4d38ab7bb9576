//! The metadata of a `remote_write` endpoint, as Prometheus 2.42's
//! `MetadataWatcher` sends it: every `metadata_config.send_interval` (the
//! first after one interval), the metadata of every target the node knows
//! ([`crate::metadata::MetadataStore`]), each distinct (metric, type, help, unit) once, in
//! requests of at most `metadata_config.max_samples_per_send` entries that
//! carry nothing else. A request is retried with the queue's backoff until
//! it is sent or refused for good; nothing of it is kept on disk (the next
//! interval sends everything again). Off with `metadata_config.send: false`.

use std::collections::HashSet;
use std::sync::Arc;

use prost::Message;
use scrapegrid_common::config::RemoteWriteConfig;
use scrapegrid_common::xorshift::XorShift;
use scrapegrid_proto::prometheus as prom;
use tokio_util::sync::CancellationToken;

use super::client::{Client, Delivery};
use crate::metadata::{MetadataStore, MetricMetadata};
use crate::metrics;

/// Sends the metadata to one endpoint.
pub(super) struct MetadataSender {
    store: Arc<MetadataStore>,
    config: RemoteWriteConfig,
    name: String,
    client: Client,
}

/// The remote-write type of a Prometheus type name (`UNKNOWN` for any
/// other, as Prometheus's `metricTypeToMetricTypeProto`).
fn metric_type(kind: &str) -> prom::metric_metadata::MetricType {
    use prom::metric_metadata::MetricType as T;
    match kind {
        "counter" => T::Counter,
        "gauge" => T::Gauge,
        "histogram" => T::Histogram,
        "gaugehistogram" => T::Gaugehistogram,
        "summary" => T::Summary,
        "info" => T::Info,
        "stateset" => T::Stateset,
        _ => T::Unknown,
    }
}

/// The requests of one interval: the distinct entries of every target in
/// order, `per_request` at most in each.
pub fn requests(store: &MetadataStore, per_request: usize) -> Vec<(Vec<u8>, usize)> {
    let mut seen: HashSet<MetricMetadata> = HashSet::new();
    let mut all = Vec::new();
    for t in store.targets() {
        for m in t.metrics.iter() {
            if seen.insert(m.clone()) {
                all.push(prom::MetricMetadata {
                    r#type: metric_type(&m.kind) as i32,
                    metric_family_name: m.metric.clone(),
                    help: m.help.clone(),
                    unit: m.unit.clone(),
                });
            }
        }
    }
    all.chunks(per_request.max(1))
        .map(|chunk| {
            let request = prom::WriteRequest {
                metadata: chunk.to_vec(),
                ..Default::default()
            };
            (request.encode_to_vec(), chunk.len())
        })
        .collect()
}

impl MetadataSender {
    /// `None` when the endpoint sends no metadata.
    pub(super) fn new(
        store: Arc<MetadataStore>,
        config: &RemoteWriteConfig,
    ) -> Result<Option<Self>, String> {
        if !config.metadata.send {
            return Ok(None);
        }
        Ok(Some(Self {
            store,
            name: config.queue_name(),
            client: Client::new(config.clone())?,
            config: config.clone(),
        }))
    }

    pub(super) async fn run(self, stop: CancellationToken) {
        let interval = self
            .config
            .metadata
            .send_interval
            .max(std::time::Duration::from_millis(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rng = XorShift::new(0x3e7a_da7a);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let per_request = self.config.metadata.max_samples_per_send;
            for (body, entries) in requests(&self.store, per_request) {
                let (name, url) = (&self.name, &self.config.url);
                let delivery = self
                    .client
                    .deliver(&body, &mut rng, &stop, |error, backoff| {
                        tracing::warn!(queue = %name, entries, %error, ?backoff, "remote_write metadata request failed; retrying");
                        metrics::remote_write_carried(name, url, metrics::Carried::Metadata, metrics::Ended::Retried, entries);
                        true
                    })
                    .await;
                match delivery {
                    Delivery::Sent(_) => metrics::remote_write_carried(
                        name,
                        url,
                        metrics::Carried::Metadata,
                        metrics::Ended::Sent,
                        entries,
                    ),
                    Delivery::Refused(error) => {
                        tracing::error!(queue = %name, entries, %error, "remote_write metadata request refused");
                        metrics::remote_write_carried(
                            name,
                            url,
                            metrics::Carried::Metadata,
                            metrics::Ended::Failed,
                            entries,
                        );
                    }
                    Delivery::Stopped | Delivery::Abandoned => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrapegrid_common::Labels;
    use scrapegrid_proto::v1 as pb;

    fn target(job: &str, entries: &[(&str, &str)]) -> pb::TargetMetadata {
        pb::TargetMetadata {
            target_labels: Labels::from_pairs([("job", job)]).to_proto(),
            metrics: entries
                .iter()
                .map(|(m, t)| pb::MetricMetadata {
                    metric: m.to_string(),
                    r#type: t.to_string(),
                    help: format!("help of {m}"),
                    unit: String::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn distinct_entries_in_requests_of_the_configured_size() {
        let store = MetadataStore::default();
        let scraper: Arc<str> = "s".into();
        store.apply(
            "a",
            1,
            &scraper,
            target("a", &[("x", "counter"), ("y", "gaugehistogram")]),
        );
        store.apply(
            "b",
            1,
            &scraper,
            target("b", &[("x", "counter"), ("z", "no-such-type")]),
        );
        let reqs = requests(&store, 2);
        assert_eq!(reqs.iter().map(|r| r.1).collect::<Vec<_>>(), [2, 1]);
        let decoded: Vec<_> = reqs
            .iter()
            .flat_map(|(b, _)| prom::WriteRequest::decode(b.as_slice()).unwrap().metadata)
            .map(|m| (m.metric_family_name, m.r#type, m.help))
            .collect();
        use prom::metric_metadata::MetricType as T;
        assert_eq!(
            decoded,
            [
                ("x".into(), T::Counter as i32, "help of x".into()),
                ("y".into(), T::Gaugehistogram as i32, "help of y".into()),
                ("z".into(), T::Unknown as i32, "help of z".into()),
            ],
            "the same entry of two targets is sent once"
        );
        assert!(requests(&MetadataStore::default(), 500).is_empty());
    }
}
