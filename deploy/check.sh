#!/usr/bin/env bash
# Static checks of the deployment files with Prometheus's own tool (and
# docker compose, when present). Needs promtool: apt-get install -y prometheus
# (Debian; the package also starts nothing when there is no systemd).
# The Go test in this directory (go test ./deploy/) checks the rest against the
# code and a running server.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null; then
  echo "deploy/check.sh: promtool not found (apt-get install -y prometheus)" >&2
  exit 1
fi
promtool --version | head -n1
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)

# The exposition of a real server passes promtool's lint.
tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/authserver" ./cmd/authserver
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
pub=127.0.0.1:$(free_port)
adm=127.0.0.1:$(free_port)
"$tmp/authserver" dev --data-dir "$tmp/data" --listen "$pub" --admin-listen "$adm" >"$tmp/dev.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  "$tmp/authserver" healthcheck --url "http://$adm/readyz" 2>/dev/null && break
  sleep 0.1
done
"$tmp/authserver" healthcheck --url "http://$adm/readyz"
# One credential of each kind and a refusal, so the labelled families exist.
for path in registration-tokens registration-signatures; do
  curl -sS -o /dev/null --cacert "$tmp/data/dev-cert.pem" -H 'X-API-Key: dev-api-key' \
    -H 'Content-Type: application/json' -d '{"userId":"alice"}' "https://$pub/v1/$path"
done
curl -sS -o /dev/null --cacert "$tmp/data/dev-cert.pem" -H 'X-API-Key: wrong' \
  -H 'Content-Type: application/json' -d '{"userId":"alice"}' "https://$pub/v1/registration-tokens"
echo "Checking metrics of a running authserver dev"
curl -sS "http://$adm/metrics" | promtool check metrics
echo "  SUCCESS"

if docker compose version >/dev/null 2>&1; then
  docker compose -f docker-compose.yml config --quiet && echo "docker compose config: OK"
elif command -v docker-compose >/dev/null; then
  docker-compose -f docker-compose.yml config --quiet && echo "docker-compose config: OK"
else
  echo "docker compose not installed: docker-compose.yml checked by go test ./deploy/ only"
fi
