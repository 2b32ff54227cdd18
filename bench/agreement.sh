# Sourced by the load scripts: writes the agreement of a benchmark sender.
#   bench_agreement FILE ID SENDER_URA
# An agreement in force since 2000 from SENDER_URA (a GP practice) to the bench receiver
# (URA 87654321) for every data category, so that every handover of the load is accepted.
bench_agreement() {
  cat > "$1" <<JSON
{"format": "overdracht-agreement/1", "id": "$2", "version": "1", "title": "load benchmark",
 "sender": {"name": "bench sender $2", "kind": "gp-practice", "ura": "$3"},
 "receiver": {"name": "bench receiver", "kind": "gzsp-provider", "ura": "87654321"},
 "categories": ["identification", "care-providers", "problems", "episodes", "journal", "medication",
   "allergies", "alerts", "lab-results", "vital-signs", "vaccinations", "directives", "living-situation",
   "lifestyle", "functional-status", "contact-persons", "legal-situation", "referral", "care-plan",
   "documents", "appointments"],
 "valid": {"start": "2000-01-01"}, "legal_basis": "treatment-relationship", "purpose": "benchmark",
 "retention": "P20Y"}
JSON
}
