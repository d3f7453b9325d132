#!/usr/bin/env bash
# Installs AdsPower (Linux .deb) into /opt/adspower for BW_PROVIDER=adspower. Run it on the VM,
# as root, once; never in CI (it downloads AdsPower's package from AdsPower's site).
#   sudo ADSPOWER_VERSION=7.12.29 deploy/scripts/install-adspower.sh
# Settings (environment):
#   ADSPOWER_VERSION   version to install (default below)
#   ADSPOWER_URL       where the .deb is (default: AdsPower's download address for that version)
#   ADSPOWER_SHA256    if set, the download must have this SHA-256
# Afterwards AdsPower needs a one-time activation through its GUI (printed at the end).
set -euo pipefail

if [ -n "${CI:-}" ]; then
  echo "install-adspower: not in CI (it downloads and installs a desktop application)" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-adspower: run as root (sudo $0)" >&2
  exit 1
fi

version="${ADSPOWER_VERSION:-7.12.29}"
url="${ADSPOWER_URL:-https://version.adspower.net/software/linux-x64-global/${version}/AdsPower-Global-${version}-x64.deb}"
user=browser-worker
home=/var/lib/browser-worker

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
deb="$work/adspower.deb"

echo "install-adspower: downloading $url"
curl -fL --retry 3 --proto '=https' -o "$deb" "$url"
if [ -n "${ADSPOWER_SHA256:-}" ]; then
  echo "${ADSPOWER_SHA256}  $deb" | sha256sum -c -
fi
# apt resolves the package's dependencies (GTK, NSS, ...) from Debian's mirrors.
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$deb"

# The package installs into "/opt/AdsPower Global" (with a space); the units use /opt/adspower.
if [ -d "/opt/AdsPower Global" ]; then
  ln -sfn "/opt/AdsPower Global" /opt/adspower
fi
if [ ! -x /opt/adspower/adspower_global ]; then
  echo "install-adspower: /opt/adspower/adspower_global not found after the install" >&2
  exit 1
fi

# The service user's home keeps AdsPower's profiles (~/.config/adspower_global).
if ! id "$user" >/dev/null 2>&1; then
  useradd --system --user-group --home-dir "$home" --no-create-home --shell /usr/sbin/nologin "$user"
fi
install -d -o "$user" -g "$user" -m 0700 "$home"

cat <<MSG
install-adspower: AdsPower $version is in /opt/adspower. Activate it once:
  1. sudo systemctl start xvfb x11vnc         (deploy/systemd: display :99, VNC on 127.0.0.1:5900)
  2. sudo -u $user env DISPLAY=:99 HOME=$home /opt/adspower/adspower_global &
  3. from your machine: ssh -L 5900:127.0.0.1:5900 admin@<vm>, then a VNC viewer on localhost:5900
  4. in AdsPower: log in, activate the licence, create the profiles, copy the Local API key
  5. stop that GUI process; put ADSPOWER_API_KEY=<key> in /etc/browser-worker/adspower.env (0600)
     and BW_ADSPOWER_API_KEY=<key> in /etc/browser-worker/env
  6. sudo systemctl enable --now adspower && sudo systemctl restart browser-worker
MSG
