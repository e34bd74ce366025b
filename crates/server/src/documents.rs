//! The value types of stored documents, shared by queries, the store and the operations above
//! it: the database a request addresses (`DatabaseId`), a document as stored (`StoredDocument`)
//! and with its name (`NamedDocument`). Pure data.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{Document, DocumentName, Timestamp, Value};

/// `projects/{project}/databases/{database}`: the database a request addresses (from its URL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseId {
    pub project: String,
    pub database: String,
}

impl DatabaseId {
    /// `projects/{p}/databases/{d}`, the key prefix of every row of this database.
    pub fn resource_name(&self) -> String {
        format!("projects/{}/databases/{}", self.project, self.database)
    }

    /// Whether a parsed name lies in this database.
    pub fn contains(&self, name: &DocumentName) -> bool {
        name.project == self.project && name.database == self.database
    }
}

/// A document as stored: its fields and its two timestamps. The name is the row's key.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StoredDocument {
    pub fields: BTreeMap<String, Value>,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
}

impl StoredDocument {
    /// The REST representation, named.
    pub fn into_wire(self, name: String) -> Document {
        Document {
            name,
            fields: self.fields,
            create_time: Some(self.create_time),
            update_time: Some(self.update_time),
        }
    }
}

/// A stored document with its full resource name, as a collection scan returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedDocument {
    pub name: String,
    pub stored: StoredDocument,
}
