//! `:batchGet`: read several documents by name in one request.

use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;
use crate::transaction::TransactionOptions;
use crate::value::Document;
use crate::write::DocumentMask;

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetRequest {
    #[serde(default)]
    pub documents: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<DocumentMask>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// Starts a transaction with these options and reads in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_transaction: Option<TransactionOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_time: Option<Timestamp>,
}

/// One element of the JSON array `:batchGet` answers with: `found` or `missing`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetResponseItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<Document>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_time: Option<Timestamp>,
}
