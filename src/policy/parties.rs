//! The parties of a handover: who the sender is, and who reads a stored handover.
//!
//! **The sender is the organisation in the token** ([`decide_sender`]). A handover is
//! recorded under, and matched against agreements as, the URA in the bearer token — always.
//! An organisation that is also known by an AGB code (a GP practice's Vektis code, as
//! agreements and GP records often name it) may use that code as the sender, but only when
//! the configuration lists the code as an identity of that URA (`policy.agb_codes`); any
//! other `sender` is refused (`handover.sender.not-token-organisation`). Without a `sender`
//! parameter the record's author is used only when it is such a configured code, else
//! `ura|<token URA>`. Whichever identifier is chosen, an agreement may name the organisation
//! by its URA or by any of its configured AGB codes.
//!
//! **Reading a stored handover** ([`decide_handover_read`]): the sending organisation sees it
//! all; at the receiving organisation, the patient's team (members today, with the profession
//! their token states) sees it all; anyone else at the receiver sees its status but not the
//! referral question (`handover.referral-reason.hidden`); other organisations do not learn
//! that it exists.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use super::care_team::CareTeam;
use super::rules::*;
use super::{Decision, PartyId};
use crate::model::{Agb, Ura, Uzi, UziRoleCode};

/// The AGB codes configured as additional identities of organisations (URA → AGB codes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderIdentities(BTreeMap<Ura, BTreeSet<Agb>>);

/// A `policy.agb_codes` entry that is not an eight-digit URA with eight-digit AGB codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy.agb_codes: {0}")]
pub struct SenderIdentitiesError(String);

impl SenderIdentities {
    pub fn parse(map: &BTreeMap<String, Vec<String>>) -> Result<SenderIdentities, SenderIdentitiesError> {
        let mut out = BTreeMap::new();
        for (ura_text, agbs) in map {
            let ura = Ura::parse(ura_text)
                .map_err(|_| SenderIdentitiesError(format!("{ura_text:?} is not an eight-digit URA")))?;
            let mut set = BTreeSet::new();
            for a in agbs {
                let agb = Agb::parse(a).map_err(|_| {
                    SenderIdentitiesError(format!("{a:?} (for URA {ura_text}) is not an eight-digit AGB code"))
                })?;
                set.insert(agb);
            }
            out.insert(ura, set);
        }
        Ok(SenderIdentities(out))
    }

    /// The AGB codes configured for organisation `ura`.
    pub fn agb_codes(&self, ura: &Ura) -> impl Iterator<Item = &Agb> {
        self.0.get(ura).into_iter().flatten()
    }
}

/// The sender a handover is recorded under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// As stored and used in resource ids: `ura|<token URA>` or `agb-z|<configured AGB>`.
    pub id: String,
    /// Every identity of the sending organisation, for matching agreements: its URA and its
    /// configured AGB codes.
    pub identities: Vec<PartyId>,
}

/// Decides the sender of a handover from the token's URA, the `sender` parameter (`system`,
/// `value`: `ura` or `agb-z`) and, without one, the record's author (`agb-z|…`/`ura|…`).
pub fn decide_sender(
    token_ura: &Ura,
    claimed: Option<(&str, &str)>,
    record_author: Option<&str>,
    ids: &SenderIdentities,
) -> Result<(Sender, Decision), Decision> {
    let mut identities = vec![PartyId::Ura(token_ura.clone())];
    identities.extend(ids.agb_codes(token_ura).map(|a| PartyId::Agb(a.clone())));
    let configured = |agb: &str| ids.agb_codes(token_ura).any(|a| a.as_str() == agb);
    let own = || {
        let d = Decision::permit(
            SENDER_TOKEN_ORGANISATION,
            format!("sender ura|{token_ura}, the organisation in the token"),
        );
        (Sender { id: PartyId::Ura(token_ura.clone()).to_string(), identities: identities.clone() }, d)
    };
    let agb = |a: &str| {
        let d = Decision::permit(
            SENDER_CONFIGURED_AGB,
            format!("sender agb-z|{a}, configured as an AGB code of the organisation in the token (URA {token_ura})"),
        );
        (Sender { id: format!("agb-z|{a}"), identities: identities.clone() }, d)
    };
    match claimed {
        Some(("ura", v)) if token_ura == v => Ok(own()),
        Some(("agb-z", v)) if configured(v) => Ok(agb(v)),
        Some((system, v)) => Err(Decision::deny(
            SENDER_NOT_TOKEN_ORGANISATION,
            format!(
                "a handover is sent by the organisation in the token (URA {token_ura}); {system}|{v} is not it, nor one of its configured AGB codes (policy.agb_codes)"
            ),
        )),
        None => match record_author.and_then(|s| s.strip_prefix("agb-z|")) {
            Some(a) if configured(a) => Ok(agb(a)),
            _ => Ok(own()),
        },
    }
}

/// A stored handover as [`decide_handover_read`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct HandoverParties<'a> {
    /// URA of the organisation that submitted it (the token's URA at the time).
    pub submitted_by_ura: &'a str,
    /// The receiver, `ura|<URA>`.
    pub receiver: &'a str,
}

/// The actor (UZI number, UZI role of the token, URA of the token) is on `day` a member of
/// one of the patient's care teams at that organisation, with the profession the team
/// records, and the team has not ended.
pub fn in_patient_team(
    actor_uzi: &Uzi,
    actor_role: &UziRoleCode,
    actor_ura: &Ura,
    patient_teams: &[CareTeam],
    day: NaiveDate,
) -> bool {
    patient_teams.iter().filter(|t| t.organisation_ura == actor_ura).any(|t| {
        t.ended_on().is_none_or(|end| day <= end)
            && t.members.iter().any(|m| {
                m.uzi == actor_uzi
                    && m.organisation_ura == actor_ura
                    && m.uzi_role == actor_role
                    && m.period.contains(day)
            })
    })
}

/// Who reads a stored handover: `Ok` with the decision and whether the referral reason may
/// be shown; `Err` with the denial (answered as unknown).
pub fn decide_handover_read(
    actor_uzi: &Uzi,
    actor_role: &UziRoleCode,
    actor_ura: &Ura,
    h: HandoverParties<'_>,
    patient_teams: &[CareTeam],
    day: NaiveDate,
) -> Result<(Decision, bool), Decision> {
    if h.submitted_by_ura == actor_ura {
        return Ok((Decision::permit(HANDOVER_SENDER, "the caller's organisation sent it"), true));
    }
    if h.receiver.strip_prefix("ura|") != Some(actor_ura.as_str()) {
        return Err(Decision::deny(
            HANDOVER_NOT_A_PARTY,
            "the caller's organisation neither sent nor received this handover",
        ));
    }
    if in_patient_team(actor_uzi, actor_role, actor_ura, patient_teams, day) {
        Ok((Decision::permit(HANDOVER_TEAM, "member of the patient's care team at the receiving organisation"), true))
    } else {
        Ok((
            Decision::permit(
                HANDOVER_REFERRAL_REASON_HIDDEN,
                "the caller's organisation received it; the referral reason is for the patient's team and the sender",
            ),
            false,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sender_is_the_organisation_in_the_token() {
        let ids = SenderIdentities::parse(&[("87654321".to_owned(), vec!["01234567".to_owned()])].into())
            .expect("identities");
        let ura = |s: &str| Ura::parse(s).expect("ura");
        let (s, d) = decide_sender(&ura("87654321"), None, Some("agb-z|01234567"), &ids).expect("own author");
        assert_eq!((s.id.as_str(), d.rule), ("agb-z|01234567", SENDER_CONFIGURED_AGB));
        assert!(s.identities.contains(&PartyId::Ura(ura("87654321"))));
        let (s, _) = decide_sender(&ura("55556666"), None, Some("agb-z|01234567"), &ids).expect("default");
        assert_eq!(s.id, "ura|55556666", "another organisation's record author is not its identity");
        assert_eq!(s.identities, vec![PartyId::Ura(ura("55556666"))]);
        let d = decide_sender(&ura("55556666"), Some(("agb-z", "01234567")), None, &ids).expect_err("not its AGB");
        assert_eq!(d.rule, SENDER_NOT_TOKEN_ORGANISATION);
        assert!(decide_sender(&ura("55556666"), Some(("ura", "87654321")), None, &ids).is_err());
        assert!(decide_sender(&ura("87654321"), Some(("ura", "87654321")), None, &ids).is_ok());
        assert!(SenderIdentities::parse(&[("8765".to_owned(), vec![])].into()).is_err());
    }
}
