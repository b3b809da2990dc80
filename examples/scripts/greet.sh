#!/bin/sh
# Task of examples/process_io.yaml. ORK_INPUT_JSON is {"who": "..."}; extracting one plain string field
# with sed keeps this script POSIX-only (use python3 or jq for real JSON).
set -eu
who=$(printf '%s' "$ORK_INPUT_JSON" | sed -n 's/.*"who" *: *"\([^"]*\)".*/\1/p')
echo "task $ORK_TASK_NAME of run $ORK_RUN_ID, attempt $ORK_ATTEMPT"
printf 'ORK_OUTPUT:{"greeting": "hello, %s"}\n' "$who"
