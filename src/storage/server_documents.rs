//! What comes from the server: pulled pages, listen snapshots and re-read documents all enter
//! the store through one step ([`Store::take_server_documents`]), with base copies for the
//! three-way merge, checkpoints, listen resume tokens and the conflict inbox.
//!
//! The records a tablet keeps from other tablets' work are the products, the customers, the
//! shop profile (`settings/profile`), the bills and their refunds: each is shown as the server
//! has it with this device's pending units laid over it (a void waiting to be sent shows its
//! bill void). Everything else pulled (payments, stock moves) is kept only as a base copy.
//!
//! A batch is first made ready with no store read ([`PreparedDocuments`]: base copies and
//! products as the server has them, their records made), so that a pulled page can be prepared
//! while the page before it is still being stored; its transaction then reads only what can
//! change that (the pending writes, and the stored base copies, by one range read when the
//! batch's paths span few other records) and puts.

use counterbook_firestore_wire::{Document, Timestamp, Value};
use counterbook_sync::{
    server_version_is_older, Checkpoint, ConflictEntry, DocumentWrite, PulledPage,
};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use futures::future::{try_join, try_join_all};
use rexie::{KeyRange, TransactionMode};
use wasm_bindgen::JsValue;

use super::bases::{
    base_copies_to_js, base_copy_from_js, newer_base, stored_base, stored_base_copy,
    stores_of_base_copy,
};
use super::changes::ChangedDocuments;
use super::outbox::pending_writes_by_path;
use super::products::{embedded_base, is_as_pulled, pulled_products_to_js};
use super::sales::{customer_value, SHOP_SETTINGS_KEY};
use super::schema::{BASES, BILLS, CONFLICTS, CUSTOMERS, META, OUTBOX, PRODUCTS, REFUNDS};
use super::{from_js, key_range, stored_values, to_js, Result, StorageError, Store};
use crate::entities::BaseCopy;
use crate::model::Product;

/// The stores [`Store::take_server_documents`] writes, which its caller's transaction covers.
const SERVER_DOCUMENT_STORES: [&str; 8] = [
    PRODUCTS, CUSTOMERS, META, BASES, CONFLICTS, OUTBOX, BILLS, REFUNDS,
];

impl Store {
    /// Applies a snapshot of a listen target in ONE transaction: the documents' base copies and
    /// the products to show (see [`Store::take_server_documents`]), products no longer in the
    /// target hidden, and the conflicts the documents raise. The pull checkpoint does not move:
    /// a snapshot is not an ordered page.
    pub async fn apply_listened_documents(
        &self,
        documents: &[Document],
        removed_paths: &[String],
        conflicts: &[ConflictEntry],
    ) -> Result<()> {
        let prepared = PreparedDocuments::without_product_records(documents)?;
        let transaction = self.transaction(&SERVER_DOCUMENT_STORES, TransactionMode::ReadWrite)?;
        let outcome = Self::take_server_documents(
            &transaction,
            documents,
            prepared,
            removed_paths,
            conflicts,
        )
        .await;
        let changed = Self::finish_with(transaction, outcome).await?;
        self.changes.publish(&changed);
        Ok(())
    }

    /// Applies one pulled page in ONE transaction: the documents' base copies, the products
    /// the page changes (see [`Store::take_server_documents`]), the conflicts it raises and the
    /// checkpoint. A crash can never skip or half-apply a page.
    pub async fn apply_pulled_page(&self, page: &PulledPage) -> Result<()> {
        self.apply_prepared_page(page, PreparedDocuments::of(&page.upserts)?)
            .await
    }

    /// [`Store::apply_pulled_page`] with the page's documents prepared ahead
    /// ([`PreparedDocuments::of`], while the page before it was being stored, say); documents
    /// prepared from another page are prepared again.
    pub async fn apply_prepared_page(
        &self,
        page: &PulledPage,
        prepared: PreparedDocuments,
    ) -> Result<()> {
        let transaction = self.transaction(&SERVER_DOCUMENT_STORES, TransactionMode::ReadWrite)?;
        let outcome = async {
            // The page's `deletes` are its upserts marked `deleted`, which the shared step
            // hides already.
            let changed = Self::take_server_documents(
                &transaction,
                &page.upserts,
                prepared,
                &[],
                &page.conflicts,
            )
            .await?;
            let key = JsValue::from_str(&format!("checkpoint/{}", page.collection));
            transaction
                .store(META)
                .map_err(StorageError::from_rexie)?
                .put(&to_js(&page.checkpoint)?, Some(&key))
                .await
                .map_err(StorageError::from_rexie)?;
            Ok(changed)
        }
        .await;
        let changed = Self::finish_with(transaction, outcome).await?;
        self.changes.publish(&changed);
        Ok(())
    }

    /// Takes documents just read from the server (after a unit reached it), in one transaction
    /// (see [`Store::take_server_documents`]). The pull checkpoint does not move.
    pub async fn apply_server_documents(&self, documents: &[Document]) -> Result<()> {
        let prepared = PreparedDocuments::of(documents)?;
        let transaction = self.transaction(&SERVER_DOCUMENT_STORES, TransactionMode::ReadWrite)?;
        let outcome =
            Self::take_server_documents(&transaction, documents, prepared, &[], &[]).await;
        let changed = Self::finish_with(transaction, outcome).await?;
        self.changes.publish(&changed);
        Ok(())
    }

    /// The one way documents from the server enter the store, inside the caller's transaction
    /// (which must cover [`SERVER_DOCUMENT_STORES`]): every document's base copy, unless the
    /// store holds a newer version (then that one stands, see [`server_version_is_older`]);
    /// each product, customer and the shop profile shown as it will be once this device's
    /// pending units land (the server's version with them laid over it, see [`rebased`]); a
    /// product hidden when the server marks it `deleted` or it is in `hidden_paths`; and
    /// `conflicts` added to the inbox. A product shown keeps its base copy in its own record
    /// (one put); a product hidden keeps it in `bases`; a product whose record already shows
    /// this version or a newer one as pulled, with no pending write, is not written again (a
    /// listen snapshot repeating what a pull stored). A document this version cannot read is
    /// kept only as a base copy rather than blocking every later change behind it. `prepared`
    /// is `documents` made ready ahead ([`PreparedDocuments`]); what it holds is used for every
    /// document that no newer stored copy and no pending write changes. Returns the records it
    /// put or removed.
    pub(super) async fn take_server_documents(
        transaction: &rexie::Transaction,
        documents: &[Document],
        prepared: PreparedDocuments,
        hidden_paths: &[String],
        conflicts: &[ConflictEntry],
    ) -> Result<ChangedDocuments> {
        let prepared = prepared.checked_for(documents)?;
        let mut changed = ChangedDocuments::new();
        let store = |name: &str| transaction.store(name).map_err(StorageError::from_rexie);
        let pending = pending_writes_by_path(&store(OUTBOX)?).await?;
        let bases = store(BASES)?;
        let products = store(PRODUCTS)?;
        let PreparedDocuments {
            entries,
            mut base_values,
            mut product_values,
            ..
        } = prepared;
        let incoming: Vec<(&Document, PreparedEntry)> = documents
            .iter()
            .zip(entries)
            .filter_map(|(document, entry)| Some((document, entry?)))
            .collect();
        let hidden_products: Vec<(&str, &str)> = hidden_paths
            .iter()
            .filter_map(|path| Some((path.as_str(), product_id_of_path(path)?)))
            .collect();
        let paths: Vec<&str> = incoming
            .iter()
            .map(|(_, entry)| entry.base.path.as_str())
            .chain(hidden_products.iter().map(|(path, _)| *path))
            .collect();
        let product_ids: Vec<&str> = paths
            .iter()
            .filter_map(|path| product_id_of_path(path))
            .collect();
        // What the store holds of them: base copies in `bases` by path (products the server
        // deleted, and every other document), products' records (with their base copies) by id.
        let (stored_bases, stored_products) = try_join(
            stored_values(&bases, &paths),
            stored_values(&products, &product_ids),
        )
        .await?;
        // The base copies the store holds of the document at `path`: in its product's record,
        // and in `bases`.
        let stored_copies = |path: &str| {
            let in_record = product_id_of_path(path)
                .and_then(|id| stored_products.get(id))
                .and_then(|record| stored_base(embedded_base(record)));
            (in_record, stored_base(stored_bases.get(path).cloned()))
        };
        // The newest copy of each path so far in this batch (a batch may name a document
        // twice), once a document of it was taken.
        let mut newest_bases: HashMap<String, BaseCopy> = HashMap::new();
        // The prepared base copies to put in `bases` (documents other than products), in order.
        let mut base_puts: Vec<usize> = Vec::new();
        // Each record's final state in this batch: products by id (with their paths); customers
        // to put; the shop profile to put.
        let mut product_writes: BTreeMap<String, (String, ProductWrite)> = BTreeMap::new();
        let mut customer_puts: BTreeMap<String, JsValue> = BTreeMap::new();
        // Bills by id, with their numbers (see `bills_with_free_numbers`).
        let mut bill_puts: BTreeMap<String, (String, JsValue)> = BTreeMap::new();
        let mut refund_puts: BTreeMap<String, JsValue> = BTreeMap::new();
        let mut profile_put: Option<JsValue> = None;
        for (document, entry) in incoming {
            let PreparedEntry {
                base,
                base_value,
                product_value,
            } = entry;
            let earlier = newest_bases.remove(&base.path);
            let pending_writes = pending.get(&base.path);
            let stored_record =
                product_id_of_path(&base.path).and_then(|id| stored_products.get(id));
            let (stored_in_record, stored_in_bases) = stored_copies(&base.path);
            // A product's record showing this version (or a newer one) exactly as pulled stays
            // as it is: nothing to write, nothing changed.
            let shown_as_pulled = earlier.is_none()
                && pending_writes.is_none()
                && stored_record.is_some_and(is_as_pulled)
                && stored_in_record.as_ref().is_some_and(|(_, micros)| {
                    *micros >= base.update_time_micros
                        && stored_in_bases
                            .as_ref()
                            .is_none_or(|(_, in_bases)| in_bases <= micros)
                });
            if shown_as_pulled {
                continue;
            }
            let stored = match earlier {
                Some(earlier) => Some(StoredCopy::Read(earlier)),
                None => newer_base(stored_in_record, stored_in_bases)
                    .map(|(value, micros)| StoredCopy::Stored(value, micros)),
            };
            // Snapshots, pulled pages and re-reads arrive over different connections, so an
            // older version can come after a newer one: it changes nothing (the listener will
            // not send the newer one again), and the product is shown from the newer copy.
            let older = server_version_is_older(
                stored
                    .as_ref()
                    .map(|stored| Timestamp::from_unix_micros(stored.update_time_micros())),
                Some(Timestamp::from_unix_micros(base.update_time_micros)),
            );
            let (newest, kept) = match stored {
                Some(stored) if older => {
                    let stored = stored.read()?;
                    (Cow::Owned(stored.to_document()), stored)
                }
                _ => {
                    base_puts.extend(base_value);
                    (Cow::Borrowed(document), base)
                }
            };
            let path = kept.path.clone();
            newest_bases.insert(path.clone(), kept);
            let id = match kept_record_of_path(&path) {
                Some(KeptRecord::Product(id)) => id,
                Some(KeptRecord::Customer(id)) => {
                    let shown = rebased(&newest, pending_writes);
                    if let Some(customer) =
                        readable(counterbook_shop::Customer::from_document(&shown))
                    {
                        customer_puts.insert(id.to_owned(), customer_value(&customer)?);
                        changed.insert(CUSTOMERS, id);
                    }
                    continue;
                }
                Some(KeptRecord::Bill(id)) => {
                    let shown = rebased(&newest, pending_writes);
                    if let Some(bill) = readable(counterbook_shop::Bill::from_document(&shown)) {
                        bill_puts.insert(id.to_owned(), (bill.number.clone(), to_js(&bill)?));
                    }
                    continue;
                }
                Some(KeptRecord::Refund(id)) => {
                    if let Some(refund) = readable(counterbook_shop::Refund::from_document(&newest))
                    {
                        refund_puts.insert(id.to_owned(), to_js(&refund)?);
                        changed.insert(REFUNDS, id);
                    }
                    continue;
                }
                Some(KeptRecord::ShopProfile) => {
                    let shown = rebased(&newest, pending_writes);
                    let settings = counterbook_shop::ShopSettings::from_document(&shown);
                    profile_put = Some(to_js(&settings)?);
                    changed.insert(
                        counterbook_shop::settings::SETTINGS_COLLECTION,
                        counterbook_shop::settings::PROFILE_DOCUMENT_ID,
                    );
                    continue;
                }
                None => continue,
            };
            // The incoming document as the server has it: what was prepared stands.
            let as_prepared = matches!(newest, Cow::Borrowed(_)) && pending_writes.is_none();
            let read_shown = || match pending_writes {
                None => Product::from_document(&newest),
                Some(_) => Product::from_document(&rebased(&newest, pending_writes)),
            };
            let write = match product_value {
                Some(index) if as_prepared => ProductWrite::Prepared(index),
                _ if Product::is_deleted(&newest) => ProductWrite::Removed,
                _ => match read_shown() {
                    Ok(product) => ProductWrite::Computed {
                        product,
                        as_pulled: pending_writes.is_none(),
                    },
                    Err(invalid) => {
                        web_sys::console::warn_1(&invalid.to_string().into());
                        ProductWrite::BaseOnly
                    }
                },
            };
            if !matches!(write, ProductWrite::BaseOnly) {
                changed.insert(PRODUCTS, id);
            }
            product_writes.insert(id.to_owned(), (path.clone(), write));
        }
        for (path, id) in &hidden_products {
            product_writes.insert(
                (*id).to_owned(),
                ((*path).to_owned(), ProductWrite::Removed),
            );
            changed.insert(PRODUCTS, id);
        }
        // Where each product's base copy goes: into its record when it is shown (its record in
        // `bases`, if it had one, goes), into `bases` when it is not.
        let mut product_puts: Vec<JsValue> = Vec::new();
        let mut computed: Vec<(&Product, &BaseCopy, bool)> = Vec::new();
        let mut product_deletes: Vec<&str> = Vec::new();
        let mut bases_kept: Vec<&BaseCopy> = Vec::new();
        let mut bases_kept_as_stored: Vec<JsValue> = Vec::new();
        let mut bases_deletes: Vec<&str> = Vec::new();
        for (id, (path, write)) in &product_writes {
            let newest = newest_bases.get(path);
            match write {
                ProductWrite::Prepared(index) => {
                    product_puts.push(std::mem::take(&mut product_values[*index]));
                }
                ProductWrite::Computed { product, as_pulled } => {
                    let base = newest.ok_or_else(|| {
                        StorageError::Transaction(format!("no base copy for {path}"))
                    })?;
                    computed.push((product, base, *as_pulled));
                }
                ProductWrite::Removed => {
                    product_deletes.push(id);
                    match newest {
                        Some(base) => bases_kept.push(base),
                        // Hidden without a version in this batch: the record's base copy goes
                        // to `bases` unless the copy there is newer.
                        None => {
                            let (in_record, in_bases) = stored_copies(path);
                            if let Some((value, micros)) = in_record {
                                if in_bases.is_none_or(|(_, in_bases)| in_bases < micros) {
                                    bases_kept_as_stored.push(value);
                                }
                            }
                        }
                    }
                    continue;
                }
                ProductWrite::BaseOnly => {
                    bases_kept.extend(newest);
                    continue;
                }
            }
            if stored_bases.contains_key(path) {
                bases_deletes.push(path);
            }
        }
        let customers = store(CUSTOMERS)?;
        let bills = store(BILLS)?;
        let bill_values = bills_with_free_numbers(&bills, bill_puts, &mut changed).await?;
        let refunds = store(REFUNDS)?;
        let meta = store(META)?;
        let inbox = store(CONFLICTS)?;
        let conflict_values = conflicts.iter().map(to_js).collect::<Result<Vec<_>>>()?;
        let mut base_records: Vec<JsValue> = base_puts
            .into_iter()
            .map(|index| std::mem::take(&mut base_values[index]))
            .collect();
        base_records.extend(base_copies_to_js(&bases_kept)?);
        base_records.extend(bases_kept_as_stored);
        // Products the batch changed from how the server has them become JavaScript objects
        // all at once (see `many_to_js`), like the prepared ones.
        product_puts.extend(pulled_products_to_js(&computed)?);
        let keyed = |values: Vec<JsValue>| -> Vec<(JsValue, Option<JsValue>)> {
            values.into_iter().map(|value| (value, None)).collect()
        };
        let profile_put: Vec<(JsValue, Option<JsValue>)> = profile_put
            .map(|value| (value, Some(JsValue::from_str(SHOP_SETTINGS_KEY))))
            .into_iter()
            .collect();
        // Every write of the batch is sent at once, and only the last of each store is awaited:
        // IndexedDB runs a transaction's requests in order, and a failing one aborts the
        // transaction, which fails the requests after it (and `finish_with` reports the abort).
        // One future per request would cost two callbacks each, most of a page's time.
        let deletes = try_join_all(
            product_deletes
                .iter()
                .map(|id| products.delete(JsValue::from_str(id)))
                .chain(
                    bases_deletes
                        .iter()
                        .map(|path| bases.delete(JsValue::from_str(path))),
                ),
        );
        let all_puts = try_join_all(
            [
                (&bases, keyed(base_records)),
                (&products, keyed(product_puts)),
                (&customers, keyed(customer_puts.into_values().collect())),
                (&bills, keyed(bill_values)),
                (&refunds, keyed(refund_puts.into_values().collect())),
                (&meta, profile_put),
                (&inbox, keyed(conflict_values)),
            ]
            .into_iter()
            .filter(|(_, puts)| !puts.is_empty())
            .map(|(target, puts)| target.put_all(puts.into_iter())),
        );
        try_join(all_puts, deletes)
            .await
            .map_err(StorageError::from_rexie)?;
        Ok(changed)
    }

    /// The last applied position of `collection`'s pull, if any.
    pub async fn checkpoint(&self, collection: &str) -> Result<Option<Checkpoint>> {
        let transaction = self.transaction(&[META], TransactionMode::ReadOnly)?;
        let store = transaction.store(META).map_err(StorageError::from_rexie)?;
        let key = JsValue::from_str(&format!("checkpoint/{collection}"));
        match store.get(key).await.map_err(StorageError::from_rexie)? {
            Some(value) if !value.is_undefined() => from_js(value).map(Some),
            _ => Ok(None),
        }
    }

    /// The resume token saved for the listen target with this key, if any.
    pub async fn resume_token(&self, target_key: &str) -> Result<Option<String>> {
        let transaction = self.transaction(&[META], TransactionMode::ReadOnly)?;
        let store = transaction.store(META).map_err(StorageError::from_rexie)?;
        let key = JsValue::from_str(&resume_token_key(target_key));
        Ok(store
            .get(key)
            .await
            .map_err(StorageError::from_rexie)?
            .and_then(|value| value.as_string()))
    }

    /// Saves (or with `None` forgets) the resume token of the listen target with this key.
    pub async fn save_resume_token(&self, target_key: &str, token: Option<&str>) -> Result<()> {
        let transaction = self.transaction(&[META], TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = transaction.store(META).map_err(StorageError::from_rexie)?;
            let key = JsValue::from_str(&resume_token_key(target_key));
            match token {
                Some(token) => store
                    .put(&JsValue::from_str(token), Some(&key))
                    .await
                    .map(|_| ()),
                None => store.delete(key).await,
            }
            .map_err(StorageError::from_rexie)
        }
        .await;
        Self::finish(transaction, outcome).await
    }

    /// Forgets the saved resume tokens of every listen target but these (by target key). The
    /// screen's target is a query stamped after the pulls' settled time, so each new one has a
    /// new key: without this, the tokens of every query a tablet ever watched would stay.
    pub async fn forget_resume_tokens_except(&self, kept_target_keys: &[String]) -> Result<()> {
        let transaction = self.transaction(&[META], TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = transaction.store(META).map_err(StorageError::from_rexie)?;
            let every_token = key_range(KeyRange::bound(
                &JsValue::from_str(RESUME_TOKEN_PREFIX),
                &JsValue::from_str(&format!("{RESUME_TOKEN_PREFIX}\u{ffff}")),
                Some(false),
                Some(false),
            ))?;
            let kept: Vec<String> = kept_target_keys
                .iter()
                .map(|key| resume_token_key(key))
                .collect();
            let stale = store
                .get_all_keys(Some(every_token), None)
                .await
                .map_err(StorageError::from_rexie)?
                .into_iter()
                .filter(|key| key.as_string().is_none_or(|key| !kept.contains(&key)));
            try_join_all(stale.map(|key| store.delete(key)))
                .await
                .map_err(StorageError::from_rexie)?;
            Ok(())
        }
        .await;
        Self::finish(transaction, outcome).await
    }

    /// The conflict inbox, oldest first.
    pub async fn conflicts(&self) -> Result<Vec<ConflictEntry>> {
        self.all(CONFLICTS).await
    }

    /// Puts entries into the conflict inbox, in one transaction.
    pub async fn add_conflicts(&self, entries: &[ConflictEntry]) -> Result<()> {
        let transaction = self.transaction(&[CONFLICTS], TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = transaction
                .store(CONFLICTS)
                .map_err(StorageError::from_rexie)?;
            for entry in entries {
                store
                    .put(&to_js(entry)?, None)
                    .await
                    .map_err(StorageError::from_rexie)?;
            }
            Ok(())
        }
        .await;
        Self::finish(transaction, outcome).await
    }

    /// Removes an entry from the conflict inbox (the user dealt with it).
    pub async fn remove_conflict(&self, id: &str) -> Result<()> {
        self.delete_key(CONFLICTS, id).await
    }

    /// The base copy of a document, as last pulled.
    pub async fn base_copy(&self, path: &str) -> Result<Option<BaseCopy>> {
        let transaction = self.transaction(stores_of_base_copy(path), TransactionMode::ReadOnly)?;
        stored_base_copy(&transaction, path).await
    }
}

/// The server's document with this device's pending writes laid over it, in order: what the
/// document will be once they reach the server, and so what the shop should see meanwhile.
/// Masked fields are set or removed, unmasked writes replace, counters add up.
pub fn rebased(server: &Document, pending: Option<&Vec<DocumentWrite>>) -> Document {
    let mut document = server.clone();
    for write in pending.into_iter().flatten() {
        let fields = &mut document.fields;
        match &write.mask {
            None => *fields = write.fields.clone(),
            Some(mask) => {
                for path in mask {
                    match write.fields.get(path) {
                        Some(value) => fields.insert(path.clone(), value.clone()),
                        None => fields.remove(path),
                    };
                }
            }
        }
        for (field, delta) in &write.increments {
            let current = fields.get(field).and_then(Value::as_integer).unwrap_or(0);
            fields.insert(
                field.clone(),
                Value::Integer(current.saturating_add(*delta)),
            );
        }
    }
    document
}

/// The record `read` from a document, or `None` with a warning when this version cannot read
/// it: the document is then kept only as a base copy rather than blocking every later change
/// behind it.
fn readable<T, E: std::fmt::Display>(read: std::result::Result<T, E>) -> Option<T> {
    read.map_err(|invalid| web_sys::console::warn_1(&invalid.to_string().into()))
        .ok()
}

/// The records of the bills in `puts` (by id, with their numbers) that can be put, in id
/// order, each named in `changed`. The bills' `number` index is unique (a sale whose number is
/// taken fails whole, see `storage::sales`), and one put that breaks it aborts the whole
/// transaction: a pulled page and its checkpoint, on every retry, so that the collection's
/// pull could never pass that page. Two bills of the shop share a number only when two devices
/// drew the same series (one chance in 33 million for a pair, see `device_series`) or another
/// client wrote one; the bill that holds the number here (stored, or earlier in the batch)
/// keeps it, and the other is kept only as its base copy, with a warning. One index read per
/// bill, sent at once.
async fn bills_with_free_numbers(
    bills: &rexie::Store,
    puts: BTreeMap<String, (String, JsValue)>,
    changed: &mut ChangedDocuments,
) -> Result<Vec<JsValue>> {
    if puts.is_empty() {
        return Ok(Vec::new());
    }
    let numbers = bills.index("number").map_err(StorageError::from_rexie)?;
    let holders = try_join_all(puts.values().map(|(number, _)| {
        let only = key_range(KeyRange::only(&JsValue::from_str(number)));
        let numbers = &numbers;
        async move {
            numbers
                .get_all_keys(Some(only?), Some(1))
                .await
                .map_err(StorageError::from_rexie)
        }
    }))
    .await?;
    let mut holder_of: HashMap<String, String> = HashMap::new();
    for ((number, _), held_by) in puts.values().zip(&holders) {
        if let Some(holder) = held_by.first().and_then(JsValue::as_string) {
            holder_of.entry(number.clone()).or_insert(holder);
        }
    }
    let mut values = Vec::with_capacity(puts.len());
    for (id, (number, value)) in puts {
        match holder_of.get(&number) {
            Some(holder) if *holder != id => web_sys::console::warn_1(
                &format!("bill {id} is kept only as its base copy: its number {number} is bill {holder}'s")
                    .into(),
            ),
            _ => {
                holder_of.insert(number, id.clone());
                changed.insert(BILLS, &id);
                values.push(value);
            }
        }
    }
    Ok(values)
}

/// A record the tablet keeps from what the server sends, by the document's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeptRecord<'a> {
    /// `shops/{shop}/products/{id}`.
    Product(&'a str),
    /// `shops/{shop}/customers/{id}`.
    Customer(&'a str),
    /// `shops/{shop}/settings/profile`.
    ShopProfile,
    /// `shops/{shop}/bills/{id}`.
    Bill(&'a str),
    /// `shops/{shop}/refunds/{id}`.
    Refund(&'a str),
}

fn kept_record_of_path(path: &str) -> Option<KeptRecord<'_>> {
    if let Some(id) = product_id_of_path(path) {
        return Some(KeptRecord::Product(id));
    }
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        ["shops", _, counterbook_shop::customer::CUSTOMERS_COLLECTION, id] => {
            Some(KeptRecord::Customer(id))
        }
        ["shops", _, counterbook_shop::settings::SETTINGS_COLLECTION, counterbook_shop::settings::PROFILE_DOCUMENT_ID] => {
            Some(KeptRecord::ShopProfile)
        }
        ["shops", _, counterbook_shop::records::BILLS_COLLECTION, id] => Some(KeptRecord::Bill(id)),
        ["shops", _, counterbook_shop::refunds::REFUNDS_COLLECTION, id] => {
            Some(KeptRecord::Refund(id))
        }
        _ => None,
    }
}

/// Where `meta` keeps listen resume tokens: this, then the target's key.
const RESUME_TOKEN_PREFIX: &str = "resumeToken/";

fn resume_token_key(target_key: &str) -> String {
    format!("{RESUME_TOKEN_PREFIX}{target_key}")
}

/// The product id in `shops/{shop}/products/{id}`, if the path is a product's.
pub(super) fn product_id_of_path(path: &str) -> Option<&str> {
    let mut segments = path.split('/');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some("shops"), Some(_), Some("products"), Some(id), None) => Some(id),
        _ => None,
    }
}

/// Server documents made ready to store before any stored record is read (see
/// [`PreparedDocuments::of`]): each document's base copy and, for a product, the product as the
/// server has it, with their IndexedDB records made (a product's record holding its base copy,
/// any other document's base copy a record of `bases`). The store uses them for every document
/// that no newer stored copy and no pending write changes, which on an empty tablet's first
/// sync is every one; so a pulled page can be prepared while the page before it is being
/// stored, and its own transaction only reads what it must and puts.
pub struct PreparedDocuments {
    /// The documents' names, in order, to tell the batch they were prepared from.
    names: Vec<String>,
    /// One per document, `None` for one without a name or update time (nothing is kept of it).
    entries: Vec<Option<PreparedEntry>>,
    /// The base copies' records, by [`PreparedEntry::base_value`].
    base_values: Vec<JsValue>,
    /// The products' records, by [`PreparedEntry::product_value`].
    product_values: Vec<JsValue>,
}

struct PreparedEntry {
    base: BaseCopy,
    /// For a document other than a product: its base copy's record in
    /// [`PreparedDocuments::base_values`].
    base_value: Option<usize>,
    /// For a product the server shows (not deleted, readable): its record, base copy included
    /// and marked as pulled, in [`PreparedDocuments::product_values`].
    product_value: Option<usize>,
}

/// A stored base copy: read already (an earlier document of the batch), or its record.
enum StoredCopy {
    Read(BaseCopy),
    Stored(JsValue, i64),
}

impl StoredCopy {
    fn update_time_micros(&self) -> i64 {
        match self {
            StoredCopy::Read(copy) => copy.update_time_micros,
            StoredCopy::Stored(_, micros) => *micros,
        }
    }

    fn read(self) -> Result<BaseCopy> {
        match self {
            StoredCopy::Read(copy) => Ok(copy),
            StoredCopy::Stored(value, _) => base_copy_from_js(value),
        }
    }
}

/// What becomes of a product's record in a batch.
enum ProductWrite {
    /// The prepared record at this place of [`PreparedDocuments::product_values`].
    Prepared(usize),
    /// Worked out in the transaction (a pending write or a newer stored copy changed it), put
    /// with the newest base copy; `as_pulled` when no pending write is laid over it.
    Computed { product: Product, as_pulled: bool },
    /// Hidden (deleted on the server, or out of the listen target): the record goes, its
    /// newest base copy is kept in `bases`.
    Removed,
    /// Not a product this version can read: the record stays as it is, the newest base copy
    /// is kept in `bases`.
    BaseOnly,
}

impl PreparedDocuments {
    /// Prepares `documents` (pure work: no store is read).
    pub fn of(documents: &[Document]) -> Result<PreparedDocuments> {
        Self::prepare(documents, true)
    }

    /// Prepares `documents` but their products' records, which the store makes only for the
    /// products it writes: for a listen snapshot, whose products are mostly on the tablet as
    /// pulled already (the first snapshot after a first sync repeats the pull's last pages).
    fn without_product_records(documents: &[Document]) -> Result<PreparedDocuments> {
        Self::prepare(documents, false)
    }

    fn prepare(documents: &[Document], product_records: bool) -> Result<PreparedDocuments> {
        let mut entries: Vec<Option<PreparedEntry>> = Vec::with_capacity(documents.len());
        // The products shown, with the place of their entry.
        let mut shown: Vec<(Product, usize)> = Vec::new();
        let mut other_documents = 0;
        for document in documents {
            let Some(base) = BaseCopy::of_document(document) else {
                entries.push(None);
                continue;
            };
            let (base_value, product_value) = if product_id_of_path(&base.path).is_none() {
                other_documents += 1;
                (Some(other_documents - 1), None)
            } else if !product_records || Product::is_deleted(document) {
                (None, None)
            } else {
                match Product::from_document(document) {
                    Ok(product) => {
                        shown.push((product, entries.len()));
                        (None, Some(shown.len() - 1))
                    }
                    // Read again in the transaction, which warns.
                    Err(_) => (None, None),
                }
            };
            entries.push(Some(PreparedEntry {
                base,
                base_value,
                product_value,
            }));
        }
        let other_bases: Vec<&BaseCopy> = entries
            .iter()
            .flatten()
            .filter(|entry| entry.base_value.is_some())
            .map(|entry| &entry.base)
            .collect();
        let base_values = base_copies_to_js(&other_bases)?;
        let records: Vec<(&Product, &BaseCopy, bool)> = shown
            .iter()
            .filter_map(|(product, at)| Some((product, &entries[*at].as_ref()?.base, true)))
            .collect();
        let product_values = pulled_products_to_js(&records)?;
        Ok(PreparedDocuments {
            names: documents
                .iter()
                .map(|document| document.name.clone())
                .collect(),
            entries,
            base_values,
            product_values,
        })
    }

    /// Itself if it was prepared from `documents`, else `documents` prepared now.
    fn checked_for(self, documents: &[Document]) -> Result<PreparedDocuments> {
        let same = self.names.len() == documents.len()
            && self
                .names
                .iter()
                .zip(documents)
                .all(|(name, document)| *name == document.name);
        if same {
            Ok(self)
        } else {
            PreparedDocuments::of(documents)
        }
    }
}
