//! `dns_sd_configs`: targets from DNS SRV, A, AAAA or MX records, as in
//! Prometheus 2.42 (`discovery/dns`).
//!
//! Every `refresh_interval` the provider looks every name up (concurrently)
//! at one server: the `--dns-resolver` address, or else the first
//! `nameserver` of `/etc/resolv.conf`, re-read on each refresh. Each name is
//! one group whose source is the name:
//! - SRV: `<target>:<port>` with `__meta_dns_srv_record_target` (as the
//!   record has it, trailing dot included) and `__meta_dns_srv_record_port`;
//! - A/AAAA: `<ip>:<port>` (IPv6 in brackets) with the configured port;
//! - MX: `<host>:<port>` with `__meta_dns_mx_record_target`.
//!
//! Every target has `__meta_dns_name`; addresses lose the trailing dot.
//! CNAMEs in an answer are skipped, other unexpected records logged and
//! skipped. An NXDOMAIN or an empty NOERROR answer is pseudo-authoritative:
//! the group becomes empty, which deletes the source. Any other outcome
//! (timeout, SERVFAIL, REFUSED, a malformed answer) is a failure: the name
//! keeps its last good group, a warning is logged and
//! `scrapegrid_control_sd_refresh_failures_total{mechanism="dns"}` counts it.
//! Only changed groups are sent; a full channel makes the provider wait.

use std::net::{IpAddr, SocketAddr};

use futures::future::join_all;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use scrapegrid_common::config::{DnsRecordType, DnsSdConfig};
use scrapegrid_common::Labels;

use super::dns_client::{system_resolver, DnsClient};
use super::dns_wire::{DnsError, Record, RecordData, RecordType};
use super::{push_changes, ProviderSender, ProviderUpdate, TargetGroup, MIN_REFRESH_INTERVAL};
use crate::metrics;

pub const NAME_LABEL: &str = "__meta_dns_name";
pub const SRV_TARGET_LABEL: &str = "__meta_dns_srv_record_target";
pub const SRV_PORT_LABEL: &str = "__meta_dns_srv_record_port";
pub const MX_TARGET_LABEL: &str = "__meta_dns_mx_record_target";

/// Runs one dns_sd provider until `cancel` fires; `resolver` is the
/// `--dns-resolver` flag.
pub async fn run(
    provider: usize,
    config: DnsSdConfig,
    resolver: Option<SocketAddr>,
    tx: mpsc::Sender<ProviderUpdate>,
    cancel: CancellationToken,
) {
    let mut last: Vec<TargetGroup> = Vec::new();
    let mut sender = ProviderSender::new(provider, tx);
    let mut tick = tokio::time::interval(config.refresh_interval.max(MIN_REFRESH_INTERVAL));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let groups = tokio::select! {
            _ = cancel.cancelled() => return,
            groups = refresh(&config, resolver, &last) => groups,
        };
        let mut changed = Vec::new();
        push_changes(&mut changed, &last, &groups);
        last = groups;
        if !sender.send(changed).await {
            return;
        }
    }
}

/// Looks every name up; a name that fails keeps its group from `last`.
async fn refresh(
    config: &DnsSdConfig,
    resolver: Option<SocketAddr>,
    last: &[TargetGroup],
) -> Vec<TargetGroup> {
    let keep_last = |name: &str, error: &DnsError| {
        ::metrics::counter!(metrics::SD_REFRESH_FAILURES, "mechanism" => "dns").increment(1);
        tracing::warn!(name, %error, "dns_sd: lookup failed, keeping last good group");
        last.iter().find(|g| g.source == name).cloned()
    };
    let server = match resolver {
        Some(server) => server,
        None => match system_resolver().await {
            Ok(server) => server,
            Err(error) => {
                return config
                    .names
                    .iter()
                    .filter_map(|n| keep_last(n, &error))
                    .collect();
            }
        },
    };
    let client = DnsClient::new(server);
    let qtype = query_type(config.record_type);
    let results = join_all(config.names.iter().map(|n| client.lookup(n, qtype))).await;
    config
        .names
        .iter()
        .zip(results)
        .filter_map(|(name, result)| match result {
            Ok(records) => Some(group(name, &records, config.port)),
            Err(error) => keep_last(name, &error),
        })
        .collect()
}

fn query_type(t: DnsRecordType) -> RecordType {
    match t {
        DnsRecordType::Srv => RecordType::Srv,
        DnsRecordType::A => RecordType::A,
        DnsRecordType::Aaaa => RecordType::Aaaa,
        DnsRecordType::Mx => RecordType::Mx,
    }
}

/// Returns the group of one name from its answer records; `port` is used
/// for A, AAAA and MX records.
pub fn group(name: &str, records: &[Record], port: u16) -> TargetGroup {
    let targets = records
        .iter()
        .filter_map(|record| {
            let (address, srv_target, srv_port, mx_target) = match &record.data {
                RecordData::Srv { port, target } => (
                    host_port(trim_root(target), *port),
                    target.as_str(),
                    port.to_string(),
                    "",
                ),
                RecordData::Mx { host, .. } => (
                    host_port(trim_root(host), port),
                    "",
                    String::new(),
                    host.as_str(),
                ),
                RecordData::A(ip) => (ip_port((*ip).into(), port), "", String::new(), ""),
                RecordData::Aaaa(ip) => (ip_port((*ip).into(), port), "", String::new(), ""),
                // CNAMEs come with A and AAAA answers.
                RecordData::Cname(_) => return None,
                RecordData::Other(rtype) => {
                    tracing::warn!(
                        name,
                        record_type = rtype.code(),
                        "dns_sd: ignoring unexpected record"
                    );
                    return None;
                }
            };
            // Empty values (the labels of other record types) mean absent,
            // as in Prometheus; `Labels` drops them.
            Some(Labels::from_pairs([
                ("__address__", address),
                (NAME_LABEL, name.to_string()),
                (SRV_TARGET_LABEL, srv_target.to_string()),
                (SRV_PORT_LABEL, srv_port),
                (MX_TARGET_LABEL, mx_target.to_string()),
            ]))
        })
        .collect();
    TargetGroup {
        source: name.to_string(),
        targets,
        labels: Labels::new(),
    }
}

/// Drops the trailing dots of a rooted name, as Prometheus does.
fn trim_root(name: &str) -> &str {
    name.trim_end_matches('.')
}

/// Joins a host and a port; a host with a colon (IPv6) goes in brackets.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Formats an address as Go's `net.IP.String` does: IPv4-mapped IPv6
/// addresses in dotted form.
fn ip_port(ip: IpAddr, port: u16) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    host_port(&ip.to_string(), port)
}

#[cfg(test)]
mod tests;
