#!/usr/bin/env bash
# Builds the lab's Go binaries from their modules into a cache outside the repo,
# keyed by component and version, so only a pin change triggers a rebuild.
#   build.sh [--print-dir]     HAKIT_CACHE overrides ~/.cache/hakit
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${HAKIT_CACHE:-$HOME/.cache/hakit}
bin=$cache/bin
work=$cache/build
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$bin" "$work"

log() { printf '[build] %s\n' "$*" >&2; }

# done_marker DIR: a component is complete only once its marker exists, so an
# interrupted build is redone rather than trusted.
built() { [ -f "$1/.complete" ]; }

build_kubernetes() {
  local v=$KUBERNETES_VERSION out=$bin/kubernetes-$KUBERNETES_VERSION
  built "$out" && return 0
  log "kubernetes $v (apiserver, controller-manager, scheduler, kubectl; ~6 min cold)"
  local mod=$work/kubernetes-$v
  mkdir -p "$mod" "$out"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local minor=${v#v1.}; minor=${minor%%.*}
  local staging_v="v0.${v#v1.}"
  {
    echo "module hakit.local/labbuild"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $v"
    echo
    echo "replace ("
    grep -E '=> \./staging/src/k8s\.io/' "$gomod" | awk -v sv="$staging_v" '{print "\t" $1 " => " $1 " " sv}'
    echo ")"
  } > "$mod/go.mod"
  cp "$here/kubernetes_tools.go" "$mod/tools.go"
  (cd "$mod" && go mod tidy >/dev/null)
  local pkg=k8s.io/component-base/version cpkg=k8s.io/client-go/pkg/version
  local ld="-s -w"
  for p in $pkg $cpkg; do
    ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  (cd "$mod" && go build -trimpath -ldflags "$ld" -o "$out/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  touch "$out/.complete"
}

build_etcd() {
  local v=$ETCD_VERSION out=$bin/etcd-$ETCD_VERSION
  built "$out" && return 0
  log "etcd $v (etcd, etcdctl, etcdutl; ~1 min cold)"
  local mod=$work/etcd-$v
  mkdir -p "$mod" "$out"
  cat > "$mod/go.mod" <<MOD
module hakit.local/etcdbuild

go 1.24

require (
	go.etcd.io/etcd/server/v3 $v
	go.etcd.io/etcd/etcdctl/v3 $v
	go.etcd.io/etcd/etcdutl/v3 $v
)
MOD
  cp "$here/etcd_tools.go" "$mod/tools.go"
  (cd "$mod" && go mod tidy >/dev/null)
  # All three main packages are named "v3", so each gets its own -o.
  local name
  for name in etcd etcdctl etcdutl; do
    local pkg=go.etcd.io/etcd/$name/v3
    [ "$name" = etcd ] && pkg=go.etcd.io/etcd/server/v3
    (cd "$mod" && go build -trimpath -ldflags "-s -w" -o "$out/$name" "$pkg")
  done
  touch "$out/.complete"
}

build_kwok() {
  local v=$KWOK_VERSION out=$bin/kwok-$KWOK_VERSION
  built "$out" && return 0
  log "kwok $v (~1 min cold)"
  mkdir -p "$out"
  GOBIN=$out go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$v"
  local dir
  dir=$(go list -m -json "sigs.k8s.io/kwok@$v" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("Dir",""))' || true)
  [ -n "$dir" ] || dir=$(go env GOMODCACHE)/sigs.k8s.io/kwok@$v
  rm -rf "$out/stages"; mkdir -p "$out/stages"
  cp -r "$dir/kustomize/stage/." "$out/stages/"
  chmod -R u+w "$out/stages"
  touch "$out/.complete"
}

build_ksm() {
  local v=$KSM_VERSION out=$bin/kube-state-metrics-$KSM_VERSION
  built "$out" && return 0
  log "kube-state-metrics $v (~1 min cold)"
  local mod=$work/ksm-$v
  mkdir -p "$mod" "$out"
  printf 'module hakit.local/ksmbuild\n\ngo 1.24\n\nrequire k8s.io/kube-state-metrics/v2 %s\n' "$v" > "$mod/go.mod"
  cp "$here/ksm_tools.go" "$mod/tools.go"
  (cd "$mod" && go mod tidy >/dev/null)
  (cd "$mod" && go build -trimpath -ldflags "-s -w" -o "$out/kube-state-metrics" k8s.io/kube-state-metrics/v2)
  touch "$out/.complete"
}

build_etcd
build_kwok
build_ksm
build_kubernetes
[ "${1:-}" = "--print-dir" ] && echo "$bin"
log "all binaries present under $bin"
