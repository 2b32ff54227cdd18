//! The NHG Professional Summary (HL7v3 QUPC_IN990002NL) → model.

use super::SourceError;
use crate::model::Dossier;

/// True if the XML document's root element is a Professional Summary message.
pub fn is_professional_summary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    String::from_utf8_lossy(head).contains("QUPC_IN990002NL")
}

pub fn read(_bytes: &[u8]) -> Result<Dossier, SourceError> {
    Err(SourceError::UnknownFormat(
        "reading the Professional Summary is not implemented yet".into(),
    ))
}
