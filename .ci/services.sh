#!/usr/bin/env bash
# Start (or stop) the real servers the `servers` tests talk to, on loopback only.
# It installs nothing: Debian's rabbitmq-server and redis-server must be installed.
#
#   .ci/services.sh start   start both (a running one is left as is), then print
#                           `export AKDIAG_TEST_...=...` lines on stdout
#   .ci/services.sh env     print those lines again
#   .ci/services.sh stop    stop what `start` started (by the PIDs it recorded)
#
#   eval "$(.ci/services.sh start)" && python -m pytest -m servers ...
#
# Settings (environment): AKDIAG_SERVICES_DIR (state, data and logs; default
# /tmp/akdiag-ci-services), AKDIAG_RABBITMQ_PORT (5672), AKDIAG_RABBITMQ_API_PORT
# (15672), AKDIAG_RABBITMQ_DIST_PORT (25672), AKDIAG_REDIS_PORT (6390).
# Progress goes to stderr; the environment file is also written to $STATE/env.
set -euo pipefail

STATE=${AKDIAG_SERVICES_DIR:-/tmp/akdiag-ci-services}  # the rabbitmq user must reach it
RABBIT_PORT=${AKDIAG_RABBITMQ_PORT:-5672}
RABBIT_API_PORT=${AKDIAG_RABBITMQ_API_PORT:-15672}
RABBIT_DIST_PORT=${AKDIAG_RABBITMQ_DIST_PORT:-25672}
REDIS_PORT=${AKDIAG_REDIS_PORT:-6390}
NODE=akdiag-ci@localhost
RABBIT_WAIT=${AKDIAG_RABBITMQ_WAIT:-90}

log() { echo "services: $*" >&2; }
die() { echo "services: error: $*" >&2; exit 1; }

port_open() {  # host port -> 0 when something accepts a TCP connection
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_for() {  # seconds description command...
    local seconds=$1 what=$2; shift 2
    local end=$((SECONDS + seconds))
    until "$@"; do
        if ((SECONDS >= end)); then return 1; fi
        sleep 0.5
    done
    log "$what is up"
}

api_answers() {
    curl -fsS -m 3 -u guest:guest "http://127.0.0.1:$RABBIT_API_PORT/api/overview" >/dev/null 2>&1
}

# The Debian wrappers switch to the rabbitmq user when run as root; the variables
# below go with them (su keeps the environment).
rabbit_env() {
    export RABBITMQ_NODENAME=$NODE
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT=$RABBIT_PORT
    export RABBITMQ_DIST_PORT=$RABBIT_DIST_PORT
    export RABBITMQ_CONFIG_FILE=$STATE/rabbitmq/rabbitmq.conf
    export RABBITMQ_ENABLED_PLUGINS_FILE=$STATE/rabbitmq/enabled_plugins
    export RABBITMQ_MNESIA_BASE=$STATE/rabbitmq/mnesia
    export RABBITMQ_LOG_BASE=$STATE/rabbitmq/log
    export RABBITMQ_PID_FILE=$STATE/rabbitmq/rabbitmq.pid
    export ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

as_rabbitmq() {  # run a command as the rabbitmq user when we are root
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -E "$@"
    else
        die "run as root (or with sudo): the broker runs as the rabbitmq user"
    fi
}

start_rabbitmq() {
    command -v rabbitmq-server >/dev/null 2>&1 || die "rabbitmq-server is not installed (apt-get install -y rabbitmq-server)"
    rabbit_env
    if port_open 127.0.0.1 "$RABBIT_PORT" && api_answers; then
        log "RabbitMQ already answers on 127.0.0.1:$RABBIT_PORT; leaving it as is"
        return
    fi
    if port_open 127.0.0.1 "$RABBIT_PORT"; then
        die "port $RABBIT_PORT is taken by something that is not a RabbitMQ with the management API; set AKDIAG_RABBITMQ_PORT"
    fi
    local epmd_before=""
    epmd_before=$(pgrep -x epmd || true)
    mkdir -p "$STATE/rabbitmq/mnesia" "$STATE/rabbitmq/log"
    cat >"$STATE/rabbitmq/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$RABBIT_PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $RABBIT_API_PORT
loopback_users.guest = true
EOF
    echo "[rabbitmq_management]." >"$STATE/rabbitmq/enabled_plugins"
    if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
        chown -R rabbitmq:rabbitmq "$STATE/rabbitmq"
        chmod 755 "$STATE"
    fi
    log "starting RabbitMQ ($NODE) on 127.0.0.1:$RABBIT_PORT, API on 127.0.0.1:$RABBIT_API_PORT"
    as_rabbitmq rabbitmq-server -detached >"$STATE/rabbitmq-start.out" 2>&1 || {
        cat "$STATE/rabbitmq-start.out" >&2; die "rabbitmq-server did not start"; }
    if ! wait_for "$RABBIT_WAIT" "RabbitMQ AMQP port $RABBIT_PORT" port_open 127.0.0.1 "$RABBIT_PORT" \
       || ! wait_for "$RABBIT_WAIT" "RabbitMQ management API" api_answers; then
        tail -n 40 "$STATE"/rabbitmq/log/*.log >&2 2>/dev/null || true
        die "RabbitMQ did not answer within ${RABBIT_WAIT}s (logs in $STATE/rabbitmq/log)"
    fi
    local pid
    pid=$(cat "$STATE/rabbitmq/rabbitmq.pid" 2>/dev/null || true)
    echo "$pid" >"$STATE/rabbitmq.started"
    if [ -z "$epmd_before" ]; then
        pgrep -x epmd >"$STATE/epmd.started" || true
    fi
}

start_redis() {
    command -v redis-server >/dev/null 2>&1 || die "redis-server is not installed (apt-get install -y redis-server)"
    if [ -f "$STATE/redis.pid" ] && kill -0 "$(cat "$STATE/redis.pid")" 2>/dev/null \
       && port_open 127.0.0.1 "$REDIS_PORT"; then
        log "Redis already runs on 127.0.0.1:$REDIS_PORT; leaving it as is"
        return
    fi
    if port_open 127.0.0.1 "$REDIS_PORT"; then
        die "port $REDIS_PORT is taken by something we did not start; set AKDIAG_REDIS_PORT"
    fi
    mkdir -p "$STATE/redis"
    if [ "$(id -u)" = 0 ] && id redis >/dev/null 2>&1; then chown redis:redis "$STATE/redis" 2>/dev/null || true; fi
    log "starting Redis on 127.0.0.1:$REDIS_PORT"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --daemonize yes \
        --dir "$STATE/redis" --pidfile "$STATE/redis.pid" --logfile "$STATE/redis/redis.log"
    wait_for 15 "Redis port $REDIS_PORT" port_open 127.0.0.1 "$REDIS_PORT" || die "Redis did not start"
    # daemonize writes the PID file just after it listens
    wait_for 5 "Redis PID file" test -s "$STATE/redis.pid" || true
}

write_env() {
    cat >"$STATE/env" <<EOF
export AKDIAG_TEST_RABBITMQ=127.0.0.1:$RABBIT_PORT
export AKDIAG_TEST_RABBITMQ_API=127.0.0.1:$RABBIT_API_PORT
export AKDIAG_TEST_REDIS=127.0.0.1:$REDIS_PORT
EOF
    cat "$STATE/env"
}

stop_all() {
    if [ -f "$STATE/redis.pid" ]; then
        local pid; pid=$(cat "$STATE/redis.pid")
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            log "stopping Redis (PID $pid)"
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$STATE/redis.pid"
    fi
    if [ -f "$STATE/rabbitmq.started" ]; then
        rabbit_env
        local pid; pid=$(cat "$STATE/rabbitmq.started")
        log "stopping RabbitMQ ($NODE)"
        as_rabbitmq rabbitmqctl -n "$NODE" stop >/dev/null 2>&1 || true
        if [ -n "$pid" ]; then
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            if kill -0 "$pid" 2>/dev/null; then log "RabbitMQ PID $pid still runs; killing it"; kill "$pid" || true; fi
        fi
        rm -f "$STATE/rabbitmq.started"
    fi
    if [ -f "$STATE/epmd.started" ]; then
        local pid
        for pid in $(cat "$STATE/epmd.started"); do
            if kill -0 "$pid" 2>/dev/null; then log "stopping epmd (PID $pid)"; kill "$pid" || true; fi
        done
        rm -f "$STATE/epmd.started"
    fi
}

mkdir -p "$STATE"
case "${1:-start}" in
    start) start_rabbitmq; start_redis; write_env ;;
    env) write_env ;;
    stop) stop_all ;;
    *) die "usage: $0 [start|env|stop]" ;;
esac
