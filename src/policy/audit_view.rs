//! Who sees which part of the audit trail (filled in below).
