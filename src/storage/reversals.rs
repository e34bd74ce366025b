//! Voids and refunds of a completed bill, each in ONE IndexedDB transaction: the bill (as this
//! tablet has it, or as fetched from the server when another tablet sold it), its products, its
//! customer and the refunds made of it so far are read inside the transaction and handed to the
//! caller's `build` (the shop's pure `void_bill` or `refund_bill`), and what it returns (the bill
//! marked void, stock back up, stock moves, payments refunded, a refund record, the customer's
//! balance, audit, outbox) is written in the same transaction. So two tabs cannot void one bill
//! twice, a refund never gives back more than is left, and either all of it is on the tablet
//! or none of it is.
//!
//! What the tablet did not know (another tablet's refund or void of the same bill) the server
//! judges; a void or refund it refuses is undone here ([`undo_refused_reversal`]) in the same
//! transaction that makes its unit a dead letter or drops it, and the bill says why.

use counterbook_firestore_wire::Value;
use counterbook_shop::customer::CREDIT_BALANCE_FIELD;
use counterbook_shop::product::STOCK_FIELD;
use counterbook_shop::records::BILLS_COLLECTION;
use counterbook_shop::refunds::REFUNDS_COLLECTION;
use counterbook_shop::reversals::STATUS_FIELD;
use counterbook_shop::{Bill, BillStatus, Customer, Product, Record, Refund, UnitOfWork};
use counterbook_sync::Unit;
use futures::future::{try_join3, try_join_all, LocalBoxFuture};
use rexie::{KeyRange, TransactionMode};
use std::collections::HashMap;
use wasm_bindgen::JsValue;

use super::changes::ChangedDocuments;
use super::outbox::{OutboxRecord, OutboxRecordState};
use super::schema::{
    AUDIT, BASES, BILLS, CUSTOMERS, META, OUTBOX, PAYMENTS, PRODUCTS, REFUNDS, STOCK_MOVES,
};
use super::units::{record_key, record_value};
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
            // The stored records stay at hand: the products put again keep their base copies.
            let stored_products: HashMap<String, JsValue> = product_ids
                .iter()
                .zip(product_values)
                .filter_map(|(id, value)| Some(((*id).to_owned(), present(value)?)))
                .collect();
            let at_hand = BillAtHand {
                products: product_ids
                    .iter()
                    .filter_map(|id| stored_products.get(*id).cloned())
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
                let (store_name, id) = record_key(record);
                let previous = stored_products.get(id).filter(|_| store_name == PRODUCTS);
                let value = record_value(record, previous)?;
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
                    let (store_name, id) = record_key(record);
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
        counterbook_firestore_wire::sort::sort_by(&mut refunds, |a, b| {
            a.at_millis.cmp(&b.at_millis)
        });
        Ok(refunds)
    }
}

/// What a unit of work reverses, read from its writes: a void of a bill (the bill's `status`
/// set to `void`) and/or a refund (a `refunds` record created).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Reversal {
    pub voided_bill: Option<String>,
    pub refund: Option<String>,
}

impl Reversal {
    pub(super) fn of_unit(unit: &Unit) -> Option<Reversal> {
        let mut reversal = Reversal::default();
        for write in &unit.writes {
            let segments: Vec<&str> = write.path.split('/').collect();
            match segments.as_slice() {
                ["shops", _, BILLS_COLLECTION, id]
                    if write.fields.get(STATUS_FIELD).and_then(Value::as_str)
                        == Some(BillStatus::Void.as_str()) =>
                {
                    reversal.voided_bill = Some((*id).to_owned());
                }
                ["shops", _, REFUNDS_COLLECTION, id] if write.mask.is_none() => {
                    reversal.refund = Some((*id).to_owned());
                }
                _ => {}
            }
        }
        (reversal != Reversal::default()).then_some(reversal)
    }
}

/// The stores [`undo_refused_reversal`] reads and writes.
pub(super) const REVERSAL_UNDO_STORES: [&str; 8] = [
    BASES,
    BILLS,
    CUSTOMERS,
    META,
    PAYMENTS,
    PRODUCTS,
    REFUNDS,
    STOCK_MOVES,
];

/// The reason kept for a void or refund a conflict rejected (the conflict inbox says more),
/// shown in the tablet's language.
pub const REFUSED_BY_CONFLICT: &str = "conflict";

/// Where `meta` keeps why a void of a bill was refused: this, then the bill's id.
const REFUSED_VOID_PREFIX: &str = "refusedVoid/";

fn rexie_error(error: rexie::Error) -> StorageError {
    StorageError::from_rexie(error)
}

/// Undoes on this tablet what a refused void or refund `unit` recorded, inside the caller's
/// transaction (covering [`REVERSAL_UNDO_STORES`]): a voided bill shows again as the server has
/// it (its base copy, or the record as it was, `final`) with why the void was refused kept
/// beside it; a refund record stays, marked refused with the reason, and counts for nothing;
/// the stock and the customer's balance it gave back come off again (its increments taken
/// back from the records, which show the server's figures with the pending units laid over);
/// the payments and stock moves it added are removed. The unit itself stays where the engine
/// put it (a dead letter to retry or discard), and its audit entries stay: it was asked for.
pub(super) async fn undo_refused_reversal(
    transaction: &rexie::Transaction,
    unit: &Unit,
    reversal: &Reversal,
    reason: &str,
) -> Result<ChangedDocuments, StorageError> {
    let store = |name: &str| transaction.store(name).map_err(rexie_error);
    let mut changed = ChangedDocuments::new();
    if let Some(bill_id) = &reversal.voided_bill {
        let bills = store(BILLS)?;
        let path = unit
            .writes
            .iter()
            .find(|write| {
                write
                    .path
                    .ends_with(&format!("/{BILLS_COLLECTION}/{bill_id}"))
            })
            .map(|write| write.path.clone())
            .unwrap_or_default();
        let from_server = present(
            store(BASES)?
                .get(JsValue::from_str(&path))
                .await
                .map_err(rexie_error)?,
        )
        .map(super::bases::base_copy_from_js)
        .transpose()?
        .and_then(|base| Bill::from_document(&base.to_document()).ok());
        let local = present(
            bills
                .get(JsValue::from_str(bill_id))
                .await
                .map_err(rexie_error)?,
        )
        .map(from_js::<Bill>)
        .transpose()?;
        let restored = from_server.or_else(|| {
            local.map(|bill| Bill {
                status: BillStatus::Final,
                ..bill
            })
        });
        if let Some(bill) = restored {
            bills.put(&to_js(&bill)?, None).await.map_err(rexie_error)?;
            changed.insert(BILLS, bill_id);
        }
        store(META)?
            .put(
                &JsValue::from_str(reason),
                Some(&JsValue::from_str(&format!(
                    "{REFUSED_VOID_PREFIX}{bill_id}"
                ))),
            )
            .await
            .map_err(rexie_error)?;
    }
    if let Some(refund_id) = &reversal.refund {
        let refunds = store(REFUNDS)?;
        if let Some(value) = present(
            refunds
                .get(JsValue::from_str(refund_id))
                .await
                .map_err(rexie_error)?,
        ) {
            let mut refund: Refund = from_js(value)?;
            refund.refused = Some(reason.to_owned());
            refunds
                .put(&to_js(&refund)?, None)
                .await
                .map_err(rexie_error)?;
            changed.insert(REFUNDS, refund_id);
        }
    }
    for write in &unit.writes {
        let segments: Vec<&str> = write.path.split('/').collect();
        match segments.as_slice() {
            ["shops", _, PRODUCTS, id] => {
                let Some(delta) = write.increments.get(STOCK_FIELD) else {
                    continue;
                };
                fn stock(product: &mut Product) -> &mut i64 {
                    &mut product.stock_on_hand
                }
                let products = store(PRODUCTS)?;
                if take_back(&products, id, *delta, stock, |product, previous| {
                    super::products::product_record(product, Some(previous))
                })
                .await?
                {
                    changed.insert(PRODUCTS, id);
                }
            }
            ["shops", _, CUSTOMERS, id] => {
                let Some(delta) = write.increments.get(CREDIT_BALANCE_FIELD) else {
                    continue;
                };
                fn balance(customer: &mut Customer) -> &mut i64 {
                    &mut customer.credit_balance_minor
                }
                let customers = store(CUSTOMERS)?;
                if take_back(&customers, id, *delta, balance, |customer, _| {
                    super::sales::customer_value(customer)
                })
                .await?
                {
                    changed.insert(CUSTOMERS, id);
                }
            }
            ["shops", _, collection @ (PAYMENTS | STOCK_MOVES), id] if write.mask.is_none() => {
                store(collection)?
                    .delete(JsValue::from_str(id))
                    .await
                    .map_err(rexie_error)?;
            }
            _ => {}
        }
    }
    Ok(changed)
}

/// Takes `delta` back off the counter `counter` picks of the record `id` in `store`, if the
/// tablet holds it, and puts the record again as `value_of` makes it from the record and the
/// stored one it replaces (a product keeps its base copy). Whether it did.
async fn take_back<T: serde::de::DeserializeOwned>(
    store: &rexie::Store,
    id: &str,
    delta: i64,
    counter: impl FnOnce(&mut T) -> &mut i64,
    value_of: impl FnOnce(&T, &JsValue) -> Result<JsValue, StorageError>,
) -> Result<bool, StorageError> {
    let Some(value) = present(
        store
            .get(JsValue::from_str(id))
            .await
            .map_err(rexie_error)?,
    ) else {
        return Ok(false);
    };
    let mut record: T = from_js(value.clone())?;
    let count = counter(&mut record);
    *count = count.saturating_sub(delta);
    store
        .put(&value_of(&record, &value)?, None)
        .await
        .map_err(rexie_error)?;
    Ok(true)
}

impl Store {
    /// Why the server refused this tablet's void of bill `bill_id`, if it did.
    pub async fn refused_void(&self, bill_id: &str) -> Result<Option<String>, StorageError> {
        let transaction = self.transaction(&[META], TransactionMode::ReadOnly)?;
        let value = transaction
            .store(META)
            .map_err(rexie_error)?
            .get(JsValue::from_str(&format!(
                "{REFUSED_VOID_PREFIX}{bill_id}"
            )))
            .await
            .map_err(rexie_error)?;
        Ok(value.and_then(|value| value.as_string()))
    }
}
