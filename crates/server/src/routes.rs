//! The Firestore REST surface under `/v1/projects/{project}/databases/{database}/documents…`.
//!
//! Firestore's method suffixes (`documents:commit`, `shops/s1:runQuery`) sit inside nested
//! resource paths, which axum's router cannot match, so one handler takes every `/v1` request,
//! parses the raw path into an `ApiCall` (`parse_api_call`, pure and unit-tested), and
//! dispatches. Bodies are read by hand so that `text/plain` (what the Firebase JS SDK posts) is
//! accepted like `application/json`, an empty body means `{}` as on the emulator, and every
//! failure becomes the Firestore-shaped JSON of `ServerError`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use counterbook_firestore_wire::{
    CommitRequest, CommitResponse, DocumentName, RunQueryRequest, RunQueryResponseItem,
};
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use crate::commit::run_commit;
use crate::error::ServerError;
use crate::field_path::FieldPath;
use crate::query::prepare_query;
use crate::store::DatabaseId;
use crate::AppState;

/// Cloud Firestore's request size limit.
pub const MAX_REQUEST_BODY_BYTES: usize = 11 * 1024 * 1024;

/// Verbs of the Firestore REST API that this server recognises but does not serve yet.
const UNIMPLEMENTED_VERBS: &[&str] = &[
    "batchWrite",
    "listCollectionIds",
    "partitionQuery",
    "listen",
    "write",
];

/// The routes of the Firestore REST API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1", any(handle_api_request))
        .route("/v1/{*rest}", any(handle_api_request))
}

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

async fn handle_api_request(State(state): State<AppState>, request: Request) -> Response {
    match dispatch(state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn dispatch(state: AppState, request: Request) -> Result<Response, ServerError> {
    let call = parse_api_call(request.method(), request.uri().path())?;
    // 401/403 unless the token's user may make this call; held until the call is served.
    let (request, _authorization) = crate::auth::authorize(&state, &call, request).await?;
    match call {
        ApiCall::Commit(database) => {
            let body: CommitRequest = read_json_body(request.into_body()).await?;
            let response = state
                .run_blocking(move |store| run_commit(store, &database, body))
                .await?;
            Ok(Json(commit_response_json(response)).into_response())
        }
        ApiCall::RunQuery { database, parent } => {
            let body: RunQueryRequest = read_json_body(request.into_body()).await?;
            let items = state
                .run_blocking(move |store| run_query(store, &database, &parent, body))
                .await?;
            Ok(Json(items).into_response())
        }
        ApiCall::GetDocument(name) => {
            let mask = mask_from_query_string(request.uri().query().unwrap_or(""))?;
            let full_name = name.to_string();
            let document = state
                .run_blocking(move |store| {
                    store.read_snapshot(|snapshot| Ok(snapshot.get_document(&name)?))
                })
                .await?;
            let Some(mut stored) = document else {
                return Err(ServerError::NotFound(format!(
                    "Document ({full_name}) not found."
                )));
            };
            if let Some(paths) = mask {
                let mut selected = std::collections::BTreeMap::new();
                for path in &paths {
                    if let Some(value) = path.get(&stored.fields) {
                        path.set(&mut selected, value.clone());
                    }
                }
                stored.fields = selected;
            }
            Ok(Json(stored.into_wire(full_name)).into_response())
        }
        other => Err(ServerError::Unimplemented(format!(
            "{other:?} is not implemented yet"
        ))),
    }
}

/// Proto3 JSON leaves out empty repeated fields, so an empty commit answers `{}` exactly as the
/// emulator does; the wire type always writes `writeResults`.
fn commit_response_json(response: CommitResponse) -> serde_json::Value {
    let mut json = serde_json::to_value(response).unwrap_or_default();
    if let Some(object) = json.as_object_mut() {
        if object
            .get("writeResults")
            .and_then(serde_json::Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            object.remove("writeResults");
        }
    }
    json
}

fn run_query(
    store: &crate::store::Store,
    database: &DatabaseId,
    parent: &DocumentName,
    request: RunQueryRequest,
) -> Result<Vec<RunQueryResponseItem>, ServerError> {
    debug_assert!(database.contains(parent));
    if request.transaction.is_some() || request.read_time.is_some() {
        return Err(ServerError::Unimplemented(
            "queries in a transaction or at a past readTime are not implemented yet".into(),
        ));
    }
    let Some(structured_query) = request.structured_query else {
        return Err(ServerError::InvalidArgument(
            "only structured queries are supported".into(),
        ));
    };
    let prepared = prepare_query(structured_query)?;
    let (output, read_time) = store.read_snapshot(|snapshot| {
        let candidates = snapshot.documents_in_collection(parent, &prepared.collection_id)?;
        Ok((prepared.execute(candidates), snapshot.read_time()))
    })?;
    // The emulator's shape: one item per document, `skippedResults` on the first, `done` on the
    // last; an empty result is a single item with only `readTime` and `done`.
    let mut items: Vec<RunQueryResponseItem> = output
        .documents
        .into_iter()
        .map(|document| RunQueryResponseItem {
            document: Some(document),
            read_time: Some(read_time),
            ..RunQueryResponseItem::default()
        })
        .collect();
    match items.first_mut() {
        Some(first) => {
            first.skipped_results = i32::try_from(output.skipped_results).unwrap_or(i32::MAX)
        }
        None => items.push(RunQueryResponseItem {
            read_time: Some(read_time),
            ..RunQueryResponseItem::default()
        }),
    }
    if let Some(last) = items.last_mut() {
        last.done = true;
    }
    Ok(items)
}

fn decode_segment(segment: &str) -> Result<String, ServerError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| ServerError::InvalidArgument(format!("path segment {segment:?} is not UTF-8")))
}

/// Parses `/v1/projects/{p}/databases/{d}/documents[/{path}][:{verb}]` for a method.
fn parse_api_call(method: &Method, raw_path: &str) -> Result<ApiCall, ServerError> {
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
        .map_err(|error| ServerError::InvalidArgument(format!("invalid resource name: {error}")))?;
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

/// `mask.fieldPaths=a&mask.fieldPaths=b` from a GET's query string; other keys (`key=`) are
/// ignored.
fn mask_from_query_string(query: &str) -> Result<Option<Vec<FieldPath>>, ServerError> {
    let mut paths = None;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "mask.fieldPaths" {
            let value = value.replace('+', " ");
            let decoded = decode_segment(&value)?;
            paths
                .get_or_insert_with(Vec::new)
                .push(FieldPath::parse(&decoded)?);
        }
    }
    Ok(paths)
}

/// Reads a JSON body of at most `MAX_REQUEST_BODY_BYTES`, whatever its content type; an empty
/// body is the default value, as on the emulator.
async fn read_json_body<T: DeserializeOwned + Default>(body: Body) -> Result<T, ServerError> {
    let bytes = axum::body::to_bytes(body, MAX_REQUEST_BODY_BYTES)
        .await
        .map_err(|_| ServerError::PayloadTooLarge {
            limit_bytes: MAX_REQUEST_BODY_BYTES,
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(ServerError::MalformedBody)
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

    #[test]
    fn get_masks_come_from_repeated_query_parameters() {
        let mask =
            mask_from_query_string("key=abc&mask.fieldPaths=a&mask.fieldPaths=%60odd%20key%60.x")
                .unwrap()
                .unwrap();
        assert_eq!(
            mask.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["a", "`odd key`.x"]
        );
        assert_eq!(mask_from_query_string("key=abc").unwrap(), None);
    }
}
