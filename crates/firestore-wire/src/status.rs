//! Errors on the wire: `{"error": {"code": 409, "message": "...", "status": "ALREADY_EXISTS"}}`.

use serde::{Deserialize, Serialize};

/// The canonical gRPC status codes (`google.rpc.Code`), by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    Ok,
    Cancelled,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
    /// Also what any status name we do not know becomes.
    #[serde(other)]
    Unknown,
}

impl Code {
    /// The HTTP status Google's REST front ends use for this code.
    pub fn http_status(self) -> u16 {
        match self {
            Code::Ok => 200,
            Code::Cancelled => 499,
            Code::Unknown | Code::Internal | Code::DataLoss => 500,
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
            Code::Unauthenticated => 401,
        }
    }

    /// The code to assume when a reply carries only an HTTP status (a proxy's error page, say).
    pub fn from_http_status(status: u16) -> Code {
        match status {
            200..=299 => Code::Ok,
            400 => Code::InvalidArgument,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::NotFound,
            409 => Code::Aborted,
            429 => Code::ResourceExhausted,
            499 => Code::Cancelled,
            501 => Code::Unimplemented,
            502 | 503 => Code::Unavailable,
            504 => Code::DeadlineExceeded,
            _ => Code::Unknown,
        }
    }
}

/// `google.rpc.Status` as the REST API writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The HTTP status code.
    pub code: u16,
    #[serde(default)]
    pub message: String,
    pub status: Code,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<serde_json::Value>,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Status {
            code: code.http_status(),
            message: message.into(),
            status: code,
            details: Vec::new(),
        }
    }
}

/// The whole error body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: Status,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulator_error_body_round_trips() {
        let body =
            r#"{"error":{"code":409,"message":"entity already exists","status":"ALREADY_EXISTS"}}"#;
        let parsed: ErrorResponse = serde_json::from_str(body).unwrap();
        assert_eq!(parsed.error.status, Code::AlreadyExists);
        assert_eq!(parsed.error.code, 409);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), body);
    }

    #[test]
    fn unknown_status_names_become_unknown() {
        let parsed: ErrorResponse =
            serde_json::from_str(r#"{"error":{"code":500,"message":"x","status":"NEW_CODE"}}"#)
                .unwrap();
        assert_eq!(parsed.error.status, Code::Unknown);
    }

    #[test]
    fn http_status_and_code_agree_for_the_codes_sync_depends_on() {
        for code in [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::NotFound,
            Code::ResourceExhausted,
            Code::Unavailable,
            Code::DeadlineExceeded,
        ] {
            assert_eq!(Code::from_http_status(code.http_status()), code);
        }
    }
}
