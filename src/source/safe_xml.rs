//! The safety rules every XML reader of outside input follows (the Professional Summary
//! and FHIR XML readers share them): no DTD (so no external entities and no entity
//! expansion), UTF-8 only, bounded size and depth, and positions as line and column.

use quick_xml::events::BytesDecl;
use quick_xml::NsReader;

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

/// The document as UTF-8 text (a byte-order mark dropped), refused when it is larger than
/// [`MAX_BYTES`] or not UTF-8. `what` names it in the errors ("the document", "the
/// message"), `split` says how to make it smaller, `syntax` makes the reader's syntax error.
pub(crate) fn utf8_text<'b>(
    bytes: &'b [u8],
    what: &str,
    split: &str,
    syntax: fn(usize, usize, String) -> SourceError,
) -> Result<&'b str, SourceError> {
    if bytes.len() > MAX_BYTES {
        return Err(SourceError::Invalid(
            Issue::error(
                IssueCode::TooLong,
                format!("{what} is {} bytes; at most {MAX_BYTES} bytes are read{split}", bytes.len()),
            )
            .into(),
        ));
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let good = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
        let (line, column) = line_col(good, good.len());
        syntax(line, column, format!("{what} is not UTF-8 (only UTF-8 is read)"))
    })
}

/// A namespace-aware pull reader of a UTF-8 document with the settings every reader here
/// uses (end names and comments checked, empty elements kept as such), which reports its
/// errors with line and column in the reader's own words (`syntax`).
pub(crate) struct Reader<'i> {
    pub(crate) text: &'i str,
    pub(crate) inner: NsReader<&'i [u8]>,
    syntax: fn(usize, usize, String) -> SourceError,
}

impl<'i> Reader<'i> {
    pub(crate) fn new(text: &'i str, syntax: fn(usize, usize, String) -> SourceError) -> Self {
        let mut inner = NsReader::from_reader(text.as_bytes());
        let cfg = inner.config_mut();
        cfg.check_end_names = true;
        cfg.check_comments = true;
        cfg.expand_empty_elements = false;
        Reader { text, inner, syntax }
    }

    /// A syntax error at byte offset `off`.
    pub(crate) fn err_at(&self, off: usize, message: impl Into<String>) -> SourceError {
        let (line, column) = line_col(self.text, off);
        (self.syntax)(line, column, message.into())
    }

    /// The byte offset the reader has reached.
    pub(crate) fn pos(&self) -> usize {
        usize::try_from(self.inner.buffer_position()).unwrap_or(usize::MAX)
    }

    /// The error of a read that failed, at the position the reader names (or `before`, where
    /// the event began).
    pub(crate) fn read_error(&self, e: quick_xml::Error, before: usize) -> SourceError {
        let at = usize::try_from(self.inner.error_position()).unwrap_or(before);
        self.err_at(at, e.to_string())
    }
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
