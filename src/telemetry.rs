//! Logging set-up for the service: `tracing` with a filter and a text or JSON format.
//!
//! Application logs carry request ids, routes, statuses, durations and counts; never a
//! BSN, a name or clinical text. Who saw which patient is recorded in the audit trail,
//! which is the only place for it. Request spans therefore record the matched route
//! (`/handovers/{id}`), not the URI with its query string.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber writing to `writer`. Returns false when one was already
/// installed (tests install theirs once per binary).
pub fn init<W>(filter: &str, format: LogFormat, writer: W) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_target(true);
    match format {
        LogFormat::Json => builder.json().with_current_span(true).try_init().is_ok(),
        LogFormat::Text => builder.with_ansi(false).try_init().is_ok(),
    }
}
