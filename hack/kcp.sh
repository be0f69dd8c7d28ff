#!/usr/bin/env bash
# Build, start and stop a real kcp server for kubestellar-py's tests, demo and users.
#
#   hack/kcp.sh path [kcp|kubectl|kubectl-ws|helm]
#                                              print the path of a runnable binary (builds it first if needed;
#                                              build logs go to stderr, stdout has only the path)
#   hack/kcp.sh start DIR                      start kcp on 127.0.0.1 with root directory DIR and wait until it is
#                                              ready (admin.kubeconfig written, /livez and /readyz OK, root:compute
#                                              Ready); leaves DIR/admin.kubeconfig, DIR/kcp.log, DIR/kcp.pid.
#                                              A DIR used before gets the same ports again (DIR/ports).
#   hack/kcp.sh stop DIR                       stop the kcp started on DIR; harmless when none runs
#
# Environment: KCP_BIN (use this kcp binary, build nothing), KCP_EXTRA_ARGS (more `kcp start` flags),
# KCP_READY_TIMEOUT (seconds, default 300), KUBESTELLAR_PY_CACHE (build cache, default ~/.cache/kubestellar-py).
#
# The kcp version is chosen in one place: the require line of hack/kcp-tools/go.mod. helm is built from
# its own module, hack/helm-tools, into a cache directory of its own keyed on that module's go.mod/go.sum,
# so that moving helm never rebuilds kcp (and the other way round).
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS_DIR="$HACK_DIR/kcp-tools"
HELM_TOOLS_DIR="$HACK_DIR/helm-tools"

die() { echo "kcp.sh: $*" >&2; exit 1; }
log() { echo "kcp.sh: $*" >&2; }

# module_version DIR MODULE: the version MODULE is required at in DIR/go.mod.
module_version() { awk -v m="$2" '($1 == m || ($1 == "require" && $2 == m)) {for (i = 1; i <= NF; i++) if ($i ~ /^v[0-9]/) {print $i; exit}}' "$1/go.mod"; }

kcp_version() { module_version "$TOOLS_DIR" github.com/kcp-dev/kcp; }

helm_version() { module_version "$HELM_TOOLS_DIR" helm.sh/helm/v3; }

# cache_dir TOOLS_DIR PREFIX: the build cache of one tools module, keyed on its go.mod/go.sum and Go.
cache_dir() {
    command -v go >/dev/null || die "Go is needed to build the binaries of $1 (or set KCP_BIN for kcp)"
    local gov key
    gov="$(GOTOOLCHAIN=local go env GOVERSION)"
    key="$(cat "$1/go.mod" "$1/go.sum" | sha256sum | cut -c1-10)"
    echo "${KUBESTELLAR_PY_CACHE:-$HOME/.cache/kubestellar-py}/$2-$gov-$key"
}

# build NAME: build one binary of the tools module into the cache (once; concurrent callers wait on a lock).
build() {
    local name="$1" pkg out dir ver tools ldflags
    tools="$TOOLS_DIR"
    case "$name" in
        kcp) pkg=github.com/kcp-dev/kcp/cmd/kcp ;;
        kubectl-ws) pkg=github.com/kcp-dev/kcp/cmd/kubectl-workspace ;;
        kubectl) pkg=k8s.io/kubernetes/cmd/kubectl ;;
        helm) pkg=helm.sh/helm/v3/cmd/helm tools="$HELM_TOOLS_DIR" ;;
        *) die "unknown binary '$name' (kcp, kubectl, kubectl-ws or helm)" ;;
    esac
    if [[ "$tools" == "$HELM_TOOLS_DIR" ]]; then
        ver="$(helm_version)"
        dir="$(cache_dir "$tools" "helm-$ver")"
        ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$ver"
    else
        ver="$(kcp_version)"
        dir="$(cache_dir "$tools" "kcp-$ver")"
        ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v1.24.3+kcp-$ver -X k8s.io/client-go/pkg/version.gitVersion=v1.24.3+kcp-$ver"
    fi
    out="$dir/bin/$name"
    if [[ -x "$out" ]]; then echo "$out"; return; fi
    mkdir -p "$dir/bin"
    exec 9>"$dir/.lock"
    flock 9
    if [[ ! -x "$out" ]]; then
        log "building $name ($pkg $ver) into $dir; a first build takes minutes (kcp: 10-20)"
        local start=$SECONDS
        (
            cd "$tools"
            export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly GONOSUMDB=github.com/kcp-dev
            go build -trimpath -o "$out.tmp" -ldflags "$ldflags" "$pkg"
        ) >&2 || die "building $name failed (see the go output above)"
        mv "$out.tmp" "$out"
        log "built $name in $((SECONDS - start))s"
    fi
    exec 9>&-
    echo "$out"
}

kcp_path() {
    if [[ -n "${KCP_BIN:-}" ]]; then
        [[ -x "$KCP_BIN" ]] || die "KCP_BIN=$KCP_BIN is not an executable file"
        echo "$KCP_BIN"
    else
        build kcp
    fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

pid_alive() { [[ -f "$1/kcp.pid" ]] && kill -0 "$(cat "$1/kcp.pid")" 2>/dev/null; }

# admin_token DIR: the kcp-admin user's bearer token from DIR/admin.kubeconfig.
admin_token() { awk '/name: kcp-admin/ {f = 1} f && /token:/ {print $2; exit}' "$1/admin.kubeconfig"; }

# http_ok DIR PATH: true when kcp answers 200 on PATH.
http_ok() {
    local port token
    port="$(awk '{print $1}' "$1/ports")"
    token="$(admin_token "$1")"
    [[ -n "$token" ]] || return 1
    curl -fsk -o /dev/null --max-time 5 -H "Authorization: Bearer $token" "https://127.0.0.1:$port$2"
}

http_get() {
    local port token
    port="$(awk '{print $1}' "$1/ports")"
    token="$(admin_token "$1")"
    curl -fsk --max-time 5 -H "Authorization: Bearer $token" "https://127.0.0.1:$port$2"
}

compute_ready() {
    http_get "$1" /clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces/compute 2>/dev/null |
        grep -q '"phase": *"Ready"'
}

start() {
    local dir="${1:?usage: kcp.sh start DIR}" bin port etcd_client etcd_peer deadline
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    bin="$(kcp_path)"
    if pid_alive "$dir"; then
        log "kcp already runs on $dir (pid $(cat "$dir/kcp.pid"))"
    else
        if [[ ! -s "$dir/ports" ]]; then
            echo "$(free_port) $(free_port) $(free_port)" >"$dir/ports"
        fi
        read -r port etcd_client etcd_peer <"$dir/ports"
        # shellcheck disable=SC2086 # KCP_EXTRA_ARGS is a list of flags
        UNSAFE_E2E_HACK_DISABLE_ETCD_FSYNC="${UNSAFE_E2E_HACK_DISABLE_ETCD_FSYNC:-true}" setsid "$bin" start \
            --root-directory="$dir" --bind-address=127.0.0.1 --external-hostname=127.0.0.1 --secure-port="$port" \
            --embedded-etcd-client-port="$etcd_client" --embedded-etcd-peer-port="$etcd_peer" \
            ${KCP_EXTRA_ARGS:-} >>"$dir/kcp.log" 2>&1 </dev/null &
        echo $! >"$dir/kcp.pid"
        log "started kcp (pid $!, port $port) on $dir; log in $dir/kcp.log"
    fi
    deadline=$((SECONDS + ${KCP_READY_TIMEOUT:-300}))
    local step="admin.kubeconfig"
    while ((SECONDS < deadline)); do
        if ! pid_alive "$dir"; then
            tail -n 20 "$dir/kcp.log" >&2 || true
            die "kcp exited before it was ready (log: $dir/kcp.log)"
        fi
        case "$step" in
            admin.kubeconfig) [[ -s "$dir/admin.kubeconfig" ]] && step=livez ;;
            livez) http_ok "$dir" /livez && step=readyz ;;
            readyz) http_ok "$dir" /readyz && step=root:compute ;;
            root:compute) compute_ready "$dir" && { log "kcp is ready on $dir"; return 0; } ;;
        esac
        sleep 0.5
    done
    tail -n 20 "$dir/kcp.log" >&2 || true
    stop "$dir"
    die "kcp did not become ready within ${KCP_READY_TIMEOUT:-300}s (stuck at $step; log: $dir/kcp.log)"
}

stop() {
    local dir="${1:?usage: kcp.sh stop DIR}" pid
    [[ -f "$dir/kcp.pid" ]] || return 0
    pid="$(cat "$dir/kcp.pid")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "kcp (pid $pid) did not stop within 10s; killing it"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    fi
    rm -f "$dir/kcp.pid"
}

case "${1:-}" in
    path) case "${2:-kcp}" in kcp) kcp_path ;; *) build "$2" ;; esac ;;
    start) start "${2:-}" ;;
    stop) stop "${2:-}" ;;
    version) kcp_version ;;
    *) die "usage: kcp.sh path [kcp|kubectl|kubectl-ws|helm] | start DIR | stop DIR | version" ;;
esac
