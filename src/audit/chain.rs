//! The hash chain: how an entry's hash is made, and how the chain is checked.
//!
//! `hash(n) = SHA-256("overdracht-audit-v1" 0x00 n 0x00 prev_hash 0x00 content)`, hex, where
//! `n` is the entry's position (decimal), `prev_hash` the hash of entry `n - 1` (64 zeros
//! for the first) and `content` the canonical JSON stored in the row, byte for byte.
//! Because the position is hashed, moving a row breaks its hash; because the previous hash
//! is hashed, removing or inserting a row breaks the link of the next one; because the
//! head row records the last position and hash, removing rows at the end shows too (and
//! an externally anchored head, [`head`], catches a rewrite of the head row itself).

use std::fmt;

use sqlx::Row;

use super::{sha256_hex, AuditEntry, AuditError, Content, SearchColumns};
use crate::store::Store;

/// The previous hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const DOMAIN: &[u8] = b"overdracht-audit-v1";

/// The hash of entry `seq` with `content` after `prev_hash`.
pub fn entry_hash(seq: i64, prev_hash: &str, content: &str) -> String {
    sha256_hex(&[DOMAIN, b"\0", seq.to_string().as_bytes(), b"\0", prev_hash.as_bytes(), b"\0", content.as_bytes()])
}

/// The `entity_types` column: `" Patient Condition "` (framed, so that a search for ` Type ` finds whole types).
pub(crate) fn entity_types_column(entry: &AuditEntry) -> String {
    let mut s = String::from(" ");
    for t in entry.entity_types() {
        s.push_str(t);
        s.push(' ');
    }
    s
}

/// The chain head: what to anchor outside (print it, mail it, put it in a ticket).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainHead {
    /// Number of entries (the last position).
    pub count: i64,
    /// Hash of the last entry (64 zeros when empty).
    pub hash: String,
    /// Time of the last entry.
    pub updated_at: Option<String>,
}

impl ChainHead {
    /// `SEQ:HASH time`, as `overdracht audit head` prints it for anchoring.
    pub fn line(&self) -> String {
        format!("{}:{} {}", self.count, self.hash, self.updated_at.as_deref().unwrap_or("never written"))
    }
}

/// The chain head as stored.
pub async fn head(store: &Store) -> Result<ChainHead, AuditError> {
    let mut conn = store.pool().acquire().await?;
    head_on(&mut conn).await
}

async fn head_on(conn: &mut crate::store::Conn) -> Result<ChainHead, AuditError> {
    let r = sqlx::query("SELECT seq, hash, updated_at FROM audit_chain_head WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| AuditError::Corrupt("the chain head row is missing".to_owned()))?;
    Ok(ChainHead { count: r.try_get("seq")?, hash: r.try_get("hash")?, updated_at: r.try_get("updated_at")? })
}

/// What kind of tampering the first broken place looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TamperKind {
    Changed,
    Removed,
    Inserted,
    Reordered,
}

impl fmt::Display for TamperKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TamperKind::Changed => "changed",
            TamperKind::Removed => "removed",
            TamperKind::Inserted => "inserted",
            TamperKind::Reordered => "reordered",
        })
    }
}

/// The first place where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tamper {
    /// The position where the chain breaks.
    pub seq: i64,
    /// The id of the row at that position, if there is one.
    pub id: Option<String>,
    pub kind: TamperKind,
    pub detail: String,
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "entry {} (id {id}): {}: {}", self.seq, self.kind, self.detail),
            None => write!(f, "entry {}: {}: {}", self.seq, self.kind, self.detail),
        }
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// Entries checked (up to the first problem).
    pub checked: i64,
    pub head: ChainHead,
    /// The first problem; `None` when the chain is intact.
    pub problem: Option<Tamper>,
}

impl VerifyReport {
    /// What `overdracht audit verify` prints: the head of an intact trail, or the first
    /// problem, what can still be trusted and what to do (two lines). The problem's text is
    /// made printable (it quotes stored values).
    pub fn summary(&self) -> String {
        match &self.problem {
            None => format!(
                "audit trail intact: {} entries, head {}:{} ({})",
                self.checked,
                self.head.count,
                self.head.hash,
                self.head.updated_at.as_deref().unwrap_or("never written")
            ),
            Some(p) => {
                let trusted = match self.checked {
                    0 => "no entry before it can be trusted".to_owned(),
                    1 => "entry 1 is intact".to_owned(),
                    n => format!("entries 1 to {n} are intact"),
                };
                format!(
                    "audit trail TAMPERED: {}\n{trusted}; restore the database from a backup and compare with the anchored head",
                    crate::diagnostics::printable(&p.to_string())
                )
            }
        }
    }
}

/// A hash anchored outside, to check that the chain still contains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
}

impl std::str::FromStr for Anchor {
    type Err = String;
    /// `SEQ:HASH`, as `overdracht audit head` prints it.
    fn from_str(s: &str) -> Result<Anchor, String> {
        let (seq, hash) = s.split_once(':').ok_or("an anchor is SEQ:HASH, e.g. 42:3f1c…")?;
        let seq = seq.trim().parse::<i64>().map_err(|_| format!("anchor position {seq:?} is not a number"))?;
        let hash = hash.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("an anchor hash is 64 hexadecimal characters".to_owned());
        }
        Ok(Anchor { seq, hash })
    }
}

struct ChainRow {
    seq: i64,
    id: String,
    recorded_at: String,
    action: String,
    outcome: String,
    patient_bsn: Option<String>,
    user_uzi: Option<String>,
    user_ura: Option<String>,
    entity_types: String,
    search: SearchColumns,
    content: String,
    prev_hash: String,
    hash: String,
}

const PAGE: i64 = 2000;

async fn page(conn: &mut crate::store::Conn, after: i64) -> Result<Vec<ChainRow>, AuditError> {
    let rows = sqlx::query(
        "SELECT seq, id, recorded_at, action, outcome, patient_bsn, user_uzi, user_ura, entity_types, content, \
         prev_hash, hash, rule, user_role, team_roles, holder_ura, handover_id, replay, reviewed_id, flagged \
         FROM audit_entries WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(PAGE)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(ChainRow {
                seq: r.try_get("seq")?,
                id: r.try_get("id")?,
                recorded_at: r.try_get("recorded_at")?,
                action: r.try_get("action")?,
                outcome: r.try_get("outcome")?,
                patient_bsn: r.try_get("patient_bsn")?,
                user_uzi: r.try_get("user_uzi")?,
                user_ura: r.try_get("user_ura")?,
                entity_types: r.try_get("entity_types")?,
                search: SearchColumns {
                    rule: r.try_get("rule")?,
                    user_role: r.try_get("user_role")?,
                    team_roles: r.try_get("team_roles")?,
                    holder_ura: r.try_get("holder_ura")?,
                    handover_id: r.try_get("handover_id")?,
                    replay: r.try_get("replay")?,
                    reviewed_id: r.try_get("reviewed_id")?,
                    flagged: r.try_get("flagged")?,
                },
                content: r.try_get("content")?,
                prev_hash: r.try_get("prev_hash")?,
                hash: r.try_get("hash")?,
            })
        })
        .collect()
}

/// Walks the whole chain from the first entry and reports the first place it breaks.
/// With `anchors`, also checks that the entry at each anchored position still has the
/// anchored hash (catches a rewritten tail together with a rewritten head row).
///
/// The head and every page are read in one read transaction: one snapshot of the
/// database, so entries that a running service appends meanwhile are neither seen nor
/// mistaken for rows inserted behind the head's back.
pub async fn verify(store: &Store, anchors: &[Anchor]) -> Result<VerifyReport, AuditError> {
    let mut tx = store.begin_snapshot().await?;
    let conn = tx.conn();
    let head = head_on(conn).await?;
    let mut expected_seq = 1i64;
    let mut prev = GENESIS.to_owned();
    let mut prev_prev = String::new();
    let mut after = 0i64;
    let report = |checked: i64, problem: Option<Tamper>| VerifyReport { checked, head: head.clone(), problem };
    loop {
        let rows = page(conn, after).await?;
        if rows.is_empty() {
            break;
        }
        for (i, r) in rows.iter().enumerate() {
            if let Some(problem) = check_row(r, rows.get(i + 1), expected_seq, &prev, &prev_prev, anchors) {
                return Ok(report(problem.seq.min(expected_seq) - 1, Some(problem)));
            }
            prev_prev = std::mem::replace(&mut prev, r.hash.clone());
            expected_seq += 1;
        }
        after = rows.last().map_or(after, |r| r.seq);
    }
    let last = expected_seq - 1;
    if head.count != last || head.hash != prev {
        let problem = if head.count > last {
            Tamper {
                seq: last + 1,
                id: None,
                kind: TamperKind::Removed,
                detail: format!(
                    "the chain head records {} entries but the last entry present is {last}: entries {} to {} were removed",
                    head.count,
                    last + 1,
                    head.count
                ),
            }
        } else {
            Tamper {
                seq: last,
                id: None,
                kind: if head.count < last { TamperKind::Inserted } else { TamperKind::Changed },
                detail: format!(
                    "the chain head (entry {}, hash {}) does not match the last entry ({last}, hash {prev})",
                    head.count, head.hash
                ),
            }
        };
        return Ok(report(last, Some(problem)));
    }
    for a in anchors {
        if a.seq > last {
            return Ok(report(
                last,
                Some(Tamper {
                    seq: a.seq,
                    id: None,
                    kind: TamperKind::Removed,
                    detail: format!("the anchored entry {} is no longer in the chain (it ends at {last})", a.seq),
                }),
            ));
        }
    }
    Ok(report(last, None))
}

/// The position a row's content says it was written at.
fn written_seq(r: &ChainRow) -> Option<i64> {
    serde_json::from_str::<Content>(&r.content).ok().map(|c| c.seq)
}

fn check_row(
    r: &ChainRow,
    next: Option<&ChainRow>,
    expected_seq: i64,
    prev: &str,
    prev_prev: &str,
    anchors: &[Anchor],
) -> Option<Tamper> {
    let tamper = |seq: i64, id: Option<&str>, kind: TamperKind, detail: String| {
        Some(Tamper { seq, id: id.map(str::to_owned), kind, detail })
    };
    let here = |kind: TamperKind, detail: String| tamper(r.seq, Some(&r.id), kind, detail);
    if r.seq != expected_seq {
        let missing = if r.seq == expected_seq + 1 {
            format!("entry {expected_seq} is missing")
        } else {
            format!("entries {expected_seq} to {} are missing", r.seq - 1)
        };
        return tamper(
            expected_seq,
            None,
            TamperKind::Removed,
            format!("{missing}; the chain jumps from {} to {}", expected_seq - 1, r.seq),
        );
    }
    let content = match Content::from_stored(&r.content) {
        Ok(c) => c,
        Err(e) => return here(TamperKind::Changed, format!("its content is not a readable entry: {e}")),
    };
    if content.seq != r.seq {
        let written = content.seq;
        let swapped = written == r.seq + 1 && next.and_then(written_seq) == Some(r.seq);
        return if swapped {
            here(
                TamperKind::Reordered,
                format!("this row holds entry {written} and the next row entry {}: the two were swapped", r.seq),
            )
        } else if written == r.seq + 1 {
            here(
                TamperKind::Removed,
                format!("this row holds entry {written}; entry {} was removed and the later entries renumbered", r.seq),
            )
        } else if written == r.seq - 1 {
            here(
                TamperKind::Inserted,
                format!(
                    "this row holds entry {written}, one position later than written: an entry was inserted here or just before, and the later entries renumbered"
                ),
            )
        } else {
            here(
                TamperKind::Reordered,
                format!("this entry was written as entry {written} and moved to position {}", r.seq),
            )
        };
    }
    if entry_hash(r.seq, &r.prev_hash, &r.content) != r.hash {
        return here(
            TamperKind::Changed,
            "its content or hash was altered (the hash does not match the content)".into(),
        );
    }
    if r.prev_hash != prev {
        let before = r.seq - 1;
        return if r.prev_hash == prev_prev {
            tamper(
                before,
                None,
                TamperKind::Inserted,
                format!(
                    "entry {before} does not belong: entry {} was written directly after entry {}",
                    r.seq,
                    before - 1
                ),
            )
        } else {
            tamper(
                before,
                None,
                TamperKind::Changed,
                format!("entry {before} was changed or replaced: its hash is not the one entry {} recorded", r.seq),
            )
        };
    }
    let e = &content.entry;
    let columns: [(&str, Option<&str>, Option<&str>); 8] = [
        ("id", Some(&r.id), Some(&content.id)),
        ("recorded_at", Some(&r.recorded_at), Some(&content.recorded)),
        ("action", Some(&r.action), Some(e.action.code())),
        ("outcome", Some(&r.outcome), Some(e.outcome.code())),
        ("patient_bsn", r.patient_bsn.as_deref(), e.patient_bsn.as_deref()),
        ("user_uzi", r.user_uzi.as_deref(), e.user.as_ref().map(|u| u.uzi.as_str())),
        ("user_ura", r.user_ura.as_deref(), e.user.as_ref().map(|u| u.ura.as_str())),
        ("entity_types", Some(&r.entity_types), Some(&entity_types_column(e))),
    ];
    for (name, column, hashed) in columns {
        if column != hashed {
            return here(TamperKind::Changed, format!("column {name} differs from the hashed content"));
        }
    }
    if let Some(name) = r.search.differs_from(&SearchColumns::of(e)) {
        return here(TamperKind::Changed, format!("column {name} differs from the hashed content"));
    }
    for a in anchors {
        if a.seq == r.seq && a.hash != r.hash {
            return here(TamperKind::Changed, format!("its hash differs from the anchored hash {}", a.hash));
        }
    }
    None
}
