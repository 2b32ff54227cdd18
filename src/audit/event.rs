//! The BALP AuditEvent view of an entry (filled in below).
