//! `TransactionOptions`: how a transaction is opened, by `:beginTransaction` (`options`) or by a
//! read that starts one (`newTransaction`).

use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<ReadOnlyOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_write: Option<ReadWriteOptions>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadOnlyOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_time: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadWriteOptions {
    /// The id of the transaction this one retries, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_transaction: Option<String>,
}
