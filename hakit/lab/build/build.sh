#!/usr/bin/env bash
# Builds the lab's Go binaries from their modules into a cache outside the repo,
# keyed by component and version, so only a pin change triggers a rebuild.
#   build.sh [--print-dir | --kubeadm]   HAKIT_CACHE overrides ~/.cache/hakit
# --kubeadm also builds the kubeadm lab's node binaries (containerd, crictl,
# kubeadm, kubelet, kube-proxy, CoreDNS, pause).
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

# go_module DIR NAME [MODULE@VERSION]: a throwaway Go module to build from, made once;
# a failed `go get` leaves no go.mod, so the next run tries again.
go_module() {
  local dir=$1 name=$2 need=${3:-}
  mkdir -p "$dir"
  [ -f "$dir/go.mod" ] && return 0
  (cd "$dir" && go mod init "hakit.local/$name" >/dev/null 2>&1 \
      && { [ -z "$need" ] || go get "$need" >/dev/null 2>&1 || { rm -f go.mod; log "go get $need failed"; exit 1; }; })
}

# go_build DIR OUT ARGS...: `go build` inside module DIR into OUT, then marked complete.
go_build() {
  local dir=$1 out=$2; shift 2
  mkdir -p "$out"
  (cd "$dir" && go build -trimpath -o "$out/" "$@")
  touch "$out/.complete"
}

# go_install OUT PKG@VERSION: a command straight from its module, into OUT.
go_install() {
  mkdir -p "$1"
  GOBIN=$1 go install -trimpath -ldflags "-s -w" "$2"
}

# k8s_module DIR TOOLS: a Go module requiring k8s.io/kubernetes at the pinned
# version, its staging replaces pinned too (the upstream go.mod points them at
# ./staging, which a module download does not have).
k8s_module() {
  local mod=$1 tools=$2 v=$KUBERNETES_VERSION
  [ -f "$mod/go.sum" ] && return 0
  mkdir -p "$mod"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
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
  cp "$tools" "$mod/tools.go"
  (cd "$mod" && go mod tidy >/dev/null)
}

# k8s_build OUT PKG...: Kubernetes commands with the version stamped the way
# the release build stamps it (kubeadm and the kubelet refuse an unstamped one).
k8s_build() {
  local out=$1 v=$KUBERNETES_VERSION; shift
  local minor=${v#v1.}; minor=${minor%%.*}
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  mkdir -p "$out"
  go build -trimpath -ldflags "$ld" -o "$out/" "$@"
  touch "$out/.complete"
}

build_kubernetes() {
  local v=$KUBERNETES_VERSION out=$bin/kubernetes-$KUBERNETES_VERSION
  built "$out" && return 0
  log "kubernetes $v (apiserver, controller-manager, scheduler, kubectl; ~6 min cold)"
  k8s_module "$work/kubernetes-$v" "$here/kubernetes_tools.go"
  (cd "$work/kubernetes-$v" && k8s_build "$out" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
}

# --- the kubeadm lab's node binaries (build.sh --kubeadm) ---

build_kubernetes_node() {
  local v=$KUBERNETES_VERSION out=$bin/kubernetes-node-$KUBERNETES_VERSION
  built "$out" && return 0
  log "kubernetes $v node side (kubeadm, kubelet, kube-proxy; ~6 min cold)"
  k8s_module "$work/kubernetes-node-$v" "$here/kubernetes_node_tools.go"
  (cd "$work/kubernetes-node-$v" && k8s_build "$out" \
      k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
}

build_containerd() {
  local v=$CONTAINERD_VERSION out=$bin/containerd-$CONTAINERD_VERSION
  built "$out" && return 0
  log "containerd $v (containerd, its runc shim, ctr; ~5 min cold)"
  local m=github.com/containerd/containerd/v2
  go_module "$work/containerd-$v" containerd "$m@$v"
  go_build "$work/containerd-$v" "$out" -tags no_btrfs,no_devmapper,no_zfs \
      -ldflags "-s -w -X $m/version.Version=$v -X $m/version.Package=$m" \
      "$m/cmd/containerd" "$m/cmd/containerd-shim-runc-v2" "$m/cmd/ctr"
}

build_crictl() {
  local v=$CRICTL_VERSION out=$bin/crictl-$CRICTL_VERSION
  built "$out" && return 0
  log "crictl $v (~2 min cold)"
  go_module "$work/crictl-$v" crictl "sigs.k8s.io/cri-tools@$v"
  go_build "$work/crictl-$v" "$out" -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$v" \
      sigs.k8s.io/cri-tools/cmd/crictl
}

build_coredns() {
  local v=$COREDNS_VERSION out=$bin/coredns-$COREDNS_VERSION
  built "$out" && return 0
  log "coredns $v (~3 min cold)"
  go_install "$out" "github.com/coredns/coredns@$v"
  touch "$out/.complete"
}

build_pause() {
  local out=$bin/pause-$(sha256sum "$here/pause/main.go" | cut -c1-12)
  built "$out" && return 0
  log "pause (seconds)"
  go_module "$work/pause" pause
  cp "$here/pause/main.go" "$work/pause/"
  go_build "$work/pause" "$out" -ldflags "-s -w" .
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
  go_install "$out" "sigs.k8s.io/kwok/cmd/kwok@$v"
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
  mkdir -p "$mod"
  printf 'module hakit.local/ksmbuild\n\ngo 1.24\n\nrequire k8s.io/kube-state-metrics/v2 %s\n' "$v" > "$mod/go.mod"
  cp "$here/ksm_tools.go" "$mod/tools.go"
  (cd "$mod" && go mod tidy >/dev/null)
  go_build "$mod" "$out" -ldflags "-s -w" k8s.io/kube-state-metrics/v2
}

build_etcd
build_kwok
build_ksm
build_kubernetes
if [ "${1:-}" = "--kubeadm" ]; then
  build_pause
  build_crictl
  build_containerd
  build_coredns
  build_kubernetes_node
fi
[ "${1:-}" = "--print-dir" ] && echo "$bin"
log "all binaries present under $bin"
