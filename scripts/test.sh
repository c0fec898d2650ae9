#!/usr/bin/env bash
# Run the whole test suite on a fresh Debian machine with python3.
# Installs what the tests need when it is missing: the lab's system packages (nsd, unbound,
# ldnsutils, postfix, nginx, dovecot-imapd, chromium, opendkim-tools; as root with apt-get), a venv in .venv with moxcli and its test
# extras. Then runs the static checks (ruff check, ruff format --check, mypy; config in
# pyproject.toml), pytest and the upgrade tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

missing=""
for b in nsd unbound unbound-checkconf ldns-signzone ldns-keygen ldns-key2ds postfix postconf nginx dovecot chromium openssl ss setpriv \
    opendkim-testmsg unshare; do
    command -v "$b" >/dev/null 2>&1 || missing="$missing $b"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "test.sh: missing programs:$missing; run as root so apt-get can install them" >&2
        exit 2
    fi
    echo "test.sh: installing system packages for the test lab (missing:$missing)" >&2
    apt-get update -q >/dev/null
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        nsd unbound ldnsutils postfix nginx dovecot-imapd chromium openssl iproute2 util-linux opendkim-tools >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# Static checks first: a lint or type error fails fast, before the slow suite.
.venv/bin/python -m ruff check moxcli tests bench scripts
.venv/bin/python -m ruff format --check moxcli tests bench scripts
.venv/bin/python -m mypy

.venv/bin/python -m pytest -q "$@"
if [ -x scripts/test-upgrades.sh ] && [ $# -eq 0 ]; then
    PATH="$PWD/.venv/bin:$PATH" scripts/test-upgrades.sh
fi
