//! Which Firestore REST method a request calls: the raw path and method parsed into an
//! `ApiCall` (`parse_api_call`, pure and unit-tested). Firestore's method suffixes
//! (`documents:commit`, `shops/s1:runQuery`) sit inside nested resource paths, which axum's
//! router cannot match, so `routes` takes every `/v1` request and parses it here; `auth`
//! judges the same `ApiCall` before `routes` serves it.

use axum::http::Method;
use counterbook_firestore_wire::DocumentName;
use percent_encoding::percent_decode_str;

use crate::documents::DatabaseId;
use crate::error::ServerError;

/// Verbs of the Firestore REST API that this server recognises but does not serve yet.
const UNIMPLEMENTED_VERBS: &[&str] = &[
    "batchWrite",
    "listCollectionIds",
    "partitionQuery",
    "listen",
    "write",
];

/// One parsed API request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ApiCall {
    Commit(DatabaseId),
    RunQuery {
        database: DatabaseId,
        /// The root of the database, or a document.
        parent: DocumentName,
    },
    RunAggregationQuery {
        database: DatabaseId,
        /// The root of the database, or a document.
        parent: DocumentName,
    },
    BatchGet(DatabaseId),
    BeginTransaction(DatabaseId),
    Rollback(DatabaseId),
    GetDocument(DocumentName),
    /// `GET` of a collection: `collection` is the collection's own name (odd segment count).
    ListDocuments {
        database: DatabaseId,
        collection: DocumentName,
    },
    /// `PATCH` of a document: an update write, with the mask and precondition in the query.
    PatchDocument(DocumentName),
    /// `DELETE` of a document, with an optional precondition in the query.
    DeleteDocument(DocumentName),
}

pub(crate) fn decode_segment(segment: &str) -> Result<String, ServerError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| ServerError::InvalidArgument(format!("path segment {segment:?} is not UTF-8")))
}

/// Parses `/v1/projects/{p}/databases/{d}/documents[/{path}][:{verb}]` for a method.
pub(crate) fn parse_api_call(method: &Method, raw_path: &str) -> Result<ApiCall, ServerError> {
    let no_such_method = || {
        ServerError::NoSuchMethod(format!(
            "no Firestore REST method answers {method} {raw_path}"
        ))
    };
    let segments: Vec<&str> = raw_path
        .strip_prefix("/v1/")
        .ok_or_else(no_such_method)?
        .split('/')
        .collect();
    let [projects, project, databases, database, rest @ ..] = segments.as_slice() else {
        return Err(no_such_method());
    };
    if *projects != "projects" || *databases != "databases" || rest.is_empty() {
        return Err(no_such_method());
    }
    let database = DatabaseId {
        project: decode_segment(project)?,
        database: decode_segment(database)?,
    };
    if database.project.is_empty() || database.database.is_empty() {
        return Err(no_such_method());
    }

    // The verb is a suffix of the last segment. Only POST has verbs; a GET of `a:b` asks for
    // the document with id `a:b`, as on the emulator.
    let mut path_segments: Vec<&str> = rest.to_vec();
    let mut verb = None;
    if method == Method::POST {
        if let Some(last) = path_segments.last_mut() {
            if let Some((base, suffix)) = last.rsplit_once(':') {
                *last = base;
                verb = Some(suffix);
            }
        }
    }
    if path_segments[0] != "documents" {
        return Err(no_such_method());
    }
    let relative_path = path_segments[1..]
        .iter()
        .map(|segment| decode_segment(segment))
        .collect::<Result<Vec<_>, _>>()?
        .join("/");
    let name = DocumentName::new(&database.project, &database.database, &relative_path)
        .map_err(|error| ServerError::invalid_name("resource name", error))?;
    let is_root = name.segments.is_empty();

    match (method, verb) {
        (&Method::POST, Some("commit")) if is_root => Ok(ApiCall::Commit(database)),
        (&Method::POST, Some("runQuery")) if is_root || name.is_document() => Ok(ApiCall::RunQuery {
            database,
            parent: name,
        }),
        (&Method::POST, Some("runAggregationQuery")) if is_root || name.is_document() => {
            Ok(ApiCall::RunAggregationQuery {
                database,
                parent: name,
            })
        }
        (&Method::POST, Some("runQuery" | "runAggregationQuery")) => {
            Err(ServerError::InvalidArgument(format!(
                "the parent of a query must be a document or the database root, and {name} is a collection"
            )))
        }
        (&Method::POST, Some("batchGet")) if is_root => Ok(ApiCall::BatchGet(database)),
        (&Method::POST, Some("beginTransaction")) if is_root => {
            Ok(ApiCall::BeginTransaction(database))
        }
        (&Method::POST, Some("rollback")) if is_root => Ok(ApiCall::Rollback(database)),
        (&Method::POST, Some(verb)) if UNIMPLEMENTED_VERBS.contains(&verb) => Err(
            ServerError::Unimplemented(format!(":{verb} is not implemented yet")),
        ),
        (&Method::POST, Some(_)) => Err(no_such_method()),
        (&Method::POST, None) if !is_root && !name.is_document() => Err(ServerError::Unimplemented(
            "creating a document with POST is not implemented yet; use :commit".into(),
        )),
        (&Method::GET, None) if name.is_document() => Ok(ApiCall::GetDocument(name)),
        (&Method::GET, None) if !is_root => Ok(ApiCall::ListDocuments {
            database,
            collection: name,
        }),
        (&Method::PATCH, None) if name.is_document() => Ok(ApiCall::PatchDocument(name)),
        (&Method::DELETE, None) if name.is_document() => Ok(ApiCall::DeleteDocument(name)),
        (&Method::PATCH | &Method::DELETE, None) => Err(ServerError::InvalidArgument(format!(
            "Document name \"{name}\" lacks \"/\" at index {}.",
            name.to_string().len()
        ))),
        _ => Err(no_such_method()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> DatabaseId {
        DatabaseId {
            project: "p".into(),
            database: "(default)".into(),
        }
    }

    fn check(
        method: Method,
        path: &str,
        expected: Result<ApiCall, counterbook_firestore_wire::Code>,
    ) {
        let parsed = parse_api_call(&method, path).map_err(|error| error.code());
        assert_eq!(parsed, expected, "{method} {path}");
    }

    #[test]
    fn paths_parse_into_calls() {
        use counterbook_firestore_wire::Code;
        let root = DocumentName::parse("projects/p/databases/(default)/documents").unwrap();
        let shop = DocumentName::new("p", "(default)", "shops/s1").unwrap();
        check(
            Method::POST,
            "/v1/projects/p/databases/(default)/documents:commit",
            Ok(ApiCall::Commit(database())),
        );
        check(
            Method::POST,
            "/v1/projects/p/databases/%28default%29/documents:commit",
            Ok(ApiCall::Commit(database())),
        );
        check(
            Method::POST,
            "/v1/projects/p/databases/(default)/documents:runQuery",
            Ok(ApiCall::RunQuery {
                database: database(),
                parent: root,
            }),
        );
        check(
            Method::POST,
            "/v1/projects/p/databases/(default)/documents/shops/s1:runQuery",
            Ok(ApiCall::RunQuery {
                database: database(),
                parent: shop.clone(),
            }),
        );
        check(
            Method::GET,
            "/v1/projects/p/databases/(default)/documents/shops/s1",
            Ok(ApiCall::GetDocument(shop)),
        );
        check(
            Method::GET,
            "/v1/projects/p/databases/(default)/documents/shops/with%20space",
            Ok(ApiCall::GetDocument(
                DocumentName::new("p", "(default)", "shops/with space").unwrap(),
            )),
        );
        check(
            Method::POST,
            "/v1/projects/p/databases/(default)/documents/shops:runQuery",
            Err(Code::InvalidArgument),
        );
        check(
            Method::POST,
            "/v1/projects/p/databases/(default)/documents:batchGet",
            Ok(ApiCall::BatchGet(database())),
        );
        check(
            Method::POST,
            "/v1/projects/p/databases/(default)/documents:batchWrite",
            Err(Code::Unimplemented),
        );
        check(
            Method::PATCH,
            "/v1/projects/p/databases/(default)/documents/shops",
            Err(Code::InvalidArgument),
        );
        check(
            Method::POST,
            "/v1/projects/p/databases/(default)/documents:frobnicate",
            Err(Code::NotFound),
        );
        check(
            Method::GET,
            "/v1/projects/p/databases/(default)/documents/shops",
            Ok(ApiCall::ListDocuments {
                database: database(),
                collection: DocumentName::new("p", "(default)", "shops").unwrap(),
            }),
        );
        check(
            Method::GET,
            "/v1/projects/p/databases/(default)/documents/shops//x",
            Err(Code::InvalidArgument),
        );
        check(Method::GET, "/v1/projects/p", Err(Code::NotFound));
        check(
            Method::GET,
            "/v1/projects/p/databases/(default)/indexes",
            Err(Code::NotFound),
        );
    }
}
