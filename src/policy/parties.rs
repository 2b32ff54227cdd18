//! The parties of a handover (filled in below).
