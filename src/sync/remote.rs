//! The Firestore REST client: the only module that calls `fetch`.
//!
//! It speaks `counterbook-firestore-wire` types and turns every way a request can fail into a
//! [`PushFailure`] the sync engine understands: no reply at all (`Network`), a Firestore error
//! body or any other HTTP error (`Server`), or a success whose body is not what Firestore sends
//! (`MalformedReply`). Nothing here panics on a bad reply.

use counterbook_firestore_wire::{
    BatchGetRequest, BatchGetResponseItem, Code, CommitRequest, CommitResponse, Document,
    ErrorResponse, RunQueryRequest, RunQueryResponseItem, StructuredQuery, Timestamp,
};
use counterbook_sync::PushFailure;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::global_scope;
use crate::sync::identity::BearerToken;

/// How long one request may take before it is abandoned (and its outcome treated as unknown).
const REQUEST_TIMEOUT_MILLIS: i32 = 20_000;

/// A `:runQuery` reply: the documents in query order and the reply's `readTime`.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryReply {
    pub documents: Vec<Document>,
    pub read_time: Option<Timestamp>,
}

/// One Firestore-compatible backend: our server, the emulator, or Cloud Firestore.
#[derive(Clone)]
pub struct Remote {
    endpoint: String,
    project: String,
    database: String,
    /// The ID token every request carries (`Authorization: Bearer`), when someone is signed in.
    bearer: BearerToken,
}

impl Remote {
    pub fn new(endpoint: &str, project: &str, bearer: BearerToken) -> Remote {
        Remote {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            project: project.to_owned(),
            database: "(default)".to_owned(),
            bearer,
        }
    }

    fn documents_url(&self) -> String {
        format!(
            "{}/v1/projects/{}/databases/{}/documents",
            self.endpoint, self.project, self.database
        )
    }

    /// `POST documents:commit`, with `as_token` instead of the bearer token when given (a
    /// unit goes with its sender's own sign-in).
    pub async fn commit(
        &self,
        request: &CommitRequest,
        as_token: Option<String>,
    ) -> Result<CommitResponse, PushFailure> {
        let url = format!("{}:commit", self.documents_url());
        let body = to_json(request)?;
        let (_, text) = self.send_as("POST", &url, Some(body), as_token).await?;
        parse_reply(&text)
    }

    /// `GET documents/{path}`; `Ok(None)` when the document does not exist.
    pub async fn get_document(&self, path: &str) -> Result<Option<Document>, PushFailure> {
        self.get_document_as(path, None).await
    }

    /// [`Remote::get_document`] with `as_token` instead of the bearer token when given (the
    /// reads about a unit carry its sender's token, as its commit does).
    pub async fn get_document_as(
        &self,
        path: &str,
        as_token: Option<String>,
    ) -> Result<Option<Document>, PushFailure> {
        let url = format!("{}/{path}", self.documents_url());
        match self.send_as("GET", &url, None, as_token).await {
            Ok((_, text)) => parse_reply(&text).map(Some),
            Err(PushFailure::Server {
                code: Code::NotFound,
                ..
            }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// `POST documents:batchGet` of documents by path (`shops/s1/products/p1`): the ones that
    /// exist, in one request.
    pub async fn batch_get(&self, paths: &[String]) -> Result<Vec<Document>, PushFailure> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let database = format!("projects/{}/databases/{}", self.project, self.database);
        let request = BatchGetRequest {
            documents: paths
                .iter()
                .map(|path| format!("{database}/documents/{path}"))
                .collect(),
            ..BatchGetRequest::default()
        };
        let url = format!("{}:batchGet", self.documents_url());
        let (_, text) = self.send("POST", &url, Some(to_json(&request)?)).await?;
        let items: Vec<BatchGetResponseItem> = parse_reply(&text)?;
        Ok(items.into_iter().filter_map(|item| item.found).collect())
    }

    /// `POST {parent}:runQuery`, where `parent_path` is a document path such as `shops/s1`: the
    /// documents, and the server's `readTime` (pulls settle their overlap window on it).
    pub async fn run_query(
        &self,
        parent_path: &str,
        query: &StructuredQuery,
    ) -> Result<QueryReply, PushFailure> {
        let url = format!("{}/{parent_path}:runQuery", self.documents_url());
        let request = RunQueryRequest {
            structured_query: Some(query.clone()),
            ..RunQueryRequest::default()
        };
        let (_, text) = self.send("POST", &url, Some(to_json(&request)?)).await?;
        let items: Vec<RunQueryResponseItem> = parse_reply(&text)?;
        Ok(QueryReply {
            read_time: items.iter().filter_map(|item| item.read_time).max(),
            documents: items.into_iter().filter_map(|item| item.document).collect(),
        })
    }

    /// Sends one request; `Ok` only for a 2xx status, with the body text.
    async fn send(
        &self,
        method: &str,
        url: &str,
        body: Option<String>,
    ) -> Result<(u16, String), PushFailure> {
        self.send_as(method, url, body, None).await
    }

    /// [`Remote::send`] with `as_token` instead of the bearer token when given.
    async fn send_as(
        &self,
        method: &str,
        url: &str,
        body: Option<String>,
        as_token: Option<String>,
    ) -> Result<(u16, String), PushFailure> {
        let network = |what: &str, error: JsValue| {
            PushFailure::Network(format!("{what}: {}", describe_js_error(&error)))
        };
        let init = web_sys::RequestInit::new();
        init.set_method(method);
        let controller = web_sys::AbortController::new().map_err(|e| network("abort", e))?;
        init.set_signal(Some(&controller.signal()));
        let headers = web_sys::Headers::new().map_err(|e| network("headers", e))?;
        if let Some(body) = &body {
            init.set_body(&JsValue::from_str(body));
            headers
                .set("Content-Type", "application/json")
                .map_err(|e| network("headers", e))?;
        }
        if let Some(token) = as_token.or_else(|| self.bearer.get()) {
            headers
                .set("Authorization", &format!("Bearer {token}"))
                .map_err(|e| network("headers", e))?;
        }
        init.set_headers(&headers);
        let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(|e| {
            PushFailure::Network(format!("bad request URL {url}: {}", describe_js_error(&e)))
        })?;

        let abort = wasm_bindgen::closure::Closure::once_into_js(move || controller.abort());
        let timer = global_scope::set_timeout(abort.unchecked_ref(), REQUEST_TIMEOUT_MILLIS);
        let outcome = async {
            let response: web_sys::Response = JsFuture::from(global_scope::fetch(&request))
                .await
                .map_err(|e| network("request failed", e))?
                .unchecked_into();
            // The body's bytes, copied once into wasm memory: `text()` would decode them into
            // a JavaScript string that wasm-bindgen then encodes back to UTF-8 (a first sync's
            // replies are 37 MB for 50,000 products).
            let bytes_promise = response
                .array_buffer()
                .map_err(|e| network("reading reply", e))?;
            let bytes = JsFuture::from(bytes_promise)
                .await
                .map_err(|e| network("reading reply", e))?;
            let text = utf8_text(js_sys::Uint8Array::new(&bytes).to_vec());
            Ok::<_, PushFailure>((response, text))
        }
        .await;
        if let Some(timer) = timer {
            global_scope::clear_timeout(timer);
        }
        let (response, text) = outcome?;
        let status = response.status();
        if (200..300).contains(&status) {
            return Ok((status, text));
        }
        let retry_after_millis = response
            .headers()
            .get("Retry-After")
            .ok()
            .flatten()
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(|seconds| seconds.saturating_mul(1000));
        Err(server_failure(status, &text, retry_after_millis))
    }
}

/// Reads an error reply: Firestore's `{"error": {...}}` body, or whatever a proxy sent.
fn server_failure(status: u16, text: &str, retry_after_millis: Option<u64>) -> PushFailure {
    match serde_json::from_str::<ErrorResponse>(text) {
        Ok(reply) => PushFailure::Server {
            http_status: status,
            code: reply.error.status,
            message: reply.error.message,
            retry_after_millis,
        },
        Err(_) => {
            let excerpt: String = text.chars().take(200).collect();
            PushFailure::Server {
                http_status: status,
                code: Code::from_http_status(status),
                message: format!("HTTP {status}: {excerpt}"),
                retry_after_millis,
            }
        }
    }
}

/// A reply's body as text, as `Response.text()` reads it: UTF-8 with a leading byte order
/// mark dropped, a malformed sequence read as U+FFFD.
fn utf8_text(bytes: Vec<u8>) -> String {
    let text = String::from_utf8(bytes)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned());
    match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

fn parse_reply<T: DeserializeOwned>(text: &str) -> Result<T, PushFailure> {
    serde_json::from_str(text).map_err(|e| {
        let excerpt: String = text.chars().take(200).collect();
        PushFailure::MalformedReply(format!("{e} in {excerpt:?}"))
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, PushFailure> {
    // Serializing our own wire types cannot fail (no non-string map keys); keep it an error anyway.
    serde_json::to_string(value)
        .map_err(|e| PushFailure::MalformedReply(format!("cannot encode request: {e}")))
}

fn describe_js_error(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn firestore_error_bodies_keep_their_code_and_message() {
        let failure = server_failure(
            409,
            r#"{"error":{"code":409,"message":"entity already exists","status":"ALREADY_EXISTS"}}"#,
            None,
        );
        assert_eq!(
            failure,
            PushFailure::Server {
                http_status: 409,
                code: Code::AlreadyExists,
                message: "entity already exists".into(),
                retry_after_millis: None,
            }
        );
    }

    #[wasm_bindgen_test]
    fn a_proxy_error_page_becomes_a_status_from_the_http_code() {
        let failure = server_failure(502, "<html>Bad Gateway</html>", Some(5_000));
        let PushFailure::Server {
            code,
            message,
            retry_after_millis,
            ..
        } = failure
        else {
            panic!("expected a server failure");
        };
        assert_eq!(code, Code::Unavailable);
        assert!(message.contains("Bad Gateway"));
        assert_eq!(retry_after_millis, Some(5_000));
    }

    /// Guards reading replies as bytes: the text must be what `Response.text()` makes of the
    /// same body (a byte order mark, characters beyond ASCII, malformed sequences).
    #[wasm_bindgen_test]
    async fn a_reply_read_as_bytes_is_the_text_the_browser_reads() {
        let bodies: [&[u8]; 5] = [
            b"[{\"done\":true}]",
            "\u{feff}{\"name\":\"Chai \u{0939}\u{093f}\u{0902} \u{1f375}\"}".as_bytes(),
            b"ok \xff\xfe half \xe0\xa4 end",
            b"\xef\xbb\xbf\xef\xbb\xbftwo marks",
            b"",
        ];
        for body in bodies {
            let response = web_sys::Response::new_with_opt_u8_array(Some(&mut body.to_vec()))
                .expect("a response");
            let read = JsFuture::from(response.text().expect("text"))
                .await
                .expect("the body")
                .as_string()
                .expect("a string");
            assert_eq!(utf8_text(body.to_vec()), read, "body {body:?}");
        }
    }

    #[wasm_bindgen_test]
    fn a_success_with_a_malformed_body_is_reported_not_panicked() {
        let failure = parse_reply::<CommitResponse>("<html>captive portal</html>").unwrap_err();
        assert!(
            matches!(failure, PushFailure::MalformedReply(ref m) if m.contains("captive portal"))
        );
    }
}
