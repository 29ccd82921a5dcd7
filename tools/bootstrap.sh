#!/usr/bin/env bash
# Install what the project needs, idempotently. Usage: tools/bootstrap.sh system|python|collections
#   system       Debian packages (apt-get; only when one is missing)
#   python       the pinned Python (pyenv) and .venv from requirements.txt (only when it changed)
#   collections  link this checkout as .collections/ansible_collections/keneyapp/deploy
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PYTHON_VERSION=${PYTHON_VERSION:-3.12.1}
PACKAGES=(postgresql-15 postgresql-client-15 pgbackrest prometheus redis-server haproxy nginx-light
          prometheus-pushgateway chromium curl rsync git make ca-certificates shellcheck)
log() { printf '[bootstrap] %s\n' "$*" >&2; }

system() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "installing Debian packages: ${missing[*]}"
        local sudo=()
        [[ $(id -u) == 0 ]] || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq
        # The lab starts its own instances on free loopback ports and never uses the
        # packaged services (on machines without systemd they do not start anyway).
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    command -v go >/dev/null || { log "Go is needed to build the lab (go 1.25 or newer on PATH)"; exit 1; }
}

python_env() {
    local py
    py=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/$PYTHON_VERSION/bin/python
    if [[ ! -x $py ]]; then
        log "Python $PYTHON_VERSION not found in pyenv; trying 'pyenv install $PYTHON_VERSION'"
        pyenv install -s "$PYTHON_VERSION"
    fi
    local stamp="$root/.venv/.requirements.sha256"
    local want
    want="$PYTHON_VERSION $(sha256sum "$root/requirements.txt" | cut -d' ' -f1)"
    if [[ -f $stamp && $(cat "$stamp") == "$want" && -x $root/.venv/bin/python ]]; then
        return 0
    fi
    log "creating .venv (Python $PYTHON_VERSION, requirements.txt)"
    rm -rf "$root/.venv"
    "$py" -m venv "$root/.venv"
    "$root/.venv/bin/pip" install -q --disable-pip-version-check -r "$root/requirements.txt"
    echo "$want" > "$stamp"
}

collections() {
    mkdir -p "$root/.collections/ansible_collections/keneyapp"
    ln -sfn ../../.. "$root/.collections/ansible_collections/keneyapp/deploy"
}

case "${1:-}" in
    system) system ;;
    python) python_env ;;
    collections) collections ;;
    *) echo "usage: $0 system|python|collections" >&2; exit 2 ;;
esac
