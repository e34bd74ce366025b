//! The Firestore REST surface under `/v1/projects/{project}/databases/{database}/documents…`.
//!
//! One handler takes every `/v1` request (axum's router cannot match Firestore's method
//! suffixes inside nested paths): it parses the path into an `ApiCall` (`api_call`), has it
//! authorized (`auth::authorize`), reads its body (`request_body`: any content type, `{}` when
//! empty, unknown fields refused) and its query string, and dispatches to the operations
//! (`commit`, `reads`, the store's transactions). Every failure becomes the Firestore-shaped
//! JSON of `ServerError`.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use counterbook_firestore_wire::{CommitRequest, CommitResponse, Document, Timestamp};

use crate::aggregation::RunAggregationQueryRequest;
use crate::api_call::{decode_segment, parse_api_call, ApiCall};
use crate::auth::JudgedBody;
use crate::commit::{run_commit, run_delete, run_patch, DocumentWriteParameters};
use crate::error::ServerError;
use crate::field_path::FieldPath;
use crate::reads::{self, BatchGetRequest, ListParameters, RunQueryRequest};
use crate::request_body::read_json_body;
use crate::request_schema;
use crate::transaction::{BeginTransactionRequest, RollbackRequest};
use crate::AppState;

/// The routes of the Firestore REST API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1", any(handle_api_request))
        .route("/v1/{*rest}", any(handle_api_request))
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
    let auth = state.auth().map(|auth| &**auth);
    let authorization = crate::auth::authorize(auth, &call, request.headers())?;
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
            let judged = JudgedBody::RunQuery {
                parent: &parent,
                request: &body,
            };
            crate::auth::authorize_body(auth, &authorization, judged)?;
            let text = state
                .run_blocking(move |store| {
                    reads::run_query(store, &database, &parent, body, owner.as_ref())
                })
                .await?;
            return Ok(json_text_response(text));
        }
        ApiCall::RunAggregationQuery { database, parent } => {
            let body: RunAggregationQueryRequest =
                read_json_body(body, request_schema::run_aggregation_query_request()).await?;
            let judged = JudgedBody::RunAggregationQuery {
                parent: &parent,
                request: &body,
            };
            crate::auth::authorize_body(auth, &authorization, judged)?;
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
            crate::auth::authorize_body(auth, &authorization, JudgedBody::BatchGet(&body))?;
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

/// A reply already written as JSON text, sent as [`Json`] sends a value.
fn json_text_response(text: String) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        text,
    )
        .into_response()
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

#[cfg(test)]
mod tests {
    use super::*;

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
