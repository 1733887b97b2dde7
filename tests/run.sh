#!/usr/bin/env bash
# Runs every test: C unit tests (normal and sanitizer builds) and the
# end-to-end suite against both builds, each on SQLite and on PostgreSQL,
# then the socket tests once more in the protobuf socket format.
# A throwaway PostgreSQL cluster is started here and stopped by PID on exit.
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
pgdir=$(mktemp -d /tmp/kizuna-pg.XXXXXX)
cleanup() { bash "$root/tests/support/pg.sh" stop "$pgdir" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM

export KZ_TEST_PG_URL
KZ_TEST_PG_URL=$(bash tests/support/pg.sh start "$pgdir") || { echo "could not start PostgreSQL"; exit 1; }
echo "PostgreSQL test cluster: $KZ_TEST_PG_URL"

failed=0
step() { # name, command...
  local name=$1; shift
  echo "=== $name"
  if "$@"; then echo "=== $name: ok"; else echo "=== $name: FAILED"; failed=$((failed + 1)); fi
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
step "unit tests" ctest --test-dir build --output-on-failure
# Criterion reports a test as passing even when the sanitizer complained in
# its process, so the sanitizer run is also judged by its output.
asan_unit() {
  local log
  log=$(mktemp)
  ctest --test-dir build/asan --output-on-failure -V >"$log" 2>&1
  local rc=$?
  grep -E '^(100% tests|[0-9]+% tests)' "$log"
  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
    grep -E -A20 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log" | head -60
    rc=1
  fi
  [ "$rc" -ne 0 ] && tail -50 "$log"
  rm -f "$log"
  return "$rc"
}
step "unit tests (asan+ubsan)" asan_unit
for bin in build/kizuna build/asan/kizuna; do
  for db in sqlite postgres; do
    step "e2e $bin on $db" env KZ_BIN="$root/$bin" KZ_DB=$db KZ_WS_FORMAT=json npm --prefix tests/e2e test --silent
  done
done
# The socket tests again with nakama-js speaking the protobuf format
# (?format=protobuf, binary frames); their raw JSON tests skip themselves.
for bin in build/kizuna build/asan/kizuna; do
  for db in sqlite postgres; do
    step "e2e protobuf sockets $bin on $db" env KZ_BIN="$root/$bin" KZ_DB=$db KZ_WS_FORMAT=protobuf \
      npm --prefix tests/e2e run test:socket --silent
  done
done

if [ "$failed" -ne 0 ]; then
  echo "$failed test step(s) failed"
  exit 1
fi
echo "all test steps passed"
