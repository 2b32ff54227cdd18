//! Data-transfer agreements and the transfer decision.
//!
//! An [`Agreement`] is what a GP practice or hospital department and a GZSP provider signed:
//! who sends, who receives, which data categories, for how long, on which legal basis. It is
//! a JSON file (format `overdracht-agreement/1`, JSON Schema in
//! `profiles/agreement.schema.json`, examples in `examples/agreements/`) so that the
//! provider can show an insurer exactly what is in force, and so that the same file is
//! what the software enforces.
//!
//! [`decide_transfer`] is asked for every handover: it refuses one that no agreement in force
//! covers, and otherwise says which categories are kept and which are removed and why.
//! Several agreements in force between the same parties add up (their categories are united).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::consent::{ConsentKind, PatientConsent};
use super::{DayPeriod, PartyId};
use crate::diagnostics::{Issue, IssueCode, Outcome};
use crate::model::{Agb, Ura};
use crate::model::{Bsn, DataCategory};

/// The value of `format` this code reads. A later, incompatible format gets a new number.
pub const AGREEMENT_FORMAT: &str = "overdracht-agreement/1";

/// A data-transfer agreement between a sender and a receiving GZSP provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agreement {
    /// Always [`AGREEMENT_FORMAT`].
    pub format: String,
    /// Stable identifier of the agreement (kept across versions), e.g. `linde-to-zorggroep-zuid`.
    pub id: String,
    /// The version of this agreement text, e.g. `1.2`; audit entries name `id@version`.
    pub version: String,
    pub title: String,
    /// The GP practice or hospital department that sends data.
    pub sender: Party,
    /// The GZSP provider that receives it.
    pub receiver: Party,
    /// The data categories that may be passed on (codes of the data-category code system).
    pub categories: BTreeSet<DataCategory>,
    /// The days on which the agreement is in force (inclusive; `end` absent = open-ended).
    pub valid: DayPeriod,
    pub legal_basis: LegalBasis,
    /// Why data is transferred, in words the patient would understand.
    pub purpose: String,
    /// How long the receiver keeps the data, as an ISO 8601 duration in whole years, months
    /// or days (`P20Y`, the WGBO term for medical records).
    pub retention: Retention,
    #[serde(default)]
    pub contacts: Vec<Contact>,
}

/// One party to an agreement. At least one of `agb` and `ura` is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    pub name: String,
    pub kind: PartyKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "exact_id")]
    pub agb: Option<Agb>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "exact_id")]
    pub ura: Option<Ura>,
}

/// An identifier in an agreement file, exactly as written: eight digits, no spaces around
/// them (which the published JSON Schema refuses too), parsed into its type here, once.
fn exact_id<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = crate::model::types::IdError>,
{
    let Some(s) = Option::<String>::deserialize(d)? else { return Ok(None) };
    if s.trim() != s {
        return Err(serde::de::Error::custom(format!("'{s}' is not an eight-digit code (no spaces around it)")));
    }
    s.parse().map(Some).map_err(|_| serde::de::Error::custom(format!("'{s}' is not an eight-digit code")))
}

impl Party {
    /// The party's identifiers (AGB and/or URA).
    pub fn ids(&self) -> impl Iterator<Item = PartyId> + '_ {
        let agb = self.agb.iter().cloned().map(PartyId::Agb);
        agb.chain(self.ura.iter().cloned().map(PartyId::Ura))
    }

    /// Whether any of `ids` names this party.
    pub fn is_any_of(&self, ids: &[PartyId]) -> bool {
        ids.iter().any(|id| match id {
            PartyId::Agb(v) => self.agb.as_ref() == Some(v),
            PartyId::Ura(v) => self.ura.as_ref() == Some(v),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartyKind {
    GpPractice,
    HospitalDepartment,
    GzspProvider,
}

/// The legal basis of the transfer (AVG/GDPR art. 9 with the WGBO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegalBasis {
    /// The patient gave explicit consent; a Consent record for this agreement must be in force.
    ExplicitConsent,
    /// A treatment relationship (WGBO): the GZSP provider treats the patient on referral.
    TreatmentRelationship,
}

/// A person to call about the agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    /// Which side the contact speaks for.
    pub party: ContactSide,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactSide {
    Sender,
    Receiver,
}

/// A retention period: a whole number of years, months or days (`P20Y`, `P6M`, `P90D`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    Years(u32),
    Months(u32),
    Days(u32),
}

impl Retention {
    pub fn parse(s: &str) -> Result<Retention, String> {
        let bad = || format!("'{s}' is not a retention period; write P<n>Y, P<n>M or P<n>D, e.g. P20Y");
        let body = s.strip_prefix('P').ok_or_else(bad)?;
        let (n, unit) = body.split_at(body.len().saturating_sub(1));
        let n: u32 = n.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        match unit {
            "Y" => Ok(Retention::Years(n)),
            "M" => Ok(Retention::Months(n)),
            "D" => Ok(Retention::Days(n)),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retention::Years(n) => write!(f, "P{n}Y"),
            Retention::Months(n) => write!(f, "P{n}M"),
            Retention::Days(n) => write!(f, "P{n}D"),
        }
    }
}

impl Serialize for Retention {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Retention {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Retention::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Why an agreement file could not be used. Every message names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum AgreementError {
    #[error("cannot read agreement {file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("agreement {file}: field `{field}`: {message}")]
    Invalid { file: String, field: String, message: String },
    #[error(
        "agreement {id} version {version} is defined twice ({first} and {second}); give the newer text a new version"
    )]
    Duplicate { id: String, version: String, first: String, second: String },
}

impl Agreement {
    /// Reads and checks one agreement; `file` names it in error messages.
    pub fn from_json(text: &str, file: &str) -> Result<Agreement, AgreementError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let agreement: Agreement = serde_path_to_error::deserialize(de).map_err(|e| AgreementError::Invalid {
            file: file.to_owned(),
            field: match e.path().to_string() {
                p if p == "." => "(document)".to_owned(),
                p => p,
            },
            message: e.inner().to_string(),
        })?;
        agreement.check(file)?;
        Ok(agreement)
    }

    /// Reads every `*.json` file in `dir` (not recursive), sorted by file name.
    pub fn load_dir(dir: &Path) -> Result<Vec<Agreement>, AgreementError> {
        let io = |source| AgreementError::Io { file: dir.display().to_string(), source };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let mut out: Vec<(String, Agreement)> = Vec::new();
        for path in files {
            let file = path.display().to_string();
            let text =
                std::fs::read_to_string(&path).map_err(|source| AgreementError::Io { file: file.clone(), source })?;
            let a = Agreement::from_json(&text, &file)?;
            if let Some((first, _)) = out.iter().find(|(_, b)| b.id == a.id && b.version == a.version) {
                return Err(AgreementError::Duplicate {
                    id: a.id,
                    version: a.version,
                    first: first.clone(),
                    second: file,
                });
            }
            out.push((file, a));
        }
        Ok(out.into_iter().map(|(_, a)| a).collect())
    }

    /// The checks a schema cannot express well; each error names its field.
    fn check(&self, file: &str) -> Result<(), AgreementError> {
        let err = |field: &str, message: String| {
            Err(AgreementError::Invalid { file: file.to_owned(), field: field.to_owned(), message })
        };
        if self.format != AGREEMENT_FORMAT {
            return err(
                "format",
                format!("this version of overdracht reads `{AGREEMENT_FORMAT}`, not `{}`", self.format),
            );
        }
        if self.id.trim().is_empty() || self.id.contains(char::is_whitespace) {
            return err("id", "must be a non-empty word without spaces".into());
        }
        if self.version.trim().is_empty() {
            return err("version", "must not be empty".into());
        }
        for (side, party) in [("sender", &self.sender), ("receiver", &self.receiver)] {
            if party.agb.is_none() && party.ura.is_none() {
                return err(side, "needs an `agb` or a `ura` (or both)".into());
            }
        }
        if self.receiver.ura.is_none() {
            return err("receiver.ura", "required: care teams and access tokens name the GZSP provider by URA".into());
        }
        if self.sender.kind == PartyKind::GzspProvider {
            return err("sender.kind", "the sender is a GP practice or a hospital department".into());
        }
        if self.receiver.kind != PartyKind::GzspProvider {
            return err("receiver.kind", "the receiver is a `gzsp-provider`".into());
        }
        if self.categories.is_empty() {
            return err("categories", "an agreement covers at least one data category".into());
        }
        if let Some(end) = self.valid.end {
            if end < self.valid.start {
                return err("valid.end", format!("ends ({end}) before it starts ({})", self.valid.start));
            }
        }
        if self.purpose.trim().is_empty() {
            return err("purpose", "state the purpose of the transfer".into());
        }
        Ok(())
    }

    /// `id@version`, the way audit entries and decisions name an agreement.
    pub fn label(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }

    /// Whether the agreement is in force on `day`, its legal basis included: an agreement
    /// on explicit consent is in force for a patient only with that patient's consent.
    pub fn in_force_for(&self, day: NaiveDate, patient: &Bsn, consents: &[PatientConsent]) -> bool {
        self.valid.contains(day)
            && match self.legal_basis {
                LegalBasis::TreatmentRelationship => true,
                LegalBasis::ExplicitConsent => self.has_consent(day, patient, consents),
            }
    }

    fn has_consent(&self, day: NaiveDate, patient: &Bsn, consents: &[PatientConsent]) -> bool {
        consents.iter().any(|c| c.patient == *patient && c.in_force(day) && self.counts_consent(c))
    }

    /// Whether `ura` is the sender's or the receiver's URA.
    pub fn is_party(&self, ura: &Ura) -> bool {
        self.sender.ura.as_ref() == Some(ura) || self.receiver.ura.as_ref() == Some(ura)
    }

    /// Whether `c` is an explicit consent for this agreement recorded by a party to it (the
    /// recording organisation, the first custodian; naming a party later in
    /// `Consent.organization` is not enough): a consent recorded by an organisation outside
    /// the agreement is not the legal basis of a transfer between others (review R2; writing
    /// one is refused with `consent.write.not-agreement-party`).
    pub fn counts_consent(&self, c: &PatientConsent) -> bool {
        matches!(&c.kind, ConsentKind::AgreementConsent { agreement_id } if *agreement_id == self.id)
            && c.custodians.first().is_some_and(|u| self.is_party(u))
    }
}

/// What a handover asks for.
#[derive(Debug, Clone, Copy)]
pub struct TransferRequest<'a> {
    /// The sender's identifiers (AGB and/or URA); any one matching an agreement's sender counts.
    pub senders: &'a [PartyId],
    /// The receiving GZSP provider's identifiers.
    pub receiver: &'a [PartyId],
    pub patient: &'a Bsn,
    /// The day of the handover.
    pub day: NaiveDate,
    /// The categories present in the handover.
    pub categories: &'a BTreeSet<DataCategory>,
    /// The patient's consents and objections.
    pub consents: &'a [PatientConsent],
}

/// The answer to a handover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferDecision {
    /// Nothing may be passed on.
    Refused {
        /// Id of the rule that refused (`transfer.no-agreement`, ...).
        rule: &'static str,
        reason: String,
    },
    /// The handover may go ahead with `kept`; `removed` says per category why it was removed.
    Permitted {
        /// The agreements in force that cover it (`id@version`).
        agreements: Vec<String>,
        kept: BTreeSet<DataCategory>,
        removed: BTreeMap<DataCategory, String>,
    },
}

impl TransferDecision {
    pub fn is_permitted(&self) -> bool {
        matches!(self, TransferDecision::Permitted { .. })
    }

    /// As OperationOutcome issues: a refusal is one `forbidden` error; every removed
    /// category is a `suppressed` information issue (the minimisation, shown).
    pub fn to_outcome(&self) -> Outcome {
        let mut out = Outcome::new();
        match self {
            TransferDecision::Refused { rule, reason } => {
                out.push(Issue::error(IssueCode::Forbidden, format!("{reason} [{rule}]")));
            }
            TransferDecision::Permitted { removed, .. } => {
                for (category, why) in removed {
                    out.push(Issue::information(
                        IssueCode::Suppressed,
                        format!("data category '{category}' was not passed on: {why}"),
                    ));
                }
            }
        }
        out
    }
}

/// Decides a handover: refused without an agreement in force between sender and receiver,
/// otherwise permitted with the categories the agreements in force cover, less those the
/// patient objected to sharing.
pub fn decide_transfer(agreements: &[Agreement], req: &TransferRequest<'_>) -> TransferDecision {
    let between: Vec<&Agreement> =
        agreements.iter().filter(|a| a.sender.is_any_of(req.senders) && a.receiver.is_any_of(req.receiver)).collect();
    // In words ("URA 12345678"), as the refusal entries have always read.
    let label = |id: &PartyId| match id {
        PartyId::Agb(v) => format!("AGB {v}"),
        PartyId::Ura(v) => format!("URA {v}"),
    };
    let names = |ids: &[PartyId]| ids.iter().map(label).collect::<Vec<_>>().join(", ");
    if between.is_empty() {
        return TransferDecision::Refused {
            rule: super::rules::TRANSFER_NO_AGREEMENT,
            reason: format!(
                "no data-transfer agreement between sender ({}) and receiver ({})",
                names(req.senders),
                names(req.receiver)
            ),
        };
    }
    let in_force: Vec<&Agreement> =
        between.iter().copied().filter(|a| a.in_force_for(req.day, req.patient, req.consents)).collect();
    if in_force.is_empty() {
        let why: Vec<String> = between
            .iter()
            .map(|a| {
                if !a.valid.contains(req.day) {
                    let period = match a.valid.end {
                        Some(e) => format!("{} to {e}", a.valid.start),
                        None => format!("from {}", a.valid.start),
                    };
                    format!("{} is valid {period}", a.label())
                } else if outsider_consent(a, req) {
                    format!(
                        "{} requires the patient's explicit consent; the only one recorded was recorded by an organisation that is not a party to the agreement",
                        a.label()
                    )
                } else {
                    format!("{} requires the patient's explicit consent, and none is recorded", a.label())
                }
            })
            .collect();
        let rule = if between.iter().all(|a| !a.valid.contains(req.day)) {
            super::rules::TRANSFER_NOT_IN_FORCE
        } else if between.iter().any(|a| a.valid.contains(req.day) && outsider_consent(a, req)) {
            super::rules::TRANSFER_CONSENT_NOT_AGREEMENT_PARTY
        } else {
            super::rules::TRANSFER_NO_CONSENT
        };
        return TransferDecision::Refused {
            rule,
            reason: format!("no agreement in force on {}: {}", req.day, why.join("; ")),
        };
    }
    let covered: BTreeSet<DataCategory> = in_force.iter().flat_map(|a| a.categories.iter().copied()).collect();
    let objected = objected_categories(req);
    if objected.len() == DataCategory::ALL.len() {
        return TransferDecision::Refused {
            rule: super::rules::TRANSFER_PATIENT_OBJECTION,
            reason: "the patient objects to sharing any data".into(),
        };
    }
    let labels: Vec<String> = in_force.iter().map(|a| a.label()).collect();
    let mut kept = BTreeSet::new();
    let mut removed = BTreeMap::new();
    for &c in req.categories {
        if !covered.contains(&c) {
            removed.insert(c, format!("not covered by agreement {}", labels.join(" or ")));
        } else if let Some(consent) = objected.get(&c) {
            removed.insert(c, format!("the patient objects to sharing it (Consent/{consent})"));
        } else {
            kept.insert(c);
        }
    }
    if kept.is_empty() && !req.categories.is_empty() {
        return TransferDecision::Refused {
            rule: super::rules::TRANSFER_NOTHING_COVERED,
            reason: format!(
                "none of the categories in the handover may be passed on: {}",
                removed.iter().map(|(c, why)| format!("{c} ({why})")).collect::<Vec<_>>().join(", ")
            ),
        };
    }
    TransferDecision::Permitted { agreements: labels, kept, removed }
}

/// A consent for `a` is in force for the patient, but none recorded by a party to `a`.
fn outsider_consent(a: &Agreement, req: &TransferRequest<'_>) -> bool {
    req.consents.iter().any(|c| {
        c.patient == *req.patient
            && c.in_force(req.day)
            && matches!(&c.kind, ConsentKind::AgreementConsent { agreement_id } if *agreement_id == a.id)
    }) && !a.has_consent(req.day, req.patient, req.consents)
}

/// Whether an objection binds this handover: recorded by its sender or receiver (the first
/// custodian). An organisation outside the handover does not decide what passes between
/// others (review R2). An objection that names no organisation (stored before consents
/// named their custodians) still binds: in doubt, the patient's objection holds.
fn binds_transfer(c: &PatientConsent, req: &TransferRequest<'_>) -> bool {
    c.custodians.first().is_none_or(|u| {
        req.senders.iter().chain(req.receiver).any(|id| matches!(id, PartyId::Ura(v) if v.as_str() == u))
    })
}

/// Categories the patient objects to sharing with anyone (objections without members), with
/// the id of the Consent that says so; only objections recorded by the sender or receiver.
fn objected_categories<'a>(req: &TransferRequest<'a>) -> BTreeMap<DataCategory, &'a str> {
    let mut out = BTreeMap::new();
    for c in req.consents {
        if c.patient != *req.patient || !c.in_force(req.day) || !binds_transfer(c, req) {
            continue;
        }
        if let ConsentKind::Objection { categories, members } = &c.kind {
            if !members.is_empty() {
                continue;
            }
            let cats: Vec<DataCategory> = match categories {
                Some(set) => set.iter().copied().collect(),
                None => DataCategory::ALL.to_vec(),
            };
            for cat in cats {
                out.entry(cat).or_insert(c.id.as_str());
            }
        }
    }
    out
}
