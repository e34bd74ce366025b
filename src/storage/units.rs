//! Units of work: a user action's entity records, audit entries and outbox entry written in ONE
//! transaction, and the audit trail they leave.

use rexie::TransactionMode;
use wasm_bindgen::JsValue;

use super::outbox::{OutboxRecord, OutboxRecordState};
use super::schema::{AUDIT, BILLS, CUSTOMERS, EXPENSES, OUTBOX, PAYMENTS, PRODUCTS, STOCK_MOVES};
use super::{from_js, to_js, Result, StorageError, Store};
use crate::entities::{AuditEntry, EntityRecord};
use counterbook_sync::Unit;

fn store_of(record: &EntityRecord) -> &'static str {
    match record {
        EntityRecord::Product(_) => PRODUCTS,
        EntityRecord::Customer(_) => CUSTOMERS,
        EntityRecord::Bill(_) => BILLS,
        EntityRecord::Payment(_) => PAYMENTS,
        EntityRecord::Expense(_) => EXPENSES,
        EntityRecord::StockMove(_) => STOCK_MOVES,
    }
}

fn record_to_js(record: &EntityRecord) -> Result<JsValue> {
    match record {
        EntityRecord::Product(product) => to_js(product),
        EntityRecord::Customer(customer) => {
            // The phone index holds digits only, so lookups ignore spaces and dashes.
            let mut customer = customer.clone();
            customer.phone_digits = customer
                .phone
                .as_ref()
                .map(|p| p.chars().filter(char::is_ascii_digit).collect());
            to_js(&customer)
        }
        EntityRecord::Bill(bill) => to_js(bill),
        EntityRecord::Payment(payment) => to_js(payment),
        EntityRecord::Expense(expense) => to_js(expense),
        EntityRecord::StockMove(stock_move) => to_js(stock_move),
    }
}

impl Store {
    /// Writes one unit of work: its entity records, its audit entries and its outbox entry,
    /// all in ONE transaction. If any part fails, nothing of it is kept.
    pub async fn commit_unit(
        &self,
        records: &[EntityRecord],
        audit: &[AuditEntry],
        unit: &Unit,
    ) -> Result<()> {
        let mut stores: Vec<&str> = records.iter().map(store_of).collect();
        stores.push(OUTBOX);
        if !audit.is_empty() {
            stores.push(AUDIT);
        }
        stores.sort_unstable();
        stores.dedup();
        let transaction = self.transaction(&stores, TransactionMode::ReadWrite)?;
        let outcome = async {
            for record in records {
                let store = transaction
                    .store(store_of(record))
                    .map_err(StorageError::from_rexie)?;
                store
                    .put(&record_to_js(record)?, None)
                    .await
                    .map_err(StorageError::from_rexie)?;
            }
            for entry in audit {
                let audit_store = transaction.store(AUDIT).map_err(StorageError::from_rexie)?;
                // Append-only: `add` refuses to overwrite an existing entry.
                audit_store
                    .add(&to_js(entry)?, None)
                    .await
                    .map_err(StorageError::from_rexie)?;
            }
            let record = OutboxRecord {
                id: unit.id.clone(),
                unit: unit.clone(),
                state: OutboxRecordState::Pending,
                reason: None,
            };
            // `add`, not `put`: a unit id is never reused, and a clash must fail the whole unit.
            transaction
                .store(OUTBOX)
                .map_err(StorageError::from_rexie)?
                .add(&to_js(&record)?, None)
                .await
                .map_err(StorageError::from_rexie)?;
            Ok(())
        }
        .await;
        Self::finish(transaction, outcome).await
    }

    /// The audit trail, oldest first.
    pub async fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
        let transaction = self.transaction(&[AUDIT], TransactionMode::ReadOnly)?;
        let store = transaction.store(AUDIT).map_err(StorageError::from_rexie)?;
        let index = store.index("atMillis").map_err(StorageError::from_rexie)?;
        let values = index
            .get_all(None, None)
            .await
            .map_err(StorageError::from_rexie)?;
        values.into_iter().map(from_js).collect()
    }
}
