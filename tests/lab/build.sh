#!/usr/bin/env bash
# Build the lab's Kubernetes control plane, etcd and kwok from the Go module proxy
# into a cache folder keyed by their versions (tests/lab/versions.env). Safe to run
# twice: a complete build is reused. Prints the binary folder on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"
cache=${KENEYAPP_CACHE:-$HOME/.cache/keneyapp-deploy}
key="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_gw-${GATEWAY_API_VERSION}_os-${OPENSHIFT_API_VERSION##*-}"
out="$cache/lab-bin/$key"
if [[ -f "$out/.complete" ]]; then
    echo "$out"
    exit 0
fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
log() { printf '[lab-build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

log "Kubernetes v$K8S_VERSION: wrapper module (first build takes about 5 minutes on 2 cores)"
mkdir "$work/k8s" && cd "$work/k8s"
go mod init keneyapp.lab/k8s >/dev/null 2>&1
go mod edit -require="k8s.io/kubernetes@v$K8S_VERSION"
modfile=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
# k8s.io/kubernetes replaces its staging modules with local paths; a module that
# requires it must replace them with the published v0.x versions instead.
staging_version="v0.${K8S_VERSION#*.}"
while read -r mod; do
    go mod edit -replace="$mod=$mod@$staging_version"
done < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$modfile")
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
go mod tidy >/dev/null 2>&1 || go mod tidy
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=${K8S_VERSION%%.*}"
    minor=${K8S_VERSION#*.}
    ldflags+=" -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean"
done
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    log "building $cmd"
    go build -trimpath -ldflags "$ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
done

log "etcd v$ETCD_VERSION"
mkdir "$work/etcd" && cd "$work/etcd"
go mod init keneyapp.lab/etcd >/dev/null 2>&1
go mod edit -require="go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
go mod tidy >/dev/null 2>&1 || go mod tidy
go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3

log "kwok v$KWOK_VERSION"
GOBIN="$out" go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@v$KWOK_VERSION"
kwokdir=$(go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
mkdir -p "$out/kwok-stages"
cp "$kwokdir"/kustomize/stage/node/heartbeat-with-lease/*.yaml \
   "$kwokdir"/kustomize/stage/node/fast/*.yaml \
   "$kwokdir"/kustomize/stage/pod/fast/*.yaml "$out/kwok-stages/" 2>/dev/null || true
chmod -R u+w "$out/kwok-stages"

log "CRDs: Gateway API v$GATEWAY_API_VERSION, OpenShift Route"
mkdir -p "$out/crds"
gwdir=$(go mod download -json "sigs.k8s.io/gateway-api@v$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
cp "$gwdir"/config/crd/standard/*.yaml "$out/crds/"
osdir=$(go mod download -json "github.com/openshift/api@$OPENSHIFT_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
cp "$osdir/route/v1/zz_generated.crd-manifests/routes.crd.yaml" "$out/crds/openshift-route.yaml"
chmod -R u+w "$out/crds"

touch "$out/.complete"
log "done"
echo "$out"
