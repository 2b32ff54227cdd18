//! Building blocks of the model: codes, identifiers, names, addresses, times.
//!
//! These are format-neutral: a source parses into them and the FHIR stage reads
//! them. Types that carry a rule (a BSN, a partial date) parse instead of validate,
//! so that an invalid value cannot be represented.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Europe::Amsterdam;
use serde::{Deserialize, Serialize};

/// A code from a code system. `system` is always a URI (OIDs are turned into URIs by the
/// terminology stage before they reach the model).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Coding {
    pub system: Option<String>,
    pub code: Option<String>,
    pub display: Option<String>,
}

impl Coding {
    pub fn new(system: &str, code: &str, display: Option<&str>) -> Self {
        Coding { system: Some(system.to_owned()), code: Some(code.to_owned()), display: display.map(str::to_owned) }
    }
    pub fn is(&self, system: &str, code: &str) -> bool {
        self.system.as_deref() == Some(system) && self.code.as_deref() == Some(code)
    }
}

/// A concept: zero or more codings that mean the same, plus the original text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Concept {
    pub codings: Vec<Coding>,
    pub text: Option<String>,
}

impl Concept {
    pub fn coded(c: Coding) -> Self {
        Concept { codings: vec![c], text: None }
    }
    pub fn text(t: &str) -> Self {
        Concept { codings: vec![], text: Some(t.to_owned()) }
    }
    pub fn is_empty(&self) -> bool {
        self.codings.is_empty() && self.text.is_none()
    }
    /// The first coding in `system`.
    pub fn coding_in(&self, system: &str) -> Option<&Coding> {
        self.codings.iter().find(|c| c.system.as_deref() == Some(system))
    }
    pub fn has(&self, system: &str, code: &str) -> bool {
        self.codings.iter().any(|c| c.is(system, code))
    }
}

/// A business identifier (`system` a URI).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    pub system: Option<String>,
    pub value: String,
}

impl Identifier {
    pub fn new(system: &str, value: &str) -> Self {
        Identifier { system: Some(system.to_owned()), value: value.to_owned() }
    }
}

/// A Dutch citizen service number that passed the eleven test.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Bsn(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BsnError {
    #[error("a BSN has 9 digits (8 digits are allowed with a leading zero added); got {0} characters")]
    Length(usize),
    #[error("a BSN has only digits")]
    NotDigits,
    #[error("the BSN fails the eleven test (11-proef); check for a typing error")]
    ElevenTest,
}

impl Bsn {
    /// Parses a BSN: 9 digits (or 8, which get a leading zero) passing the eleven test.
    pub fn parse(s: &str) -> Result<Bsn, BsnError> {
        let s = s.trim();
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BsnError::NotDigits);
        }
        let digits = match s.len() {
            9 => s.to_owned(),
            8 => format!("0{s}"),
            n => return Err(BsnError::Length(n)),
        };
        let d: Vec<i32> = digits.bytes().map(|b| i32::from(b - b'0')).collect();
        let sum: i32 = (0..8).map(|i| d[i] * (9 - i as i32)).sum::<i32>() - d[8];
        if sum % 11 != 0 || sum == 0 {
            return Err(BsnError::ElevenTest);
        }
        Ok(Bsn(digits))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Bsn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Bsn::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Why an identifier of a person or organisation is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} {value:?} is not {form}")]
    Malformed { kind: &'static str, value: String, form: &'static str },
    #[error("{0:?} is not an organisation identifier; write ura|<8 digits> or agb-z|<8 digits>")]
    NotAParty(String),
}

/// Identifiers checked once, where they come in (token, request, file), and kept typed
/// inside. Each is a short string of a fixed form; `Deref<Target = str>` and `as_str` hand
/// it to the store and to formats as text.
macro_rules! identifier {
    ($(#[$m:meta])* $name:ident, $kind:literal, $form:literal, $check:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses (after trimming) or says what the form is.
            pub fn parse(s: &str) -> Result<$name, IdError> {
                let s = s.trim();
                let check: fn(&[u8]) -> bool = $check;
                if check(s.as_bytes()) {
                    Ok($name(s.to_owned()))
                } else {
                    Err(IdError::Malformed { kind: $kind, value: s.chars().take(40).collect(), form: $form })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&$name> for $name {
            fn eq(&self, other: &&$name) -> bool {
                self.0 == other.0
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<$name, IdError> {
                $name::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn digits(b: &[u8], len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&b.len()) && b.iter().all(u8::is_ascii_digit)
}

identifier!(
    /// An organisation's number in the UZI register (URA): eight digits.
    Ura, "URA", "an eight-digit URA number", |b| digits(b, 8..=8)
);
identifier!(
    /// An AGB code (Vektis): eight digits.
    Agb, "AGB code", "an eight-digit AGB code", |b| digits(b, 8..=8)
);
identifier!(
    /// A UZI number of a person or of a server certificate: digits (at most 20).
    Uzi, "UZI number", "a UZI number (digits)", |b| digits(b, 1..=20)
);
identifier!(
    /// A UZI role code (profession), `NN.NNN` (`01.047` SO); the register is not consulted.
    UziRoleCode, "UZI role code", "a UZI role code like 01.015 (NN.NNN)",
    |b| b.len() == 6 && b[2] == b'.' && b.iter().enumerate().all(|(i, c)| i == 2 || c.is_ascii_digit())
);

/// A care organisation as handovers, agreements and teams name it: by AGB (Vektis) or URA
/// (UZI register). Written `ura|<URA>` or `agb-z|<AGB>`, as the handovers store it, as
/// resource ids are derived from it and as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartyId {
    Agb(Agb),
    Ura(Ura),
}

impl PartyId {
    /// From a FHIR identifier (`system` the AGB or URA naming system); `None` for other
    /// systems or a value of the wrong form.
    pub fn from_identifier(system: &str, value: &str) -> Option<PartyId> {
        use crate::terminology::uri;
        match system {
            uri::AGB => Agb::parse(value).ok().map(PartyId::Agb),
            uri::URA => Ura::parse(value).ok().map(PartyId::Ura),
            _ => None,
        }
    }

    /// Parses `ura|<URA>` or `agb-z|<AGB>` (also `agb|…` and the naming systems' URIs).
    pub fn parse(s: &str) -> Result<PartyId, IdError> {
        use crate::terminology::uri;
        let Some((system, value)) = s.split_once('|') else {
            return Err(IdError::NotAParty(s.chars().take(60).collect()));
        };
        match system.trim() {
            "ura" | uri::URA => Ura::parse(value).map(PartyId::Ura),
            "agb-z" | "agb" | uri::AGB => Agb::parse(value).map(PartyId::Agb),
            _ => Err(IdError::NotAParty(s.chars().take(60).collect())),
        }
    }

    /// The FHIR naming system.
    pub fn system(&self) -> &'static str {
        use crate::terminology::uri;
        match self {
            PartyId::Agb(_) => uri::AGB,
            PartyId::Ura(_) => uri::URA,
        }
    }

    /// The short system name: `agb-z` or `ura`.
    pub fn code(&self) -> &'static str {
        match self {
            PartyId::Agb(_) => "agb-z",
            PartyId::Ura(_) => "ura",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            PartyId::Agb(v) => v.as_str(),
            PartyId::Ura(v) => v.as_str(),
        }
    }

    pub fn ura(&self) -> Option<&Ura> {
        match self {
            PartyId::Ura(u) => Some(u),
            PartyId::Agb(_) => None,
        }
    }
}

impl std::fmt::Display for PartyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}|{}", self.code(), self.value())
    }
}

/// Which part of a given name list a name is (zib NameInformation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GivenKind {
    /// An official first name (`BR` qualifier absent; default).
    Given,
    /// The name a person is called by (roepnaam, `CL`).
    Call,
    /// An initial (`IN`).
    Initial,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GivenName {
    pub value: String,
    pub kind: GivenKind,
}

/// A person's name, with the Dutch family-name parts kept apart.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HumanName {
    /// `official` or `usual` (FHIR name-use codes).
    pub use_: Option<String>,
    pub text: Option<String>,
    pub given: Vec<GivenName>,
    /// Voorvoegsels of the own family name ("van der").
    pub own_prefix: Option<String>,
    pub own_name: Option<String>,
    pub partner_prefix: Option<String>,
    pub partner_name: Option<String>,
    /// Full family name as the source gives it, when the parts are not known.
    pub family: Option<String>,
    /// Titles (`Dhr.`, `dr.`).
    pub prefix: Vec<String>,
    pub suffix: Vec<String>,
    /// Name assembly order code (NL1..NL4, UNK).
    pub assembly_order: Option<String>,
}

impl HumanName {
    /// The full family name: explicit, or assembled from its parts.
    pub fn family_name(&self) -> Option<String> {
        if let Some(f) = &self.family {
            return Some(f.clone());
        }
        let own = join_nonempty(&[self.own_prefix.as_deref(), self.own_name.as_deref()], " ");
        let partner = join_nonempty(&[self.partner_prefix.as_deref(), self.partner_name.as_deref()], " ");
        match (own.is_empty(), partner.is_empty(), self.assembly_order.as_deref()) {
            (true, true, _) => None,
            (false, true, _) => Some(own),
            (true, false, _) => Some(partner),
            (false, false, Some("NL2")) => Some(partner),
            (false, false, Some("NL3")) => Some(format!("{partner}-{own}")),
            (false, false, Some("NL4")) => Some(format!("{own}-{partner}")),
            (false, false, _) => Some(own),
        }
    }
}

fn join_nonempty(parts: &[Option<&str>], sep: &str) -> String {
    parts.iter().flatten().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(sep)
}

/// An address, with the Dutch street/house number parts kept apart.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Address {
    /// FHIR address use (`home`, `work`, `temp`, `old`, `billing`).
    pub use_: Option<String>,
    /// FHIR address type (`postal`, `physical`, `both`).
    pub type_: Option<String>,
    /// zib AddressType (v3 AddressUse: HP, PHYS, PST, TMP, WP, HV).
    pub zib_type: Option<Coding>,
    pub text: Option<String>,
    pub street: Option<String>,
    pub house_number: Option<String>,
    pub house_number_letter: Option<String>,
    pub house_number_addition: Option<String>,
    pub house_number_indication: Option<String>,
    pub additional_info: Option<String>,
    /// Address lines when the parts are not known.
    pub lines: Vec<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub municipality: Option<String>,
    pub country: Option<String>,
    /// Country as a code (ISO 3166 or the Dutch GBA table).
    pub country_code: Option<Coding>,
}

/// A phone number or e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Telecom {
    /// `phone`, `email`, `fax`, `url`, ...
    pub system: String,
    pub value: String,
    /// `home`, `work`, `mobile`, `temp`, `old`.
    pub use_: Option<String>,
    /// zib telecom type (v3 AddressUse / EntityNameUse codes such as MC, HP, WP).
    pub zib_type: Option<Coding>,
}

/// A date or date-time at the precision the source gave. Partial dates stay partial;
/// a time always carries an offset (a source time without one is Europe/Amsterdam).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum When {
    Year(i32),
    YearMonth(i32, u32),
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>, /* subsecond digits shown */ u8),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a date or date-time (expected YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][offset])")]
pub struct WhenError(pub String);

impl When {
    /// Parses an ISO 8601 / FHIR date or dateTime. A time without an offset is local Dutch time.
    pub fn parse(s: &str) -> Result<When, WhenError> {
        let err = || WhenError(s.to_owned());
        let s = s.trim();
        let b = s.as_bytes();
        if s.len() == 4 && b.iter().all(u8::is_ascii_digit) {
            return s.parse().map(When::Year).map_err(|_| err());
        }
        if s.len() == 7 && b[4] == b'-' {
            let y = s[..4].parse().map_err(|_| err())?;
            let m: u32 = s[5..].parse().map_err(|_| err())?;
            if !(1..=12).contains(&m) {
                return Err(err());
            }
            return Ok(When::YearMonth(y, m));
        }
        if s.len() == 10 {
            return NaiveDate::parse_from_str(s, "%Y-%m-%d").map(When::Date).map_err(|_| err());
        }
        if s.len() < 16 || b[10] != b'T' {
            return Err(err());
        }
        // Split off an offset, if any.
        let (local, offset) = if let Some(stripped) = s.strip_suffix('Z') {
            (stripped, Some(FixedOffset::east_opt(0).ok_or_else(err)?))
        } else if s.len() > 19 && (s[19..].contains('+') || s[19..].contains('-')) {
            let at = 19 + s[19..].find(['+', '-']).ok_or_else(err)?;
            let off = &s[at..];
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let hm = off[1..].replace(':', "");
            if hm.len() != 4 || !hm.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err());
            }
            let h: i32 = hm[..2].parse().map_err(|_| err())?;
            let m: i32 = hm[2..].parse().map_err(|_| err())?;
            (&s[..at], Some(FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(err)?))
        } else if s.len() == 22 && (s.as_bytes()[16] == b'+' || s.as_bytes()[16] == b'-') {
            // hh:mm+hh:mm (no seconds)
            return When::parse(&format!("{}:00{}", &s[..16], &s[16..]));
        } else {
            (s, None)
        };
        let (naive, frac_digits) = parse_local(local).ok_or_else(err)?;
        let dt = match offset {
            Some(o) => o.from_local_datetime(&naive).single().ok_or_else(err)?,
            None => amsterdam(naive).ok_or_else(err)?,
        };
        Ok(When::DateTime(dt, frac_digits))
    }

    /// From a date-time that has no offset: Dutch local time.
    pub fn local(naive: NaiveDateTime) -> Option<When> {
        amsterdam(naive).map(|dt| When::DateTime(dt, 0))
    }

    /// The FHIR R4 `dateTime` string (an `instant` if the value is a full date-time).
    pub fn to_fhir(&self) -> String {
        match self {
            When::Year(y) => format!("{y:04}"),
            When::YearMonth(y, m) => format!("{y:04}-{m:02}"),
            When::Date(d) => d.format("%Y-%m-%d").to_string(),
            When::DateTime(dt, frac) => {
                let base = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
                let frac = if *frac > 0 {
                    let nanos = format!("{:09}", dt.timestamp_subsec_nanos());
                    format!(".{}", &nanos[..usize::from((*frac).min(9))])
                } else {
                    String::new()
                };
                format!("{base}{frac}{}", dt.format("%:z"))
            }
        }
    }

    /// True if the value is only a date or coarser.
    pub fn is_partial(&self) -> bool {
        !matches!(self, When::DateTime(..))
    }

    /// The first day this value covers (for ordering and periods).
    pub fn start_date(&self) -> Option<NaiveDate> {
        match self {
            When::Year(y) => NaiveDate::from_ymd_opt(*y, 1, 1),
            When::YearMonth(y, m) => NaiveDate::from_ymd_opt(*y, *m, 1),
            When::Date(d) => Some(*d),
            When::DateTime(dt, _) => Some(dt.date_naive()),
        }
    }
}

fn parse_local(s: &str) -> Option<(NaiveDateTime, u8)> {
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            let frac = s.find('.').map(|p| (s.len() - p - 1).min(9) as u8).unwrap_or(0);
            return Some((n, frac));
        }
    }
    None
}

/// Dutch local time to an instant. In the autumn hour that occurs twice, the earlier
/// (summer time) reading is taken; a time in the spring gap is moved forward an hour,
/// as clocks do.
fn amsterdam(naive: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
    let local = Amsterdam.from_local_datetime(&naive);
    let dt =
        local.earliest().or_else(|| Amsterdam.from_local_datetime(&(naive + chrono::Duration::hours(1))).earliest())?;
    Some(dt.fixed_offset())
}

impl Serialize for When {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_fhir())
    }
}

impl<'de> Deserialize<'de> for When {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        When::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Period {
    pub start: Option<When>,
    pub end: Option<When>,
}

impl Period {
    pub fn is_empty(&self) -> bool {
        self.start.is_none() && self.end.is_none()
    }
}

/// A measured amount (UCUM where the unit is known).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Quantity {
    pub value: Option<Decimal>,
    pub comparator: Option<String>,
    pub unit: Option<String>,
    pub system: Option<String>,
    pub code: Option<String>,
}

/// A decimal kept as its source text. (JSON sources arrive through serde_json, which has
/// already normalised the number; XML and flat sources keep their digits.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal(String);

impl Decimal {
    /// Accepts a JSON-number-shaped decimal; a decimal comma is turned into a point.
    pub fn parse(s: &str) -> Option<Decimal> {
        let t = s.trim().replace(',', ".");
        let ok = !t.is_empty()
            && t.parse::<f64>().map(f64::is_finite).unwrap_or(false)
            && t.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+' || b == b'e' || b == b'E')
            && !t.starts_with('+')
            && !t.starts_with('.')
            && !t.ends_with('.');
        ok.then_some(Decimal(t))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// As a JSON number with the same digits.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::from_str::<serde_json::Number>(&self.0)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|_| serde_json::Value::String(self.0.clone()))
    }
}

impl Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let s = match &v {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            _ => return Err(serde::de::Error::custom("a decimal must be a number or a string")),
        };
        Decimal::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("'{s}' is not a decimal")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsn_eleven_test() {
        assert!(Bsn::parse("999911120").is_ok());
        assert!(Bsn::parse("999999151").is_ok());
        assert_eq!(Bsn::parse("999911121"), Err(BsnError::ElevenTest));
        assert_eq!(Bsn::parse("12345"), Err(BsnError::Length(5)));
        assert_eq!(Bsn::parse("99991112a"), Err(BsnError::NotDigits));
        assert_eq!(Bsn::parse("000000000"), Err(BsnError::ElevenTest));
    }

    #[test]
    fn identifiers_parse_once_and_print_as_stored() {
        assert_eq!(Ura::parse(" 12345678 ").expect("ura").as_str(), "12345678");
        assert!(Ura::parse("1234567").is_err() && Ura::parse("1234567a").is_err());
        assert!(Agb::parse("01234567").is_ok() && Agb::parse("").is_err());
        assert!(Uzi::parse("900012345").is_ok() && Uzi::parse("9000 12345").is_err() && Uzi::parse("").is_err());
        assert!(Uzi::parse(&"9".repeat(21)).is_err());
        assert!(UziRoleCode::parse("01.047").is_ok());
        for bad in ["01047", "01.04a", "", "1.047", "01.0477"] {
            assert!(UziRoleCode::parse(bad).is_err(), "{bad}");
        }
        let p = PartyId::parse("ura|12345678").expect("party");
        assert_eq!((p.to_string(), p.code(), p.value()), ("ura|12345678".to_owned(), "ura", "12345678"));
        assert_eq!(PartyId::parse("agb|01234567").expect("agb").to_string(), "agb-z|01234567");
        assert!(PartyId::parse("uzi|900012345").is_err() && PartyId::parse("12345678").is_err());
        assert_eq!(
            PartyId::from_identifier(crate::terminology::uri::URA, "12345678"),
            Some(PartyId::Ura(Ura::parse("12345678").expect("ura")))
        );
        let json = serde_json::to_string(&Ura::parse("12345678").expect("ura")).expect("json");
        assert_eq!(json, "\"12345678\"");
        assert!(serde_json::from_str::<Ura>("\"1234\"").is_err());
    }

    #[test]
    fn partial_dates_stay_partial() {
        assert_eq!(When::parse("2012").map(|w| w.to_fhir()), Ok("2012".into()));
        assert_eq!(When::parse("2012-11").map(|w| w.to_fhir()), Ok("2012-11".into()));
        assert_eq!(When::parse("2012-11-15").map(|w| w.to_fhir()), Ok("2012-11-15".into()));
        assert!(When::parse("2012-13").is_err());
        assert!(When::parse("1974-13-45").is_err());
    }

    #[test]
    fn local_times_get_the_dutch_offset() {
        // winter: +01:00, summer: +02:00
        assert_eq!(When::parse("2024-01-15T10:30:00").map(|w| w.to_fhir()), Ok("2024-01-15T10:30:00+01:00".into()));
        assert_eq!(When::parse("2024-07-15T10:30").map(|w| w.to_fhir()), Ok("2024-07-15T10:30:00+02:00".into()));
        // explicit offsets are kept
        assert_eq!(
            When::parse("2023-06-02T22:00:00+00:00").map(|w| w.to_fhir()),
            Ok("2023-06-02T22:00:00+00:00".into())
        );
        assert_eq!(
            When::parse("2026-06-17T11:25:49.674353824Z").map(|w| w.to_fhir()),
            Ok("2026-06-17T11:25:49.674353824+00:00".into())
        );
        // the spring gap moves forward
        assert_eq!(When::parse("2024-03-31T02:30:00").map(|w| w.to_fhir()), Ok("2024-03-31T03:30:00+02:00".into()));
        // the autumn repeat takes summer time
        assert_eq!(When::parse("2024-10-27T02:30:00").map(|w| w.to_fhir()), Ok("2024-10-27T02:30:00+02:00".into()));
    }

    #[test]
    fn decimals_keep_precision() {
        assert_eq!(Decimal::parse("2.50").map(|d| d.as_str().to_owned()), Some("2.50".into()));
        assert_eq!(Decimal::parse("75").map(|d| d.to_json()), Some(serde_json::json!(75)));
        assert_eq!(Decimal::parse("2,5").map(|d| d.as_str().to_owned()), Some("2.5".into()));
        assert_eq!(Decimal::parse("abc"), None);
        assert_eq!(Decimal::parse("NaN"), None);
    }

    #[test]
    fn family_name_assembly() {
        let n = HumanName {
            own_prefix: Some("van der".into()),
            own_name: Some("Giessen".into()),
            partner_prefix: Some("van".into()),
            partner_name: Some("Putten".into()),
            assembly_order: Some("NL3".into()),
            ..Default::default()
        };
        assert_eq!(n.family_name().as_deref(), Some("van Putten-van der Giessen"));
    }
}
