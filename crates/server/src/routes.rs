//! The Firestore REST surface under `/v1/projects/{project}/databases/{database}/documents…`.
//!
//! Firestore's method suffixes (`documents:commit`, `shops/s1:runQuery`) sit inside nested
//! resource paths, which axum's router cannot match, so one handler takes every `/v1` request,
//! parses the raw path into an `ApiCall` (`parse_api_call`, pure and unit-tested), and
//! dispatches. Bodies are read by hand so that `text/plain` (what the Firebase JS SDK posts) is
//! accepted like `application/json`, an empty body means `{}` as on the emulator, and every
//! failure becomes the Firestore-shaped JSON of `ServerError`.

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use counterbook_firestore_wire::{
    CommitRequest, CommitResponse, Document, DocumentName, Timestamp,
};
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use crate::aggregation::RunAggregationQueryRequest;
use crate::commit::{run_commit, run_delete, run_patch, DocumentWriteParameters};
use crate::error::ServerError;
use crate::field_path::FieldPath;
use crate::reads::{self, BatchGetRequest, ListParameters, RunQueryRequest};
use crate::request_schema;
use crate::store::DatabaseId;
use crate::transaction::{BeginTransactionRequest, RollbackRequest};
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
    // 401/403 unless the token's user may make this call; its writes are judged in the commit.
    let (request, authorization) = crate::auth::authorize(&state, &call, request).await?;
    let write_judge = authorization.write_judge();
    // Transactions belong to the user who opened them.
    let owner = authorization.transaction_owner();
    let parameters = QueryParameters::parse(request.uri().query().unwrap_or(""))?;
    let body = request.into_body();
    let reply: serde_json::Value = match call {
        ApiCall::Commit(database) => {
            let body: CommitRequest =
                read_json_body(body, request_schema::commit_request()).await?;
            let response = state
                .run_blocking(move |store| run_commit(store, &database, body, &*write_judge))
                .await?;
            commit_response_json(response)
        }
        ApiCall::RunQuery { database, parent } => {
            let body: RunQueryRequest =
                read_json_body(body, request_schema::run_query_request()).await?;
            let items = state
                .run_blocking(move |store| {
                    reads::run_query(store, &database, &parent, body, owner.as_ref())
                })
                .await?;
            serde_json::Value::Array(items)
        }
        ApiCall::RunAggregationQuery { database, parent } => {
            let body: RunAggregationQueryRequest =
                read_json_body(body, request_schema::run_aggregation_query_request()).await?;
            let items = state
                .run_blocking(move |store| {
                    reads::run_aggregation_query(store, &database, &parent, body, owner.as_ref())
                })
                .await?;
            serde_json::Value::Array(items)
        }
        ApiCall::BatchGet(database) => {
            let body: BatchGetRequest =
                read_json_body(body, request_schema::batch_get_request()).await?;
            let items = state
                .run_blocking(move |store| reads::batch_get(store, &database, body, owner.as_ref()))
                .await?;
            serde_json::Value::Array(items)
        }
        ApiCall::BeginTransaction(database) => {
            let body: BeginTransactionRequest =
                read_json_body(body, request_schema::begin_transaction_request()).await?;
            let options = body.options.unwrap_or_default();
            let id = state
                .run_blocking(move |store| {
                    store
                        .transactions()
                        .begin(&database, &options, owner.as_ref())
                })
                .await?;
            serde_json::json!({ "transaction": id })
        }
        ApiCall::Rollback(database) => {
            let body: RollbackRequest =
                read_json_body(body, request_schema::rollback_request()).await?;
            let Some(id) = body.transaction else {
                return Err(ServerError::InvalidArgument("Invalid transaction.".into()));
            };
            state
                .run_blocking(move |store| {
                    store
                        .transactions()
                        .rollback(&id, &database, owner.as_ref())
                })
                .await?;
            serde_json::json!({})
        }
        ApiCall::GetDocument(name) => {
            let mask = parameters.field_paths("mask.fieldPaths")?;
            let transaction = parameters.single("transaction").map(str::to_owned);
            let read_time = parameters.timestamp("readTime")?;
            state
                .run_blocking(move |store| {
                    reads::get_document(store, &name, mask, transaction, read_time, owner.as_ref())
                })
                .await?
        }
        ApiCall::ListDocuments {
            database,
            collection,
        } => {
            let list = ListParameters {
                page_size: parameters.integer("pageSize")?,
                page_token: parameters.single("pageToken").map(str::to_owned),
                order_by: parameters.single("orderBy").map(str::to_owned),
                mask: parameters.field_paths("mask.fieldPaths")?,
                show_missing: parameters.boolean("showMissing")?.unwrap_or(false),
                transaction: parameters.single("transaction").map(str::to_owned),
                read_time: parameters.timestamp("readTime")?,
            };
            state
                .run_blocking(move |store| {
                    reads::list_documents(store, &database, &collection, list, owner.as_ref())
                })
                .await?
        }
        ApiCall::PatchDocument(name) => {
            let document: Document = read_json_body(body, request_schema::document()).await?;
            let patch = parameters.patch_parameters()?;
            state
                .run_blocking(move |store| run_patch(store, &name, document, patch, &*write_judge))
                .await?
        }
        ApiCall::DeleteDocument(name) => {
            let delete = parameters.delete_parameters()?;
            state
                .run_blocking(move |store| run_delete(store, &name, delete, &*write_judge))
                .await?;
            serde_json::json!({})
        }
    };
    Ok(Json(reply).into_response())
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

/// A request's query string, decoded: repeated keys keep every value, in order.
#[derive(Clone, Debug, Default, PartialEq)]
struct QueryParameters {
    pairs: Vec<(String, String)>,
}

impl QueryParameters {
    fn parse(query: &str) -> Result<QueryParameters, ServerError> {
        let mut pairs = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            pairs.push((
                decode_segment(&key.replace('+', " "))?,
                decode_segment(&value.replace('+', " "))?,
            ));
        }
        Ok(QueryParameters { pairs })
    }

    fn patch_parameters(&self) -> Result<DocumentWriteParameters, ServerError> {
        Ok(DocumentWriteParameters {
            update_mask: self.strings("updateMask.fieldPaths"),
            response_mask: self.field_paths("mask.fieldPaths")?,
            exists: self.boolean("currentDocument.exists")?,
            update_time: self.timestamp("currentDocument.updateTime")?,
        })
    }

    fn delete_parameters(&self) -> Result<DocumentWriteParameters, ServerError> {
        Ok(DocumentWriteParameters {
            exists: self.boolean("currentDocument.exists")?,
            update_time: self.timestamp("currentDocument.updateTime")?,
            ..DocumentWriteParameters::default()
        })
    }

    fn strings(&self, key: &str) -> Option<Vec<String>> {
        let values: Vec<String> = self
            .pairs
            .iter()
            .filter(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
            .collect();
        (!values.is_empty()).then_some(values)
    }

    fn single(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    fn field_paths(&self, key: &str) -> Result<Option<Vec<FieldPath>>, ServerError> {
        self.strings(key)
            .map(|paths| paths.iter().map(|path| FieldPath::parse(path)).collect())
            .transpose()
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ServerError> {
        self.single(key)
            .map(|text| match text {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(ServerError::InvalidArgument(format!(
                    "Invalid value at '{key}' (TYPE_BOOL), \"{text}\""
                ))),
            })
            .transpose()
    }

    fn integer(&self, key: &str) -> Result<Option<i64>, ServerError> {
        self.single(key)
            .map(|text| {
                text.parse().map_err(|_| {
                    ServerError::InvalidArgument(format!(
                        "Invalid value at '{key}' (TYPE_INT32), \"{text}\""
                    ))
                })
            })
            .transpose()
    }

    fn timestamp(&self, key: &str) -> Result<Option<Timestamp>, ServerError> {
        self.single(key)
            .map(|text| {
                Timestamp::parse(text).map_err(|error| {
                    ServerError::InvalidArgument(format!("Invalid value at '{key}': {error}"))
                })
            })
            .transpose()
    }
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

/// How many bytes of an oversized body are read (and thrown away) before answering 413, so
/// that a client still sending gets its answer instead of a reset connection.
const MAX_DRAINED_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Reads a JSON body of at most `MAX_REQUEST_BODY_BYTES`, whatever its content type, refuses
/// fields the API does not define (`request_schema`), and deserializes it. An empty body is
/// the default value, as on the emulator. A larger body is drained and answered 413.
async fn read_json_body<T: DeserializeOwned + Default>(
    mut body: Body,
    schema: &'static [(&'static str, request_schema::Shape)],
) -> Result<T, ServerError> {
    let mut bytes = Vec::new();
    let mut total = 0usize;
    loop {
        let frame =
            std::future::poll_fn(|context| std::pin::Pin::new(&mut body).poll_frame(context)).await;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|error| {
            ServerError::InvalidArgument(format!("the request body could not be read: {error}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total > MAX_DRAINED_BODY_BYTES {
            break;
        }
        if total <= MAX_REQUEST_BODY_BYTES {
            bytes.extend_from_slice(&data);
        }
    }
    if total > MAX_REQUEST_BODY_BYTES {
        return Err(ServerError::PayloadTooLarge {
            limit_bytes: MAX_REQUEST_BODY_BYTES,
        });
    }
    parse_json_body(&bytes, schema)
}

/// Parses a request body as `read_json_body` does; `auth` judges requests through this same
/// function, so what it judges is exactly what is then served (a JSON object with a repeated
/// key keeps its last value here, where deserializing straight into `T` would fail).
pub(crate) fn parse_json_body<T: DeserializeOwned + Default>(
    bytes: &[u8],
    schema: &'static [(&'static str, request_schema::Shape)],
) -> Result<T, ServerError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(ServerError::MalformedBody)?;
    // Serde would read a struct from a JSON array too; a request message is an object.
    if !json.is_object() {
        return Err(ServerError::InvalidArgument(
            "Payload isn't valid for request: the body must be a JSON object".into(),
        ));
    }
    request_schema::check_known_fields(&json, schema)?;
    serde_json::from_value(json).map_err(ServerError::MalformedBody)
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
        let parameters = QueryParameters::parse(
            "key=abc&mask.fieldPaths=a&mask.fieldPaths=%60odd%20key%60.x&currentDocument.exists=false",
        )
        .unwrap();
        let mask = parameters.field_paths("mask.fieldPaths").unwrap().unwrap();
        assert_eq!(
            mask.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["a", "`odd key`.x"]
        );
        assert_eq!(
            parameters.boolean("currentDocument.exists").unwrap(),
            Some(false)
        );
        let without_mask = QueryParameters::parse("key=abc").unwrap();
        assert_eq!(without_mask.field_paths("mask.fieldPaths").unwrap(), None);
    }
}
