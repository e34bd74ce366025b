//! Request bodies of the Firestore REST API: read up to Cloud Firestore's size limit whatever
//! their content type (`text/plain` is what the Firebase JS SDK posts), an empty body meaning
//! `{}` as on the emulator, unknown fields refused (`request_schema`), then deserialized once,
//! straight into the typed request. `routes` reads each body once with `read_json_body` and
//! has `auth` judge that parsed value, so what is judged is exactly what is served.

use axum::body::{Body, HttpBody};
use serde::de::DeserializeOwned;

use crate::error::ServerError;
use crate::request_schema;

/// Cloud Firestore's request size limit.
pub const MAX_REQUEST_BODY_BYTES: usize = 11 * 1024 * 1024;

/// How many bytes of an oversized body are read (and thrown away) before answering 413, so
/// that a client still sending gets its answer instead of a reset connection.
const MAX_DRAINED_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Reads a JSON body of at most `MAX_REQUEST_BODY_BYTES`, whatever its content type, refuses
/// fields the API does not define (`request_schema`), and deserializes it. An empty body is
/// the default value, as on the emulator. A larger body is drained and answered 413.
pub(crate) async fn read_json_body<T: DeserializeOwned + Default>(
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
            let error = error.into_inner();
            match error.downcast_ref::<crate::connections::BodyReadTimedOut>() {
                Some(timed_out) => ServerError::DeadlineExceeded(timed_out.to_string()),
                None => ServerError::InvalidArgument(format!(
                    "the request body could not be read: {error}"
                )),
            }
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

/// Parses a request body once, straight into the request type: the unknown-field check
/// (`request_schema`) streams over the bytes without building a JSON tree, then serde reads the
/// typed request. No `serde_json::Value` of the body is ever built (a 10.7 MiB body of tiny
/// objects took 956 MB that way). A key repeated inside one message is refused (the emulator
/// keeps the last one); the route then serves, and its judge judges, this one value.
pub(crate) fn parse_json_body<T: DeserializeOwned + Default>(
    bytes: &[u8],
    schema: &'static [(&'static str, request_schema::Shape)],
) -> Result<T, ServerError> {
    let Some(first) = bytes.iter().find(|byte| !byte.is_ascii_whitespace()) else {
        return Ok(T::default());
    };
    // Serde would read a struct from a JSON array too; a request message is an object.
    if *first != b'{' {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Err(error) => Err(ServerError::MalformedBody(error)),
            Ok(_) => Err(ServerError::InvalidArgument(
                "Payload isn't valid for request: the body must be a JSON object".into(),
            )),
        };
    }
    request_schema::check_known_fields(bytes, schema)?;
    serde_json::from_slice(bytes).map_err(ServerError::MalformedBody)
}
