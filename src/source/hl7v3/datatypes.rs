//! HL7v3 data types (II, CD, TS, IVL_TS, PN, AD, TEL, PQ) → model building blocks.
//!
//! Each reader marks what it consumed in the tree, so that a part of a data type we do
//! not understand (an unknown name-part qualifier, say) shows up in the report instead
//! of vanishing.

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

use super::xml::NodeId;
use super::Mapper;
use crate::diagnostics::{Issue, IssueCode};
use crate::model::{
    Address, Coding, Concept, Decimal, GivenKind, GivenName, HumanName, Identifier, Period, Quantity, Telecom, When,
};
use crate::terminology::uri;

/// Parses an HL7v3 TS (`yyyy[MM[dd[HH[mm[ss[.fff]]]]]][+|-ZZzz]`). A time without an offset
/// is Dutch local time; partial dates stay partial.
pub(crate) fn parse_ts(s: &str) -> Option<When> {
    let s = s.trim();
    let (main, offset) = match s.find(['+', '-']) {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    if offset.is_some_and(|o| o.len() != 5 || !o[1..].bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let (digits, frac) = match main.find('.') {
        Some(i) => (&main[..i], Some(&main[i + 1..])),
        None => (main, None),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).and_then(|d| d.parse::<u32>().ok());
    let year = i32::try_from(num(0..4)?).ok()?;
    match digits.len() {
        4 if frac.is_none() => return Some(When::Year(year)),
        6 if frac.is_none() => {
            let m = num(4..6)?;
            return (1..=12).contains(&m).then_some(When::YearMonth(year, m));
        }
        8 if frac.is_none() => return NaiveDate::from_ymd_opt(year, num(4..6)?, num(6..8)?).map(When::Date),
        10 | 12 | 14 => {}
        _ => return None,
    }
    if frac.is_some() && digits.len() != 14 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year, num(4..6)?, num(6..8)?)?;
    let h = num(8..10)?;
    let mi = if digits.len() >= 12 { num(10..12)? } else { 0 };
    let sec = if digits.len() >= 14 { num(12..14)? } else { 0 };
    let (nanos, frac_digits) = match frac {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<9}");
            (padded.parse::<u32>().ok()?, u8::try_from(f.len()).ok()?)
        }
        Some(_) => return None,
        None => (0, 0),
    };
    let naive = NaiveDateTime::new(date, NaiveTime::from_hms_nano_opt(h, mi, sec, nanos)?);
    match offset {
        None => When::local(naive).map(|w| match w {
            When::DateTime(dt, _) => When::DateTime(dt, frac_digits),
            other => other,
        }),
        Some(o) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let hm = &o[1..];
            if hm.len() != 4 || !hm.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let oh: i32 = hm[..2].parse().ok()?;
            let om: i32 = hm[2..].parse().ok()?;
            let fixed = FixedOffset::east_opt(sign * (oh * 3600 + om * 60))?;
            fixed.from_local_datetime(&naive).single().map(|dt| When::DateTime(dt, frac_digits))
        }
    }
}

impl Mapper<'_> {
    /// An II: `root` (OID) + `extension`. Without an extension the root itself is the
    /// identifier. A `nullFlavor` id gives nothing (and is consumed).
    pub(crate) fn ii(&self, id: NodeId) -> Option<Identifier> {
        let d = self.doc;
        if d.attr(id, "nullFlavor").is_some() && d.peek_attr(id, "root").is_none() {
            return None;
        }
        let root = d.attr(id, "root")?;
        let _ = d.attr(id, "assigningAuthorityName");
        match d.attr(id, "extension") {
            Some(ext) => Some(Identifier { system: Some(self.t.system_uri(root)), value: ext.to_owned() }),
            None => Some(Identifier { system: Some("urn:ietf:rfc:3986".into()), value: format!("urn:oid:{root}") }),
        }
    }

    /// An II with root and extension, without marking it: for ids that only count as
    /// mapped once they resolve to an item (links between parts of the message).
    pub(crate) fn peek_ii(&self, id: NodeId) -> Option<Identifier> {
        let root = self.doc.peek_attr(id, "root")?;
        let ext = self.doc.peek_attr(id, "extension")?;
        Some(Identifier { system: Some(self.t.system_uri(root)), value: ext.to_owned() })
    }

    /// All `id` children as identifiers.
    pub(crate) fn ids(&self, node: NodeId) -> Vec<Identifier> {
        self.doc.kids(node, "id").filter_map(|i| self.ii(i)).collect()
    }

    /// A coding from a CD/CE/CV/CS element's attributes.
    pub(crate) fn coding(&self, id: NodeId) -> Option<Coding> {
        let d = self.doc;
        let code = d.attr(id, "code")?;
        let system = d.attr(id, "codeSystem").map(|s| self.t.system_uri(s));
        let display = d.attr(id, "displayName").map(str::to_owned);
        Some(Coding { system, code: Some(code.to_owned()), display })
    }

    /// A CD with its translations and original text.
    pub(crate) fn concept(&self, id: NodeId) -> Concept {
        let d = self.doc;
        let mut c = Concept::default();
        if let Some(cd) = self.coding(id) {
            c.codings.push(cd);
        } else if d.peek_attr(id, "nullFlavor").is_some() && d.peek_kids(id, "originalText").next().is_some() {
            let _ = d.attr(id, "nullFlavor");
        }
        for t in d.kids(id, "translation").collect::<Vec<_>>() {
            if let Some(cd) = self.coding(t) {
                c.codings.push(cd);
            }
        }
        if let Some(ot) = d.kid(id, "originalText") {
            c.text = d.text(ot).map(str::to_owned);
        }
        c
    }

    /// A TS attribute (`value` by default) as a [`When`]; an unreadable value is reported.
    pub(crate) fn ts(&mut self, id: NodeId) -> Option<When> {
        if self.doc.attr(id, "nullFlavor").is_some() && self.doc.peek_attr(id, "value").is_none() {
            return None;
        }
        let v = self.doc.attr(id, "value")?;
        let w = parse_ts(v);
        if w.is_none() {
            let at = format!("{}/@value", self.doc.path(id));
            self.outcome.push(
                Issue::warning(IssueCode::Value, "not an HL7v3 time stamp (yyyyMMdd[HHmm[ss]][+ZZzz]); left out")
                    .at(at),
            );
        }
        w
    }

    /// An IVL_TS (`low`/`high`, or a single `value` as the start).
    pub(crate) fn ivl_ts(&mut self, id: NodeId) -> Period {
        let mut p = Period::default();
        if let Some(low) = self.doc.kid(id, "low") {
            p.start = self.ts(low);
        }
        if let Some(high) = self.doc.kid(id, "high") {
            p.end = self.ts(high);
        }
        if p.start.is_none() && self.doc.peek_attr(id, "value").is_some() {
            p.start = self.ts(id);
        }
        p
    }

    /// A PQ (`value` + UCUM `unit`).
    pub(crate) fn pq(&self, id: NodeId) -> Option<Quantity> {
        let d = self.doc;
        let value = Decimal::parse(d.peek_attr(id, "value")?)?;
        let _ = d.attr(id, "value");
        let unit = d.attr(id, "unit").filter(|u| !u.is_empty() && *u != "1").map(str::to_owned);
        if d.peek_attr(id, "unit") == Some("1") {
            let _ = d.attr(id, "unit");
        }
        Some(Quantity {
            value: Some(value),
            comparator: None,
            system: unit.as_ref().map(|_| uri::UCUM.to_owned()),
            code: unit.clone(),
            unit,
        })
    }

    /// A PN (Dutch name parts kept apart: a `VV` prefix belongs to the family name after it).
    pub(crate) fn name(&self, id: NodeId) -> HumanName {
        let d = self.doc;
        let mut n = HumanName::default();
        match d.peek_attr(id, "use") {
            Some("L") | Some("OR") => {
                let _ = d.attr(id, "use");
                n.use_ = Some("official".into());
            }
            Some("C") | Some("P") => {
                let _ = d.attr(id, "use");
                n.use_ = Some("usual".into());
            }
            _ => {}
        }
        d.use_node(id);
        let mut pending_vv: Option<String> = None;
        for part in d.children(id).collect::<Vec<_>>() {
            let Some(value) = d.text(part).map(str::to_owned) else {
                continue;
            };
            let qualifier = d.peek_attr(part, "qualifier");
            let mut took_qualifier = true;
            if d.is(part, "given") {
                let kind = match qualifier {
                    Some("IN") => GivenKind::Initial,
                    Some("CL") => GivenKind::Call,
                    Some("BR") | None => GivenKind::Given,
                    _ => {
                        took_qualifier = false;
                        GivenKind::Given
                    }
                };
                n.given.push(GivenName { value, kind });
            } else if d.is(part, "prefix") {
                match qualifier {
                    Some("VV") => pending_vv = Some(value),
                    None | Some("AC") | Some("PR") | Some("NB") => n.prefix.push(value),
                    _ => {
                        took_qualifier = false;
                        n.prefix.push(value)
                    }
                }
            } else if d.is(part, "family") {
                match qualifier {
                    Some("SP") => {
                        n.partner_prefix = pending_vv.take();
                        n.partner_name = Some(value);
                    }
                    Some("BR") | None if n.own_name.is_none() => {
                        n.own_prefix = pending_vv.take();
                        n.own_name = Some(value);
                    }
                    _ => {
                        took_qualifier = false;
                        n.family = Some(value)
                    }
                }
            } else if d.is(part, "suffix") {
                n.suffix.push(value);
            } else if d.is(part, "delimiter") {
                // separators only matter for display
            } else {
                continue;
            }
            if took_qualifier && qualifier.is_some() {
                let _ = d.attr(part, "qualifier");
            }
        }
        if let Some(vv) = pending_vv {
            // a voorvoegsel without a family name after it: keep it as a title-like prefix
            n.prefix.push(vv);
        }
        if n.given.is_empty() && n.own_name.is_none() && n.partner_name.is_none() && n.family.is_none() {
            n.text = d.text(id).map(str::to_owned);
        }
        n
    }

    /// An AD with the Dutch street / house-number parts.
    pub(crate) fn address(&self, id: NodeId) -> Address {
        let d = self.doc;
        let mut a = Address::default();
        if let Some(u) = d.peek_attr(id, "use") {
            let (use_, type_) = match u {
                "HP" | "H" => (Some("home"), None),
                "WP" => (Some("work"), None),
                "TMP" => (Some("temp"), None),
                "PHYS" => (None, Some("physical")),
                "PST" => (None, Some("postal")),
                "HV" => (Some("home"), None),
                "OLD" | "BAD" => (Some("old"), None),
                _ => (None, None),
            };
            if use_.is_some() || type_.is_some() {
                let _ = d.attr(id, "use");
                a.use_ = use_.map(str::to_owned);
                a.type_ = type_.map(str::to_owned);
                a.zib_type = Some(Coding {
                    system: Some(self.t.system_uri("2.16.840.1.113883.5.1119")),
                    code: Some(u.to_owned()),
                    display: None,
                });
            }
        }
        d.use_node(id);
        for part in d.children(id).collect::<Vec<_>>() {
            if d.ns(part) != super::xml::V3 {
                continue;
            }
            let slot = match d.name(part) {
                "streetName" => &mut a.street,
                "houseNumber" => &mut a.house_number,
                "buildingNumberSuffix" => &mut a.house_number_addition,
                "additionalLocator" => &mut a.additional_info,
                "postalCode" => &mut a.postal_code,
                "city" => &mut a.city,
                "county" => &mut a.municipality,
                "country" => &mut a.country,
                "streetAddressLine" => {
                    if let Some(t) = d.text(part) {
                        a.lines.push(t.to_owned());
                    }
                    continue;
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = d.text(part).map(str::to_owned);
            }
        }
        if a.lines.is_empty() && a.street.is_none() && a.city.is_none() && a.postal_code.is_none() {
            a.text = d.text(id).map(str::to_owned);
        }
        a
    }

    /// A TEL (`tel:`, `mailto:`, `fax:`, `http(s):` URLs).
    pub(crate) fn telecom(&self, id: NodeId) -> Option<Telecom> {
        let d = self.doc;
        let value = d.peek_attr(id, "value")?;
        let (system, v) = if let Some(v) = value.strip_prefix("tel:") {
            ("phone", v)
        } else if let Some(v) = value.strip_prefix("mailto:") {
            ("email", v)
        } else if let Some(v) = value.strip_prefix("fax:") {
            ("fax", v)
        } else if value.starts_with("http:") || value.starts_with("https:") {
            ("url", value)
        } else {
            return None;
        };
        let _ = d.attr(id, "value");
        let mut t = Telecom { system: system.into(), value: v.trim().to_owned(), use_: None, zib_type: None };
        if let Some(u) = d.peek_attr(id, "use") {
            let use_ = match u {
                "HP" | "H" => Some("home"),
                "WP" => Some("work"),
                "MC" => Some("mobile"),
                "TMP" => Some("temp"),
                _ => None,
            };
            if let Some(use_) = use_ {
                let _ = d.attr(id, "use");
                t.use_ = Some(use_.into());
                t.zib_type = Some(Coding {
                    system: Some(self.t.system_uri("2.16.840.1.113883.5.1119")),
                    code: Some(u.to_owned()),
                    display: None,
                });
            }
        }
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_stamps_keep_their_precision() {
        let f = |s: &str| parse_ts(s).map(|w| w.to_fhir());
        assert_eq!(f("1950"), Some("1950".into()));
        assert_eq!(f("195005"), Some("1950-05".into()));
        assert_eq!(f("19500520"), Some("1950-05-20".into()));
        assert_eq!(f("201706111100"), Some("2017-06-11T11:00:00+02:00".into()));
        assert_eq!(f("20170122000000"), Some("2017-01-22T00:00:00+01:00".into()));
        assert_eq!(f("20170122101500+0000"), Some("2017-01-22T10:15:00+00:00".into()));
        assert_eq!(f("20170122101500.123"), Some("2017-01-22T10:15:00.123+01:00".into()));
        assert_eq!(f("2017012210"), Some("2017-01-22T10:00:00+01:00".into()));
        assert_eq!(f("19501320"), None);
        assert_eq!(f("1950052"), None);
        assert_eq!(f("abc"), None);
        assert_eq!(f(""), None);
        assert_eq!(f("20170122+99"), None);
    }
}
