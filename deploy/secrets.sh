#!/usr/bin/env bash
# Writes .env at the repository root for docker-compose.yml: a random password for PostgreSQL and
# for each NATS role of deploy/nats-server.conf (docs/security.md). Readable by its owner only, never
# committed (.gitignore). An existing .env is left alone: delete it and the volumes
# (`docker compose down -v`) to start over with new passwords.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -e .env ]]; then
	echo "secrets: .env exists; leaving it as it is" >&2
	exit 0
fi
umask 077
{
	for var in ORK_POSTGRES_PASSWORD ORK_NATS_OPERATOR_PASSWORD ORK_NATS_SCHEDULER_PASSWORD \
		ORK_NATS_RECORDER_PASSWORD ORK_NATS_EXECUTOR_PASSWORD ORK_NATS_SUBMITTER_PASSWORD; do
		printf '%s=%s\n' "$var" "$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')"
	done
} >.env
echo "secrets: wrote .env (mode 0600)" >&2
