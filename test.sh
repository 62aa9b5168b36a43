#!/usr/bin/env bash
# Runs every SlimMail test. Installs the real clients and peers the end-to-end tests drive (swaks, curl,
# Python 3, procmail, PostgreSQL) from Debian when they are missing and we are root, and starts a private
# PostgreSQL server unless SLIMMAIL_TEST_POSTGRES names one. Ends with one line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")"

missing=()
command -v swaks >/dev/null 2>&1 || missing+=(swaks)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v fetchmail >/dev/null 2>&1 || missing+=(fetchmail)
command -v procmail >/dev/null 2>&1 || missing+=(procmail)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]}) or run this script as root" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
fi

log=$(mktemp)
pgdir=""
cleanup() {
  rm -f "$log"
  [ -n "$pgdir" ] && tests/scripts/postgres.sh stop "$pgdir"
}
trap cleanup EXIT
if [ -z "${SLIMMAIL_TEST_POSTGRES:-}" ]; then
  if ! SLIMMAIL_TEST_POSTGRES=$(tests/scripts/postgres.sh); then
    echo "could not start a PostgreSQL server for the tests"
    echo "0 passed, 1 failed"
    exit 1
  fi
  export SLIMMAIL_TEST_POSTGRES
  pgdir=$(echo "$SLIMMAIL_TEST_POSTGRES" | sed 's/^Host=\([^;]*\);.*/\1/')
fi
if ! dotnet build SlimMail.slnx -c Release -nologo -v quiet 2>&1 | tee "$log" | grep -E "error|warn" ; then :; fi
if grep -qE " error [A-Z]+[0-9]+" "$log"; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

dotnet test SlimMail.slnx -c Release --no-build -nologo 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -oE "Passed: +[0-9]+" "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -oE "Failed: +[0-9]+" "$log" | awk '{s+=$2} END {print s+0}')
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
fi
echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
