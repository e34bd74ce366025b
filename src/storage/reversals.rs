//! Voids and refunds of a completed bill, each in ONE IndexedDB transaction: the bill (as this
//! tablet has it, or as fetched from the server when another tablet sold it), its products, its
//! customer and the refunds made of it so far are read inside the transaction and handed to the
//! caller's `build` (the shop's pure `void_bill` or `refund_bill`), and what it returns (the bill
//! marked void, stock back up, stock moves, payments refunded, a refund record, the customer's
//! balance, audit, outbox) is written in the same transaction. So two tabs cannot void one bill
//! twice, a refund never gives back more than is left, and either all of it is on the tablet
//! or none of it is.

use counterbook_shop::{Bill, Customer, Product, Record, Refund, UnitOfWork};
use futures::future::{try_join3, try_join_all, LocalBoxFuture};
use rexie::{KeyRange, TransactionMode};
use wasm_bindgen::JsValue;

use super::outbox::{OutboxRecord, OutboxRecordState};
use super::schema::{AUDIT, BILLS, CUSTOMERS, OUTBOX, PAYMENTS, PRODUCTS, REFUNDS, STOCK_MOVES};
use super::{from_js, key_range, to_js, StorageError, Store};

/// Why a void or refund was not recorded. Nothing of it is kept in any case.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordOnBillError<E> {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The shop's rules refuse it (already void, more than is left, no reason, ...).
    #[error("{0}")]
    Refused(E),
    #[error("The bill is not on this tablet.")]
    UnknownBill,
}

/// What a void or refund is built from, as read inside its transaction.
#[derive(Clone, Debug)]
pub struct BillAtHand {
    pub bill: Bill,
    pub products: Vec<Product>,
    pub customer: Option<Customer>,
    pub refunds: Vec<Refund>,
}

fn rexie<E>(error: rexie::Error) -> RecordOnBillError<E> {
    RecordOnBillError::Storage(StorageError::from_rexie(error))
}

fn present(value: Option<JsValue>) -> Option<JsValue> {
    value.filter(|value| !value.is_undefined())
}

impl Store {
    /// Records a void or a refund of bill `bill_id` in ONE transaction (see the module's
    /// documentation). `fetched` is the bill as the server has it, for a bill this tablet does
    /// not hold; the tablet's own record wins when it has one (it may already be void).
    pub async fn record_on_bill<E>(
        &self,
        bill_id: &str,
        fetched: Option<&Bill>,
        build: impl FnOnce(&BillAtHand) -> Result<UnitOfWork, E>,
    ) -> Result<UnitOfWork, RecordOnBillError<E>> {
        let stores = [
            AUDIT,
            BILLS,
            CUSTOMERS,
            OUTBOX,
            PAYMENTS,
            PRODUCTS,
            REFUNDS,
            STOCK_MOVES,
        ];
        let transaction = self.transaction(&stores, TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = |name: &str| transaction.store(name).map_err(rexie::<E>);
            let bill = match present(
                store(BILLS)?
                    .get(JsValue::from_str(bill_id))
                    .await
                    .map_err(rexie)?,
            ) {
                Some(value) => from_js::<Bill>(value)?,
                None => fetched.cloned().ok_or(RecordOnBillError::UnknownBill)?,
            };
            let mut product_ids: Vec<&str> = Vec::new();
            for line in &bill.lines {
                if !product_ids.contains(&line.product_id.as_str()) {
                    product_ids.push(&line.product_id);
                }
            }
            let products_store = store(PRODUCTS)?;
            let customers = store(CUSTOMERS)?;
            let refunds_index = store(REFUNDS)?.index("billId").map_err(rexie)?;
            let by_bill = key_range(KeyRange::only(&JsValue::from_str(&bill.id)))?;
            let customer_read = async {
                match &bill.customer_id {
                    None => Ok(None),
                    Some(id) => customers.get(JsValue::from_str(id)).await,
                }
            };
            // The reads go out together, then the writes together.
            let (product_values, customer_value, refund_values) = try_join3(
                try_join_all(
                    product_ids
                        .iter()
                        .map(|id| products_store.get(JsValue::from_str(id))),
                ),
                customer_read,
                refunds_index.get_all(Some(by_bill), None),
            )
            .await
            .map_err(rexie)?;
            let at_hand = BillAtHand {
                products: product_values
                    .into_iter()
                    .filter_map(present)
                    .map(from_js::<Product>)
                    .collect::<Result<Vec<_>, _>>()?,
                customer: present(customer_value).map(from_js).transpose()?,
                refunds: refund_values
                    .into_iter()
                    .map(from_js)
                    .collect::<Result<Vec<_>, _>>()?,
                bill,
            };
            let work = build(&at_hand).map_err(RecordOnBillError::Refused)?;
            // (store, value, whether it must be new)
            let mut writes: Vec<(rexie::Store, JsValue, bool)> = Vec::new();
            for record in &work.records {
                let (store_name, _, value) = super::units::shop_record(record)?;
                // The bill and the counters as this device now knows them are put; new records
                // are added, so a clash fails the whole unit.
                let new = !matches!(
                    record,
                    Record::Product(_) | Record::Customer(_) | Record::Bill(_)
                );
                writes.push((store(store_name)?, value, new));
            }
            for entry in &work.audit {
                writes.push((store(AUDIT)?, to_js(entry)?, true));
            }
            let outbox_record = OutboxRecord {
                id: work.unit.id.clone(),
                unit: work.unit.clone(),
                state: OutboxRecordState::Pending,
                reason: None,
            };
            writes.push((store(OUTBOX)?, to_js(&outbox_record)?, true));
            try_join_all(writes.iter().map(
                |(target, value, new)| -> LocalBoxFuture<'_, rexie::Result<JsValue>> {
                    if *new {
                        Box::pin(target.add(value, None))
                    } else {
                        Box::pin(target.put(value, None))
                    }
                },
            ))
            .await
            .map_err(rexie)?;
            Ok(work)
        }
        .await;
        match outcome {
            Ok(work) => {
                Self::finish(transaction, Ok(())).await?;
                let mut changed = super::ChangedDocuments::new();
                for record in &work.records {
                    let (store_name, id, _) = super::units::shop_record(record)?;
                    changed.insert(store_name, id);
                }
                self.changes.publish(&changed);
                Ok(work)
            }
            Err(error) => {
                // Aborting an already-aborted transaction fails; the original error matters.
                let _ = transaction.abort().await;
                Err(error)
            }
        }
    }

    /// The refunds made of a bill on this tablet, oldest first.
    pub async fn refunds_of_bill(&self, bill_id: &str) -> Result<Vec<Refund>, StorageError> {
        let range = key_range(KeyRange::only(&JsValue::from_str(bill_id)))?;
        let mut refunds: Vec<Refund> = self.index_lookup(REFUNDS, "billId", range).await?;
        refunds.sort_by_key(|refund| refund.at_millis);
        Ok(refunds)
    }
}
