//! The contracting evidence report: what a GZSP provider shows its insurer to prove that it
//! has agreements on data transfer and on access within its teams, and that they are
//! enforced (DOMAIN.md, "What insurers require before contracting").
//!
//! [`gather`] builds a [`Report`] (its serde form is the JSON of `GET /report` and
//! `overdracht report --format json`, documented field by field in `docs/report.md`) from
//! what overdracht already holds: the agreements in force, the access policy's configuration,
//! the stored care teams, and the audit trail. Every count comes from the database by SQL
//! aggregation ([`crate::store::report`]); the hash chain is verified as part of the report,
//! so figures are never shown without saying whether the trail behind them is intact.
//! [`html`] renders the same report as one self-contained, printable page.
//!
//! Nothing here writes, except that the callers record one `report` audit entry per report
//! ([`audit_entry`]); the report itself contains no BSN (team ids that contain a nine-digit
//! number are masked) and no clinical content.

mod document;
pub mod html;
mod sections;

pub use document::*;
use sections::*;
pub use sections::{access_arrangement, agreement_status, evaluation_state, mask_bsn_like};

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::audit::{self, Actor, AuditAction, AuditEntry, AuditError, AuditOutcome};
use crate::model::DataCategory;
use crate::policy::agreement::{LegalBasis, Party, PartyKind};
use crate::policy::care_team::{CareTeam, MemberRole, TreatmentState};
use crate::policy::team_access::{AccessConfig, MatrixEntry, BREAK_GLASS_KEY};
use crate::policy::{roles, Agreement, Decision, PolicyEngine};
use crate::store::report::Scope;
use crate::store::{Store, StoreError};

/// The `format` of the JSON report; a later, incompatible shape gets a new number.
pub const FORMAT: &str = "overdracht-report/1";
/// An agreement in force "expires soon" when its last day is at most this many days away.
pub const EXPIRING_SOON_DAYS: i64 = 90;
/// A team's evaluation is "due" when it is planned at most this many days ahead.
pub const EVALUATION_DUE_DAYS: i64 = 30;
/// At most this many break-the-glass events are listed one by one (all are counted).
pub const BREAK_GLASS_LIST_MAX: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("{0}")]
    Usage(String),
    #[error("the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The days the report covers, both inclusive (Europe/Amsterdam calendar days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// The default: the twelve months up to and including `today`.
    pub fn last_year(today: NaiveDate) -> Period {
        let from = today.checked_sub_months(Months::new(12)).map_or(today, |d| d.succ_opt().unwrap_or(d));
        Period { from, to: today }
    }

    /// From optional `--from`/`--to` texts (`YYYY-MM-DD`); the default fills what is missing.
    pub fn parse(from: Option<&str>, to: Option<&str>, today: NaiveDate) -> Result<Period, ReportError> {
        let day = |name: &str, s: &str| {
            s.trim()
                .parse::<NaiveDate>()
                .map_err(|_| ReportError::Usage(format!("{name} {s:?} is not a date; write YYYY-MM-DD")))
        };
        let to = match to {
            Some(s) => day("to", s)?,
            None => today,
        };
        let from = match from {
            Some(s) => day("from", s)?,
            None => Period::last_year(to).from,
        };
        if from > to {
            return Err(ReportError::Usage(format!("the period starts ({from}) after it ends ({to})")));
        }
        if (to - from).num_days() > 366 * 10 {
            return Err(ReportError::Usage("a report covers at most ten years".into()));
        }
        Ok(Period { from, to })
    }

    /// The period as RFC 3339 UTC bounds `[from, to)` comparable with `recorded_at`: from
    /// local midnight of the first day to local midnight after the last.
    pub fn utc_bounds(&self) -> (String, String) {
        let start = |d: NaiveDate| {
            let local = d.and_hms_opt(0, 0, 0).unwrap_or_default();
            let t = chrono_tz::Europe::Amsterdam
                .from_local_datetime(&local)
                .earliest()
                .map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc));
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        (start(self.from), start(self.to.succ_opt().unwrap_or(self.to)))
    }

    /// The calendar months the period touches, `YYYY-MM`, in order.
    pub fn months(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut m = NaiveDate::from_ymd_opt(self.from.year(), self.from.month(), 1).unwrap_or(self.from);
        while m <= self.to {
            out.push(m.format("%Y-%m").to_string());
            m = match m.checked_add_months(Months::new(1)) {
                Some(n) => n,
                None => break,
            };
        }
        out
    }
}

/// The Europe/Amsterdam month (`YYYY-MM`) of a UTC hour `YYYY-MM-DDTHH`; `None` if malformed.
pub fn month_of_hour(hour: &str) -> Option<String> {
    let t = NaiveDateTime::parse_from_str(&format!("{hour}:00:00"), "%Y-%m-%dT%H:%M:%S").ok()?;
    let local: DateTime<chrono_tz::Tz> = t.and_utc().with_timezone(&chrono_tz::Europe::Amsterdam);
    Some(local.format("%Y-%m").to_string())
}

/// Adds per-hour counts into per-(month, key) counts. Hours that do not parse are counted
/// under the month `unknown` (they cannot occur with entries written by overdracht).
pub fn bucket_months<K: Ord + Clone>(rows: impl IntoIterator<Item = (String, K, i64)>) -> BTreeMap<(String, K), i64> {
    let mut out = BTreeMap::new();
    for (hour, key, n) in rows {
        let month = month_of_hour(&hour).unwrap_or_else(|| "unknown".to_owned());
        *out.entry((month, key)).or_insert(0) += n;
    }
    out
}

// ---------------------------------------------------------------------------------------
// Gathering

/// What a report is made from besides the database.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    pub store: &'a Store,
    /// The agreements loaded (all receivers; the report picks the provider's).
    pub agreements: &'a [Agreement],
    pub policy: &'a PolicyEngine,
}

/// The only receiver among the agreements, for the CLI's default `--provider`.
pub fn default_provider(agreements: &[Agreement]) -> Result<String, ReportError> {
    let receivers: BTreeSet<&str> = agreements.iter().filter_map(|a| a.receiver.ura.as_deref()).collect();
    match receivers.len() {
        1 => Ok(receivers.into_iter().next().unwrap_or_default().to_owned()),
        0 => Err(ReportError::Usage(
            "no agreements are loaded, so the provider is unknown: pass --provider URA (and configure \
             policy.agreements_dir, or use --demo)"
                .into(),
        )),
        _ => Err(ReportError::Usage(format!(
            "the agreements name several receivers; choose one with --provider: {}",
            receivers.into_iter().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Builds the report of `provider` (URA) for `period`, judging states on `today`.
pub async fn gather(src: Sources<'_>, provider: &str, period: Period, today: NaiveDate) -> Result<Report, ReportError> {
    let (from, to) = period.utc_bounds();
    let scope = Scope { ura: provider, from: &from, to: &to };
    let store = src.store;
    let ours: Vec<&Agreement> = src.agreements.iter().filter(|a| a.receiver.ura.as_deref() == Some(provider)).collect();
    let (received, refused, removed, reads, team_reads, denials, break_glass, break_glass_ids, reviews, team_rows) = tokio::try_join!(
        store.report_received(scope),
        store.report_refused(scope),
        store.report_removed(scope),
        store.report_reads(scope),
        store.report_team_reads(scope),
        store.report_denials(scope),
        store.report_break_glass(scope, BREAK_GLASS_LIST_MAX + 1),
        store.report_break_glass_ids(scope),
        store.report_reviews(),
        store.report_care_teams(provider),
    )?;
    let chain = audit::verify(store, &[]).await?;

    let senders = SenderNames::new(&ours);
    let months = period.months();
    Ok(Report {
        format: FORMAT,
        generated: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        today: today.to_string(),
        provider: Provider {
            ura: provider.to_owned(),
            name: ours.first().map(|a| a.receiver.name.clone()),
            agb: ours.iter().find_map(|a| a.receiver.agb.as_ref().map(ToString::to_string)),
        },
        period: PeriodOut {
            from: period.from.to_string(),
            to: period.to.to_string(),
            months: months.clone(),
            time_zone: "Europe/Amsterdam",
        },
        agreements: agreements_section(&ours, today),
        access: access_arrangement(src.policy),
        teams: teams_section(&team_rows, today),
        handovers: handovers_section(&senders, &months, &received, &refused, &removed),
        reads: reads_section(&reads, &team_reads),
        denials: denials_section(&months, &denials),
        break_glass: break_glass_section(break_glass, &break_glass_ids, &reviews),
        audit_chain: ChainStatus {
            intact: chain.problem.is_none(),
            status: chain.problem.as_ref().map_or_else(|| "intact".to_owned(), ToString::to_string),
            entries: chain.head.count,
            checked: chain.checked,
            head_hash: chain.head.hash.clone(),
            head_time: chain.head.updated_at.clone(),
        },
    })
}

// ---------------------------------------------------------------------------------------
// Its audit entry (who may see it is decided by `policy::report_view`)

/// The query object of a report's audit entry: `Report?provider=…&from=…&to=…&format=…`.
pub fn audit_object(provider: &str, period: &Period, format: &str) -> String {
    format!("Report?provider={provider}&from={}&to={}&format={format}", period.from, period.to)
}

/// The `report` audit entry (outcome and rule from the decision); the caller adds the
/// user, access point and request id it knows.
pub fn audit_entry(decision: &Decision, object: String) -> AuditEntry {
    let mut e = AuditEntry::new(
        AuditAction::Report,
        if decision.permit { AuditOutcome::Success } else { AuditOutcome::Denied },
    );
    e.objects = vec![object];
    e.rule = Some(decision.rule.to_owned());
    e.reason = Some(decision.reason.clone());
    e
}

/// The `report` audit entry of `overdracht report`: a local operator with access to the
/// database (and so to the whole trail) made it. `operator` is the UZI number given with
/// `--operator`; the OS user name is always recorded as the access point.
pub fn operator_entry(provider: &str, period: &Period, format: &str, operator: Option<&str>) -> AuditEntry {
    let os_user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    let mut e = audit_entry(&crate::policy::report_view::local_operator(), audit_object(provider, period, format));
    e.user = operator.map(|uzi| Actor { uzi: uzi.to_owned(), uzi_role: String::new(), ura: provider.to_owned() });
    e.client = Some(format!("overdracht report (command line, user {os_user})"));
    e
}

// ---------------------------------------------------------------------------------------
// On the command line (`overdracht report`)

/// Whether `overdracht report` writes the page: `--format html`, or without `--format` an
/// `--out` file ending in `.html` or `.htm` (JSON otherwise).
pub fn html_wanted(format: Option<&str>, out: Option<&std::path::Path>) -> bool {
    match format {
        Some(f) => f == "html",
        None => out.and_then(|p| p.extension()).is_some_and(|x| x == "html" || x == "htm"),
    }
}

/// Whether any of `agreements` names `provider` (URA) as its receiver (a report of a
/// provider that none names is empty: likely a mistyped `--provider`).
pub fn names_receiver(agreements: &[Agreement], provider: &str) -> bool {
    agreements.iter().any(|ag| ag.receiver.ura.as_deref() == Some(provider))
}

/// The report made by a local operator: recorded first ([`operator_entry`]), then
/// gathered and written as the page (`html`) or pretty JSON. Returns the text and whether
/// the audit trail is intact.
pub async fn made_by_operator(
    src: Sources<'_>,
    provider: &str,
    period: Period,
    today: NaiveDate,
    html: bool,
    operator: Option<&str>,
) -> Result<(String, bool), ReportError> {
    let entry = operator_entry(provider, &period, if html { "html" } else { "json" }, operator);
    audit::record_alone(src.store, &entry).await?;
    let r = gather(src, provider, period, today).await?;
    let text = if html { html::render(&r) } else { serde_json::to_string_pretty(&r)? + "\n" };
    Ok((text, r.audit_chain.intact))
}

/// Writes a report to `path`. It names staff (UZI numbers): readable by its owner only.
pub fn save(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new();
    f.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
    f.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests;
