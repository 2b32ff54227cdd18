use super::SourceError;
use crate::model::Dossier;

pub fn read(_v: serde_json::Value) -> Result<Dossier, SourceError> {
    Err(SourceError::UnknownFormat("not implemented yet".into()))
}
pub fn looks_like_r4(_v: &serde_json::Value) -> bool { false }
