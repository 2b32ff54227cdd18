//! The safety rules every XML reader of outside input follows (the Professional Summary
//! and FHIR XML readers share them): no DTD (so no external entities and no entity
//! expansion), UTF-8 only, bounded size and depth, and positions as line and column.

use quick_xml::events::BytesDecl;

use super::SourceError;
use crate::diagnostics::{Issue, IssueCode};

/// Larger documents are refused (a Professional Summary is typically well under 10 MB).
pub(crate) const MAX_BYTES: usize = 128 * 1024 * 1024;
/// Deeper nesting than this is hostile (a Professional Summary is about 15 levels deep, a
/// deep FHIR Questionnaire about 30).
pub(crate) const MAX_DEPTH: usize = 256;

/// 1-based line and column (in characters) of byte offset `off` in `text`.
pub(crate) fn line_col(text: &str, off: usize) -> (usize, usize) {
    let mut off = off.min(text.len());
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let before = &text[..off];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The refusal of a DOCTYPE declaration at byte offset `at`.
pub(crate) fn doctype_refused(text: &str, at: usize) -> SourceError {
    let (line, column) = line_col(text, at);
    SourceError::Invalid(
        Issue::error(
            IssueCode::Security,
            format!(
                "the document contains a DOCTYPE declaration at line {line}, column {column}; DTDs are never read \
                 (they enable external-entity and entity-expansion attacks): remove the DOCTYPE"
            ),
        )
        .at(format!("line {line}, column {column}"))
        .into(),
    )
}

/// What is wrong with an XML declaration naming another encoding than UTF-8 for a text that
/// is not plain ASCII, if anything.
pub(crate) fn encoding_problem(d: &BytesDecl<'_>, text: &str) -> Option<String> {
    let Some(Ok(enc)) = d.encoding() else { return None };
    let enc = String::from_utf8_lossy(&enc).to_ascii_lowercase();
    (enc != "utf-8" && enc != "utf8" && !text.is_ascii())
        .then(|| format!("the document declares encoding {enc}; only UTF-8 is read (convert it first)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("\u{e9}\u{e9}x", 4), (1, 3));
        assert_eq!(line_col("", 10), (1, 1));
    }
}
