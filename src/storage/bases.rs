//! The record form of base copies ([`BaseCopy`]): a record of the `bases` store, or, for a
//! product the tablet shows, the `base` field of the product's own record (schema 7, see
//! `products`). The fields are kept as one JSON text (Firestore's REST form), not as a tree of
//! objects: IndexedDB clones every value it stores, and an empty tablet's first sync stores one
//! base copy per document, so a string is much cheaper to put than a few dozen nested objects.
//! Records written before (`fields` as objects) are read as they are.

use std::collections::BTreeMap;

use counterbook_firestore_wire::Value;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use super::products::embedded_base;
use super::schema::{BASES, PRODUCTS};
use super::server_documents::product_id_of_path;
use super::{from_js, many_to_js, Result, StorageError};
use crate::entities::BaseCopy;

/// A base copy as written.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BaseCopyRecordOut<'a> {
    path: &'a str,
    fields_json: String,
    update_time_micros: i64,
}

impl BaseCopyRecordOut<'_> {
    pub(super) fn of(copy: &BaseCopy) -> Result<BaseCopyRecordOut<'_>> {
        Ok(BaseCopyRecordOut {
            path: &copy.path,
            fields_json: serde_json::to_string(&copy.fields).map_err(|e| {
                StorageError::Transaction(format!("cannot encode a base copy: {e}"))
            })?,
            update_time_micros: copy.update_time_micros,
        })
    }
}

/// A base copy as read: either form.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BaseCopyRecordIn {
    path: String,
    #[serde(default)]
    fields_json: Option<String>,
    #[serde(default)]
    fields: Option<BTreeMap<String, Value>>,
    update_time_micros: i64,
}

/// Base copies as their records, in order, made at once (see [`many_to_js`]).
pub(super) fn base_copies_to_js(copies: &[&BaseCopy]) -> Result<Vec<JsValue>> {
    let records = copies
        .iter()
        .map(|copy| BaseCopyRecordOut::of(copy))
        .collect::<Result<Vec<_>>>()?;
    many_to_js(&records)
}

/// The `updateTimeMicros` of a stored base copy's record, read without decoding its fields.
pub(super) fn base_update_time(value: &JsValue) -> Option<i64> {
    js_sys::Reflect::get(value, &JsValue::from_str("updateTimeMicros"))
        .ok()?
        .as_f64()
        .map(|micros| micros as i64)
}

/// A stored base copy's record (`undefined` and `null` read as none), with its update time.
pub(super) fn stored_base(value: Option<JsValue>) -> Option<(JsValue, i64)> {
    let value = value.filter(|value| value.is_object())?;
    let micros = base_update_time(&value)?;
    Some((value, micros))
}

/// The newer of two stored base copies' records (`first` when they are as new).
pub(super) fn newer_base(
    first: Option<(JsValue, i64)>,
    second: Option<(JsValue, i64)>,
) -> Option<(JsValue, i64)> {
    match (first, second) {
        (Some(first), Some(second)) if second.1 > first.1 => Some(second),
        (Some(first), _) => Some(first),
        (None, second) => second,
    }
}

/// A base copy read from its record (either form).
pub(super) fn base_copy_from_js(value: JsValue) -> Result<BaseCopy> {
    let record: BaseCopyRecordIn = from_js(value)?;
    let fields = match (record.fields_json, record.fields) {
        (Some(text), _) => serde_json::from_str(&text)
            .map_err(|e| StorageError::Corrupt(format!("base copy of {}: {e}", record.path)))?,
        (None, Some(fields)) => fields,
        (None, None) => BTreeMap::new(),
    };
    Ok(BaseCopy {
        path: record.path,
        fields,
        update_time_micros: record.update_time_micros,
    })
}

/// The stored base copy of the document at `path`, inside the caller's `transaction` (which
/// must cover `bases`, and `products` for a product's path): a product's is in its record, or
/// in `bases` once the product is gone (the newer of the two if both are there); any other
/// document's is in `bases`.
pub(super) async fn stored_base_copy(
    transaction: &rexie::Transaction,
    path: &str,
) -> Result<Option<BaseCopy>> {
    let store = |name: &str| transaction.store(name).map_err(StorageError::from_rexie);
    let in_bases = store(BASES)?
        .get(JsValue::from_str(path))
        .await
        .map_err(StorageError::from_rexie)?;
    let in_record = match product_id_of_path(path) {
        Some(id) => store(PRODUCTS)?
            .get(JsValue::from_str(id))
            .await
            .map_err(StorageError::from_rexie)?
            .filter(JsValue::is_object)
            .and_then(|record| embedded_base(&record)),
        None => None,
    };
    newer_base(stored_base(in_record), stored_base(in_bases))
        .map(|(value, _)| base_copy_from_js(value))
        .transpose()
}

/// The stores [`stored_base_copy`] reads for the document at `path`.
pub(super) fn stores_of_base_copy(path: &str) -> &'static [&'static str] {
    if product_id_of_path(path).is_some() {
        &[BASES, PRODUCTS]
    } else {
        &[BASES]
    }
}
