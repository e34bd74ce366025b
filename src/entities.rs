//! The sync bookkeeping record the store keeps beside the shop's records: the base copy of each
//! server document, for the three-way merge (conflict inbox entries are the sync engine's
//! `ConflictEntry`). The shop's records themselves (products, customers, bills, payments, stock
//! moves, audit entries) are `counterbook-shop`'s types, stored in their own forms.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{Document, DocumentName, Timestamp, Value};
use counterbook_sync::BaseVersion;
use serde::{Deserialize, Serialize};

/// The server's version of a document as last pulled: the base of a three-way merge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseCopy {
    /// Document path relative to the database root; the key.
    pub path: String,
    pub fields: BTreeMap<String, Value>,
    /// The server's `updateTime`, in Unix microseconds.
    pub update_time_micros: i64,
}

impl BaseCopy {
    /// The base copy of a document read from the server (it needs a name and an update time).
    pub fn of_document(document: &Document) -> Option<BaseCopy> {
        let name = DocumentName::parse(&document.name).ok()?;
        // Only the update time: the fields are copied once, below (a first sync copies 50,000
        // documents' fields here).
        let update_time = BaseVersion::update_time_of(document)?;
        Some(BaseCopy {
            path: name.relative_path(),
            fields: document.fields.clone(),
            update_time_micros: update_time.to_unix_micros(),
        })
    }

    /// The base an edit of this document starts from.
    pub fn to_base_version(&self) -> BaseVersion {
        BaseVersion {
            update_time: Timestamp::from_unix_micros(self.update_time_micros),
            fields: self.fields.clone(),
        }
    }

    /// The document as the server had it (named relative to an unknown project: only the path
    /// segments are meaningful).
    pub fn to_document(&self) -> Document {
        Document {
            name: format!("projects/-/databases/(default)/documents/{}", self.path),
            fields: self.fields.clone(),
            create_time: None,
            update_time: Some(Timestamp::from_unix_micros(self.update_time_micros)),
        }
    }
}
