# shellcheck shell=bash
# scripts/ci-services.sh: services the tests talk to (issue 8).
#
# .ci/run sources this file before 'go test'. It gives the PostgreSQL
# registry store's integration tests a throwaway cluster:
#   - installs PostgreSQL from Debian when it is missing (apt only);
#   - runs initdb as the postgres user in a fresh temporary directory,
#     starts the server on 127.0.0.1 at a free port with a socket directory
#     of its own, small (shared_buffers 16MB) and without fsync (nothing in
#     it outlives the run);
#   - creates the role usmp (a random password) and the database usmp_test
#     (ICU collation en-US, so that byte order is never the database's
#     default order: the store must ask for it);
#   - exports USMP_PSK_TEST_POSTGRES (the URL, no password) and PGPASSFILE
#     (a 0600 file with the password; no PGPASSWORD in every process's
#     environment);
#   - stops the server and removes the directory when the sourcing shell
#     exits (an EXIT trap, chained to one that is already set).
# The tests fail instead of skipping when CI is set and
# USMP_PSK_TEST_POSTGRES is not.
#
# Sourcing it again in the same shell while its server runs does nothing.
# By hand: 'USMP_PSK_PG_KEEP=1 . scripts/ci-services.sh' leaves the server
# running after the shell exits; 'usmp_pg_stop' (same shell) or
# 'pg_ctl -D "$USMP_PSK_CI_PGDIR/data" stop' (as its owner) stops it.
#
# Being sourced under 'set -euo pipefail', it never calls exit and keeps
# its helpers and variables under the usmp_pg_ prefix.

usmp_pg_as_owner() {
  if [ "$(id -u)" != 0 ]; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u postgres -- "$@"
  elif [ -x /usr/sbin/runuser ]; then
    /usr/sbin/runuser -u postgres -- "$@"
  elif [ -x /sbin/runuser ]; then
    /sbin/runuser -u postgres -- "$@"
  else
    # su passes the arguments to sh -c as "$@" after the '_' placeholder.
    su -s /bin/sh -c '"$@"' -- postgres _ "$@"
  fi
}

usmp_pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$d" ] && command -v initdb >/dev/null 2>&1; then
    d=$(dirname "$(readlink -f "$(command -v initdb)")")
  fi
  printf '%s' "$d"
}

usmp_pg_install() {
  if [ -n "$(usmp_pg_bindir)" ]; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "ci-services: PostgreSQL is not installed and this is not root: install the Debian package postgresql" >&2
    return 1
  fi
  echo "ci-services: installing PostgreSQL from Debian"
  # No default cluster: the package would otherwise create and start one
  # on port 5432, which nothing here uses.
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    mkdir -p /etc/postgresql-common
    echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  [ -n "$(usmp_pg_bindir)" ]
}

# usmp_pg_port_free PORT: nothing listens on 127.0.0.1:PORT.
usmp_pg_port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

usmp_pg_stop() {
  local dir=${USMP_PSK_CI_PGDIR:-}
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    return 0
  fi
  if [ -f "$dir/data/postmaster.pid" ]; then
    usmp_pg_as_owner "$USMP_PSK_CI_PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 ||
      usmp_pg_as_owner "$USMP_PSK_CI_PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  unset USMP_PSK_CI_PGDIR USMP_PSK_TEST_POSTGRES PGPASSFILE
}

usmp_pg_start() {
  if [ -n "${USMP_PSK_CI_PGDIR:-}" ] && [ -f "${USMP_PSK_CI_PGDIR}/data/postmaster.pid" ] &&
    usmp_pg_as_owner "$USMP_PSK_CI_PGBIN/pg_ctl" -D "$USMP_PSK_CI_PGDIR/data" status >/dev/null 2>&1; then
    echo "ci-services: PostgreSQL already running ($USMP_PSK_TEST_POSTGRES)"
    return 0
  fi
  usmp_pg_install || return 1
  local bin dir pw port tries started=""
  bin=$(usmp_pg_bindir)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/usmp-psk-pg.XXXXXX")
  chmod 700 "$dir"
  mkdir "$dir/sock"
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$dir" "$dir/sock"
  fi
  export USMP_PSK_CI_PGDIR="$dir" USMP_PSK_CI_PGBIN="$bin"
  if ! usmp_pg_as_owner "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1; then
    echo "ci-services: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    return 1
  fi
  for tries in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 40000))
    usmp_pg_port_free "$port" || continue
    if usmp_pg_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c shared_buffers=16MB -c max_connections=120 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=256MB" \
      start >/dev/null 2>&1; then
      started=1
      break
    fi
  done
  if [ -z "$started" ]; then
    echo "ci-services: PostgreSQL did not start (try $tries):" >&2
    tail -n 20 "$dir/data/server.log" >&2 || true
    return 1
  fi
  pw=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  # The password goes through stdin, never argv.
  if ! usmp_pg_as_owner "$bin/psql" -X -q -h "$dir/sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL; then
CREATE ROLE usmp LOGIN PASSWORD '$pw';
CREATE DATABASE usmp_test OWNER usmp TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C';
SQL
    echo "ci-services: creating the test role and database failed" >&2
    return 1
  fi
  (umask 077 && printf '127.0.0.1:%s:*:usmp:%s\n' "$port" "$pw" >"$dir/pgpass")
  export USMP_PSK_TEST_POSTGRES="postgres://usmp@127.0.0.1:$port/usmp_test?sslmode=disable"
  export PGPASSFILE="$dir/pgpass"
  echo "ci-services: PostgreSQL $("$bin/postgres" -V | awk '{print $3}') on 127.0.0.1:$port ($dir)"
}

usmp_pg_trap() {
  local prev=""
  if [ -n "$(trap -p EXIT)" ]; then
    eval "set -- $(trap -p EXIT)"
    prev=$3
  fi
  case "$prev" in
  *usmp_pg_stop*) return 0 ;;
  esac
  # shellcheck disable=SC2064
  trap "usmp_pg_stop${prev:+; $prev}" EXIT
}

if usmp_pg_start; then
  if [ -z "${USMP_PSK_PG_KEEP:-}" ]; then
    usmp_pg_trap
  fi
else
  usmp_pg_stop
  echo "ci-services: no PostgreSQL; its tests fail when CI is set" >&2
fi
