#!/usr/bin/env bash
# Make sure redis-server, PostgreSQL and openssl are installed for the test suite, which starts its
# own throwaway instances on free ports (tests/integration/servers.py) and makes the TLS tests'
# certificates with openssl. Installs the Debian packages when missing and we are root. PostgreSQL refuses to run as root, so under root the suite runs it
# as the `postgres` OS user: the Debian package creates it, and this script does when it is missing.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} for the test suite"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: ${missing[*]} not installed; tests that need them will be skipped" >&2
  fi
fi

if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  echo "creating the postgres OS user for the test suite's PostgreSQL"
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi
