#!/bin/sh
# Validation benchmark: overdracht's validator vs the jsonschema crate with the official R4 JSON Schema,
# per resource, for every profile overdracht emits (fixtures in tests/fixtures/validate/).
# Release build; the first build of the crate takes a few minutes on a 2-core machine.
set -eu
cd "$(dirname "$0")/.."
exec cargo bench --bench validate "$@"
