#!/bin/sh
# certbot deploy hook for realtime_sio serving TLS itself (docs/deploy-vm.md).
#
#   install -m 0755 deploy/certbot-deploy-hook.sh /etc/letsencrypt/renewal-hooks/deploy/realtime-sio
#
# certbot runs it after every successful issue or renewal with RENEWED_LINEAGE=/etc/letsencrypt/live/<name>. It copies
# fullchain.pem and privkey.pem to a folder the service user can read (certbot's own folders stay root-only) and
# replaces each file atomically (write aside, then rename). No restart and no reload command: realtime_sio polls the
# two files (REALTIME_SIO_TLS_RELOAD_INTERVAL) and serves the new pair to new connections; open ones stay up. If the
# new pair cannot be served, the server logs tls_certificate_refused and keeps the old one.
#
# Overridable for tests and unusual layouts: REALTIME_SIO_TLS_DIR (/etc/realtime-sio/tls), REALTIME_SIO_USER
# (realtime-sio), REALTIME_SIO_CERT_NAME (only this lineage, when certbot manages several; default: any).
set -eu

lineage="${RENEWED_LINEAGE:?run by certbot: RENEWED_LINEAGE is not set}"
dir="${REALTIME_SIO_TLS_DIR:-/etc/realtime-sio/tls}"
user="${REALTIME_SIO_USER:-realtime-sio}"
only="${REALTIME_SIO_CERT_NAME:-}"

if [ -n "$only" ] && [ "$(basename "$lineage")" != "$only" ]; then
  exit 0
fi

group="$(id -gn "$user")"
install -d -m 0750 -o root -g "$group" "$dir"
# The key first, then the chain: the server loads a change only after both files held still for one poll.
for pair in "privkey.pem:0640" "fullchain.pem:0644"; do
  name="${pair%%:*}"
  mode="${pair##*:}"
  tmp="$dir/.$name.$$"
  install -m "$mode" -o root -g "$group" "$lineage/$name" "$tmp"
  mv -f "$tmp" "$dir/$name"
done
echo "realtime-sio: installed $(basename "$lineage") into $dir; the server reloads it within seconds" >&2
