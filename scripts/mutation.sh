#!/bin/sh
# Mutation testing of moxcli modules (not in CI: minutes per module). Usage:
#   scripts/mutation.sh moxcli/dane/verify.py moxcli/config.py   [-v] [--json FILE] [--list]
# Each mutant runs only the module's own unit tests (scripts/mutation-tests.txt) in a temporary
# copy of the tree; prints the score and the surviving mutants (file:line: function: mutation).
# Equivalent mutants are listed with the reason in scripts/mutation-equivalent.md.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
py="$root/.venv/bin/python"
[ -x "$py" ] || py=python3
exec "$py" "$root/scripts/mutation.py" "$@"
