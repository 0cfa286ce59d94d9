#!/usr/bin/env bash
# Installs the Debian packages that clatd's tests and lab use, when any is missing.
# Needs root. Prints what it installs; does nothing when everything is present.
set -euo pipefail
PKGS=(iproute2 nftables tayga radvd unbound iperf3 tcpdump iputils-ping iputils-tracepath traceroute
  procps python3 make g++ jq curl busybox ndisc6
  dnsmasq-base dhcpcd-base # the lab's DHCPv4 (router-mode LAN) and DHCPv6 server, and DHCPv6 client; no services: the lab runs them
  systemd     # systemd-analyze: the unit file test
  python3-prometheus-client # the metrics page read by a real Prometheus parser
  lintian binutils # the .deb test: lintian checks the package; strip and objdump build it
  util-linux # setpriv: the test of clatd run without privilege; nsenter: the systemd container test
  debootstrap systemd-container) # the packaged service under a real systemd (systemd-nspawn --boot)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  echo "install-deps: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged daemons must not run on the host: the lab starts its own copies inside namespaces.
for svc in unbound radvd tayga; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
done
