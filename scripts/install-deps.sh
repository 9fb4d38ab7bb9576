#!/usr/bin/env bash
# Installs the Debian packages scrapegrid needs to build and test, when missing.
#   protobuf-compiler, libprotobuf-dev   protoc and its well-known types, for the
#                              generated gRPC code (ours and etcd-client's)
#   librocksdb-dev             RocksDB 7.8 to link against (see .cargo/config.toml)
#   libclang1-14, libclang-common-14-dev   bindgen for librocksdb-sys
#   prometheus                 promtool and the reference Prometheus for tests
#   victoria-metrics           VictoriaMetrics 1.79, a peer in bench/cluster-vs-peers.sh
#   etcd-server                real etcd for the HA tests
#   curl                       the README's query example
#   dnsmasq-base               a real DNS server for the dns_sd_configs tests
#   openssl                    certificates for the TLS scrape tests
#   prometheus-node-exporter   the reference the host integration is compared with
#   faketime                   a scraper whose clock is off, for the clock skew test
#   chromium, fonts-dejavu-core   headless Chromium for the web UI tests (and
#                              screenshots with readable text)
#   kubernetes-client          kubectl (unless one is installed), which renders
#                              deploy/kubernetes in the deploy test
set -euo pipefail
pkgs=(protobuf-compiler libprotobuf-dev openssl librocksdb-dev libclang1-14 libclang-common-14-dev prometheus victoria-metrics etcd-server curl dnsmasq-base chromium fonts-dejavu-core prometheus-node-exporter faketime)
# Any kubectl will do (some machines have one from another package, which
# Debian's would conflict with).
command -v kubectl >/dev/null 2>&1 || pkgs+=(kubernetes-client)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's prometheus, prometheus-node-exporter and victoria-metrics packages
# start system services on install. The tests and the benchmark start their
# own on loopback ports; the packaged ones would hold ports (node_exporter
# :9100 is the local cluster's demo target) and take CPU from what is measured.
for service in prometheus prometheus-node-exporter victoria-metrics; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl stop "$service" 2>/dev/null || true
  fi
done
