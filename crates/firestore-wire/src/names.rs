//! Resource names: `projects/{project}/databases/{database}/documents/{path}`.
//!
//! A document path has an even number of segments (`shops/s1/products/p1`), a collection path an
//! odd number. The same rules validate names on the server and build them in the app.

use std::fmt;

/// A parsed document (or collection) resource name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentName {
    pub project: String,
    pub database: String,
    /// The segments after `documents/`.
    pub segments: Vec<String>,
}

/// Why a resource name is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("resource name {0:?} does not start with projects/{{project}}/databases/{{database}}/documents")]
    NotUnderDocuments(String),
    #[error("resource name {name:?} has an invalid path segment {segment:?}")]
    InvalidSegment { name: String, segment: String },
    /// A collection id or document id of the reserved form `__.+__` (worded as Firestore's
    /// emulator words it, without naming the whole resource).
    #[error("{} id \"{id}\" is invalid because it is reserved.", if *.is_collection { "Collection" } else { "Resource" })]
    ReservedId { id: String, is_collection: bool },
    #[error("resource name {0:?} has a path element longer than 1500 bytes")]
    SegmentTooLong(String),
    #[error("resource name {0:?} is longer than 6 KiB")]
    TooLong(String),
}

/// The longest document or collection id Firestore accepts, in bytes (its emulator says "The
/// key path element name is longer than 1500 bytes" past it).
pub const MAX_SEGMENT_BYTES: usize = 1500;

/// The longest document name path Firestore accepts (6 KiB).
pub const MAX_NAME_BYTES: usize = 6 * 1024;

impl DocumentName {
    /// Builds a name from a slash-separated path relative to the database's `documents` root.
    pub fn new(project: &str, database: &str, relative_path: &str) -> Result<Self, NameError> {
        let full = format!("projects/{project}/databases/{database}/documents/{relative_path}");
        Self::parse(&full)
    }

    /// Parses a full resource name. The database root itself (no segments) is allowed.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        let not_under = || NameError::NotUnderDocuments(name.to_owned());
        let rest = name.strip_prefix("projects/").ok_or_else(not_under)?;
        let (project, rest) = rest.split_once("/databases/").ok_or_else(not_under)?;
        let (database, rest) = match rest.split_once('/') {
            Some((database, rest)) => (database, rest),
            None => return Err(not_under()),
        };
        let path = if rest == "documents" {
            ""
        } else {
            rest.strip_prefix("documents/").ok_or_else(not_under)?
        };
        if project.is_empty() || project.contains('/') || database.is_empty() {
            return Err(not_under());
        }
        if path.len() > MAX_NAME_BYTES {
            return Err(NameError::TooLong(name.to_owned()));
        }
        let segments: Vec<String> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').map(str::to_owned).collect()
        };
        for (index, segment) in segments.iter().enumerate() {
            if segment.len() > MAX_SEGMENT_BYTES {
                return Err(NameError::SegmentTooLong(name.to_owned()));
            }
            if is_reserved_id(segment) {
                return Err(NameError::ReservedId {
                    id: segment.clone(),
                    is_collection: index % 2 == 0,
                });
            }
            if !is_valid_segment(segment) {
                return Err(NameError::InvalidSegment {
                    name: name.to_owned(),
                    segment: segment.clone(),
                });
            }
        }
        Ok(DocumentName {
            project: project.to_owned(),
            database: database.to_owned(),
            segments,
        })
    }

    /// `projects/{p}/databases/{d}/documents`.
    pub fn root(&self) -> String {
        format!(
            "projects/{}/databases/{}/documents",
            self.project, self.database
        )
    }

    /// Even segment count, at least two: the name of a document rather than a collection.
    pub fn is_document(&self) -> bool {
        !self.segments.is_empty() && self.segments.len().is_multiple_of(2)
    }

    /// The path below the `documents` root, e.g. `shops/s1/products/p1`.
    pub fn relative_path(&self) -> String {
        self.segments.join("/")
    }

    /// The id of the collection that directly contains this document or is this collection.
    pub fn collection_id(&self) -> Option<&str> {
        let index = if self.is_document() {
            self.segments.len().checked_sub(2)?
        } else {
            self.segments.len().checked_sub(1)?
        };
        self.segments.get(index).map(String::as_str)
    }

    /// The last segment: a document id or a collection id.
    pub fn id(&self) -> Option<&str> {
        self.segments.last().map(String::as_str)
    }
}

fn is_valid_segment(segment: &str) -> bool {
    !segment.is_empty() && segment != "." && segment != ".."
}

/// Firestore reserves collection and document ids that start and end with two underscores
/// and hold at least one character between them (`__x__`; `____` is an ordinary id), as its
/// emulator checks.
pub fn is_reserved_id(id: &str) -> bool {
    id.len() > 4 && id.starts_with("__") && id.ends_with("__")
}

impl fmt::Display for DocumentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.root())?;
        for segment in &self.segments {
            write!(f, "/{segment}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documents_collections_and_the_root() {
        let doc =
            DocumentName::parse("projects/p/databases/(default)/documents/shops/s/products/a")
                .unwrap();
        assert!(doc.is_document());
        assert_eq!(doc.collection_id(), Some("products"));
        assert_eq!(doc.id(), Some("a"));
        assert_eq!(doc.relative_path(), "shops/s/products/a");
        assert_eq!(
            doc.to_string(),
            "projects/p/databases/(default)/documents/shops/s/products/a"
        );

        let collection = DocumentName::new("p", "(default)", "shops/s/products").unwrap();
        assert!(!collection.is_document());
        assert_eq!(collection.collection_id(), Some("products"));

        let root = DocumentName::parse("projects/p/databases/(default)/documents").unwrap();
        assert!(root.segments.is_empty());
        assert_eq!(root.collection_id(), None);
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in [
            "shops/s",
            "projects/p/databases/(default)",
            "projects/p/databases/(default)/docs/a/b",
            "projects/p/databases/(default)/documents/a//b",
            "projects/p/databases/(default)/documents/a/..",
            "projects/p/databases/(default)/documents/a/__id__",
        ] {
            assert!(
                DocumentName::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
        assert_eq!(
            DocumentName::parse("projects/p/databases/(default)/documents/__c__/a")
                .unwrap_err()
                .to_string(),
            "Collection id \"__c__\" is invalid because it is reserved."
        );
        assert_eq!(
            DocumentName::parse("projects/p/databases/(default)/documents/c/__a__")
                .unwrap_err()
                .to_string(),
            "Resource id \"__a__\" is invalid because it is reserved."
        );
        assert!(DocumentName::parse("projects/p/databases/(default)/documents/c/____").is_ok());
        let longest_id = format!("projects/p/databases/d/documents/c/{}", "x".repeat(1500));
        assert!(DocumentName::parse(&longest_id).is_ok());
        let long_id = format!("projects/p/databases/d/documents/c/{}", "x".repeat(1501));
        assert!(matches!(
            DocumentName::parse(&long_id),
            Err(NameError::SegmentTooLong(_))
        ));
        let long_path = format!(
            "projects/p/databases/d/documents/{}",
            ["c/d"; 2100].join("/")
        );
        assert!(matches!(
            DocumentName::parse(&long_path),
            Err(NameError::TooLong(_))
        ));
    }
}
