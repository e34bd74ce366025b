//! Units of work: a user action's entity records, audit entries and outbox entry written in ONE
//! transaction, and the audit trail they leave.

use rexie::TransactionMode;
use wasm_bindgen::JsValue;

use super::changes::ChangedDocuments;
use super::outbox::{OutboxRecord, OutboxRecordState};
use super::products::product_to_js;
use super::schema::{AUDIT, BILLS, CUSTOMERS, OUTBOX, PAYMENTS, PRODUCTS, REFUNDS, STOCK_MOVES};
use super::{from_js, to_js, Result, StorageError, Store};
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

/// A `counterbook-shop` record's store, id and IndexedDB form.
pub(super) fn shop_record(record: &Record) -> Result<(&'static str, &str, JsValue)> {
    Ok(match record {
        Record::Product(product) => (PRODUCTS, &product.id, product_to_js(product)?),
        // With the phone's digits and the folded name the counter's lookups read (a customer
        // created at the counter is found by name at once).
        Record::Customer(customer) => (
            CUSTOMERS,
            &customer.id,
            super::sales::customer_value(customer)?,
        ),
        Record::Bill(bill) => (BILLS, &bill.id, to_js(bill)?),
        Record::Payment(payment) => (PAYMENTS, &payment.id, to_js(payment)?),
        Record::StockMove(stock_move) => (STOCK_MOVES, &stock_move.id, to_js(stock_move)?),
        Record::Refund(refund) => (REFUNDS, &refund.id, to_js(refund)?),
    })
}

impl Store {
    /// Writes one of `counterbook-shop`'s units of work (a sale, a product action, a slice of an
    /// import): its records, audit entries and outbox entry, all in ONE transaction, then
    /// announces the records it changed. If any part fails, nothing of it is kept.
    pub async fn commit_work(&self, work: &UnitOfWork) -> Result<()> {
        let mut rows = Vec::with_capacity(work.records.len());
        for record in &work.records {
            rows.push(shop_record(record)?);
        }
        let mut stores: Vec<&str> = rows.iter().map(|(store, _, _)| *store).collect();
        stores.push(OUTBOX);
        if !work.audit.is_empty() {
            stores.push(AUDIT);
        }
        counterbook_firestore_wire::sort::sort_by(&mut stores, |a, b| a.cmp(b));
        stores.dedup();
        let transaction = self.transaction(&stores, TransactionMode::ReadWrite)?;
        let outcome = async {
            for (store_name, _, value) in &rows {
                transaction
                    .store(store_name)
                    .map_err(StorageError::from_rexie)?
                    .put(value, None)
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
        for (store_name, id, _) in &rows {
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
