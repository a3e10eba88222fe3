#!/usr/bin/env bash
# Validates deploy/: the Kubernetes manifests (kustomize base and overlays)
# against the Kubernetes schemas, the Prometheus rules (promtool check and
# unit tests), the Grafana dashboard and docker-compose.yml (with
# .env.example), and that the env names and metric names they use are ones
# the binary really has (clap `env = "..."` and the `metrics::` macros in
# the Rust sources). Then the live check (scripts/deploy_check_prometheus.py):
# a real Prometheus scrapes `provisioner serve` against the simulators and
# every dashboard query and alert is run against it. Ends with one line
# `deploy-check: N passed, M failed` and exits non-zero if M > 0.
# `./scripts/deploy-check.sh live` runs only the live check.
#
# Installs what it needs into .cache/deploy-check/ (idempotent; nothing
# system-wide except `apt-get update` when the package lists are missing):
# - promtool and prometheus: both on PATH if they are, else Debian's
#   `prometheus` package, downloaded with `apt-get download` and unpacked
#   (dpkg-deb -x) into .cache/deploy-check/prometheus (its usr/bin has
#   promtool and prometheus; no service is installed or started);
# - kubernetes-validate (PyPI, pinned) in the venv .cache/deploy-check/venv;
#   it validates offline against the schemas it bundles;
# - kustomize: `kustomize` or `kubectl kustomize` (kustomize v4+) if
#   installed. Debian has no kustomize, and its kubectl (1.20) embeds one too
#   old for this layout, so without either every manifest file of the base
#   and overlays is validated on its own, the generators' ConfigMaps are
#   built by this script (without name hashes), and the kustomization files'
#   references are checked to exist.
#   DEPLOY_CHECK_KUSTOMIZE=none forces that mode.
# For the live check: mongod (scripts/install-mongod.sh, unless MONGOD_BIN
# is set) and the binary (`cargo build --bin provisioner`, unless
# PROVISIONER_BIN is set).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
tools="$root/.cache/deploy-check"
venv="$tools/venv"
KUBERNETES_VALIDATE_VERSION=1.37.0
# Oldest and newest Kubernetes minor the manifests must be valid for (both
# bundled by that kubernetes-validate).
K8S_VERSIONS="1.30 1.37"
mkdir -p "$tools"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "deploy-check: needs root for: $*" >&2; return 1
  fi
}

only="${1:-}"
case "$only" in
  ""|live) ;;
  *) echo "usage: $0 [live]" >&2; exit 2 ;;
esac

# promtool and prometheus ------------------------------------------------
if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  promtool="$(command -v promtool)"
  prometheus="$(command -v prometheus)"
else
  promtool="$tools/prometheus/usr/bin/promtool"
  prometheus="$tools/prometheus/usr/bin/prometheus"
  if ! "$promtool" --version >/dev/null 2>&1 || ! "$prometheus" --version >/dev/null 2>&1; then
    echo "deploy-check: fetching Debian's prometheus package for promtool and prometheus"
    tmp="$(mktemp -d)"
    chmod 0755 "$tmp"
    download() { (cd "$tmp" && apt-get download prometheus >"$tmp/apt.log" 2>&1); }
    if ! download; then
      # No (or stale) package lists: refresh them once and retry.
      as_root apt-get update >"$tmp/update.log" 2>&1 || { cat "$tmp/update.log" >&2; exit 1; }
      download || { cat "$tmp/apt.log" >&2; exit 1; }
    fi
    rm -rf "$tools/prometheus"
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tools/prometheus"
    rm -rf "$tmp"
    "$promtool" --version >/dev/null
    "$prometheus" --version >/dev/null
  fi
fi

# mongod and the binary, for the live check -------------------------------
if [ -z "${MONGOD_BIN:-}" ]; then
  ./scripts/install-mongod.sh >/dev/null
  MONGOD_BIN="$root/.cache/mongod/bin/mongod"
fi
if [ -z "${PROVISIONER_BIN:-}" ]; then
  cargo build --quiet --bin provisioner
  PROVISIONER_BIN="$root/target/debug/provisioner"
fi

# kubernetes-validate ----------------------------------------------------
kv_ok() {
  "$venv/bin/python" -c "import sys, yaml, kubernetes_validate as k; sys.exit(k.__version__ != '$KUBERNETES_VALIDATE_VERSION')" 2>/dev/null
}
if ! kv_ok; then
  echo "deploy-check: installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into $venv"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian's python3 without ensurepip.
    rm -rf "$venv"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  kv_ok
fi

# kustomize --------------------------------------------------------------
kustomize=""
if [ "${DEPLOY_CHECK_KUSTOMIZE:-}" != none ]; then
  if command -v kustomize >/dev/null 2>&1; then
    kustomize="kustomize build"
  elif command -v kubectl >/dev/null 2>&1; then
    major="$(kubectl version --client -o json 2>/dev/null | "$venv/bin/python" -c \
      'import json, sys; print(json.load(sys.stdin).get("kustomizeVersion", "v0").lstrip("v").split(".")[0])' \
      2>/dev/null || echo 0)"
    if [ "${major:-0}" -ge 4 ] 2>/dev/null; then
      kustomize="kubectl kustomize"
    fi
  fi
fi

echo "deploy-check: promtool and prometheus $("$promtool" --version 2>&1 | head -1 | awk '{print $3}'), kubernetes-validate $KUBERNETES_VALIDATE_VERSION (Kubernetes $K8S_VERSIONS), kustomize: ${kustomize:-none (each file on its own)}"

export ROOT="$root" PROMTOOL="$promtool" PROMETHEUS="$prometheus" KUSTOMIZE="$kustomize" K8S_VERSIONS \
  MONGOD_BIN PROVISIONER_BIN
exec "$venv/bin/python" "$root/scripts/deploy_check.py" $only
