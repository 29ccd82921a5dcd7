#!/usr/bin/env bash
# ansible-test sanity, offline, with no ignore entries. ansible-test wants the
# collection at .../ansible_collections/keneyapp/deploy, so this copies the files git
# knows (tracked and new, not ignored) into such a tree in the cache, with the
# collections it depends on beside it, and runs there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KENEYAPP_CACHE:-$HOME/.cache/keneyapp-deploy}
# One tree per checkout: two clones (a CI run and a working tree) never share it.
key=$(printf '%s' "$root" | sha256sum | cut -c1-12)
tree="$cache/sanity/$key/ansible_collections"
dest="$tree/keneyapp/deploy"
site=$("$root/.venv/bin/python" -c 'import ansible_collections, os; print(os.path.dirname(ansible_collections.__file__))' 2>/dev/null \
       || "$root/.venv/bin/python" -c 'import ansible_collections; print(list(ansible_collections.__path__)[0])')
mkdir -p "$dest" "$tree/kubernetes" "$tree/community"
(cd "$root" && git ls-files --cached --others --exclude-standard -z) \
    | rsync -a --delete --delete-excluded --from0 --files-from=- "$root/" "$dest/"
# rsync --files-from does not delete files that left the list: rebuild the listing.
(cd "$root" && git ls-files --cached --others --exclude-standard | sort) > "$cache/sanity/$key/wanted"
(cd "$dest" && find . -type f ! -path './tests/output/*' ! -path './.git/*' | sed 's|^\./||' | sort) > "$cache/sanity/$key/have"
comm -13 "$cache/sanity/$key/wanted" "$cache/sanity/$key/have" | (cd "$dest" && xargs -r rm -f)
ln -sfn "$site/kubernetes/core" "$tree/kubernetes/core"
ln -sfn "$site/community/postgresql" "$tree/community/postgresql"
# ansible-test downloads get-pip.py to bootstrap its virtualenvs; PyPI is reachable but
# that host is not. A stand-in that runs ensurepip does the same job.
for v in 25_2 25_3 25_1 24_3; do
    f="$HOME/.ansible/test/cache/get_pip_$v.py"
    [[ -f $f ]] && continue
    mkdir -p "$(dirname "$f")"
    printf 'import ensurepip, sys\nsys.exit(ensurepip._main(["--upgrade", "--default-pip"]))\n' > "$f"
done
cd "$dest"
PATH="$root/.venv/bin:$PATH" ansible-test sanity --venv --python 3.12 --color no "$@"
