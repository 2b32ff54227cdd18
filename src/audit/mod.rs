//! The audit trail: one append-only, hash-chained entry per action on patient data
//! (NEN 7513), shown as IHE BALP `AuditEvent`s.
//!
//! Every stage that acts on patient data builds an [`AuditEntry`] and appends it with
//! [`record`] inside the same [`Tx`] as the action itself: if the action commits, its entry
//! does; if the entry cannot be written, the action fails with it. Read-only actions (a
//! facade read, a search, an audit query) have no transaction of their own and use
//! [`record_alone`], which appends the entry in one statement of its own before the answer
//! is sent; a read whose entry cannot be written must not be answered.
//!
//! Tamper evidence: each entry's hash covers its canonical content, its sequence number and
//! the previous entry's hash ([`chain`]). A single-row chain head, moved by the database with
//! every accepted entry, keeps the chain linear: an entry that does not extend the current
//! head is refused (`migrations/*/0009_audit_guards.sql`), and so are updates and deletes. [`chain::verify`] walks the
//! chain and names the first entry that was changed, removed, inserted or reordered;
//! [`chain::head`] gives the head hash for external anchoring. No function here updates or
//! deletes an entry.
//!
//! There is no in-memory queue (HAPI's BALP sink loses its queue at shutdown): an entry is
//! in the database when the action's transaction commits, or the action did not happen.

pub mod agreements;
pub mod chain;
pub mod event;
pub mod export;
pub mod query;
pub mod review;
pub mod view_facts;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::store::{Store, StoreError, Tx};

pub use chain::{head, verify, ChainHead, Tamper, VerifyReport};
pub use query::{search, AuditSearch, StoredEntry};

/// How the stated break-the-glass reason is shown after the decision's reason:
/// `…; break-the-glass reason: <text>` ([`AuditEntry::shown_reason`]; version 1 content
/// stored it so in `reason`).
pub const BREAK_GLASS_REASON: &str = "break-the-glass reason:";

/// The object prefixes of the holder, the handover and a reviewed entry.
const HOLDER_OBJECT: &str = "Organization/ura-";
const HANDOVER_OBJECT: &str = "Handover/";
const REVIEWED_OBJECT: &str = "AuditEvent/";

/// The content version written now. Version 2 added the typed fields of [`AuditEntry`]
/// from `holder_ura` on; version 1 entries keep verifying and are read with
/// [`Content::from_stored`].
pub const CONTENT_VERSION: u32 = 2;

/// What was done. The `code()` is stored and is the `subtype` code in our CodeSystem
/// `https://w3id.org/overdracht/fhir/CodeSystem/audit-action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A handover was received and stored (`POST /handovers`).
    HandoverReceived,
    /// A handover was refused (invalid, no agreement, not allowed); nothing stored.
    HandoverRefused,
    /// A record was converted without storing it (`$convert`).
    Conversion,
    /// One resource or a handover was read.
    Read,
    /// A search (one entry per search, not per hit).
    Search,
    /// An access was refused by policy (when the attempted action has no action of its own).
    Denied,
    /// Emergency access (break-the-glass) with a stated reason; always flagged for review.
    BreakGlass,
    /// A data-transfer agreement was created, changed or ended.
    AgreementChange,
    /// A care team (members, roles, treatment state) was created or changed.
    CareTeamChange,
    /// A patient's consent or objection was recorded or changed.
    ConsentChange,
    /// A handover was delivered to a receiving FHIR server.
    Delivery,
    /// A delivery was given up (the outbox dropped it).
    OutboxDrop,
    /// Data left overdracht in bulk (e.g. `audit export`, `$everything`).
    Export,
    /// Someone looked at the audit trail or a patient's access log.
    AuditQuery,
    /// A privacy officer reviewed a flagged entry (break-the-glass); `objects` names the
    /// reviewed entry as `AuditEvent/<id>`, `reason` holds the conclusion. Entries are never
    /// changed, so a review is an entry of its own.
    Review,
    /// An evidence report was produced (`overdracht report`, `GET /report`).
    Report,
    /// A resource was validated (`$validate`); who, when and the resource type, nothing of
    /// its content.
    Validation,
}

impl AuditAction {
    pub const ALL: [AuditAction; 17] = [
        AuditAction::HandoverReceived,
        AuditAction::HandoverRefused,
        AuditAction::Conversion,
        AuditAction::Read,
        AuditAction::Search,
        AuditAction::Denied,
        AuditAction::BreakGlass,
        AuditAction::AgreementChange,
        AuditAction::CareTeamChange,
        AuditAction::ConsentChange,
        AuditAction::Delivery,
        AuditAction::OutboxDrop,
        AuditAction::Export,
        AuditAction::AuditQuery,
        AuditAction::Review,
        AuditAction::Report,
        AuditAction::Validation,
    ];

    /// The stored code (kebab-case), e.g. `handover-received`.
    pub fn code(self) -> &'static str {
        match self {
            AuditAction::HandoverReceived => "handover-received",
            AuditAction::HandoverRefused => "handover-refused",
            AuditAction::Conversion => "conversion",
            AuditAction::Read => "read",
            AuditAction::Search => "search",
            AuditAction::Denied => "denied",
            AuditAction::BreakGlass => "break-glass",
            AuditAction::AgreementChange => "agreement-change",
            AuditAction::CareTeamChange => "care-team-change",
            AuditAction::ConsentChange => "consent-change",
            AuditAction::Delivery => "delivery",
            AuditAction::OutboxDrop => "outbox-drop",
            AuditAction::Export => "export",
            AuditAction::AuditQuery => "audit-query",
            AuditAction::Review => "review",
            AuditAction::Report => "report",
            AuditAction::Validation => "validation",
        }
    }

    pub fn from_code(code: &str) -> Option<AuditAction> {
        Self::ALL.into_iter().find(|a| a.code() == code)
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditOutcome {
    Success,
    /// Refused by the access policy or an agreement (AuditEvent outcome 4, minor failure).
    Denied,
    /// Refused because the request was malformed or broke a rule (outcome 4, minor failure).
    Invalid,
    /// Failed on our side (AuditEvent outcome 8, serious failure).
    Failure,
}

impl AuditOutcome {
    pub fn code(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Invalid => "invalid",
            AuditOutcome::Failure => "failure",
        }
    }
}

/// The access point of an action on the command line: the command and the OS user.
pub fn command_line_client(command: &str) -> String {
    format!(
        "overdracht {command} (command line, user {})",
        std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned())
    )
}

/// A person or system acting: UZI number, UZI role code, organisation URA (all from the
/// token). For a machine client (a HIS) the UZI is its server certificate's number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Actor {
    pub uzi: String,
    pub uzi_role: String,
    pub ura: String,
}

/// One audit entry, as the acting stage describes it. The time and id are added by
/// [`record`]. Only `action` and `outcome` are required; fill in everything you know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    /// Who acted (NEN 7513 "gebruiker").
    pub user: Option<Actor>,
    /// The responsible user the actor acted for (e.g. the SO a PA works under).
    pub on_behalf_of: Option<Actor>,
    /// Access point: client application and/or address (User-Agent, forwarded address).
    pub client: Option<String>,
    /// The patient's BSN.
    pub patient_bsn: Option<String>,
    /// The objects touched, as FHIR-style references `Type/id` (e.g. `Handover/…`,
    /// `Condition/…`, `CareTeam/…`).
    pub objects: Vec<String>,
    /// The authorisation rule that decided (policy rule id), if any.
    pub rule: Option<String>,
    /// The reason of the decision or of the action (no clinical content).
    pub reason: Option<String>,
    /// Data categories involved: permitted/seen categories for a read; for a handover the
    /// categories stored (and, in `reason`, those removed).
    pub categories: Vec<String>,
    /// The consent profile that applied (e.g. a Consent reference or "no-objection").
    pub consent: Option<String>,
    /// Emergency access (break-the-glass) was used.
    pub emergency: bool,
    /// To be reviewed by the privacy officer (always true for emergency access).
    pub flag_for_review: bool,
    /// Purpose of use (HL7 v3 PurposeOfUse: TREAT, COC, ETREAT, ...).
    pub purpose: Option<String>,
    /// The request id (`x-request-id`) that ties the entry to the application log.
    pub request_id: Option<String>,
    /// The care-team roles under which the user was permitted (`lead-practitioner`,
    /// `co-practitioner`, ...; keys of `policy::MemberRole`). Absent from entries written
    /// before it existed, and from entries without a team decision (not serialised when
    /// empty, so their hashed content is unchanged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub team_roles: Vec<String>,
    /// The organisation (URA) whose copy of patient data the action was on: the holder of
    /// the data read, or the intended receiver of a refused handover. Set with
    /// [`AuditEntry::name_holder`]. The fields from here on are absent from content version
    /// 1, which carried them as string conventions ([`Content::from_stored`] reads those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_ura: Option<String>,
    /// The handover the action was on (received, received again, delivered, dropped, read).
    /// Set with [`AuditEntry::name_handover`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover_id: Option<String>,
    /// A handover received again: the stored one was returned (idempotent replay).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
    /// The reason the user stated for emergency access (break-the-glass), whatever the
    /// decision. Not part of `reason`, which holds the decision's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass_reason: Option<String>,
    /// The entry a review concludes on (its id). Set with [`AuditEntry::name_reviewed`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_entry: Option<String>,
}

impl AuditEntry {
    /// An entry with only action and outcome; set the other fields directly.
    pub fn new(action: AuditAction, outcome: AuditOutcome) -> AuditEntry {
        AuditEntry {
            action,
            outcome,
            user: None,
            on_behalf_of: None,
            client: None,
            patient_bsn: None,
            objects: Vec::new(),
            rule: None,
            reason: None,
            categories: Vec::new(),
            consent: None,
            emergency: false,
            flag_for_review: false,
            purpose: None,
            request_id: None,
            team_roles: Vec::new(),
            holder_ura: None,
            handover_id: None,
            replay: false,
            break_glass_reason: None,
            reviewed_entry: None,
        }
    }

    /// Names the holder of the data (see [`AuditEntry::holder_ura`]), also as an object
    /// (`Organization/ura-<URA>`, the BALP entity).
    pub fn name_holder(&mut self, ura: &str) {
        self.holder_ura = Some(ura.to_owned());
        let object = format!("{HOLDER_OBJECT}{ura}");
        if !self.objects.contains(&object) {
            self.objects.push(object);
        }
    }

    /// Names the handover (see [`AuditEntry::handover_id`]), also as the first object
    /// (`Handover/<id>`).
    pub fn name_handover(&mut self, id: &str) {
        self.handover_id = Some(id.to_owned());
        let object = format!("{HANDOVER_OBJECT}{id}");
        self.objects.retain(|o| !o.starts_with(HANDOVER_OBJECT));
        self.objects.insert(0, object);
    }

    /// Names the reviewed entry (see [`AuditEntry::reviewed_entry`]), also as an object
    /// (`AuditEvent/<id>`).
    pub fn name_reviewed(&mut self, id: &str) {
        self.reviewed_entry = Some(id.to_owned());
        let object = format!("{REVIEWED_OBJECT}{id}");
        if !self.objects.contains(&object) {
            self.objects.push(object);
        }
    }

    /// The reason as shown to people (the AuditEvent, the access log): the decision's reason
    /// and the stated break-the-glass reason. Version 1 content has both in `reason` already.
    pub fn shown_reason(&self) -> Option<String> {
        match (&self.reason, &self.break_glass_reason) {
            (Some(r), Some(_)) if r.contains(BREAK_GLASS_REASON) => Some(r.clone()),
            (Some(r), Some(b)) => Some(format!("{r}; {BREAK_GLASS_REASON} {b}")),
            (None, Some(b)) => Some(format!("{BREAK_GLASS_REASON} {b}")),
            (r, None) => r.clone(),
        }
    }

    /// Version 1 content carried the typed fields as conventions: the holder and the
    /// reviewed entry as objects, the handover as the first `Handover/` object, a replay and
    /// the stated break-the-glass reason in `reason`. Reads them into the fields.
    fn read_v1_conventions(&mut self) {
        let object = |prefix: &str| self.objects.iter().find_map(|o| o.strip_prefix(prefix)).map(str::to_owned);
        self.holder_ura = object(HOLDER_OBJECT);
        self.handover_id = object(HANDOVER_OBJECT);
        self.reviewed_entry = if self.action == AuditAction::Review { object(REVIEWED_OBJECT) } else { None };
        self.replay = self.action == AuditAction::HandoverReceived
            && self.reason.as_deref().is_some_and(|r| r.starts_with("received again"));
        self.break_glass_reason = self
            .reason
            .as_deref()
            .and_then(|r| r.split_once(BREAK_GLASS_REASON))
            .map(|(_, stated)| stated.trim().to_owned());
    }

    /// The resource types of `objects` (`Condition/1` → `Condition`), deduplicated.
    pub fn entity_types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = Vec::new();
        for o in &self.objects {
            let t = o.split(['/', '?']).next().unwrap_or(o);
            if !t.is_empty() && !types.contains(&t) {
                types.push(t);
            }
        }
        types
    }
}

/// Where an entry sits in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditId {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// The entry's id (UUID v4-like, random), the AuditEvent id.
    pub id: String,
    /// The entry's hash (hex SHA-256).
    pub hash: String,
}

/// Why an entry could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit trail database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("audit entry cannot be serialised: {0}")]
    Serialise(#[from] serde_json::Error),
    #[error("audit trail is inconsistent: {0}")]
    Corrupt(String),
}

/// What is hashed and stored in `content`: the entry plus the id and time given to it.
/// Field order is the canonical order (serde serialises struct fields in declaration
/// order); the stored bytes are hashed as they are, so verifying never re-serialises.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Content {
    /// Format version of the content.
    pub v: u32,
    /// The position in the chain (also hashed outside the content): tells `verify` where a
    /// moved row came from.
    pub seq: i64,
    pub id: String,
    /// RFC 3339 UTC with milliseconds.
    pub recorded: String,
    pub entry: AuditEntry,
}

impl Content {
    /// Parses stored content, reading version 1 conventions into the typed fields.
    pub fn from_stored(text: &str) -> Result<Content, serde_json::Error> {
        let mut c: Content = serde_json::from_str(text)?;
        if c.v < 2 {
            c.entry.read_v1_conventions();
        }
        Ok(c)
    }
}

/// The search columns of an entry besides the first ones (`action`, `outcome`, the patient,
/// the user): copies of its fields that the report and the audit views query directly.
/// `verify` checks that the stored columns agree with the hashed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchColumns {
    pub rule: Option<String>,
    pub user_role: Option<String>,
    /// The care-team role keys, space-separated and space-framed (`" lead-practitioner "`);
    /// `None` when the entry records none.
    pub team_roles: Option<String>,
    pub holder_ura: Option<String>,
    pub handover_id: Option<String>,
    pub replay: i64,
    pub reviewed_id: Option<String>,
    pub flagged: i64,
}

impl SearchColumns {
    pub fn of(e: &AuditEntry) -> SearchColumns {
        SearchColumns {
            rule: e.rule.clone(),
            user_role: e.user.as_ref().map(|u| u.uzi_role.clone()),
            team_roles: (!e.team_roles.is_empty()).then(|| format!(" {} ", e.team_roles.join(" "))),
            holder_ura: e.holder_ura.clone(),
            handover_id: e.handover_id.clone(),
            replay: i64::from(e.replay),
            reviewed_id: e.reviewed_entry.clone(),
            flagged: i64::from(e.flag_for_review),
        }
    }

    /// The first column in which `self` (as stored) differs from `hashed` (from the content).
    pub fn differs_from(&self, hashed: &SearchColumns) -> Option<&'static str> {
        let texts = [
            ("rule", &self.rule, &hashed.rule),
            ("user_role", &self.user_role, &hashed.user_role),
            ("team_roles", &self.team_roles, &hashed.team_roles),
            ("holder_ura", &self.holder_ura, &hashed.holder_ura),
            ("handover_id", &self.handover_id, &hashed.handover_id),
            ("reviewed_id", &self.reviewed_id, &hashed.reviewed_id),
        ];
        if let Some((name, _, _)) = texts.iter().find(|(_, a, b)| a != b) {
            return Some(name);
        }
        if self.replay != hashed.replay {
            return Some("replay");
        }
        (self.flagged != hashed.flagged).then_some("flagged")
    }
}

/// Appends `entry` in the action's transaction. Call it after the action's own writes
/// (the first write of a transaction takes SQLite's write lock) and before `commit`.
pub async fn record(tx: &mut Tx, entry: &AuditEntry) -> Result<AuditId, AuditError> {
    let head = chain_head(tx).await?;
    let (id, moved_to) = extend(tx.conn(), &head, entry).await?;
    *tx.audit_head() = Some(moved_to);
    Ok(id)
}

/// The chain head that an entry of `tx` extends: the one its last entry left, or else the
/// head read under its lock, which `tx` holds from then on.
pub async fn chain_head(tx: &mut Tx) -> Result<(i64, String), AuditError> {
    if let Some(head) = tx.audit_head() {
        return Ok(head.clone());
    }
    // A write first (a no-op on the head row): it takes the write lock (SQLite) or the head
    // row's lock (PostgreSQL) until the transaction ends, so the head read here is the one
    // the entry extends, even if the action itself wrote nothing before.
    let r = sqlx::query("UPDATE audit_chain_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| AuditError::Corrupt("the chain head row is missing".to_owned()))?;
    let head: (i64, String) = (r.try_get("seq")?, r.try_get("hash")?);
    *tx.audit_head() = Some(head.clone());
    Ok(head)
}

/// An entry built on a chain head, ready to be written: by [`record`], or as the row that
/// another write of the same transaction takes along (a new handover's, see
/// [`crate::store::Tx::store_handover`]). Once it is written, the head of its transaction
/// is [`Prepared::moved_to`] (set it with [`Tx::audit_head`]).
pub struct Prepared {
    pub id: AuditId,
    prev_hash: String,
    recorded: String,
    text: String,
    action: &'static str,
    outcome: &'static str,
    patient_bsn: Option<String>,
    user_uzi: Option<String>,
    user_ura: Option<String>,
    entity_types: String,
    search: SearchColumns,
}

impl Prepared {
    /// Builds `entry` as the successor of `head`: its content, hash and columns.
    pub fn on(head: &(i64, String), entry: &AuditEntry) -> Result<Prepared, AuditError> {
        let (prev_seq, prev_hash) = head;
        let seq = prev_seq + 1;
        let content = Content { v: CONTENT_VERSION, seq, id: new_id(), recorded: now(), entry: entry.clone() };
        let text = serde_json::to_string(&content)?;
        let hash = chain::entry_hash(seq, prev_hash, &text);
        Ok(Prepared {
            id: AuditId { seq, id: content.id, hash },
            prev_hash: prev_hash.clone(),
            recorded: content.recorded,
            text,
            action: entry.action.code(),
            outcome: entry.outcome.code(),
            patient_bsn: entry.patient_bsn.clone(),
            user_uzi: entry.user.as_ref().map(|u| u.uzi.clone()),
            user_ura: entry.user.as_ref().map(|u| u.ura.clone()),
            entity_types: chain::entity_types_column(entry),
            search: SearchColumns::of(entry),
        })
    }

    /// The chain head once the entry is written.
    pub fn moved_to(&self) -> (i64, String) {
        (self.id.seq, self.id.hash.clone())
    }
}

impl crate::store::Insert for Prepared {
    fn table(&self) -> &'static str {
        "audit_entries"
    }

    fn columns(&self) -> &'static [&'static str] {
        &[
            "seq",
            "id",
            "recorded_at",
            "action",
            "outcome",
            "patient_bsn",
            "user_uzi",
            "user_ura",
            "entity_types",
            "content",
            "prev_hash",
            "hash",
            "rule",
            "user_role",
            "team_roles",
            "holder_ura",
            "handover_id",
            "replay",
            "reviewed_id",
            "flagged",
        ]
    }

    fn add_values(&self, args: &mut crate::store::Args) -> Result<(), StoreError> {
        use crate::store::add;
        let c = &self.search;
        add(args, self.id.seq)?;
        add(args, &self.id.id)?;
        add(args, &self.recorded)?;
        add(args, self.action)?;
        add(args, self.outcome)?;
        add(args, &self.patient_bsn)?;
        add(args, &self.user_uzi)?;
        add(args, &self.user_ura)?;
        add(args, &self.entity_types)?;
        add(args, &self.text)?;
        add(args, &self.prev_hash)?;
        add(args, &self.id.hash)?;
        add(args, &c.rule)?;
        add(args, &c.user_role)?;
        add(args, &c.team_roles)?;
        add(args, &c.holder_ura)?;
        add(args, &c.handover_id)?;
        add(args, c.replay)?;
        add(args, &c.reviewed_id)?;
        add(args, c.flagged)
    }

    /// Its position with its random id: no other entry has both.
    fn written(&self) -> &'static str {
        "EXISTS (SELECT 1 FROM audit_entries WHERE seq = ? AND id = ?)"
    }

    fn add_written_values(&self, args: &mut crate::store::Args) -> Result<(), StoreError> {
        crate::store::add(args, self.id.seq)?;
        crate::store::add(args, &self.id.id)
    }
}

/// Appends `entry` on its own (for read-only actions: a read, a search, an audit query).
/// Returns when the entry is committed; an action whose entry cannot be written must not
/// be answered.
///
/// One statement, committed on its own, on a connection kept for lone entries
/// ([`LoneWriter`]): the entry is built on the head this process last wrote, and the
/// database accepts it only if it extends the actual head (`migrations/*/0009_audit_guards.sql`),
/// which also moves the head. If another writer (a handover's transaction, another
/// process) moved the head meanwhile, the insert is refused and rebuilt on the new head.
/// Compared with a transaction from the pool (acquire, begin, lock the head, insert,
/// update the head, commit, release) this saves five round trips to the database thread.
pub async fn record_alone(store: &Store, entry: &AuditEntry) -> Result<AuditId, AuditError> {
    let writer = store.audit_writer();
    let mut w = writer.state.lock().await;
    if w.closed {
        return Err(AuditError::Database(sqlx::Error::PoolClosed));
    }
    for _ in 0..HEAD_RETRIES {
        let mut conn = match w.conn.take() {
            Some(c) => c,
            None => writer.connector.connect().await?,
        };
        let head = match w.head.take() {
            Some(h) => h,
            None => current_head(&mut conn).await?,
        };
        match extend(&mut conn, &head, entry).await {
            Ok((id, moved_to)) => {
                w.head = Some(moved_to);
                w.conn = Some(conn);
                return Ok(id);
            }
            Err(AuditError::Database(e)) if head_moved(&e) => w.conn = Some(conn),
            // Anything else: the connection is dropped and opened afresh next time.
            Err(e) => return Err(e),
        }
    }
    // Writers in other processes keep moving the head: queue for the lock instead.
    drop(w);
    let mut tx = store.begin().await?;
    let id = record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(id)
}

/// How often [`record_alone`] rebuilds its entry on a moved head before it takes the lock.
const HEAD_RETRIES: usize = 4;

/// The writer of lone entries: one connection of its own (no pool round trip) and the chain
/// head this process wrote last (`None` until the first entry, or after it was found to
/// have moved). Its lock serialises this process's lone entries, which would otherwise
/// refuse each other's; the database serialises them with everything else.
pub struct LoneWriter {
    connector: crate::store::Connector,
    state: tokio::sync::Mutex<LoneState>,
}

#[derive(Default)]
struct LoneState {
    conn: Option<crate::store::Conn>,
    head: Option<(i64, String)>,
    closed: bool,
}

impl LoneWriter {
    pub(crate) fn new(connector: crate::store::Connector) -> LoneWriter {
        LoneWriter { connector, state: Default::default() }
    }

    /// Closes the connection; later entries fail (as the pool's do after `Store::close`).
    pub(crate) async fn close(&self) {
        let mut w = self.state.lock().await;
        w.closed = true;
        if let Some(c) = w.conn.take() {
            let _ = sqlx::Connection::close(c).await;
        }
    }
}

impl std::fmt::Debug for LoneWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoneWriter")
    }
}

async fn current_head(conn: &mut crate::store::Conn) -> Result<(i64, String), AuditError> {
    let r = sqlx::query("SELECT seq, hash FROM audit_chain_head WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| AuditError::Corrupt("the chain head row is missing".to_owned()))?;
    Ok((r.try_get("seq")?, r.try_get("hash")?))
}

/// The guard trigger's refusal: the entry did not extend the head.
fn head_moved(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.message().contains("audit chain head moved"))
}

/// Inserts `entry` as the successor of `head`; the database checks that `head` is the
/// actual head and moves it. Returns the entry's place and the new head.
async fn extend(
    conn: &mut crate::store::Conn,
    head: &(i64, String),
    entry: &AuditEntry,
) -> Result<(AuditId, (i64, String)), AuditError> {
    let p = Prepared::on(head, entry)?;
    crate::store::insert(conn, &p).await.map_err(|e| match e {
        StoreError::Database(e) => AuditError::Database(e),
        other => AuditError::Store(other),
    })?;
    let moved_to = p.moved_to();
    Ok((p.id, moved_to))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A random id in UUID form (v4 layout) from the OS random source, without the `uuid`
/// crate's v4 feature.
fn new_id() -> String {
    let mut b = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// SHA-256 hex of bytes (shared by the chain).
pub(crate) fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod content_tests {
    use super::*;

    fn v1(entry: &AuditEntry) -> String {
        let c =
            Content { v: 1, seq: 7, id: "e".into(), recorded: "2026-01-01T00:00:00.000Z".into(), entry: entry.clone() };
        serde_json::to_string(&c).unwrap()
    }

    #[test]
    fn version_1_conventions_are_read_into_the_typed_fields() {
        let mut read = AuditEntry::new(AuditAction::BreakGlass, AuditOutcome::Success);
        read.objects = vec!["Patient/p".into(), "Organization/ura-11112222".into()];
        read.reason = Some("access.break-glass granted; break-the-glass reason: patient collapsed".into());
        let c = Content::from_stored(&v1(&read)).unwrap();
        assert_eq!(c.entry.holder_ura.as_deref(), Some("11112222"));
        assert_eq!(c.entry.break_glass_reason.as_deref(), Some("patient collapsed"));
        assert_eq!((&c.entry.handover_id, &c.entry.reviewed_entry, c.entry.replay), (&None, &None, false));
        // Shown as it was written.
        assert_eq!(c.entry.shown_reason(), read.reason);

        let mut again = AuditEntry::new(AuditAction::HandoverReceived, AuditOutcome::Success);
        again.objects = vec!["Handover/h1".into(), "Patient/p".into()];
        again.reason = Some("received again; the stored handover h1 is returned".into());
        let c = Content::from_stored(&v1(&again)).unwrap();
        assert_eq!((c.entry.handover_id.as_deref(), c.entry.replay), (Some("h1"), true));

        let mut review = AuditEntry::new(AuditAction::Review, AuditOutcome::Success);
        review.objects = vec!["AuditEvent/abc".into()];
        assert_eq!(Content::from_stored(&v1(&review)).unwrap().entry.reviewed_entry.as_deref(), Some("abc"));
        // Only a review names a reviewed entry; an empty stated reason is none.
        let mut read = AuditEntry::new(AuditAction::Read, AuditOutcome::Denied);
        read.objects = vec!["AuditEvent/abc".into()];
        read.reason = Some("break-the-glass reason:   ".into());
        let c = Content::from_stored(&v1(&read)).unwrap();
        assert_eq!(c.entry.reviewed_entry, None);
        assert_eq!(c.entry.break_glass_reason.as_deref(), Some(""));
    }

    #[test]
    fn version_2_keeps_the_typed_fields_and_shows_the_stated_reason() {
        let mut e = AuditEntry::new(AuditAction::BreakGlass, AuditOutcome::Success);
        e.name_holder("11112222");
        e.name_holder("11112222");
        e.name_handover("h1");
        e.name_handover("h2");
        e.reason = Some("access.break-glass granted".into());
        e.break_glass_reason = Some("patient collapsed".into());
        assert_eq!(e.objects, ["Handover/h2", "Organization/ura-11112222"]);
        assert_eq!(
            e.shown_reason().as_deref(),
            Some("access.break-glass granted; break-the-glass reason: patient collapsed")
        );
        let c = Content { v: CONTENT_VERSION, seq: 1, id: "e".into(), recorded: "t".into(), entry: e.clone() };
        let back = Content::from_stored(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back.entry, e);
        let cols = SearchColumns::of(&e);
        assert_eq!((cols.holder_ura.as_deref(), cols.handover_id.as_deref()), (Some("11112222"), Some("h2")));
        assert_eq!(cols.differs_from(&cols), None);
        let mut other = cols.clone();
        other.replay = 1;
        assert_eq!(other.differs_from(&cols), Some("replay"));
    }

    #[test]
    fn team_roles_are_a_framed_column() {
        let mut e = AuditEntry::new(AuditAction::Read, AuditOutcome::Success);
        assert_eq!(SearchColumns::of(&e).team_roles, None);
        e.team_roles = vec!["co-practitioner".into(), "lead-practitioner".into()];
        assert_eq!(SearchColumns::of(&e).team_roles.as_deref(), Some(" co-practitioner lead-practitioner "));
    }
}
