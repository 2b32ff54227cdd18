#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server (scripts/postgres.sh): installs Debian's
# `postgresql` if no initdb is found, starts a server as an unprivileged user in a temporary
# directory on a free port of 127.0.0.1, exports OVERDRACHT_TEST_POSTGRES_URL for the command,
# and stops the server and removes its files afterwards, however the command ends.
#
#   bash scripts/with-postgres.sh cargo test --test instances -- --ignored postgres_
set -euo pipefail
# shellcheck source=scripts/postgres.sh
source "$(dirname "$0")/postgres.sh"
trap pg_stop EXIT
pg_start
export OVERDRACHT_TEST_POSTGRES_URL="$PG_URL"
"$@"
