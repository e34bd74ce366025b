//! A simulated tablet: the engine, a model of its local store (base copies as pulled, the
//! outbox, the conflict inbox, checkpoints) that survives restarts, and a "user" who makes
//! random units of work from what the tablet shows: products created, prices and names edited,
//! stock sold and received, bills voided, customers sold to on credit.

use std::collections::{BTreeMap, BTreeSet};

use counterbook_firestore_wire::{Document, Value};

use crate::backoff::SplitMix64;
use crate::conflict::{ConflictEntry, STATUS, STATUS_FINAL, STATUS_VOID};
use crate::outbox::{Command, DeadLetterReason, Event, Outbox, OutboxConfig};
use crate::pull::{server_version_is_older, Checkpoint};
use crate::unit::{BaseVersion, DocumentWrite, Unit, UnitId};

/// The collections the tablets sync.
pub const COLLECTIONS: [&str; 4] = ["products", "bills", "customers", "expenses"];
pub const STOCK: &str = "stock";
pub const CREDIT_BALANCE: &str = "creditBalance";

/// What the user meant by a unit, for the checks.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerEntry {
    pub device: usize,
    pub label: String,
    /// Every counter movement, `(path, field) → delta`, as the user made it.
    pub movements: BTreeMap<(String, String), i64>,
    /// Counters created with their initial value.
    pub initial_counters: BTreeMap<(String, String), i64>,
    /// The bill this unit voids.
    pub voids: Option<String>,
    /// Refused by the server for good, by design.
    pub poison: bool,
}

/// The tablet's IndexedDB, as far as sync is concerned. Survives restarts.
#[derive(Clone, Debug, Default)]
pub struct DeviceStore {
    /// The server's documents as last pulled, by path.
    pub base_copies: BTreeMap<String, Document>,
    pub checkpoints: BTreeMap<String, Checkpoint>,
    /// Units not yet synced, with their dead-letter reason if any.
    pub outbox: BTreeMap<UnitId, (Unit, Option<DeadLetterReason>)>,
    pub inbox: BTreeMap<String, ConflictEntry>,
    pub rejected: BTreeSet<UnitId>,
    pub discarded: BTreeSet<UnitId>,
}

impl DeviceStore {
    /// Takes a document read from the server (a pulled page, a snapshot), as the app's store
    /// does: a version older than the base copy changes nothing.
    pub fn take_server_document(&mut self, document: Document) {
        let path = document
            .name
            .split_once("/documents/")
            .map(|(_, path)| path.to_owned())
            .unwrap_or_default();
        let stored = self.base_copies.get(&path).and_then(|d| d.update_time);
        if !server_version_is_older(stored, document.update_time) {
            self.base_copies.insert(path, document);
        }
    }

    /// A document as the tablet shows it: the base copy with pending units applied on top.
    pub fn view(&self, path: &str) -> Option<BTreeMap<String, Value>> {
        let mut fields = self.base_copies.get(path).map(|d| d.fields.clone());
        for (unit, dead) in self.outbox.values() {
            if dead.is_some() {
                continue;
            }
            for write in unit.writes.iter().filter(|w| w.path == path) {
                fields = Some(apply_write(fields.unwrap_or_default(), write));
            }
        }
        fields
    }

    /// Every path the tablet knows in `collection`.
    pub fn paths_in(&self, collection: &str) -> Vec<String> {
        let marker = format!("/{collection}/");
        let mut paths: BTreeSet<String> = self
            .base_copies
            .keys()
            .filter(|p| p.contains(&marker))
            .cloned()
            .collect();
        for (unit, dead) in self.outbox.values() {
            if dead.is_none() {
                paths.extend(
                    unit.writes
                        .iter()
                        .filter(|w| w.path.contains(&marker))
                        .map(|w| w.path.clone()),
                );
            }
        }
        paths.into_iter().collect()
    }
}

/// `fields` after `write` (increments added, as the server would).
pub fn apply_write(
    mut fields: BTreeMap<String, Value>,
    write: &DocumentWrite,
) -> BTreeMap<String, Value> {
    match &write.mask {
        None => fields = write.fields.clone(),
        Some(paths) => {
            for path in paths {
                match write.fields.get(path) {
                    Some(value) => fields.insert(path.clone(), value.clone()),
                    None => fields.remove(path),
                };
            }
        }
    }
    for (path, delta) in &write.increments {
        let current = fields.get(path).and_then(Value::as_integer).unwrap_or(0);
        fields.insert(path.clone(), Value::Integer(current + delta));
    }
    fields
}

/// One tablet.
pub struct Device {
    pub index: usize,
    pub id: String,
    pub engine: Outbox,
    /// Bumped by every restart; replies and timers of an earlier life are dropped.
    pub incarnation: u32,
    pub store: DeviceStore,
    pub scheduled_wake: Option<i64>,
    next_local_id: u64,
    config: OutboxConfig,
}

impl Device {
    pub fn new(index: usize, config: OutboxConfig) -> Self {
        let mut device = Device {
            index,
            id: config.device_id.clone(),
            engine: Outbox::new(config.clone()),
            incarnation: 0,
            store: DeviceStore::default(),
            scheduled_wake: None,
            next_local_id: 0,
            config,
        };
        device.engine.handle(0, Event::Online(true));
        device
    }

    /// The tab was closed or crashed: the engine's memory is gone, the store is kept.
    pub fn restart(&mut self, now: i64, seed: u64) -> Vec<Command> {
        self.incarnation += 1;
        self.scheduled_wake = None;
        self.engine = Outbox::new(OutboxConfig {
            seed,
            ..self.config.clone()
        });
        let mut pending = Vec::new();
        let mut dead_letters = Vec::new();
        for (unit, dead) in self.store.outbox.values() {
            match dead {
                None => pending.push(unit.clone()),
                Some(reason) => dead_letters.push((unit.clone(), reason.clone())),
            }
        }
        self.engine.handle(
            now,
            Event::Loaded {
                pending,
                dead_letters,
            },
        )
    }

    /// A UUID v7-like id: sortable by creation time, unique per device.
    fn new_id(&mut self, now: i64) -> String {
        self.next_local_id += 1;
        format!("{now:012}-{:02}-{:06}", self.index, self.next_local_id)
    }

    fn base_of(&self, path: &str) -> Option<BaseVersion> {
        self.store
            .base_copies
            .get(path)
            .and_then(BaseVersion::of_document)
    }

    /// The user does something; returns the unit written (with its entities, in one
    /// transaction) and what it means for the checks.
    pub fn act(&mut self, now: i64, rng: &mut SplitMix64) -> Option<(Unit, LedgerEntry)> {
        let shop = self.config.shop_id.clone();
        let products: Vec<String> = self
            .store
            .paths_in("products")
            .into_iter()
            .filter(|p| self.store.view(p).is_some())
            .collect();
        let customers = self.store.paths_in("customers");
        let mut ledger = LedgerEntry {
            device: self.index,
            label: String::new(),
            movements: BTreeMap::new(),
            initial_counters: BTreeMap::new(),
            voids: None,
            poison: false,
        };
        let choice = rng.up_to(99);
        let writes: Vec<DocumentWrite> = if products.is_empty() || choice < 12 {
            let path = format!("shops/{shop}/products/{}", self.new_id(now));
            let stock = rng.up_to(10) as i64;
            ledger.label = "create product".into();
            ledger
                .initial_counters
                .insert((path.clone(), STOCK.into()), stock);
            vec![DocumentWrite::create(
                path,
                BTreeMap::from([
                    (
                        "name".into(),
                        Value::String(format!("item {}", rng.up_to(999))),
                    ),
                    ("price".into(), Value::Integer(rng.up_to(500) as i64 + 1)),
                    (STOCK.into(), Value::Integer(stock)),
                    ("deleted".into(), Value::Boolean(false)),
                ]),
            )]
        } else if choice < 17 {
            let path = format!("shops/{shop}/customers/{}", self.new_id(now));
            ledger.label = "create customer".into();
            ledger
                .initial_counters
                .insert((path.clone(), CREDIT_BALANCE.into()), 0);
            vec![DocumentWrite::create(
                path,
                BTreeMap::from([
                    ("name".into(), Value::String("customer".into())),
                    (CREDIT_BALANCE.into(), Value::Integer(0)),
                    ("creditLimit".into(), Value::Integer(1_000)),
                ]),
            )]
        } else if choice < 40 {
            // Prices and names edited, often on a product another tablet edits too.
            let path = products[rng.up_to(products.len() as u64 - 1) as usize].clone();
            let mut fields = BTreeMap::new();
            if rng.up_to(2) > 0 {
                fields.insert("price".into(), Value::Integer(rng.up_to(500) as i64 + 1));
            }
            if rng.up_to(2) > 0 {
                fields.insert(
                    "name".into(),
                    Value::String(format!("item {}", rng.up_to(999))),
                );
            }
            if fields.is_empty() {
                fields.insert("price".into(), Value::Integer(rng.up_to(500) as i64 + 1));
            }
            ledger.label = "edit product".into();
            vec![DocumentWrite::patch(
                path.clone(),
                fields,
                self.base_of(&path),
            )]
        } else if choice < 75 {
            // A sale: a final bill, stock decrements, maybe on credit.
            let bill = format!("shops/{shop}/bills/{}", self.new_id(now));
            let mut lines = Vec::new();
            let mut writes = Vec::new();
            let mut total = 0;
            for _ in 0..=rng.up_to(2) {
                let product = products[rng.up_to(products.len() as u64 - 1) as usize].clone();
                let quantity = rng.up_to(2) as i64 + 1;
                total += quantity * 10;
                lines.push(Value::Map(BTreeMap::from([
                    ("product".into(), Value::String(product.clone())),
                    ("quantity".into(), Value::Integer(quantity)),
                ])));
                *ledger
                    .movements
                    .entry((product.clone(), STOCK.into()))
                    .or_insert(0) -= quantity;
                writes.push(DocumentWrite::increment(
                    product,
                    BTreeMap::from([(STOCK.to_string(), -quantity)]),
                ));
            }
            let mut bill_fields = BTreeMap::from([
                (STATUS.to_string(), Value::String(STATUS_FINAL.into())),
                ("lines".to_string(), Value::Array(lines)),
                ("total".to_string(), Value::Integer(total)),
                ("deleted".to_string(), Value::Boolean(false)),
            ]);
            if !customers.is_empty() && rng.up_to(3) == 0 {
                let customer = customers[rng.up_to(customers.len() as u64 - 1) as usize].clone();
                bill_fields.insert("customer".into(), Value::String(customer.clone()));
                *ledger
                    .movements
                    .entry((customer.clone(), CREDIT_BALANCE.into()))
                    .or_insert(0) += total;
                writes.push(DocumentWrite::increment(
                    customer,
                    BTreeMap::from([(CREDIT_BALANCE.to_string(), total)]),
                ));
            }
            writes.insert(0, DocumentWrite::create(bill, bill_fields));
            ledger.label = "sell".into();
            writes
        } else if choice < 85 {
            let path = products[rng.up_to(products.len() as u64 - 1) as usize].clone();
            let quantity = rng.up_to(5) as i64 + 1;
            ledger
                .movements
                .insert((path.clone(), STOCK.into()), quantity);
            ledger.label = "receive stock".into();
            vec![DocumentWrite::increment(
                path,
                BTreeMap::from([(STOCK.to_string(), quantity)]),
            )]
        } else if choice < 98 {
            // A void of a final bill this tablet has pulled: status plus compensations.
            let voidable: Vec<String> = self
                .store
                .paths_in("bills")
                .into_iter()
                .filter(|p| self.store.base_copies.contains_key(p))
                .filter(|p| {
                    self.store.view(p).and_then(|f| f.get(STATUS).cloned())
                        == Some(Value::String(STATUS_FINAL.into()))
                })
                .collect();
            if voidable.is_empty() {
                return None;
            }
            let bill = voidable[rng.up_to(voidable.len() as u64 - 1) as usize].clone();
            let fields = self.store.view(&bill)?;
            let mut writes = vec![DocumentWrite::patch(
                bill.clone(),
                BTreeMap::from([(STATUS.to_string(), Value::String(STATUS_VOID.into()))]),
                self.base_of(&bill),
            )];
            if let Some(Value::Array(lines)) = fields.get("lines") {
                for line in lines {
                    let Value::Map(line) = line else { continue };
                    let (Some(Value::String(product)), Some(Value::Integer(quantity))) =
                        (line.get("product"), line.get("quantity"))
                    else {
                        continue;
                    };
                    *ledger
                        .movements
                        .entry((product.clone(), STOCK.into()))
                        .or_insert(0) += quantity;
                    writes.push(DocumentWrite::increment(
                        product.clone(),
                        BTreeMap::from([(STOCK.to_string(), *quantity)]),
                    ));
                }
            }
            if let (Some(Value::String(customer)), Some(Value::Integer(total))) =
                (fields.get("customer"), fields.get("total"))
            {
                *ledger
                    .movements
                    .entry((customer.clone(), CREDIT_BALANCE.into()))
                    .or_insert(0) -= total;
                writes.push(DocumentWrite::increment(
                    customer.clone(),
                    BTreeMap::from([(CREDIT_BALANCE.to_string(), -total)]),
                ));
            }
            ledger.voids = Some(bill);
            ledger.label = "void bill".into();
            writes
        } else {
            // A change the server refuses for good: it must end as a dead letter, alone.
            ledger.poison = true;
            ledger.label = "poison expense".into();
            vec![DocumentWrite::create(
                format!("shops/{shop}/expenses/{}", self.new_id(now)),
                BTreeMap::from([("amount".into(), Value::Double(12.5))]),
            )]
        };
        let unit = Unit {
            id: self.new_id(now),
            label: ledger.label.as_str().into(),
            writes,
            created_at_millis: now,
            sender: None,
        };
        self.store
            .outbox
            .insert(unit.id.clone(), (unit.clone(), None));
        Some((unit, ledger))
    }
}
