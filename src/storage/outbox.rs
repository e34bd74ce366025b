//! The outbox: units waiting for the server, dead letters, and what happens to a unit once the
//! engine decides (done, dead, rewritten, rejected).

use std::collections::BTreeMap;

use counterbook_sync::{DeadLetterReason, DocumentWrite, Unit};
use rexie::TransactionMode;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use super::bases::stored_base_copy;
use super::changes::ChangedDocuments;
use super::products::product_record;
use super::reversals::{undo_refused_reversal, Reversal, REVERSAL_UNDO_STORES};
use super::schema::{BASES, OUTBOX, PRODUCTS};
use super::server_documents::product_id_of_path;
use super::{from_js, to_js, Result, StorageError, Store};
use crate::model::Product;

/// An outbox record as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutboxRecord {
    pub(super) id: String,
    pub(super) unit: Unit,
    pub(super) state: OutboxRecordState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) reason: Option<DeadLetterReason>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum OutboxRecordState {
    Pending,
    Dead,
}

/// The outbox as found at start-up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutboxContents {
    pub pending: Vec<Unit>,
    /// Units that stopped for good, with the reason, waiting for a person.
    pub dead_letters: Vec<(Unit, DeadLetterReason)>,
}

/// What the app shell reads of the outbox before the sync engine is there: whose sign-in
/// sends each pending unit, and how many dead letters wait. Decoding whole units (their labels,
/// writes and reasons) is the engine's: the shell's wasm then carries none of that code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxSummary {
    /// The sender of each pending unit (`None`: a unit naming nobody), oldest first.
    pub pending_senders: Vec<Option<String>>,
    pub dead_letters: usize,
}

/// The fields of an outbox record that [`OutboxSummary`] reads (the others are skipped).
#[derive(Deserialize)]
struct OutboxRecordSummary {
    unit: UnitSender,
    state: OutboxRecordState,
}

#[derive(Deserialize)]
struct UnitSender {
    #[serde(default)]
    sender: Option<String>,
}

impl Store {
    /// Whose units wait in the outbox, and how many dead letters (see [`OutboxSummary`]).
    pub async fn outbox_summary(&self) -> Result<OutboxSummary> {
        let mut summary = OutboxSummary::default();
        for record in self.all::<OutboxRecordSummary>(OUTBOX).await? {
            match record.state {
                OutboxRecordState::Pending => summary.pending_senders.push(record.unit.sender),
                OutboxRecordState::Dead => summary.dead_letters += 1,
            }
        }
        Ok(summary)
    }

    /// The outbox: pending units and dead letters, oldest first.
    pub async fn outbox(&self) -> Result<OutboxContents> {
        let mut contents = OutboxContents::default();
        for record in self.all::<OutboxRecord>(OUTBOX).await? {
            match record.state {
                OutboxRecordState::Pending => contents.pending.push(record.unit),
                OutboxRecordState::Dead => contents.dead_letters.push((
                    record.unit,
                    record.reason.unwrap_or_else(|| DeadLetterReason::Text {
                        text: String::new(),
                    }),
                )),
            }
        }
        Ok(contents)
    }

    /// The unit reached the server exactly once: remove it from the outbox.
    pub async fn mark_unit_done(&self, unit_id: &str) -> Result<()> {
        self.delete_unit(unit_id).await
    }

    /// The user discarded a dead letter.
    pub async fn discard_unit(&self, unit_id: &str) -> Result<()> {
        self.delete_unit(unit_id).await
    }

    pub(super) async fn delete_unit(&self, unit_id: &str) -> Result<()> {
        self.delete_key(OUTBOX, unit_id).await
    }

    /// Flags a unit as a dead letter (`Some(reason)`) or pending again (`None`). A void or
    /// refund the server refused is instead undone on the tablet and leaves the outbox, in the
    /// same transaction ([`super::reversals::undo_refused_reversal`]): nothing says it
    /// happened, the bill says it was refused and why, and the units after it that touch the
    /// same documents (a refund of the same goods) are not held behind it. Returns whether the
    /// unit left the outbox so (the engine is then told to forget it).
    pub async fn set_dead_letter(
        &self,
        unit_id: &str,
        reason: Option<&DeadLetterReason>,
    ) -> Result<bool> {
        let mut stores = vec![OUTBOX];
        // Only a void or refund has records to undo (and only then are their stores opened).
        let reverses = match reason {
            Some(_) => self
                .pending_unit(unit_id)
                .await?
                .is_some_and(|unit| Reversal::of_unit(&unit).is_some()),
            None => false,
        };
        if reverses {
            stores.extend(REVERSAL_UNDO_STORES);
        }
        let transaction = self.transaction(&stores, TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = transaction
                .store(OUTBOX)
                .map_err(StorageError::from_rexie)?;
            let Some(value) = store
                .get(JsValue::from_str(unit_id))
                .await
                .map_err(StorageError::from_rexie)?
            else {
                return Ok((false, ChangedDocuments::new()));
            };
            let mut record: OutboxRecord = from_js(value)?;
            let newly_dead = record.state == OutboxRecordState::Pending && reason.is_some();
            if let (Some(reason), Some(reversal), true) = (
                reason,
                Reversal::of_unit(&record.unit),
                newly_dead && reverses,
            ) {
                // The bill keeps the server's words (the bills page says it was refused).
                let said = reason
                    .server_message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| reason.to_string());
                let changed =
                    undo_refused_reversal(&transaction, &record.unit, &reversal, &said).await?;
                store
                    .delete(JsValue::from_str(unit_id))
                    .await
                    .map_err(StorageError::from_rexie)?;
                return Ok((true, changed));
            }
            record.state = match reason {
                Some(_) => OutboxRecordState::Dead,
                None => OutboxRecordState::Pending,
            };
            record.reason = reason.cloned();
            store
                .put(&to_js(&record)?, None)
                .await
                .map_err(StorageError::from_rexie)?;
            Ok((false, ChangedDocuments::new()))
        }
        .await;
        let (dropped, changed) = Self::finish_with(transaction, outcome).await?;
        self.changes.publish(&changed);
        Ok(dropped)
    }

    /// The unit waiting in the outbox under this id, if any.
    pub async fn pending_unit(&self, unit_id: &str) -> Result<Option<Unit>> {
        let transaction = self.transaction(&[OUTBOX], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(OUTBOX)
            .map_err(StorageError::from_rexie)?;
        match store
            .get(JsValue::from_str(unit_id))
            .await
            .map_err(StorageError::from_rexie)?
        {
            Some(value) if !value.is_undefined() => Ok(Some(from_js::<OutboxRecord>(value)?.unit)),
            _ => Ok(None),
        }
    }

    /// Replaces a pending unit with a new version of it (merged by the engine), keeping its
    /// place in the outbox.
    pub async fn rewrite_unit(&self, unit: &Unit) -> Result<()> {
        let transaction = self.transaction(&[OUTBOX], TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = transaction
                .store(OUTBOX)
                .map_err(StorageError::from_rexie)?;
            let record = OutboxRecord {
                id: unit.id.clone(),
                unit: unit.clone(),
                state: OutboxRecordState::Pending,
                reason: None,
            };
            store
                .put(&to_js(&record)?, None)
                .await
                .map_err(StorageError::from_rexie)?;
            Ok(())
        }
        .await;
        Self::finish(transaction, outcome).await
    }

    /// Drops a unit a conflict rejected and shows its products as the server has them (their
    /// base copies), in one transaction. A product the server never had disappears. A void or
    /// refund is undone instead ([`super::reversals::undo_refused_reversal`], the conflict
    /// inbox saying why).
    pub async fn reject_unit(&self, unit_id: &str) -> Result<()> {
        let mut stores = vec![OUTBOX, BASES, PRODUCTS];
        let reverses = self
            .pending_unit(unit_id)
            .await?
            .is_some_and(|unit| Reversal::of_unit(&unit).is_some());
        if reverses {
            stores.extend(REVERSAL_UNDO_STORES);
            counterbook_firestore_wire::sort::sort_by(&mut stores, |a, b| a.cmp(b));
            stores.dedup();
        }
        let transaction = self.transaction(&stores, TransactionMode::ReadWrite)?;
        let mut changed = ChangedDocuments::new();
        let outcome = async {
            let outbox = transaction
                .store(OUTBOX)
                .map_err(StorageError::from_rexie)?;
            let key = JsValue::from_str(unit_id);
            let Some(value) = outbox
                .get(key.clone())
                .await
                .map_err(StorageError::from_rexie)?
            else {
                return Ok(());
            };
            let record: OutboxRecord = from_js(value)?;
            if let Some(reversal) = Reversal::of_unit(&record.unit).filter(|_| reverses) {
                changed = undo_refused_reversal(
                    &transaction,
                    &record.unit,
                    &reversal,
                    super::reversals::REFUSED_BY_CONFLICT,
                )
                .await?;
                return outbox.delete(key).await.map_err(StorageError::from_rexie);
            }
            let products = transaction
                .store(PRODUCTS)
                .map_err(StorageError::from_rexie)?;
            for write in &record.unit.writes {
                let Some(product_id) = product_id_of_path(&write.path) else {
                    continue;
                };
                let base = stored_base_copy(&transaction, &write.path).await?;
                let restored =
                    base.and_then(|base| Product::from_document(&base.to_document()).ok());
                changed.insert(PRODUCTS, product_id);
                match restored {
                    Some(product) => {
                        // The record it replaces holds the base copy, which it keeps.
                        let previous = products
                            .get(JsValue::from_str(product_id))
                            .await
                            .map_err(StorageError::from_rexie)?;
                        products
                            .put(&product_record(&product, previous.as_ref())?, None)
                            .await
                            .map_err(StorageError::from_rexie)?;
                    }
                    None => products
                        .delete(JsValue::from_str(product_id))
                        .await
                        .map_err(StorageError::from_rexie)?,
                }
            }
            outbox.delete(key).await.map_err(StorageError::from_rexie)
        }
        .await;
        Self::finish(transaction, outcome).await?;
        self.changes.publish(&changed);
        Ok(())
    }
}

/// The writes of every unit still in the outbox, by document path, oldest first.
pub(super) async fn pending_writes_by_path(
    outbox: &rexie::Store,
) -> Result<BTreeMap<String, Vec<DocumentWrite>>> {
    let mut by_path: BTreeMap<String, Vec<DocumentWrite>> = BTreeMap::new();
    // Keys are UUID v7 unit ids, so the store's order is creation order.
    for value in outbox
        .get_all(None, None)
        .await
        .map_err(StorageError::from_rexie)?
    {
        let record: OutboxRecord = from_js(value)?;
        if record.state == OutboxRecordState::Dead {
            continue;
        }
        for write in record.unit.writes {
            by_path.entry(write.path.clone()).or_default().push(write);
        }
    }
    Ok(by_path)
}
