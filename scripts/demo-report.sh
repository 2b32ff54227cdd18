#!/usr/bin/env bash
# The contracting evidence report, by hand: against a running `overdracht serve --demo`,
# a few handovers and reads with curl, then the report as HTML (and JSON).
#
#   overdracht serve --demo                       # in another terminal, from the repository root
#   scripts/demo-report.sh [http://127.0.0.1:8080] [DATA_DIR]
#
# Tokens are minted with `overdracht token` from the demo key in DATA_DIR (default
# ./overdracht-data, where `serve --demo` keeps it). The report is for Zorggroep Zuid
# (URA 11112222); it needs an administrator (policy.admins) or a privacy officer
# (audit.privacy_officer_roles). `serve --demo` makes UZI 900000900 the administrator when none
# is configured; if that was overridden, the script writes the report with the command line
# (`overdracht report --demo`), which needs no token.
#
# For humans: the test that checks the figures is tests/api/report.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE="${1:-http://127.0.0.1:8080}"
DATA="${2:-./overdracht-data}"
OVERDRACHT="${OVERDRACHT:-cargo run --quiet --}"
PROVIDER=11112222
tok() { $OVERDRACHT token --data-dir "$DATA" --uzi "$1" --role "$2" --ura "$3" --ttl-minutes 60; }
GP=$(tok 900012345 01.015 87654321)
AMALIA=$(tok 900003333 01.019 12345678)
STRANGER=$(tok 900077777 01.015 55556666)
LEAD=$(tok 900000101 01.047 $PROVIDER)
SUPPORT=$(tok 900000104 30.000 $PROVIDER)
OUTSIDER=$(tok 900000999 01.047 $PROVIDER)
ADMIN=$(tok 900000900 01.047 $PROVIDER)
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

echo "handovers:"
for i in 1 2 3; do
  # The same record with different trailing whitespace is a different handover.
  { cat examples/records/gp-frail-elderly.stu3.json; printf '%*s' "$i" ''; } > /tmp/overdracht-demo-gp.json
  echo "  GP De Linde -> Zorggroep Zuid: $(code -X POST "$BASE/handovers?receiver=ura%7C$PROVIDER&care-form=group-frail" \
    -H "Authorization: Bearer $GP" -H 'Content-Type: application/fhir+json' --data-binary @/tmp/overdracht-demo-gp.json)"
done
echo "  the same record again: $(code -X POST "$BASE/handovers?receiver=ura%7C$PROVIDER&care-form=group-frail" \
  -H "Authorization: Bearer $GP" -H 'Content-Type: application/fhir+json' --data-binary @/tmp/overdracht-demo-gp.json)"
echo "  Amalia paediatrics (vital signs removed by the agreement): $(code -X POST "$BASE/handovers?receiver=ura%7C$PROVIDER&care-form=individual-avg" \
  -H "Authorization: Bearer $AMALIA" -H 'Content-Type: application/json' --data-binary @examples/records/paediatrician-young-adult.flat.json)"
echo "  a practice without an agreement (refused): $(code -X POST "$BASE/handovers?receiver=ura%7C$PROVIDER&sender=ura%7C55556666" \
  -H "Authorization: Bearer $STRANGER" -H 'Content-Type: application/fhir+json' --data-binary @examples/records/gp-frail-elderly.stu3.json)"

PID=$(curl -s -X POST "$BASE/handovers?receiver=ura%7C$PROVIDER&care-form=group-frail" -H "Authorization: Bearer $GP" \
  -H 'Content-Type: application/fhir+json' --data-binary @examples/records/gp-frail-elderly.stu3.json \
  | sed -n 's/.*"patient" *: *"Patient\/\([^"]*\)".*/\1/p')
EVERYTHING="$BASE/fhir/Patient/$PID/\$everything"
echo "reads:"
echo "  lead practitioner, whole record: $(code "$EVERYTHING" -H "Authorization: Bearer $LEAD")"
echo "  supporting discipline, whole record (its categories): $(code "$EVERYTHING" -H "Authorization: Bearer $SUPPORT")"
echo "  outsider (denied, 404): $(code "$EVERYTHING" -H "Authorization: Bearer $OUTSIDER")"
echo "  outsider, break-the-glass: $(code "$EVERYTHING" -H "Authorization: Bearer $OUTSIDER" -H 'X-Break-Glass-Reason: patient%20collapsed%2C%20lead%20unreachable')"

echo "the report:"
status=$(code "$BASE/report?format=html" -H "Authorization: Bearer $ADMIN")
if [ "$status" = 200 ]; then
  curl -s "$BASE/report?format=html" -H "Authorization: Bearer $ADMIN" -o overdracht-report.html
  curl -s "$BASE/report" -H "Authorization: Bearer $ADMIN" -o overdracht-report.json
  echo "  GET /report: overdracht-report.html and overdracht-report.json"
else
  echo "  GET /report as the demo administrator: $status (policy.admins was configured otherwise)"
  $OVERDRACHT report --demo --data-dir "$DATA" --out overdracht-report.html
  $OVERDRACHT report --demo --data-dir "$DATA" --out overdracht-report.json
fi
echo "open overdracht-report.html in a browser (print it to PDF from there)"
