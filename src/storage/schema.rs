//! The IndexedDB schema: object stores and indexes by version (declarative: opening with a newer
//! version creates what is missing and keeps every record), and the data migrations that bring
//! records written by an older version up to date.

use rexie::{Index, KeyRange, ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::JsValue;

use super::bases::{newer_base, stored_base};
use super::products::{embed_base, embedded_base, product_record};
use super::server_documents::product_id_of_path;
use super::{from_js, key_range, Result, StorageError, Store};
use crate::model::{name_key, Product};

pub const SCHEMA_VERSION: u32 = 7;
/// The `dataVersion` the last data migration leaves (schema versions without a data
/// migration, such as 5 and 6, leave it as it was; 7 moved the products' base copies, data
/// version 5).
pub const DATA_VERSION: u32 = 5;
pub(super) const PRODUCTS: &str = "products";
pub(super) const CUSTOMERS: &str = "customers";
pub(super) const BILLS: &str = "bills";
pub(super) const PAYMENTS: &str = "payments";
pub(super) const EXPENSES: &str = "expenses";
pub(super) const STOCK_MOVES: &str = "stockMoves";
pub(super) const AUDIT: &str = "audit";
pub(super) const OUTBOX: &str = "outbox";
pub(super) const CONFLICTS: &str = "conflicts";
pub(super) const BASES: &str = "bases";
pub(super) const META: &str = "meta";
/// Bills put aside at the counter (version 3); local to the tablet, never synced.
pub(super) const PARKED_BILLS: &str = "parkedBills";
/// Refunds of bills (version 5), by `billId`.
pub(super) const REFUNDS: &str = "refunds";
pub(super) const DATA_VERSION_KEY: &str = "dataVersion";

/// An index of an object store: its key path (one field, or several for a compound index).
pub(super) struct IndexSpec {
    pub name: &'static str,
    pub key_path: &'static [&'static str],
    pub unique: bool,
    pub multi_entry: bool,
}

/// An object store: its key path (`None`: out-of-line keys) and indexes.
pub(super) struct StoreSpec {
    pub name: &'static str,
    pub key_path: Option<&'static str>,
    pub indexes: Vec<IndexSpec>,
}

const fn index(name: &'static str, key_path: &'static [&'static str]) -> IndexSpec {
    IndexSpec {
        name,
        key_path,
        unique: false,
        multi_entry: false,
    }
}

fn keyed(name: &'static str, indexes: Vec<IndexSpec>) -> StoreSpec {
    StoreSpec {
        name,
        key_path: Some("id"),
        indexes,
    }
}

/// The object stores and indexes of schema `version` (1 to 7), the one statement of the
/// schema. Version 3 added `parkedBills` and the customers' `nameKey` index; version 4 the
/// products' compound list indexes, each ending with `[nameKey, id]` so that a list reads in
/// name order and continues after its last row: `byName`, `lowStockByName`, `byCategory`,
/// `lowStockByCategory` (the low-stock ones over the index-only `lowStock` field); version 5
/// the `refunds` store; version 6 dropped the products' `name` and `nameKey` indexes
/// ([`dropped_indexes`]); version 7 changed no store or index: a product's base copy moved
/// into the product's record (data version 5), which an older release opening the database
/// would not find, so the version keeps it out.
pub(super) fn stores_of(version: u32) -> Vec<StoreSpec> {
    let meta = StoreSpec {
        name: META,
        key_path: None,
        indexes: Vec::new(),
    };
    let mut products = Vec::new();
    if version < 6 {
        products.push(index("name", &["name"]));
    }
    if version == 1 {
        return vec![keyed(PRODUCTS, products), keyed(OUTBOX, Vec::new()), meta];
    }
    if version < 6 {
        products.push(index("nameKey", &["nameKey"]));
    }
    products.extend([
        index("sku", &["sku"]),
        IndexSpec {
            multi_entry: true,
            ..index("barcode", &["barcodes"])
        },
    ]);
    if version >= 4 {
        products.extend([
            index("byName", &["nameKey", "id"]),
            index("lowStockByName", &["lowStock", "nameKey", "id"]),
            index("byCategory", &["category", "nameKey", "id"]),
            index(
                "lowStockByCategory",
                &["lowStock", "category", "nameKey", "id"],
            ),
        ]);
    }
    let mut customers = vec![index("phone", &["phoneDigits"])];
    let mut stores = Vec::new();
    if version >= 3 {
        customers.push(index("nameKey", &["nameKey"]));
        stores.push(keyed(PARKED_BILLS, Vec::new()));
    }
    if version >= 5 {
        stores.push(keyed(REFUNDS, vec![index("billId", &["billId"])]));
    }
    stores.extend([
        keyed(PRODUCTS, products),
        keyed(CUSTOMERS, customers),
        keyed(
            BILLS,
            vec![
                index("day", &["day"]),
                IndexSpec {
                    unique: true,
                    ..index("number", &["number"])
                },
            ],
        ),
        keyed(PAYMENTS, vec![index("billId", &["billId"])]),
        keyed(EXPENSES, vec![index("day", &["day"])]),
        keyed(STOCK_MOVES, vec![index("productId", &["productId"])]),
        keyed(AUDIT, vec![index("atMillis", &["atMillis"])]),
        keyed(OUTBOX, Vec::new()),
        keyed(CONFLICTS, Vec::new()),
        StoreSpec {
            name: BASES,
            key_path: Some("path"),
            indexes: Vec::new(),
        },
        meta,
    ]);
    stores
}

/// The indexes (store, index) that schema `version` no longer has, which an upgrade to it
/// deletes: version 6 dropped the products' `name` (from version 1) and `nameKey` (from
/// version 2), which nothing read (name prefixes are ranges of `byName`, whose keys start with
/// the name key) and which every product put paid for: two of the five index keys of a
/// product with no category that is not low on stock, measured at about a tenth of an empty
/// tablet's first sync.
pub(super) fn dropped_indexes(version: u32) -> &'static [(&'static str, &'static str)] {
    if version >= 6 {
        &[(PRODUCTS, "name"), (PRODUCTS, "nameKey")]
    } else {
        &[]
    }
}

/// Schema `version` ([`stores_of`]) for rexie: what a database of that version holds, as rexie
/// opens it. [`Store::open`] brings the database up to date with its own upgrade first
/// ([`super::upgrade`]), so rexie (and the idb crate under it, whose upgrade handler `.expect`s
/// every step) has nothing left to upgrade.
pub fn declare_schema(name: &str, version: u32) -> rexie::RexieBuilder {
    let mut builder = Rexie::builder(name).version(version);
    for spec in stores_of(version) {
        let mut store = ObjectStore::new(spec.name);
        if let Some(key_path) = spec.key_path {
            store = store.key_path(key_path);
        }
        for index in spec.indexes {
            let declared = match index.key_path {
                [field] => Index::new(index.name, field),
                fields => Index::new_array(index.name, fields.iter().copied()),
            };
            store = store.add_index(declared.unique(index.unique).multi_entry(index.multi_entry));
        }
        builder = builder.add_object_store(store);
    }
    builder
}

/// One data migration: brings records written by an older version up to date.
struct DataMigration {
    /// The `dataVersion` this step produces.
    version: u32,
    /// The stores it reads and writes (besides `meta`).
    stores: &'static [&'static str],
    what: &'static str,
}

/// Every data migration, oldest first.
const DATA_MIGRATIONS: &[DataMigration] = &[
    DataMigration {
        version: 2,
        stores: &[PRODUCTS],
        what: "backfill products' nameKey for the name-prefix index",
    },
    DataMigration {
        version: 3,
        stores: &[CUSTOMERS],
        what: "backfill customers' nameKey for the counter's name lookup",
    },
    DataMigration {
        version: 4,
        stores: &[PRODUCTS],
        what: "mark products low on stock for the low-stock indexes",
    },
    DataMigration {
        version: 5,
        stores: &[BASES, PRODUCTS],
        what: "move the products' base copies into their records",
    },
];

/// How many base copies the move into product records reads at a time.
const BASES_MOVED_AT_ONCE: u32 = 1_000;

/// Data version 5 (schema 7), inside the migration's transaction: every product's base copy in
/// `bases` moves into the product's own record (marked not as pulled: the next pull of the
/// same version writes it again once, then no more), and its `bases` record goes. A product
/// the tablet no longer holds (the server deleted it) keeps its base copy in `bases`, as do
/// all other documents. Read a thousand base copies at a time, so a large catalogue is never
/// held in memory at once.
async fn move_product_bases(transaction: &rexie::Transaction) -> Result<()> {
    let bases = transaction.store(BASES).map_err(StorageError::from_rexie)?;
    let products = transaction
        .store(PRODUCTS)
        .map_err(StorageError::from_rexie)?;
    let mut after: Option<JsValue> = None;
    loop {
        let range = match &after {
            Some(last) => Some(key_range(KeyRange::lower_bound(last, Some(true)))?),
            None => None,
        };
        let (keys, values) = futures::future::try_join(
            bases.get_all_keys(range.clone(), Some(BASES_MOVED_AT_ONCE)),
            bases.get_all(range, Some(BASES_MOVED_AT_ONCE)),
        )
        .await
        .map_err(StorageError::from_rexie)?;
        let Some(last) = keys.last().cloned() else {
            return Ok(());
        };
        after = Some(last);
        let moving: Vec<(String, String, JsValue)> = keys
            .iter()
            .zip(values)
            .filter_map(|(key, value)| {
                let path = key.as_string()?;
                let id = product_id_of_path(&path)?.to_owned();
                Some((path, id, value))
            })
            .collect();
        let records = futures::future::try_join_all(
            moving
                .iter()
                .map(|(_, id, _)| products.get(JsValue::from_str(id))),
        )
        .await
        .map_err(StorageError::from_rexie)?;
        let mut puts = Vec::new();
        let mut deletes = Vec::new();
        for ((path, _, base), record) in moving.into_iter().zip(records) {
            let Some(record) = record.filter(JsValue::is_object) else {
                continue;
            };
            let moved = newer_base(stored_base(embedded_base(&record)), stored_base(Some(base)));
            if let Some((base, _)) = moved {
                embed_base(&record, &base)?;
            }
            puts.push((record, None));
            deletes.push(bases.delete(JsValue::from_str(&path)));
        }
        if !puts.is_empty() {
            futures::future::try_join(
                products.put_all(puts.into_iter()),
                futures::future::try_join_all(deletes),
            )
            .await
            .map_err(StorageError::from_rexie)?;
        }
    }
}

impl Store {
    /// The data version recorded in `meta` (1 when none is: version 1 did not record it).
    pub async fn data_version(&self) -> Result<u32> {
        let transaction = self.transaction(&[META], TransactionMode::ReadOnly)?;
        let meta = transaction.store(META).map_err(StorageError::from_rexie)?;
        let value = meta
            .get(JsValue::from_str(DATA_VERSION_KEY))
            .await
            .map_err(StorageError::from_rexie)?;
        Ok(value
            .and_then(|v| v.as_f64())
            .map(|v| v as u32)
            .unwrap_or(1))
    }

    pub(super) async fn run_data_migrations(&self) -> Result<()> {
        let current = self.data_version().await?;
        for migration in DATA_MIGRATIONS.iter().filter(|m| m.version > current) {
            let mut stores: Vec<&str> = migration.stores.to_vec();
            stores.push(META);
            let transaction = self.transaction(&stores, TransactionMode::ReadWrite)?;
            let outcome = async {
                match migration.version {
                    // Both rewrite every product in today's record form, which has the
                    // nameKey (2) and the lowStock mark (4).
                    2 | 4 => {
                        let products = transaction
                            .store(PRODUCTS)
                            .map_err(StorageError::from_rexie)?;
                        let values = products
                            .get_all(None, None)
                            .await
                            .map_err(StorageError::from_rexie)?;
                        for value in values {
                            let mut product: Product = from_js(value.clone())?;
                            product.name_key = name_key(&product.name);
                            products
                                .put(&product_record(&product, Some(&value))?, None)
                                .await
                                .map_err(StorageError::from_rexie)?;
                        }
                    }
                    5 => move_product_bases(&transaction).await?,
                    3 => {
                        let customers = transaction
                            .store(CUSTOMERS)
                            .map_err(StorageError::from_rexie)?;
                        let values = customers
                            .get_all(None, None)
                            .await
                            .map_err(StorageError::from_rexie)?;
                        for value in values {
                            let customer: counterbook_shop::Customer = from_js(value)?;
                            customers
                                .put(&super::sales::customer_value(&customer)?, None)
                                .await
                                .map_err(StorageError::from_rexie)?;
                        }
                    }
                    other => {
                        return Err(StorageError::Open(format!(
                            "no data migration to version {other}"
                        )))
                    }
                }
                let meta = transaction.store(META).map_err(StorageError::from_rexie)?;
                meta.put(
                    &JsValue::from_f64(f64::from(migration.version)),
                    Some(&JsValue::from_str(DATA_VERSION_KEY)),
                )
                .await
                .map_err(StorageError::from_rexie)?;
                Ok(())
            }
            .await;
            Self::finish(transaction, outcome).await.map_err(|e| {
                StorageError::Open(format!("migration \"{}\" failed: {e}", migration.what))
            })?;
        }
        Ok(())
    }
}
