//! Units of work: a user action's entity records, audit entries and outbox entry written in ONE
//! transaction, and the audit trail they leave.

use rexie::TransactionMode;
use wasm_bindgen::JsValue;

use super::changes::ChangedDocuments;
use super::outbox::{OutboxRecord, OutboxRecordState};
use super::products::product_record;
use super::schema::{AUDIT, BILLS, CUSTOMERS, OUTBOX, PAYMENTS, PRODUCTS, REFUNDS, STOCK_MOVES};
use super::{from_js, stored_values, to_js, Result, StorageError, Store};
use counterbook_shop::{AuditEntry, Record, UnitOfWork};
use counterbook_sync::Unit;

/// Puts `unit` in the outbox as pending, inside the caller's transaction.
async fn add_to_outbox(transaction: &rexie::Transaction, unit: &Unit) -> Result<()> {
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

/// A `counterbook-shop` record's store and id.
pub(super) fn record_key(record: &Record) -> (&'static str, &str) {
    match record {
        Record::Product(product) => (PRODUCTS, &product.id),
        Record::Customer(customer) => (CUSTOMERS, &customer.id),
        Record::Bill(bill) => (BILLS, &bill.id),
        Record::Payment(payment) => (PAYMENTS, &payment.id),
        Record::StockMove(stock_move) => (STOCK_MOVES, &stock_move.id),
        Record::Refund(refund) => (REFUNDS, &refund.id),
    }
}

/// A `counterbook-shop` record's IndexedDB form. A product keeps the base copy of `previous`,
/// the stored record it replaces (see [`product_record`]); other records ignore it.
pub(super) fn record_value(record: &Record, previous: Option<&JsValue>) -> Result<JsValue> {
    match record {
        Record::Product(product) => product_record(product, previous),
        // With the phone's digits and the folded name the counter's lookups read (a customer
        // created at the counter is found by name at once).
        Record::Customer(customer) => super::sales::customer_value(customer),
        Record::Bill(bill) => to_js(bill),
        Record::Payment(payment) => to_js(payment),
        Record::StockMove(stock_move) => to_js(stock_move),
        Record::Refund(refund) => to_js(refund),
    }
}

/// The ids of the products among `records`.
pub(super) fn product_ids(records: &[Record]) -> Vec<&str> {
    records
        .iter()
        .filter_map(|record| match record {
            Record::Product(product) => Some(product.id.as_str()),
            _ => None,
        })
        .collect()
}

impl Store {
    /// Writes one of `counterbook-shop`'s units of work (a sale, a product action, a slice of an
    /// import): its records, audit entries and outbox entry, all in ONE transaction, then
    /// announces the records it changed. If any part fails, nothing of it is kept.
    pub async fn commit_work(&self, work: &UnitOfWork) -> Result<()> {
        let rows: Vec<(&str, &str)> = work.records.iter().map(record_key).collect();
        let mut stores: Vec<&str> = rows.iter().map(|(store, _)| *store).collect();
        stores.push(OUTBOX);
        if !work.audit.is_empty() {
            stores.push(AUDIT);
        }
        counterbook_firestore_wire::sort::sort_by(&mut stores, |a, b| a.cmp(b));
        stores.dedup();
        let transaction = self.transaction(&stores, TransactionMode::ReadWrite)?;
        let outcome = async {
            // The products' stored records, whose base copies they keep.
            let products = product_ids(&work.records);
            let previous = if products.is_empty() {
                Default::default()
            } else {
                let store = transaction
                    .store(PRODUCTS)
                    .map_err(StorageError::from_rexie)?;
                stored_values(&store, &products).await?
            };
            for (record, (store_name, id)) in work.records.iter().zip(&rows) {
                let previous = previous.get(*id).filter(|_| *store_name == PRODUCTS);
                transaction
                    .store(store_name)
                    .map_err(StorageError::from_rexie)?
                    .put(&record_value(record, previous)?, None)
                    .await
                    .map_err(StorageError::from_rexie)?;
            }
            if !work.audit.is_empty() {
                let audit_store = transaction.store(AUDIT).map_err(StorageError::from_rexie)?;
                for entry in &work.audit {
                    // Append-only: `add` refuses to overwrite an existing entry.
                    audit_store
                        .add(&to_js(entry)?, None)
                        .await
                        .map_err(StorageError::from_rexie)?;
                }
            }
            add_to_outbox(&transaction, &work.unit).await
        }
        .await;
        Self::finish(transaction, outcome).await?;
        let mut changed = ChangedDocuments::new();
        for (store_name, id) in &rows {
            changed.insert(store_name, id);
        }
        self.changes.publish(&changed);
        Ok(())
    }

    /// Writes one unit of work: its entity records, its audit entries and its outbox entry,
    /// all in ONE transaction (see [`Store::commit_work`]). If any part fails, nothing of it
    /// is kept.
    pub async fn commit_unit(
        &self,
        records: &[Record],
        audit: &[AuditEntry],
        unit: &Unit,
    ) -> Result<()> {
        self.commit_work(&UnitOfWork {
            records: records.to_vec(),
            audit: audit.to_vec(),
            unit: unit.clone(),
        })
        .await
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
