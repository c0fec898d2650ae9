#!/usr/bin/env bash
# Upgrade tests (spec §7.4), with the `moxcli` on PATH:
#  1. every fixture testdata/upgrade/v<N>.tar.gz (a data dir made by `moxcli gentestdata` of
#     schema version N <= the current one) must pass `moxcli verifydata`, which verifies a
#     migrated copy when N is older, and must not change the fixture; then a writable open
#     migrates it for real and verifydata must pass again;
#  2. the current `gentestdata` -> `verifydata`, and `backup` of it -> `verifydata`.
#
#   scripts/test-upgrades.sh                 run the tests
#   scripts/test-upgrades.sh --make-fixture  write testdata/upgrade/v<current schema>.tar.gz
#                                            (do this once for each new schema version)
set -euo pipefail
cd "$(dirname "$0")/.."

moxcli=$(command -v moxcli) || { echo "test-upgrades.sh: no moxcli on PATH" >&2; exit 2; }
# The interpreter moxcli runs with, for the few checks that need the library directly.
python=$(head -n1 "$moxcli" | sed -n 's/^#!//p')
[ -x "${python%% *}" ] || python=python3
ulimit -S -d 1024000 2>/dev/null || true   # mox's test-upgrade.sh limit (~1 GB data segment)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
schema=$($python -c 'from moxcli.store.schema import SCHEMA_VERSION; print(SCHEMA_VERSION)')

if [ "${1:-}" = "--make-fixture" ]; then
    moxcli gentestdata "$tmp/gen" >/dev/null
    moxcli --data "$tmp/gen" backup "$tmp/data" >/dev/null   # compacts the store
    out="testdata/upgrade/v$schema.tar.gz"
    tar -C "$tmp" --exclude=lock.mdb --sort=name --owner=0 --group=0 --numeric-owner -czf "$out" data
    echo "wrote $out ($(wc -c <"$out") bytes)"
    exit 0
fi

digest() { (cd "$1" && find . -type f ! -name lock.mdb -exec sha256sum {} + | sort); }
json_field() { $python -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

fail=0
count=0
for fixture in testdata/upgrade/v*.tar.gz; do
    [ -e "$fixture" ] || continue
    name=$(basename "$fixture" .tar.gz)
    version=${name#v}
    if [ "$version" -gt "$schema" ]; then
        echo "FAIL $name: fixture is newer than this moxcli's schema $schema" >&2
        fail=1
        continue
    fi
    count=$((count + 1))
    mkdir "$tmp/$name"
    tar -xzf "$fixture" -C "$tmp/$name"
    # The archive keeps the modes of the umask it was made under; a data dir moxcli writes is 0700/0600.
    chmod -R go= "$tmp/$name"
    dir="$tmp/$name/data"
    before=$(digest "$dir")
    if ! out=$(moxcli verifydata --json "$dir"); then
        echo "FAIL $name: verifydata found problems:" >&2
        echo "$out" >&2
        fail=1
        continue
    fi
    migrated=$(echo "$out" | json_field migrated_from)
    want=$([ "$version" -lt "$schema" ] && echo "$version" || echo None)
    if [ "$migrated" != "$want" ]; then
        echo "FAIL $name: verifydata migrated_from is $migrated, expected $want" >&2
        fail=1
    fi
    if [ "$(digest "$dir")" != "$before" ]; then
        echo "FAIL $name: verifydata changed the data directory" >&2
        fail=1
    fi
    $python -c 'import sys; from moxcli.store import Store; Store.open(sys.argv[1]).close()' "$dir"
    if ! moxcli verifydata "$dir" >/dev/null; then
        echo "FAIL $name: verifydata after the real migration" >&2
        fail=1
        continue
    fi
    echo "ok   $name: verifydata passes (schema $version -> $schema)"
done
if [ "$count" -eq 0 ]; then
    echo "FAIL no fixtures in testdata/upgrade/" >&2
    fail=1
fi

moxcli gentestdata "$tmp/current" >/dev/null
if moxcli verifydata "$tmp/current" >/dev/null && moxcli --data "$tmp/current" backup "$tmp/current-backup" >/dev/null && moxcli verifydata "$tmp/current-backup" >/dev/null; then
    echo "ok   current: gentestdata -> verifydata, backup -> verifydata"
else
    echo "FAIL current: gentestdata/backup/verifydata" >&2
    fail=1
fi
exit $fail
