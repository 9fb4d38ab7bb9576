//! dns_sd tests: target building, and the provider against a real dnsmasq
//! (Debian `dnsmasq-base`) on a loopback port. The host's resolver is never
//! asked.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;
use crate::discovery::test_support::{
    addresses, by_source, eventually, failures, local_metrics, next_update, DEADLINE,
};

fn record(data: RecordData) -> Record {
    Record {
        name: "x.".into(),
        ttl: 1,
        data,
    }
}

fn sorted(group: &TargetGroup) -> Vec<&str> {
    let mut a = addresses(group);
    a.sort();
    a
}

#[test]
fn builds_targets_as_prometheus_does() {
    let g = group(
        "_s._tcp.ex",
        &[
            record(RecordData::Srv {
                port: 9100,
                target: "h1.ex.".into(),
            }),
            record(RecordData::Mx {
                preference: 1,
                host: "mail.ex.".into(),
            }),
            record(RecordData::A(Ipv4Addr::new(10, 0, 0, 1))),
            record(RecordData::Aaaa("fd00::1".parse().unwrap())),
            record(RecordData::Aaaa(Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped())),
            record(RecordData::Cname("y.ex.".into())),
            record(RecordData::Other(RecordType::Other(16))),
        ],
        80,
    );
    assert_eq!(g.source, "_s._tcp.ex");
    assert_eq!(
        addresses(&g),
        [
            "h1.ex:9100",
            "mail.ex:80",
            "10.0.0.1:80",
            "[fd00::1]:80",
            "1.2.3.4:80"
        ]
    );
    let srv = &g.targets[0];
    assert_eq!(srv.get(NAME_LABEL), Some("_s._tcp.ex"));
    assert_eq!(srv.get(SRV_TARGET_LABEL), Some("h1.ex."));
    assert_eq!(srv.get(SRV_PORT_LABEL), Some("9100"));
    assert_eq!(srv.get(MX_TARGET_LABEL), None);
    assert_eq!(g.targets[1].get(MX_TARGET_LABEL), Some("mail.ex."));
    assert_eq!(g.targets[1].get(SRV_PORT_LABEL), None);
    assert_eq!(g.targets[2].len(), 2, "address and name only");
    assert!(group("n", &[], 1).targets.is_empty());
}

/// A dnsmasq serving `example.test` on a loopback port; killed by its PID
/// when dropped.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dnsmasq_binary() -> &'static str {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("dnsmasq not found: install dnsmasq-base (scripts/install-deps.sh)")
}

/// Returns a port free for both UDP and TCP on 127.0.0.1 right now.
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Dnsmasq {
    /// Starts dnsmasq on `port` (0: a free one) with `records` (dnsmasq
    /// options); unknown names in `example.test` get NXDOMAIN, names
    /// elsewhere REFUSED. Returns once it answers.
    async fn start(port: u16, records: &[String]) -> Self {
        for _ in 0..10 {
            let port = if port == 0 { free_port() } else { port };
            let child = Command::new(dnsmasq_binary())
                .args([
                    "--no-daemon",
                    "--no-resolv",
                    "--no-hosts",
                    "--conf-file=/dev/null",
                    &format!("--port={port}"),
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--local=/example.test/",
                ])
                .args(records)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot start dnsmasq");
            let mut d = Dnsmasq {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            if d.answers().await {
                return d;
            }
        }
        panic!("dnsmasq did not start");
    }

    /// Waits until dnsmasq answers a probe; false if it exited.
    async fn answers(&mut self) -> bool {
        let mut probe = DnsClient::new(self.addr);
        probe.timeout = Duration::from_millis(100);
        probe.attempts = 1;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while tokio::time::Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return false;
            }
            if probe
                .query("probe.example.test", RecordType::A)
                .await
                .is_ok()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

fn opts(options: &[&str]) -> Vec<String> {
    options.iter().map(|s| s.to_string()).collect()
}

fn config(names: &[&str], record_type: DnsRecordType, port: u16) -> DnsSdConfig {
    DnsSdConfig {
        names: names.iter().map(|s| s.to_string()).collect(),
        record_type,
        port,
        refresh_interval: Duration::from_millis(200),
    }
}

/// Runs a provider against `server` and returns its first update's groups.
async fn first_groups(config: DnsSdConfig, server: SocketAddr) -> Vec<TargetGroup> {
    let (tx, mut rx) = mpsc::channel(8);
    let cancel = CancellationToken::new();
    tokio::spawn(run(0, config, Some(server), tx, cancel.clone()));
    let update = next_update(&mut rx).await;
    cancel.cancel();
    update.groups
}

#[tokio::test]
async fn resolves_srv_a_aaaa_and_mx_from_dnsmasq() {
    let (metrics, _guard) = local_metrics();
    let mut records = opts(&[
        "--srv-host=_web._tcp.example.test,web1.example.test,9100,10,5",
        "--srv-host=_web._tcp.example.test,web2.example.test,9200,20,5",
        "--host-record=multi.example.test,10.0.0.1",
        "--host-record=multi.example.test,10.0.0.2",
        "--host-record=multi.example.test,fd00::1",
        "--host-record=v4only.example.test,10.0.0.9",
        "--cname=alias.example.test,multi.example.test",
        "--mx-host=example.test,mail.example.test,10",
        "--mx-host=example.test,mail2.example.test,20",
    ]);
    // 100 A records do not fit the 1232-byte EDNS size: truncated, then TCP.
    records.extend((1..=100).map(|i| format!("--host-record=big.example.test,10.0.1.{i}")));
    let dns = Dnsmasq::start(0, &records).await;

    let srv = first_groups(
        config(
            &["_web._tcp.example.test", "_none._tcp.example.test"],
            DnsRecordType::Srv,
            0,
        ),
        dns.addr,
    )
    .await;
    let web = by_source(&srv, "_web._tcp.example.test");
    assert_eq!(
        sorted(web),
        ["web1.example.test:9100", "web2.example.test:9200"]
    );
    let web1 = web
        .targets
        .iter()
        .find(|t| t.get(SRV_PORT_LABEL) == Some("9100"))
        .unwrap();
    assert_eq!(web1.get(SRV_TARGET_LABEL), Some("web1.example.test."));
    assert_eq!(web1.get(NAME_LABEL), Some("_web._tcp.example.test"));
    assert!(
        by_source(&srv, "_none._tcp.example.test")
            .targets
            .is_empty(),
        "nxdomain gives an empty group"
    );

    let a = first_groups(
        config(
            &[
                "multi.example.test",
                "alias.example.test",
                "big.example.test",
                "nope.example.test",
                "outside.invalid",
            ],
            DnsRecordType::A,
            9090,
        ),
        dns.addr,
    )
    .await;
    let two = ["10.0.0.1:9090", "10.0.0.2:9090"];
    assert_eq!(sorted(by_source(&a, "multi.example.test")), two);
    assert_eq!(
        sorted(by_source(&a, "alias.example.test")),
        two,
        "cname skipped"
    );
    assert_eq!(by_source(&a, "big.example.test").targets.len(), 100);
    assert!(by_source(&a, "nope.example.test").targets.is_empty());
    // REFUSED is a failure: no group, and it is counted.
    assert!(a.iter().all(|g| g.source != "outside.invalid"));
    assert!(failures(&metrics, "dns") >= 1);

    let aaaa = first_groups(
        config(
            &["multi.example.test", "v4only.example.test"],
            DnsRecordType::Aaaa,
            9090,
        ),
        dns.addr,
    )
    .await;
    assert_eq!(
        addresses(by_source(&aaaa, "multi.example.test")),
        ["[fd00::1]:9090"]
    );
    assert!(
        by_source(&aaaa, "v4only.example.test").targets.is_empty(),
        "no record of the type: empty group"
    );

    let mx = first_groups(config(&["example.test"], DnsRecordType::Mx, 25), dns.addr).await;
    let mail = by_source(&mx, "example.test");
    assert_eq!(
        sorted(mail),
        ["mail.example.test:25", "mail2.example.test:25"]
    );
    assert!(mail
        .targets
        .iter()
        .any(|t| t.get(MX_TARGET_LABEL) == Some("mail.example.test.")));
    let _: Ipv6Addr = "fd00::1".parse().unwrap();
}

#[tokio::test]
async fn follows_changes_and_keeps_the_last_group_while_the_server_is_down() {
    let (metrics, _guard) = local_metrics();
    let srv = |targets: &[(&str, u16)]| -> Vec<String> {
        targets
            .iter()
            .map(|(t, p)| format!("--srv-host=_web._tcp.example.test,{t},{p}"))
            .collect()
    };
    let dns = Dnsmasq::start(
        0,
        &srv(&[("web1.example.test", 9100), ("web2.example.test", 9200)]),
    )
    .await;
    let port = dns.addr.port();
    let (tx, mut rx) = mpsc::channel(8);
    let cancel = CancellationToken::new();
    let name = "_web._tcp.example.test";
    tokio::spawn(run(
        3,
        config(&[name], DnsRecordType::Srv, 0),
        Some(dns.addr),
        tx,
        cancel.clone(),
    ));
    let first = next_update(&mut rx).await;
    assert_eq!(
        sorted(by_source(&first.groups, name)),
        ["web1.example.test:9100", "web2.example.test:9200"]
    );

    // Server down: lookups fail, nothing is sent (the group stays).
    drop(dns);
    eventually("two failed refreshes", || failures(&metrics, "dns") >= 2).await;
    assert!(rx.try_recv().is_err(), "a failed lookup sent an update");

    // Back with other records: the new group arrives.
    let dns = Dnsmasq::start(
        port,
        &srv(&[("web1.example.test", 9100), ("web3.example.test", 9300)]),
    )
    .await;
    let update = next_update(&mut rx).await;
    assert_eq!(
        sorted(by_source(&update.groups, name)),
        ["web1.example.test:9100", "web3.example.test:9300"]
    );
    drop(dns);

    // Back without the name (NXDOMAIN): the source is deleted.
    let _dns = Dnsmasq::start(port, &[]).await;
    let update = loop {
        let u = next_update(&mut rx).await;
        if u.groups.iter().any(|g| g.targets.is_empty()) {
            break u;
        }
    };
    assert_eq!(
        update.groups,
        vec![TargetGroup {
            source: name.into(),
            ..Default::default()
        }]
    );
    cancel.cancel();
}
