//! Narrative XHTML (`Narrative.div`): well-formed XML, an XHTML `div` at the root, only the
//! elements and attributes R4 allows (txt-1), some content (txt-2), and no entity but the five
//! of XML: without a DTD, `&reg;` or `&nbsp;` are undefined (write `&#174;`, `&#160;` or the
//! character itself).
//!
//! The lists of elements and attributes are those of the R4 narrative rules ("basic html
//! formatting elements and attributes described in chapters 7-11 (except section 4 of chapter 9)
//! and 15 of the HTML 4.0 standard, `<a>` elements (either name or href), images and internally
//! contained style attributes"), as the HL7 reference validator spells them out
//! (`InstanceValidator.checkInnerNames`).

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

pub(crate) const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

#[rustfmt::skip]
const ELEMENTS: &[&str] = &[
    "p", "br", "div", "h1", "h2", "h3", "h4", "h5", "h6", "a", "span", "b", "em", "i", "strong", "small", "big", "tt",
    "dfn", "q", "var", "abbr", "acronym", "cite", "blockquote", "hr", "address", "bdo", "kbd", "sub", "sup", "ul",
    "ol", "li", "dl", "dt", "dd", "pre", "table", "caption", "colgroup", "col", "thead", "tr", "tfoot", "tbody", "th",
    "td", "code", "samp", "img", "map", "area",
];

/// Attributes allowed on any element.
#[rustfmt::skip]
const ATTRIBUTES: &[&str] = &[
    "title", "style", "class", "id", "lang", "xml:lang", "dir", "accesskey", "tabindex", // tables:
    "span", "width", "align", "valign", "char", "charoff", "abbr", "axis", "headers", "scope", "rowspan", "colspan",
];

/// Attributes allowed on one element (`element.attribute`).
#[rustfmt::skip]
const ELEMENT_ATTRIBUTES: &[&str] = &[
    "a.href", "a.name", "a.charset", "a.type", "a.hreflang", "a.rel", "a.rev", "a.shape", "a.coords", "img.src",
    "img.border", "img.alt", "img.longdesc", "img.height", "img.width", "img.usemap", "img.ismap", "blockquote.cite",
    "q.cite", "map.name", "area.shape", "area.coords", "area.href", "area.nohref", "area.alt", "table.summary",
    "table.width", "table.border", "table.frame", "table.rules", "table.cellspacing", "table.cellpadding",
    "pre.space", "td.nowrap",
];

/// The predefined entities of XML, the only named ones without a DTD.
const XML_ENTITIES: &[&str] = &["lt", "gt", "amp", "quot", "apos"];

/// A problem with a narrative: the invariant it breaks (if any) and a message.
#[derive(Debug, PartialEq)]
pub(crate) struct Problem {
    pub key: Option<&'static str>,
    pub message: String,
}

fn problem(key: Option<&'static str>, message: impl Into<String>) -> Problem {
    Problem { key, message: message.into() }
}

fn entity_problem(name: &str) -> Option<Problem> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix('x').or_else(|| num.strip_prefix('X')) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => num.parse::<u32>().ok(),
        };
        let ok = code
            .and_then(char::from_u32)
            .is_some_and(|c| matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && !matches!(c as u32, 0xFFFE | 0xFFFF)));
        return (!ok).then(|| problem(None, format!("'&{name};' is not a valid XML character reference")));
    }
    (!XML_ENTITIES.contains(&name)).then(|| {
        problem(
            None,
            format!(
                "the entity '&{name};' is not defined in XHTML without a DTD; use a character reference (&#...;) or the character itself"
            ),
        )
    })
}

/// Entities inside an attribute's raw value.
fn attribute_entities(raw: &[u8], out: &mut Vec<Problem>) {
    let s = String::from_utf8_lossy(raw);
    let mut rest = &s[..];
    while let Some(pos) = rest.find('&') {
        rest = &rest[pos + 1..];
        match rest.find(';') {
            Some(end) if end > 0 && !rest[..end].contains(|c: char| c.is_whitespace() || c == '&') => {
                out.extend(entity_problem(&rest[..end]));
                rest = &rest[end + 1..];
            }
            _ => out.push(problem(None, "a bare '&' in an attribute value: write &amp;")),
        }
    }
}

fn check_element(e: &BytesStart<'_>, root: bool, out: &mut Vec<Problem>) -> Option<String> {
    let qname = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    if root {
        if local != "div" {
            out.push(problem(None, format!("the narrative must be a single <div> element, not <{qname}>")));
        }
        let prefix = e.name().prefix().map(|p| String::from_utf8_lossy(p.as_ref()).into_owned());
        let decl = match &prefix {
            Some(p) => format!("xmlns:{p}"),
            None => "xmlns".to_string(),
        };
        let ns = e.attributes().flatten().find(|a| a.key.as_ref() == decl.as_bytes()).map(|a| a.value.into_owned());
        if ns.as_deref() != Some(XHTML_NS.as_bytes()) {
            out.push(problem(
                None,
                format!("the narrative <div> must be in the XHTML namespace ({decl}=\"{XHTML_NS}\")"),
            ));
        }
    }
    if !ELEMENTS.contains(&local.as_str()) {
        out.push(problem(Some("txt-1"), format!("the element <{qname}> is not allowed in a narrative")));
    }
    for a in e.attributes().with_checks(true) {
        let a = match a {
            Ok(a) => a,
            Err(err) => {
                out.push(problem(None, format!("not well-formed XHTML: {err}")));
                continue;
            }
        };
        let name = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let ok = name.starts_with("xmlns")
            || ATTRIBUTES.contains(&name.as_str())
            || ELEMENT_ATTRIBUTES.contains(&format!("{local}.{name}").as_str());
        if !ok {
            out.push(problem(
                Some("txt-1"),
                format!("the attribute '{name}' is not allowed on <{local}> in a narrative"),
            ));
        }
        attribute_entities(&a.value, out);
    }
    Some(local)
}

/// The problems of a narrative `div` (empty when it is fine).
pub(crate) fn check(div: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut reader = Reader::from_str(div);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut roots = 0usize;
    let mut content = false;
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                out.push(problem(None, format!("not well-formed XHTML at byte {}: {e}", reader.error_position())));
                return out;
            }
        };
        match event {
            Event::Start(e) | Event::Empty(e) if depth == 0 && roots > 0 => {
                let _ = e;
                out.push(problem(
                    None,
                    "the narrative must be a single <div> element, found a second element after it",
                ));
                return out;
            }
            Event::Start(e) => {
                roots += usize::from(depth == 0);
                if check_element(&e, depth == 0, &mut out).as_deref() == Some("img") {
                    content = true;
                }
                depth += 1;
            }
            Event::Empty(e) => {
                roots += usize::from(depth == 0);
                if check_element(&e, depth == 0, &mut out).as_deref() == Some("img") {
                    content = true;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) => {
                let raw: &[u8] = t.as_ref();
                if depth == 0 {
                    if !raw.iter().all(u8::is_ascii_whitespace) {
                        out.push(problem(None, "text outside the narrative's <div>"));
                    }
                } else if !raw.iter().all(u8::is_ascii_whitespace) {
                    content = true;
                }
                if raw.contains(&b'&') {
                    out.push(problem(None, "a bare '&' in the narrative: write &amp;"));
                }
            }
            Event::GeneralRef(r) => {
                content |= depth > 0;
                let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                out.extend(entity_problem(&name));
            }
            Event::CData(_) => content |= depth > 0,
            Event::DocType(_) => out.push(problem(None, "a DOCTYPE is not allowed in a narrative")),
            Event::PI(_) | Event::Decl(_) => {
                out.push(problem(None, "processing instructions are not allowed in a narrative"))
            }
            Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if depth > 0 {
        out.push(problem(None, "not well-formed XHTML: an element is not closed"));
    } else if roots == 0 {
        out.push(problem(None, "the narrative must be a single <div> element"));
    } else if !content && out.is_empty() {
        out.push(problem(Some("txt-2"), "the narrative must have some non-whitespace content"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(div: &str) -> Vec<Option<&'static str>> {
        check(div).into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn accepts_ordinary_narratives() {
        for ok in [
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>Jan &amp; Piet &#174; &#xE9;</p></div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><table class="grid"><tr><td colspan="2">x</td></tr></table><a href="http://x.org/?a=1&amp;b=2">l</a></div>"#,
            r##"<div xmlns="http://www.w3.org/1999/xhtml" xml:lang="nl" lang="nl"><img src="#p1" alt="x"/></div>"##,
            r#"<xhtml:div xmlns:xhtml="http://www.w3.org/1999/xhtml">text</xhtml:div>"#,
        ] {
            assert!(check(ok).is_empty(), "{ok}: {:?}", check(ok));
        }
    }

    #[test]
    fn finds_entities_markup_and_malformed_xml() {
        let ns = |inner: &str| format!(r#"<div xmlns="http://www.w3.org/1999/xhtml">{inner}</div>"#);
        assert_eq!(keys(&ns("Merk&reg;")), vec![None]);
        assert_eq!(keys(&ns("a&nbsp;b")), vec![None]);
        assert_eq!(keys(&ns("<script>alert(1)</script>")), vec![Some("txt-1")]);
        assert_eq!(keys(&ns(r#"<p onclick="x()">p</p>"#)), vec![Some("txt-1")]);
        assert_eq!(keys(&ns(r#"<a href="x" target="_blank">p</a>"#)), vec![Some("txt-1")]);
        assert_eq!(keys(&ns("  ")), vec![Some("txt-2")]);
        assert!(!check(&ns("<p>open")).is_empty());
        assert!(!check(&ns("<p>a</b>")).is_empty());
        assert!(!check("<div>no namespace</div>").is_empty());
        assert!(!check(r#"<p xmlns="http://www.w3.org/1999/xhtml">not a div</p>"#).is_empty());
        assert!(!check(&format!("{}<div/>", ns("x"))).is_empty());
        assert!(!check(&ns("&#0;")).is_empty());
        assert!(!check(&ns(r#"<a href="?a=1&b=2">x</a>"#)).is_empty());
    }
}
