//! The record form of base copies ([`BaseCopy`]) in the `bases` store. The fields are kept as
//! one JSON text (Firestore's REST form), not as a tree of objects: IndexedDB clones every
//! value it stores, and an empty tablet's first sync stores one base copy per document, so a
//! string is much cheaper to put than a few dozen nested objects. Records written before
//! (`fields` as objects) are read as they are.

use std::collections::BTreeMap;

use counterbook_firestore_wire::Value;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use super::{from_js, many_to_js, Result, StorageError};
use crate::entities::BaseCopy;

/// A base copy as written.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BaseCopyRecordOut<'a> {
    path: &'a str,
    fields_json: String,
    update_time_micros: i64,
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
pub(super) fn base_copies_to_js(copies: &[BaseCopy]) -> Result<Vec<JsValue>> {
    let records = copies
        .iter()
        .map(|copy| {
            Ok(BaseCopyRecordOut {
                path: &copy.path,
                fields_json: serde_json::to_string(&copy.fields).map_err(|e| {
                    StorageError::Transaction(format!("cannot encode a base copy: {e}"))
                })?,
                update_time_micros: copy.update_time_micros,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    many_to_js(&records)
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
