#!/usr/bin/env bash
# Ork's dev stack WITHOUT Docker: the same processes as docker-compose.yml, on this machine.
#
#   deploy/devstack.sh up       build, create the database, start nats-server, recorder, two
#                               schedulers, two executors and the HTTP API (starts only what is not
#                               already running)
#   deploy/devstack.sh up --nats-cluster 3
#                               the same on three nats-servers (nats-1..nats-3) clustered over
#                               loopback, every stream and the run-state bucket at three replicas
#   deploy/devstack.sh down     stop everything `up` started (data and logs stay in .ork/devstack)
#   deploy/devstack.sh status   show what runs and the URLs to use
#
# Environment:
#   ORK_DB_URL                  PostgreSQL database, created when missing and migrated by the
#                               recorder at start (default
#                               postgres://postgres@127.0.0.1:5432/ork_dev?sslmode=disable)
#   ORK_DEVSTACK_NATS_PORT      client port (default 4223, or a free port when 4223 is taken;
#                               4222 is usually someone else's NATS); with a cluster, the first
#                               node's (the others take the next ones, or free ones)
#   ORK_DEVSTACK_MONITOR_PORT   monitoring port (default 8223, or a free port when it is taken)
#   ORK_DEVSTACK_SCHEDULERS     number of schedulers (default 2: scheduler, scheduler-2; they share
#                               the runs' events, and the holder of the schedules lease fires the
#                               schedules, the other taking over when it stops)
#   ORK_DEVSTACK_EXECUTORS      number of executors (default 2)
#   ORK_EXECUTOR_TYPES          executor types (default process,python,noop,sleep)
#   ORK_EXECUTOR_CONCURRENCY    tasks in flight per executor (default 4)
#   ORK_EXECUTOR_WORKFLOW_ROOTS folders the executors run workflows from (default the repository
#                               and $TMPDIR or /tmp, where `ork bench` writes its workflows; a
#                               workflow elsewhere is refused; docs/security.md)
#   ORK_DEVSTACK_SYNC_INTERVAL  JetStream sync_interval override ("always" = durable, slow)
#   ORK_DEVSTACK_API_PORT       the HTTP API's port (default 4100, or a free port when it is taken)
#   ORK_DEVSTACK_METRICS_PORT   first Prometheus port (default 9103: recorder; scheduler 9104,
#                               scheduler-N 9103+N; executor-N after the schedulers, 9105+N with two)
#   ORK_DEVSTACK_NO_BUILD=1     use the binaries already in the bin directory
#   ORK_DEVSTACK_BIN            bin directory (default ./bin)
#   ORK_DEVSTACK_STATE          state directory (default ./.ork/devstack)
#
# NATS runs with authentication (deploy/nats-server.conf, docs/security.md): the first `up` writes a
# random password per role into secrets.env (mode 0600) in the state directory, starts every
# service with its own role's credentials and provisioning off, and provisions the streams once with
# `ork nats provision` as the operator. It also writes submitter.env and operator.env: source one to
# use the CLI against the stack (`. .ork/devstack/submitter.env; ork run FILE`). The API requires a
# token: the first `up` creates an admin token and writes it, with the API's URL, into api.env
# (mode 0600): `. .ork/devstack/api.env; ork workflows apply examples/`.
#
# The state directory holds <name>.log, <name>.pid, nats-server.conf (nats-N.conf), the NATS store in
# nats/ (nats-N/), the secrets and role env files, and env (the URLs and node count chosen by `up`,
# reused by the next `up`, `status` and `down`). Each process runs in its own session and
# process group; `down` signals the whole group (executors stop their running tasks themselves).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
# Canonical paths: a running component is recognised by its executable's path in /proc.
BIN=$(realpath -m "${ORK_DEVSTACK_BIN:-$ROOT/bin}")
STATE=$(realpath -m "${ORK_DEVSTACK_STATE:-$ROOT/.ork/devstack}")
ENV_FILE="$STATE/env"

DB_URL_DEFAULT="postgres://postgres@127.0.0.1:5432/ork_dev?sslmode=disable"
SCHEDULERS="${ORK_DEVSTACK_SCHEDULERS:-2}"
EXECUTORS="${ORK_DEVSTACK_EXECUTORS:-2}"
EXECUTOR_TYPES="${ORK_EXECUTOR_TYPES:-process,python,noop,sleep}"
EXECUTOR_CONCURRENCY="${ORK_EXECUTOR_CONCURRENCY:-4}"
WORKFLOW_ROOTS="${ORK_EXECUTOR_WORKFLOW_ROOTS:-$ROOT,${TMPDIR:-/tmp}}"
# Prometheus endpoints: recorder on the base port, scheduler-N on base+N (the first is named
# scheduler), executor-N on base+SCHEDULERS+N.
METRICS_BASE="${ORK_DEVSTACK_METRICS_PORT:-9103}"

log() { printf 'devstack: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $SCHEDULERS =~ ^[1-9][0-9]*$ ]] || die "ORK_DEVSTACK_SCHEDULERS must be a positive number, got '$SCHEDULERS'"

# NODES is the number of nats-servers: 1, or the cluster size of `up --nats-cluster N`.
NODES=1

# nats_names lists the nats-server components.
nats_names() {
	if ((NODES == 1)); then
		echo nats-server
	else
		for ((i = 1; i <= NODES; i++)); do echo "nats-$i"; done
	fi
}

# components lists the processes in start order.
components() {
	nats_names
	echo recorder scheduler
	for ((i = 2; i <= SCHEDULERS; i++)); do echo "scheduler-$i"; done
	for ((i = 1; i <= EXECUTORS; i++)); do echo "executor-$i"; done
	echo api
}

binary_of() {
	case "$1" in
	nats-server | nats-[0-9]*) echo "$BIN/nats-server" ;;
	recorder) echo "$BIN/ork-recorder" ;;
	scheduler | scheduler-*) echo "$BIN/ork-scheduler" ;;
	executor-*) echo "$BIN/ork-executor" ;;
	api) echo "$BIN/ork-api" ;;
	esac
}

# pid_of prints the pid of a running component, and fails when it does not run. A pid file whose
# process is gone, or is now another program, is stale.
pid_of() {
	local pidfile="$STATE/$1.pid" pid exe
	[[ -f $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
	[[ $exe == "$(binary_of "$1")"* ]] || return 1
	echo "$pid"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# choose_urls reuses the URLs of the last `up` while its NATS server runs, else picks ports.
choose_urls() {
	if [[ -f $ENV_FILE ]] && pid_of "$(nats_names | head -n 1)" >/dev/null; then
		# shellcheck source=/dev/null
		source "$ENV_FILE"
		return
	fi
	local port="${ORK_DEVSTACK_NATS_PORT:-4223}" mport="${ORK_DEVSTACK_MONITOR_PORT:-8223}" i p
	if ! port_free "$port"; then
		[[ -z ${ORK_DEVSTACK_NATS_PORT:-} ]] || die "port $port is taken (ORK_DEVSTACK_NATS_PORT)"
		port=$(free_port)
	fi
	if ! port_free "$mport"; then
		[[ -z ${ORK_DEVSTACK_MONITOR_PORT:-} ]] || die "port $mport is taken (ORK_DEVSTACK_MONITOR_PORT)"
		mport=$(free_port)
	fi
	API_PORT="${ORK_DEVSTACK_API_PORT:-4100}"
	if ! port_free "$API_PORT"; then
		[[ -z ${ORK_DEVSTACK_API_PORT:-} ]] || die "port $API_PORT is taken (ORK_DEVSTACK_API_PORT)"
		API_PORT=$(free_port)
	fi
	NATS_PORTS="$port" MONITOR_PORTS="$mport" ROUTE_PORTS=""
	for ((i = 2; i <= NODES; i++)); do
		p=$((port + i - 1))
		port_free "$p" || p=$(free_port)
		NATS_PORTS+=" $p"
		MONITOR_PORTS+=" $(free_port)"
	done
	if ((NODES > 1)); then
		for ((i = 1; i <= NODES; i++)); do ROUTE_PORTS+="$(free_port) "; done
	fi
	NATS_URL=""
	for p in $NATS_PORTS; do NATS_URL+="${NATS_URL:+,}nats://127.0.0.1:$p"; done
	MONITOR_URL="http://127.0.0.1:$mport"
	DB_URL="${ORK_DB_URL:-$DB_URL_DEFAULT}"
	mkdir -p "$STATE"
	cat >"$ENV_FILE" <<EOF
NODES='$NODES'
NATS_URL='$NATS_URL'
NATS_PORTS='$NATS_PORTS'
MONITOR_URL='$MONITOR_URL'
MONITOR_PORTS='$MONITOR_PORTS'
ROUTE_PORTS='$ROUTE_PORTS'
DB_URL='$DB_URL'
API_PORT='$API_PORT'
EOF
}

# nth prints the n-th (1-based) word of a list.
nth() { echo "$2" | awk -v n="$1" '{ print $n }'; }

build() {
	if [[ ${ORK_DEVSTACK_NO_BUILD:-} == 1 ]]; then
		return
	fi
	mkdir -p "$BIN"
	log "building nats-server and the services into $BIN"
	(cd deploy && CGO_ENABLED=0 go build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2)
	local s
	for s in recorder scheduler executor api; do
		(cd "services/$s" && CGO_ENABLED=0 go build -o "$BIN/ork-$s" ./cmd)
	done
	(cd cmd/ork && CGO_ENABLED=0 go build -o "$BIN/ork" .) || die "the ork CLI did not build: the stack needs it to provision NATS"
}

SECRETS="$STATE/secrets.env"
ROLES="operator scheduler recorder executor submitter"

# secrets writes a random password per NATS role the first time, and loads them.
secrets() {
	if [[ ! -f $SECRETS ]]; then
		local role
		(
			umask 077
			for role in $ROLES; do
				printf 'ORK_NATS_%s_PASSWORD=%s\n' "${role^^}" "$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')"
			done >"$SECRETS"
		)
		log "wrote new NATS role passwords to $SECRETS"
	fi
	[[ $(stat -c %a "$SECRETS") == 600 ]] || die "$SECRETS must be readable by its owner only (chmod 600)"
	set -a
	# shellcheck disable=SC1090
	. "$SECRETS"
	set +a
	for role in operator submitter; do
		(
			umask 077
			printf 'export ORK_NATS_URL=%q\n' "$NATS_URL"
			role_env "$role" | sed 's/^/export /'
		) >"$STATE/$role.env"
	done
}

# role_env prints the client environment of a role: its user, password and inbox prefix.
role_env() {
	local var="ORK_NATS_${1^^}_PASSWORD"
	printf 'ORK_NATS_USER=%s\nORK_NATS_PASSWORD=%s\nORK_NATS_INBOX_PREFIX=_INBOX_%s\n' "$1" "${!var}" "$1"
}

# provision creates or updates the streams and the bucket as the operator.
provision() {
	env $(role_env operator) ORK_NATS_REPLICAS=$NODES "$BIN/ork" nats provision --nats "$NATS_URL" >>"$STATE/provision.log" 2>&1 ||
		{ tail -n 20 "$STATE/provision.log" >&2; die "provisioning NATS failed (log: $STATE/provision.log)"; }
}

# create_database creates the database of DB_URL when it does not exist.
create_database() {
	local base="${DB_URL%%\?*}" query=""
	[[ $DB_URL == *\?* ]] && query="?${DB_URL#*\?}"
	local name="${base##*/}" server="${base%/*}"
	[[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "unsupported database name '$name' in $DB_URL"
	local admin="$server/postgres$query"
	local exists
	exists=$(psql "$admin" -XtAc "SELECT 1 FROM pg_database WHERE datname = '$name'") ||
		die "cannot reach PostgreSQL at $server (set ORK_DB_URL)"
	if [[ $exists != 1 ]]; then
		log "creating database $name"
		psql "$admin" -Xqc "CREATE DATABASE \"$name\"" >/dev/null
	fi
}

# nats_config writes the configuration of one nats-server component (nats-server, or nats-N of a
# cluster) from deploy/nats-server.conf.
nats_config() {
	local name=$1 i=1 p sync_line=()
	[[ $name == nats-server ]] || i=${name#nats-}
	if [[ -n ${ORK_DEVSTACK_SYNC_INTERVAL:-} ]]; then
		sync_line=(-e "s#^\([[:space:]]*sync_interval[[:space:]]*:\).*#\1 \"$ORK_DEVSTACK_SYNC_INTERVAL\"#")
	fi
	local store="$STATE/nats" conf="$STATE/nats-server.conf"
	if ((NODES > 1)); then
		store="$STATE/$name" conf="$STATE/$name.conf"
		sync_line+=(-e "s#^\([[:space:]]*server_name[[:space:]]*:\).*#\1 $name#")
	fi
	mkdir -p "$store"
	sed -e "s#^\([[:space:]]*listen[[:space:]]*:\).*#\1 127.0.0.1:$(nth "$i" "$NATS_PORTS")#" \
		-e "s#^\([[:space:]]*http[[:space:]]*:\).*#\1 127.0.0.1:$(nth "$i" "$MONITOR_PORTS")#" \
		-e "s#^\([[:space:]]*store_dir[[:space:]]*:\).*#\1 \"$store\"#" \
		"${sync_line[@]}" \
		deploy/nats-server.conf >"$conf"
	if ((NODES > 1)); then
		{
			printf '\n# Added by devstack.sh --nats-cluster: this node of the cluster (see deploy/README.md).\n'
			printf 'cluster {\n    name: ork\n    listen: 127.0.0.1:%s\n    routes: [\n' "$(nth "$i" "$ROUTE_PORTS")"
			for p in $ROUTE_PORTS; do printf '        nats-route://127.0.0.1:%s\n' "$p"; done
			printf '    ]\n}\n'
		} >>"$conf"
	fi
}

# set_args sets ARGS to a component's command-line arguments.
set_args() {
	case "$1" in
	nats-server) ARGS=(--config "$STATE/nats-server.conf") ;;
	nats-[0-9]*) ARGS=(--config "$STATE/$1.conf") ;;
	recorder) ARGS=(--nats "$NATS_URL" --db "$DB_URL" --metrics-addr "127.0.0.1:$METRICS_BASE") ;;
	scheduler) ARGS=(--nats "$NATS_URL" --metrics-addr "127.0.0.1:$((METRICS_BASE + 1))") ;;
	scheduler-*) ARGS=(--nats "$NATS_URL" --metrics-addr "127.0.0.1:$((METRICS_BASE + ${1#scheduler-}))") ;;
	executor-*) ARGS=(--nats "$NATS_URL" --types "$EXECUTOR_TYPES" --concurrency "$EXECUTOR_CONCURRENCY" --instance "$1"
		--workflow-roots "$WORKFLOW_ROOTS"
		--metrics-addr "127.0.0.1:$((METRICS_BASE + SCHEDULERS + ${1#executor-}))") ;;
	api) ARGS=(--nats "$NATS_URL" --db "$DB_URL" --addr "127.0.0.1:$API_PORT" --workflows-root "$ROOT") ;;
	esac
}

# start runs a component in its own session (so its process group id is its pid) with its output
# appended to its log.
start() {
	local name=$1 bin
	bin=$(binary_of "$name")
	[[ -x $bin ]] || die "$bin is missing (run without ORK_DEVSTACK_NO_BUILD)"
	local ARGS=()
	set_args "$name"
	printf '\n==== %s start %s\n' "$(date -u +%FT%TZ)" "$name" >>"$STATE/$name.log"
	# nats-server reads the role passwords from its environment (exported by secrets); each service
	# gets its own role's credentials, and provisioning off (`provision` did it as the operator).
	local role_vars=()
	case "$name" in
	recorder | scheduler) role_vars=($(role_env "$name") ORK_NATS_PROVISION=false) ;;
	scheduler-*) role_vars=($(role_env scheduler) ORK_NATS_PROVISION=false) ;;
	executor-*) role_vars=($(role_env executor) ORK_NATS_PROVISION=false) ;;
	api) role_vars=($(role_env submitter) ORK_NATS_PROVISION=false) ;;
	esac
	env "${role_vars[@]}" ORK_NATS_REPLICAS=$NODES setsid "$bin" "${ARGS[@]}" </dev/null >>"$STATE/$name.log" 2>&1 &
	echo $! >"$STATE/$name.pid"
}

# wait_nats waits until every nats-server reports JetStream enabled and, for a cluster, until the
# JetStream meta group is ready (the full /healthz).
wait_nats() {
	local i n name url
	for ((n = 1; n <= NODES; n++)); do
		name=$(nats_names | sed -n "${n}p")
		url="http://127.0.0.1:$(nth "$n" "$MONITOR_PORTS")/healthz?js-enabled-only=true"
		((NODES == 1)) || url="http://127.0.0.1:$(nth "$n" "$MONITOR_PORTS")/healthz"
		for ((i = 0; i < 300; i++)); do
			if curl -fsS -o /dev/null "$url" 2>/dev/null; then
				continue 2
			fi
			pid_of "$name" >/dev/null || break
			sleep 0.1
		done
		tail -n 20 "$STATE/$name.log" >&2 || true
		die "$name did not become healthy"
	done
}

# check_alive fails, showing its log, when a component exits within its first second.
check_alive() {
	local i name
	for ((i = 0; i < 10; i++)); do
		sleep 0.1
		for name in "$@"; do
			if ! pid_of "$name" >/dev/null; then
				tail -n 20 "$STATE/$name.log" >&2 || true
				die "$name exited right after it started (log: $STATE/$name.log)"
			fi
		done
	done
}

print_urls() {
	cat <<EOF

  NATS:        $NATS_URL   (monitoring $MONITOR_URL; $NODES node(s))
  PostgreSQL:  $DB_URL
  Logs:        $STATE/<name>.log
  Metrics:     http://127.0.0.1:$METRICS_BASE/metrics (recorder), :$((METRICS_BASE + 1)).. (schedulers),
               :$((METRICS_BASE + SCHEDULERS + 1)).. (executors)

  API:         http://127.0.0.1:$API_PORT   (an admin token is in $STATE/api.env)

  . $STATE/submitter.env     # the submitter role: run, cancel, pause, resume
  $BIN/ork run FILE
  $BIN/ork status --db '$DB_URL'
  . $STATE/api.env           # the API: ork workflows apply, ork trigger, ork logs -f, curl
EOF
}

# api_token creates an admin API token the first time (the database must exist), and writes it with
# the API's URL into api.env, readable by this user only.
api_token() {
	local file="$STATE/api.env" out token
	if [[ -f $file ]]; then
		[[ $(stat -c %a "$file") == 600 ]] || die "$file must be readable by its owner only (chmod 600)"
		sed -i "s|^export ORK_API_URL=.*|export ORK_API_URL=http://127.0.0.1:$API_PORT|" "$file"
		return
	fi
	out=$("$BIN/ork" token create --scope admin --name devstack --db "$DB_URL") || die "creating the API token failed"
	token=$(echo "$out" | grep -o 'ork_[A-Za-z0-9_-]*' | head -n 1)
	[[ -n $token ]] || die "no token in: $out"
	(umask 077 && printf 'export ORK_API_URL=http://127.0.0.1:%s\nexport ORK_API_TOKEN=%s\n' "$API_PORT" "$token" >"$file")
}

cmd_up() {
	while (($# > 0)); do
		case "$1" in
		--nats-cluster)
			[[ ${2:-} =~ ^[0-9]+$ ]] && (($2 >= 1)) || die "--nats-cluster needs a node count, got '${2:-}'"
			NODES=$2
			shift 2
			;;
		*) die "unknown option $1 (usage: $0 up [--nats-cluster N])" ;;
		esac
	done
	mkdir -p "$STATE"
	load_nodes_if_running
	choose_urls
	local nats_waited=0
	build
	secrets
	create_database
	api_token
	local started=() name
	for name in $(components); do
		if pid_of "$name" >/dev/null; then
			continue
		fi
		if [[ $name == nats-* ]]; then
			nats_config "$name"
			start "$name"
		else
			((nats_waited)) || { wait_nats; provision; nats_waited=1; }
			start "$name"
		fi
		started+=("$name")
	done
	if ((${#started[@]} == 0)); then
		log "already running"
	else
		check_alive "${started[@]}"
		log "started ${started[*]}"
	fi
	print_urls
}

# stop sends SIGTERM to a component's process group, then SIGKILL after 10 seconds.
stop() {
	local name=$1 pid i
	pid=$(pid_of "$name") || { rm -f "$STATE/$name.pid"; return; }
	kill -TERM -- "-$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name did not stop within 10s: killing it"
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	rm -f "$STATE/$name.pid"
	log "stopped $name"
}

# saved_nodes prints the node count of the last `up`, 1 when unknown.
saved_nodes() {
	local n=""
	[[ -f $ENV_FILE ]] && n=$(sed -n "s/^NODES='\([0-9]*\)'$/\1/p" "$ENV_FILE")
	echo "${n:-1}"
}

# load_nodes_if_running takes NODES from the last `up` while its stack still runs, so that a second
# `up` sees the same components; asking for another node count then is an error.
load_nodes_if_running() {
	local want=$NODES
	NODES=$(saved_nodes)
	if pid_of "$(nats_names | head -n 1)" >/dev/null; then
		((want == 1 || want == NODES)) || die "a stack with $NODES nats-server(s) runs: run down first"
		return 0
	fi
	NODES=$want
}

cmd_down() {
	NODES=$(saved_nodes)
	local names
	# Reverse start order: executors and schedulers first, NATS last. Schedulers and executors of an
	# earlier `up` with more of them are stopped too.
	mapfile -t names < <(
		{
			components | tr ' ' '\n'
			ls "$STATE" 2>/dev/null | sed -n 's/^\(scheduler-[0-9]*\|executor-[0-9]*\)\.pid$/\1/p'
		} | awk 'NF && !seen[$0]++'
	)
	local i
	for ((i = ${#names[@]} - 1; i >= 0; i--)); do
		stop "${names[i]}"
	done
}

cmd_status() {
	NODES=$(saved_nodes)
	local name pid
	for name in $(components); do
		if pid=$(pid_of "$name"); then
			printf '  %-12s running (pid %s)\n' "$name" "$pid"
		else
			printf '  %-12s stopped\n' "$name"
		fi
	done
	if [[ -f $ENV_FILE ]]; then
		# shellcheck source=/dev/null
		source "$ENV_FILE"
		print_urls
	fi
}

case "${1:-up}" in
up)
	shift
	cmd_up "$@"
	;;
down) cmd_down ;;
status) cmd_status ;;
*)
	echo "usage: $0 up [--nats-cluster N]|down|status" >&2
	exit 2
	;;
esac
