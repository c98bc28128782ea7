# Starts a throw-away PostgreSQL server for the tests and exports its URL as
# PASAPORTE_TEST_PG_URL; stops it and removes its files when the calling
# script exits. Source it from bash: `source scripts/pg.sh`.

pg_bindir() {
    local d
    for d in "$(pg_config --bindir 2>/dev/null)" /usr/lib/postgresql/*/bin; do
        if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

if ! PG_BIN=$(pg_bindir); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "pg.sh: installing PostgreSQL (apt-get install postgresql)" >&2
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        PG_BIN=$(pg_bindir) || { echo "pg.sh: PostgreSQL did not install" >&2; exit 1; }
    else
        echo "pg.sh: PostgreSQL server binaries not found: install them (Debian: sudo apt-get install postgresql)" >&2
        exit 1
    fi
fi

PG_DIR=$(mktemp -d /tmp/pasaporte-pg.XXXXXX)
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$PG_DIR"
fi

as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; echo "pg.sh: initdb failed" >&2; exit 1; }

PG_PORT=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 20000))
    if as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR/data -c max_connections=600 -c shared_buffers=128MB" \
        start >/dev/null 2>&1; then
        PG_PORT=$port
        break
    fi
done
if [ -z "$PG_PORT" ]; then
    cat "$PG_DIR/server.log" >&2
    echo "pg.sh: PostgreSQL did not start" >&2
    exit 1
fi

pg_stop() {
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}
trap pg_stop EXIT
trap "exit 130" INT TERM

export PASAPORTE_TEST_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
# The data folder, for tests that search the files for personal data in clear.
export PASAPORTE_TEST_PG_DATA="$PG_DIR/data"
echo "pg.sh: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on port $PG_PORT" >&2
