//! Each user action's unit of work: the records the device stores, the audit entry, and the
//! sync core's [`Unit`] that pushes it, built in one place so that the local records and what
//! reaches the server can never disagree.
//!
//! The app writes a [`UnitOfWork`]'s records, audit entries and unit in ONE IndexedDB
//! transaction (DESIGN.md section 4). Counters (a product's `stock`, a customer's
//! `creditBalance`) only ever travel as increments; new documents are written whole; edits are
//! masked patches of the fields that changed, checked against the server version they started
//! from. Every unit also writes its audit entry as a document, `shops/{shop}/audit/{id}`
//! (DESIGN.md section 3: append-only, synced, so the owner sees who did what).
//!
//! Size: the outbox never splits a unit, and Firestore takes at most 500 writes per commit,
//! one of which is the unit's marker and one the device's `devices/{id}` stamp; so a unit has
//! at most [`MAX_UNIT_WRITES`] writes. A sale that would need more is refused
//! ([`SaleError::TooManyWrites`]); an import is cut into as many units as it needs.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{map_by_insertion, Value};
use counterbook_sync::{BaseVersion, DocumentWrite, Unit, UnitLabel};

use crate::bill::{bill_totals, BillError, BillLine};
use crate::customer::{Customer, CustomerError, CREDIT_BALANCE_FIELD};
use crate::payment::{settle, PaymentError, PaymentMethod, Tender};
use crate::product::{Product, ProductError, STOCK_FIELD};
use crate::records::{AuditEntry, Bill, BillStatus, PaymentRecord, StockMove, StockMoveKind};
use crate::series::BillNumber;
use crate::settings::{SettingsError, ShopSettings};

/// The most writes one unit may have: 500 per commit, less the marker and the devices stamp.
pub const MAX_UNIT_WRITES: usize = 498;

/// The collection of audit entries under `shops/{shop}/`.
pub const AUDIT_COLLECTION: &str = "audit";

/// Who acts, in which shop, on which device, and when (the caller reads the clock).
#[derive(Clone, Copy, Debug)]
pub struct ActionContext<'a> {
    pub shop_id: &'a str,
    pub device_id: &'a str,
    /// The name the shop gave this device ("Counter 1"), printed on its receipts.
    pub device_name: Option<&'a str>,
    pub cashier: Option<&'a str>,
    /// The user id of who acts: their sign-in sends the unit ([`Unit::sender`]). `None` where
    /// nobody signs in.
    pub person_id: Option<&'a str>,
    pub now_millis: i64,
}

/// A record the device stores for a unit of work, tagged with its store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Product(Product),
    Customer(Customer),
    Bill(Bill),
    Payment(PaymentRecord),
    StockMove(StockMove),
    Refund(crate::refunds::Refund),
}

/// What one user action leaves: records to store, audit entries, and the unit to push.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitOfWork {
    pub records: Vec<Record>,
    pub audit: Vec<AuditEntry>,
    pub unit: Unit,
}

/// Makes the ids an action needs (UUID v7 on the device; anything unique in tests).
pub type NewId<'a> = &'a mut dyn FnMut() -> String;

pub(crate) fn audit_entry(
    context: &ActionContext<'_>,
    id: String,
    action: &str,
    path: String,
    before: Option<BTreeMap<String, Value>>,
    after: Option<BTreeMap<String, Value>>,
) -> AuditEntry {
    AuditEntry {
        id,
        at_millis: context.now_millis,
        device_id: context.device_id.to_owned(),
        cashier: context.cashier.map(str::to_owned),
        approved_by: None,
        requested_by: None,
        action: action.to_owned(),
        path,
        before,
        after,
    }
}

impl AuditEntry {
    pub fn document_path(&self, shop_id: &str) -> String {
        format!("shops/{shop_id}/{AUDIT_COLLECTION}/{}", self.id)
    }

    /// The audit document's fields.
    pub fn to_fields(&self) -> BTreeMap<String, Value> {
        let fields_or_null = |fields: &Option<BTreeMap<String, Value>>| {
            fields.clone().map(Value::Map).unwrap_or(Value::Null)
        };
        // Built by insertion, not collected: a collected map sorts its pairs first, and that
        // sort is compiled again for each pair type (`counterbook_firestore_wire::map`).
        let mut fields = map_by_insertion([
            ("action".to_string(), Value::String(self.action.clone())),
            ("path".to_string(), Value::String(self.path.clone())),
            ("device".to_string(), Value::String(self.device_id.clone())),
            (
                "cashier".to_string(),
                self.cashier
                    .clone()
                    .map(Value::String)
                    .unwrap_or(Value::Null),
            ),
            ("atMillis".to_string(), Value::Integer(self.at_millis)),
            ("before".to_string(), fields_or_null(&self.before)),
            ("after".to_string(), fields_or_null(&self.after)),
            ("deleted".to_string(), Value::Boolean(false)),
        ]);
        fields.extend(
            [
                ("approvedBy", &self.approved_by),
                ("requestedBy", &self.requested_by),
            ]
            .into_iter()
            .filter_map(|(name, value)| {
                value
                    .clone()
                    .map(|value| (name.to_string(), Value::String(value)))
            }),
        );
        fields
    }
}

/// The field of an audit document naming the approver (the server and `firestore.rules`
/// require it to be the writer's own user id).
pub const APPROVED_BY_FIELD: &str = "approvedBy";

impl UnitOfWork {
    /// This unit as approved on the spot by `approver` (a user id) at `requester`'s request:
    /// every audit entry, and the audit documents the unit writes, name both.
    pub fn approved(mut self, approver: &str, requester: &str) -> UnitOfWork {
        // The approver's own sign-in sends it: the server requires `approvedBy` to be the writer.
        self.unit.sender = Some(approver.to_owned());
        for entry in &mut self.audit {
            entry.approved_by = Some(approver.to_owned());
            entry.requested_by = Some(requester.to_owned());
            let suffix = format!("/{AUDIT_COLLECTION}/{}", entry.id);
            for write in &mut self.unit.writes {
                if write.path.ends_with(&suffix) {
                    write.fields = entry.to_fields();
                }
            }
        }
        self
    }
}

pub(crate) fn unit_of_work(
    context: &ActionContext<'_>,
    unit_id: String,
    label: UnitLabel,
    mut writes: Vec<DocumentWrite>,
    records: Vec<Record>,
    audit: AuditEntry,
) -> UnitOfWork {
    writes.push(DocumentWrite::create(
        audit.document_path(context.shop_id),
        audit.to_fields(),
    ));
    UnitOfWork {
        records,
        audit: vec![audit],
        unit: Unit {
            id: unit_id,
            label,
            writes,
            created_at_millis: context.now_millis,
            sender: context.person_id.map(str::to_owned),
        },
    }
}

pub(crate) fn increment(path: String, field: &str, delta: i64) -> DocumentWrite {
    DocumentWrite::increment(path, map_by_insertion([(field.to_owned(), delta)]))
}

/// The product field naming the bill of its last sale. A cashier's token may take stock down
/// only in a sale: the server's policy and `firestore.rules` allow the decrease when this
/// names a bill that the same commit creates as `final` (crates/server/README.md, Roles).
pub const LAST_BILL_FIELD: &str = "lastBill";

/// A sale's stock decrement of one product: −`quantity` as an increment, with `lastBill`.
fn sold_stock(path: String, bill_id: &str, quantity: i64) -> DocumentWrite {
    let mut write = DocumentWrite::patch(
        path,
        map_by_insertion([(
            LAST_BILL_FIELD.to_owned(),
            Value::String(bill_id.to_owned()),
        )]),
        None,
    );
    write.increments.insert(STOCK_FIELD.to_owned(), -quantity);
    write
}

/// A sale as the counter has it when the cashier presses "Complete sale".
#[derive(Clone, Copy, Debug)]
pub struct Sale<'a> {
    /// The number this bill takes: the device's next in its series.
    pub number: &'a BillNumber,
    pub lines: &'a [BillLine],
    pub tenders: &'a [Tender],
    /// The bill's customer, with the balance this device knows.
    pub customer: Option<&'a Customer>,
    /// The products on the bill as this device has them, so their local stock goes down at
    /// once; a line whose product is not among them still sends its stock decrement.
    pub products: &'a [Product],
    pub settings: &'a ShopSettings,
    /// The local calendar day, `YYYY-MM-DD` (the caller knows the time zone).
    pub day: &'a str,
}

/// Why a sale cannot be completed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SaleError {
    #[error("the bill has no lines")]
    NoLines,
    #[error(transparent)]
    Bill(#[from] BillError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error("the bill is too long to send at once ({writes} writes, at most {MAX_UNIT_WRITES}): split it into two bills")]
    TooManyWrites { writes: usize },
}

/// A completed sale: its unit of work and the final bill (also among the records).
#[derive(Clone, Debug, PartialEq)]
pub struct CompletedSale {
    pub work: UnitOfWork,
    pub bill: Bill,
}

/// Completes a sale: the final bill with its lines and settlement, one payment record per
/// method, per product a stock decrement (an increment of −quantity) and a `sale` stock move,
/// the customer's balance increment for credit, and the audit entry.
pub fn complete_sale(
    context: &ActionContext<'_>,
    sale: &Sale<'_>,
    new_id: NewId<'_>,
) -> Result<CompletedSale, SaleError> {
    complete_sale_within_limit_or_not(context, sale, false, new_id)
}

/// [`complete_sale`] with the customer's credit limit overridden (a manager's action): the
/// credit goes on their balance whatever their limit, and the audit entry says so
/// (`creditLimitOverridden`).
pub fn complete_sale_over_credit_limit(
    context: &ActionContext<'_>,
    sale: &Sale<'_>,
    new_id: NewId<'_>,
) -> Result<CompletedSale, SaleError> {
    complete_sale_within_limit_or_not(context, sale, true, new_id)
}

fn complete_sale_within_limit_or_not(
    context: &ActionContext<'_>,
    sale: &Sale<'_>,
    override_credit_limit: bool,
    new_id: NewId<'_>,
) -> Result<CompletedSale, SaleError> {
    if sale.lines.is_empty() {
        return Err(SaleError::NoLines);
    }
    let totals = bill_totals(sale.lines, sale.settings.tax_mode)?;
    // Overriding the limit: settled as if the customer had none.
    let unlimited = sale
        .customer
        .filter(|_| override_credit_limit)
        .map(|customer| Customer {
            credit_limit_minor: None,
            ..customer.clone()
        });
    let settlement = settle(
        totals.total_minor,
        sale.tenders,
        sale.settings.cash_rounding_step_minor,
        unlimited.as_ref().or(sale.customer),
    )?;
    // Quantities sold per product, in the order of first appearance on the bill.
    let mut sold: Vec<(&str, i64)> = Vec::new();
    for line in sale.lines {
        match sold.iter_mut().find(|(id, _)| *id == line.product_id) {
            Some((_, quantity)) => *quantity = quantity.saturating_add(line.quantity),
            None => sold.push((&line.product_id, line.quantity)),
        }
    }
    let customer_writes = usize::from(settlement.credit_minor > 0);
    let writes = 1 + 2 * sold.len() + settlement.payments.len() + customer_writes + 1;
    if writes > MAX_UNIT_WRITES {
        return Err(SaleError::TooManyWrites { writes });
    }
    let shop = context.shop_id;
    let unit_id = new_id();
    let bill_id = new_id();
    let payments: Vec<PaymentRecord> = settlement
        .payments
        .iter()
        .map(|payment| PaymentRecord {
            id: new_id(),
            bill_id: Some(bill_id.clone()),
            customer_id: sale.customer.map(|customer| customer.id.clone()),
            method: payment.method,
            amount_minor: payment.amount_minor,
            received_minor: payment.received_minor,
            change_minor: payment.change_minor,
            confirmed: payment.confirmed,
            at_millis: context.now_millis,
            device_id: context.device_id.to_owned(),
        })
        .collect();
    let bill = Bill {
        id: bill_id.clone(),
        number: sale.number.to_string(),
        status: BillStatus::Final,
        lines: sale.lines.to_vec(),
        totals,
        customer_id: sale.customer.map(|customer| customer.id.clone()),
        payment_ids: payments.iter().map(|payment| payment.id.clone()).collect(),
        settlement,
        device_id: context.device_id.to_owned(),
        device_name: context.device_name.map(str::to_owned),
        cashier: context.cashier.map(str::to_owned),
        day: sale.day.to_owned(),
        created_at_millis: context.now_millis,
    };
    let bill_fields = bill.to_fields();
    let mut writes = vec![DocumentWrite::create(
        bill.document_path(shop),
        bill_fields.clone(),
    )];
    let mut records = vec![Record::Bill(bill.clone())];
    for (product_id, quantity) in &sold {
        writes.push(sold_stock(
            crate::product::product_path(shop, product_id),
            &bill_id,
            *quantity,
        ));
        let stock_move = StockMove {
            id: new_id(),
            product_id: (*product_id).to_owned(),
            kind: StockMoveKind::Sale,
            quantity: -quantity,
            bill_id: Some(bill_id.clone()),
            reason: None,
            device_id: context.device_id.to_owned(),
            at_millis: context.now_millis,
        };
        writes.push(DocumentWrite::create(
            stock_move.document_path(shop),
            stock_move.to_fields(),
        ));
        if let Some(product) = sale.products.iter().find(|p| p.id == *product_id) {
            let mut sold_product = product.clone();
            sold_product.stock_on_hand = sold_product.stock_on_hand.saturating_sub(*quantity);
            records.push(Record::Product(sold_product));
        }
        records.push(Record::StockMove(stock_move));
    }
    for payment in &payments {
        writes.push(DocumentWrite::create(
            payment.document_path(shop),
            payment.to_fields(),
        ));
        records.push(Record::Payment(payment.clone()));
    }
    if bill.settlement.credit_minor > 0 {
        if let Some(customer) = sale.customer {
            writes.push(increment(
                customer.document_path(shop),
                CREDIT_BALANCE_FIELD,
                bill.settlement.credit_minor,
            ));
            let mut owing = customer.clone();
            owing.credit_balance_minor = owing
                .credit_balance_minor
                .saturating_add(bill.settlement.credit_minor);
            records.push(Record::Customer(owing));
        }
    }
    let mut audit_after = bill_fields;
    if override_credit_limit {
        audit_after.insert("creditLimitOverridden".to_owned(), Value::Boolean(true));
    }
    let audit = audit_entry(
        context,
        new_id(),
        "bill.finalize",
        bill.document_path(shop),
        None,
        Some(audit_after),
    );
    let work = unit_of_work(
        context,
        unit_id,
        UnitLabel::Sale {
            bill: bill.number.clone(),
        },
        writes,
        records,
        audit,
    );
    Ok(CompletedSale { work, bill })
}

/// Adds a new product. Its opening stock, if any, travels as an increment with a `receive`
/// stock move, like any stock received later.
pub fn add_product(
    context: &ActionContext<'_>,
    product: &Product,
    new_id: NewId<'_>,
) -> Result<UnitOfWork, ProductError> {
    product.validate()?;
    let unit_id = new_id();
    let (writes, records) = product_creation(context, product, new_id);
    let path = product.document_path(context.shop_id);
    let audit = audit_entry(
        context,
        new_id(),
        "product.create",
        path,
        None,
        Some(product.to_fields()),
    );
    Ok(unit_of_work(
        context,
        unit_id,
        UnitLabel::AddProduct {
            name: product.name.clone(),
        },
        writes,
        records,
        audit,
    ))
}

/// The writes and records of one new product (one or, with opening stock, two writes).
fn product_creation(
    context: &ActionContext<'_>,
    product: &Product,
    new_id: NewId<'_>,
) -> (Vec<DocumentWrite>, Vec<Record>) {
    let path = product.document_path(context.shop_id);
    let mut write = DocumentWrite::create(path, product.to_fields());
    let mut records = vec![Record::Product(product.clone())];
    let mut writes = Vec::new();
    if product.stock_on_hand != 0 {
        write
            .increments
            .insert(STOCK_FIELD.to_owned(), product.stock_on_hand);
        writes.push(write);
        let stock_move = StockMove {
            id: new_id(),
            product_id: product.id.clone(),
            kind: StockMoveKind::Receive,
            quantity: product.stock_on_hand,
            bill_id: None,
            reason: Some("opening stock".to_owned()),
            device_id: context.device_id.to_owned(),
            at_millis: context.now_millis,
        };
        writes.push(DocumentWrite::create(
            stock_move.document_path(context.shop_id),
            stock_move.to_fields(),
        ));
        records.push(Record::StockMove(stock_move));
    } else {
        writes.push(write);
    }
    (writes, records)
}

/// Edits a product: a masked patch of exactly the fields that changed, checked against
/// `base`, the server version the edit started from (a change made meanwhile elsewhere is
/// merged, not overwritten). Stock is not edited here: it moves through [`move_stock`].
/// `Ok(None)` when nothing changed.
pub fn edit_product(
    context: &ActionContext<'_>,
    before: &Product,
    after: &Product,
    base: Option<BaseVersion>,
    new_id: NewId<'_>,
) -> Result<Option<UnitOfWork>, ProductError> {
    after.validate()?;
    let mut edited = after.clone();
    edited.id = before.id.clone();
    edited.stock_on_hand = before.stock_on_hand;
    edited.name_key = crate::product::name_key(&edited.name);
    let before_fields = before.to_fields();
    let changed = map_by_insertion(
        edited
            .to_fields()
            .into_iter()
            .filter(|(field, value)| before_fields.get(field) != Some(value)),
    );
    if changed.is_empty() {
        return Ok(None);
    }
    let path = before.document_path(context.shop_id);
    let unit_id = new_id();
    let audit = audit_entry(
        context,
        new_id(),
        "product.edit",
        path.clone(),
        Some(before_fields),
        Some(edited.to_fields()),
    );
    Ok(Some(unit_of_work(
        context,
        unit_id,
        UnitLabel::EditProduct {
            name: edited.name.clone(),
        },
        vec![DocumentWrite::patch(path, changed, base)],
        vec![Record::Product(edited)],
        audit,
    )))
}

/// Why stock cannot move.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StockError {
    #[error("the quantity received must be above zero")]
    NonPositiveReceipt,
    #[error("an adjustment must change the stock")]
    ZeroAdjustment,
    #[error("an adjustment needs a reason")]
    AdjustmentWithoutReason,
    #[error(
        "stock moves only by receiving or adjusting here; sales and voids move it with their bill"
    )]
    NotAManualMove,
}

/// Receives stock (a positive quantity) or adjusts it (either sign, with a reason): an
/// increment of the product's stock and a stock move.
pub fn move_stock(
    context: &ActionContext<'_>,
    product: &Product,
    kind: StockMoveKind,
    quantity: i64,
    reason: Option<&str>,
    new_id: NewId<'_>,
) -> Result<UnitOfWork, StockError> {
    let reason = reason.map(str::trim).filter(|reason| !reason.is_empty());
    match kind {
        StockMoveKind::Receive if quantity <= 0 => return Err(StockError::NonPositiveReceipt),
        StockMoveKind::Adjust if quantity == 0 => return Err(StockError::ZeroAdjustment),
        StockMoveKind::Adjust if reason.is_none() => {
            return Err(StockError::AdjustmentWithoutReason)
        }
        StockMoveKind::Receive | StockMoveKind::Adjust => {}
        StockMoveKind::Sale | StockMoveKind::Void | StockMoveKind::Return => {
            return Err(StockError::NotAManualMove)
        }
    }
    let unit_id = new_id();
    let path = product.document_path(context.shop_id);
    let stock_move = StockMove {
        id: new_id(),
        product_id: product.id.clone(),
        kind,
        quantity,
        bill_id: None,
        reason: reason.map(str::to_owned),
        device_id: context.device_id.to_owned(),
        at_millis: context.now_millis,
    };
    let mut moved = product.clone();
    moved.stock_on_hand = moved.stock_on_hand.saturating_add(quantity);
    let audit = audit_entry(
        context,
        new_id(),
        &format!("stock.{}", kind.as_str()),
        path.clone(),
        Some(map_by_insertion([(
            STOCK_FIELD.to_owned(),
            Value::Integer(product.stock_on_hand),
        )])),
        Some(map_by_insertion([(
            STOCK_FIELD.to_owned(),
            Value::Integer(moved.stock_on_hand),
        )])),
    );
    let (quantity_label, unit, name) = (
        quantity,
        product.unit.as_str().to_owned(),
        product.name.clone(),
    );
    let label = match kind {
        StockMoveKind::Receive => UnitLabel::ReceiveStock {
            quantity: quantity_label,
            unit,
            name,
        },
        _ => UnitLabel::AdjustStock {
            quantity: quantity_label,
            unit,
            name,
        },
    };
    Ok(unit_of_work(
        context,
        unit_id,
        label,
        vec![
            increment(path, STOCK_FIELD, quantity),
            DocumentWrite::create(
                stock_move.document_path(context.shop_id),
                stock_move.to_fields(),
            ),
        ],
        vec![Record::Product(moved), Record::StockMove(stock_move)],
        audit,
    ))
}

/// Imports products (already validated, e.g. by [`crate::csv_import`]) in as few units as the
/// commit limit allows: each unit holds as many whole products (one write, two with opening
/// stock) as fit in [`MAX_UNIT_WRITES`] with its audit entry, which lists the product ids.
pub fn import_products(
    context: &ActionContext<'_>,
    products: &[Product],
    new_id: NewId<'_>,
) -> Vec<UnitOfWork> {
    let mut units = Vec::new();
    let mut start = 0;
    while start < products.len() {
        // One write is kept for the audit entry.
        let mut budget = MAX_UNIT_WRITES - 1;
        let mut end = start;
        while end < products.len() {
            let cost = if products[end].stock_on_hand != 0 {
                2
            } else {
                1
            };
            if cost > budget {
                break;
            }
            budget -= cost;
            end += 1;
        }
        let batch = &products[start..end];
        let unit_id = new_id();
        let mut writes = Vec::new();
        let mut records = Vec::new();
        for product in batch {
            let (product_writes, product_records) = product_creation(context, product, new_id);
            writes.extend(product_writes);
            records.extend(product_records);
        }
        let audit = audit_entry(
            context,
            new_id(),
            "product.import",
            format!(
                "shops/{}/{}",
                context.shop_id,
                crate::product::PRODUCTS_COLLECTION
            ),
            None,
            Some(map_by_insertion([
                ("count".to_owned(), Value::Integer(batch.len() as i64)),
                (
                    "productIds".to_owned(),
                    Value::Array(
                        batch
                            .iter()
                            .map(|product| Value::String(product.id.clone()))
                            .collect(),
                    ),
                ),
            ])),
        );
        units.push(unit_of_work(
            context,
            unit_id,
            UnitLabel::ImportProducts {
                first: start + 1,
                last: end,
                total: products.len(),
            },
            writes,
            records,
            audit,
        ));
        start = end;
    }
    units
}

/// Creates a customer; an opening balance, if any, travels as an increment.
pub fn create_customer(
    context: &ActionContext<'_>,
    customer: &Customer,
    new_id: NewId<'_>,
) -> Result<UnitOfWork, CustomerError> {
    customer.validate()?;
    let unit_id = new_id();
    let path = customer.document_path(context.shop_id);
    let mut write = DocumentWrite::create(path.clone(), customer.to_fields());
    if customer.credit_balance_minor != 0 {
        write.increments.insert(
            CREDIT_BALANCE_FIELD.to_owned(),
            customer.credit_balance_minor,
        );
    }
    let audit = audit_entry(
        context,
        new_id(),
        "customer.create",
        path,
        None,
        Some(customer.to_fields()),
    );
    Ok(unit_of_work(
        context,
        unit_id,
        UnitLabel::AddCustomer {
            name: customer.name.clone(),
        },
        vec![write],
        vec![Record::Customer(customer.clone())],
        audit,
    ))
}

/// Edits a customer's name, phone or credit limit: a masked patch of what changed, checked
/// against `base`. The balance is a counter and never edited here. `Ok(None)` when nothing
/// changed.
pub fn edit_customer(
    context: &ActionContext<'_>,
    before: &Customer,
    after: &Customer,
    base: Option<BaseVersion>,
    new_id: NewId<'_>,
) -> Result<Option<UnitOfWork>, CustomerError> {
    let mut edited = Customer::new(before.id.clone(), &after.name, after.phone.as_deref());
    edited.credit_limit_minor = after.credit_limit_minor;
    edited.credit_balance_minor = before.credit_balance_minor;
    edited.deleted = before.deleted;
    edited.validate()?;
    let before_fields = before.to_fields();
    let changed = map_by_insertion(
        edited
            .to_fields()
            .into_iter()
            .filter(|(field, value)| before_fields.get(field) != Some(value)),
    );
    if changed.is_empty() {
        return Ok(None);
    }
    let path = before.document_path(context.shop_id);
    let unit_id = new_id();
    let audit = audit_entry(
        context,
        new_id(),
        "customer.edit",
        path.clone(),
        Some(before_fields),
        Some(edited.to_fields()),
    );
    Ok(Some(unit_of_work(
        context,
        unit_id,
        UnitLabel::EditCustomer {
            name: edited.name.clone(),
        },
        vec![DocumentWrite::patch(path, changed, base)],
        vec![Record::Customer(edited)],
        audit,
    )))
}

/// Why a payment cannot be confirmed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfirmError {
    #[error("only UPI payments wait for confirmation")]
    NotUpi,
    #[error("the payment is already confirmed")]
    AlreadyConfirmed,
}

/// The cashier saw a UPI payment arrive: its `payments` document becomes confirmed.
pub fn confirm_upi_payment(
    context: &ActionContext<'_>,
    payment: &PaymentRecord,
    new_id: NewId<'_>,
) -> Result<UnitOfWork, ConfirmError> {
    if payment.method != PaymentMethod::Upi {
        return Err(ConfirmError::NotUpi);
    }
    if payment.confirmed == Some(true) {
        return Err(ConfirmError::AlreadyConfirmed);
    }
    let unit_id = new_id();
    let path = payment.document_path(context.shop_id);
    let confirmed = map_by_insertion([("confirmed".to_owned(), Value::Boolean(true))]);
    let audit = audit_entry(
        context,
        new_id(),
        "payment.confirm",
        path.clone(),
        Some(map_by_insertion([(
            "confirmed".to_owned(),
            Value::Boolean(false),
        )])),
        Some(confirmed.clone()),
    );
    let mut record = payment.clone();
    record.confirmed = Some(true);
    Ok(unit_of_work(
        context,
        unit_id,
        UnitLabel::ConfirmUpiPayment,
        vec![DocumentWrite::patch(path, confirmed, None)],
        vec![Record::Payment(record)],
        audit,
    ))
}

/// Saves the shop profile: a patch of every profile field, checked against `base`.
pub fn save_settings(
    context: &ActionContext<'_>,
    before: Option<&ShopSettings>,
    after: &ShopSettings,
    base: Option<BaseVersion>,
    new_id: NewId<'_>,
) -> Result<UnitOfWork, SettingsError> {
    after.validate()?;
    let unit_id = new_id();
    let path = ShopSettings::document_path(context.shop_id);
    let audit = audit_entry(
        context,
        new_id(),
        "settings.save",
        path.clone(),
        before.map(ShopSettings::to_fields),
        Some(after.to_fields()),
    );
    Ok(unit_of_work(
        context,
        unit_id,
        UnitLabel::SaveShopSettings,
        vec![DocumentWrite::patch(path, after.to_fields(), base)],
        Vec::new(),
        audit,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{assert_one_commit, commit_of, context, ids, paths, product};

    /// Ids `id-1`, `id-2`, ... in the order asked for.
    fn counter() -> impl FnMut() -> String {
        ids("id")
    }

    fn line(product: &Product, quantity: i64) -> BillLine {
        BillLine::of_product(product, quantity)
    }

    #[test]
    fn a_sale_is_one_unit_with_bill_stock_moves_payments_credit_and_audit() {
        let (tea, soap) = (product("tea", 120_00, 10), product("soap", 45_00, 5));
        let mut customer = Customer::new("c1".into(), "Asha", Some("98765 43210"));
        customer.credit_balance_minor = 50_00;
        customer.credit_limit_minor = Some(500_00);
        let number = BillNumber::parse("T2-000007").unwrap();
        let lines = [line(&tea, 2), line(&soap, 1), line(&tea, 1)];
        let tenders = [
            Tender::Credit {
                amount_minor: 100_00,
            },
            Tender::Cash {
                received_minor: 500_00,
            },
        ];
        let settings = ShopSettings::default();
        let products = [tea.clone(), soap.clone()];
        let sale = Sale {
            number: &number,
            lines: &lines,
            tenders: &tenders,
            customer: Some(&customer),
            products: &products,
            settings: &settings,
            day: "2026-12-01",
        };
        let completed = complete_sale(&context(), &sale, &mut counter()).unwrap();
        let unit = &completed.work.unit;
        assert_eq!(unit.id, "id-1");
        assert_eq!(
            unit.label,
            UnitLabel::Sale {
                bill: "T2-000007".into()
            }
        );
        assert_eq!(
            paths(unit),
            [
                "shops/s1/bills/id-2",
                "shops/s1/products/tea",
                "shops/s1/stockMoves/id-5",
                "shops/s1/products/soap",
                "shops/s1/stockMoves/id-6",
                "shops/s1/payments/id-3",
                "shops/s1/payments/id-4",
                "shops/s1/customers/c1",
                "shops/s1/audit/id-7",
            ]
        );
        // Stock and balance travel as increments only.
        assert_eq!(
            unit.writes[1].increments,
            BTreeMap::from([("stock".into(), -3)])
        );
        // Each stock decrement names the bill (a cashier's stock goes down only in a sale)
        // and sets nothing else.
        assert_eq!(unit.writes[1].mask, Some(vec!["lastBill".to_owned()]));
        assert_eq!(
            unit.writes[1].fields,
            BTreeMap::from([("lastBill".into(), Value::String("id-2".into()))])
        );
        assert_eq!(unit.writes[1].base, None);
        assert_eq!(
            unit.writes[3].increments,
            BTreeMap::from([("stock".into(), -1)])
        );
        assert_eq!(
            unit.writes[7].increments,
            BTreeMap::from([("creditBalance".into(), 100_00)])
        );
        let bill = &completed.bill;
        assert_eq!(bill.totals.total_minor, 405_00);
        assert_eq!(bill.settlement.cash_due_minor, 305_00);
        assert_eq!(bill.settlement.change_minor, 195_00);
        assert_eq!(bill.payment_ids, ["id-3", "id-4"]);
        assert_eq!(bill.cashier.as_deref(), Some("asha"));
        // The local records agree with the writes.
        let records = &completed.work.records;
        assert!(records.contains(&Record::Product(Product {
            stock_on_hand: 7,
            ..tea
        })));
        assert!(records.contains(&Record::Product(Product {
            stock_on_hand: 4,
            ..soap
        })));
        assert!(records.contains(&Record::Customer(Customer {
            credit_balance_minor: 150_00,
            ..customer.clone()
        })));
        assert_eq!(completed.work.audit[0].action, "bill.finalize");
        // And the sync core takes it as one commit.
        assert_one_commit(unit);
    }

    #[test]
    fn a_sale_over_the_credit_limit_is_refused_and_leaves_nothing() {
        let tea = product("tea", 120_00, 10);
        let mut customer = Customer::new("c1".into(), "Asha", None);
        customer.credit_balance_minor = 450_00;
        customer.credit_limit_minor = Some(500_00);
        let number = BillNumber::first("T2").unwrap();
        let lines = [line(&tea, 1)];
        let tenders = [Tender::Credit {
            amount_minor: 120_00,
        }];
        let settings = ShopSettings::default();
        let sale = Sale {
            number: &number,
            lines: &lines,
            tenders: &tenders,
            customer: Some(&customer),
            products: &[],
            settings: &settings,
            day: "2026-12-01",
        };
        assert_eq!(
            complete_sale(&context(), &sale, &mut counter()),
            Err(SaleError::Payment(PaymentError::CreditOverLimit {
                balance_minor: 450_00,
                credit_minor: 120_00,
                limit_minor: 500_00,
                available_minor: 50_00,
            }))
        );
        // A manager's override: the credit goes on the balance, past the limit.
        let overridden =
            complete_sale_over_credit_limit(&context(), &sale, &mut counter()).unwrap();
        assert_eq!(overridden.bill.settlement.credit_minor, 120_00);
        assert!(overridden.work.records.iter().any(|record| matches!(record,
            Record::Customer(c) if c.credit_balance_minor == 570_00
                && c.credit_limit_minor == Some(500_00))));
        assert_eq!(
            overridden.work.audit[0]
                .after
                .as_ref()
                .and_then(|after| after.get("creditLimitOverridden")),
            Some(&Value::Boolean(true))
        );
        let empty = Sale { lines: &[], ..sale };
        assert_eq!(
            complete_sale(&context(), &empty, &mut counter()),
            Err(SaleError::NoLines)
        );
    }

    #[test]
    fn a_bill_too_long_for_one_commit_is_refused() {
        let products: Vec<Product> = (0..250)
            .map(|i| product(&format!("p{i}"), 1_00, 0))
            .collect();
        let lines: Vec<BillLine> = products.iter().map(|p| line(p, 1)).collect();
        let number = BillNumber::first("T2").unwrap();
        let tenders = [Tender::Card {
            amount_minor: 250_00,
        }];
        let settings = ShopSettings::default();
        let sale = Sale {
            number: &number,
            lines: &lines,
            tenders: &tenders,
            customer: None,
            products: &[],
            settings: &settings,
            day: "2026-12-01",
        };
        assert_eq!(
            complete_sale(&context(), &sale, &mut counter()),
            Err(SaleError::TooManyWrites { writes: 503 })
        );
        let card = [Tender::Card {
            amount_minor: 247_00,
        }];
        let longest = Sale {
            lines: &lines[..247],
            tenders: &card,
            ..sale
        };
        let completed = complete_sale(&context(), &longest, &mut counter()).unwrap();
        assert_eq!(completed.work.unit.writes.len(), 497);
        let card = [Tender::Card {
            amount_minor: 248_00,
        }];
        let too_long = Sale {
            lines: &lines[..248],
            tenders: &card,
            ..sale
        };
        assert_eq!(
            complete_sale(&context(), &too_long, &mut counter()),
            Err(SaleError::TooManyWrites { writes: 499 })
        );
    }

    #[test]
    fn adding_a_product_with_opening_stock_receives_it() {
        let work = add_product(&context(), &product("tea", 120_00, 24), &mut counter()).unwrap();
        let unit = &work.unit;
        assert_eq!(
            paths(unit),
            [
                "shops/s1/products/tea",
                "shops/s1/stockMoves/id-2",
                "shops/s1/audit/id-3"
            ]
        );
        assert_eq!(unit.writes[0].mask, None, "a new document is written whole");
        assert!(!unit.writes[0].fields.contains_key("stock"));
        assert_eq!(
            unit.writes[0].increments,
            BTreeMap::from([("stock".into(), 24)])
        );
        let bad = Product::new("x".into(), " ", 1, "INR");
        assert_eq!(
            add_product(&context(), &bad, &mut counter()),
            Err(ProductError::EmptyName)
        );
        let no_stock = add_product(&context(), &product("soap", 45_00, 0), &mut counter()).unwrap();
        assert_eq!(
            paths(&no_stock.unit),
            ["shops/s1/products/soap", "shops/s1/audit/id-2"]
        );
    }

    #[test]
    fn an_edit_patches_only_what_changed_against_its_base() {
        let before = product("tea", 120_00, 10);
        let mut after = before.clone();
        after.price_minor = 125_00;
        after.barcodes = vec!["8901063010017".into()];
        after.stock_on_hand = 999; // ignored: stock moves through move_stock
        let base = BaseVersion {
            update_time: counterbook_firestore_wire::Timestamp::from_unix_micros(7),
            fields: before.to_fields(),
        };
        let work = edit_product(
            &context(),
            &before,
            &after,
            Some(base.clone()),
            &mut counter(),
        )
        .unwrap()
        .unwrap();
        let write = &work.unit.writes[0];
        assert_eq!(write.mask, Some(vec!["barcodes".into(), "price".into()]));
        assert_eq!(write.base, Some(base));
        assert_eq!(
            work.records,
            vec![Record::Product(Product {
                stock_on_hand: 10,
                ..after
            })]
        );
        assert_eq!(
            edit_product(&context(), &before, &before, None, &mut counter()),
            Ok(None)
        );
    }

    #[test]
    fn an_approved_unit_names_the_approver_and_who_asked_in_its_audit_document() {
        let before = product("tea", 120_00, 10);
        let mut after = before.clone();
        after.price_minor = 99_00;
        let plain = edit_product(&context(), &before, &after, None, &mut counter())
            .unwrap()
            .unwrap();
        let audit_fields = |work: &UnitOfWork| {
            let path = work.audit[0].document_path("s1");
            work.unit
                .writes
                .iter()
                .find(|write| write.path == path)
                .expect("the unit writes its audit entry")
                .fields
                .clone()
        };
        assert!(!audit_fields(&plain).contains_key(APPROVED_BY_FIELD));
        let approved = plain.approved("manager-uid", "cashier-uid");
        assert_eq!(
            approved.audit[0].approved_by.as_deref(),
            Some("manager-uid")
        );
        assert_eq!(
            approved.audit[0].requested_by.as_deref(),
            Some("cashier-uid")
        );
        let fields = audit_fields(&approved);
        assert_eq!(
            fields.get(APPROVED_BY_FIELD),
            Some(&Value::String("manager-uid".into()))
        );
        assert_eq!(
            fields.get("requestedBy"),
            Some(&Value::String("cashier-uid".into()))
        );
        assert_eq!(fields.get("cashier"), Some(&Value::String("asha".into())));
    }

    #[test]
    fn stock_is_received_and_adjusted_with_a_reason() {
        let tea = product("tea", 120_00, 10);
        let work = move_stock(
            &context(),
            &tea,
            StockMoveKind::Adjust,
            -2,
            Some("damaged"),
            &mut counter(),
        )
        .unwrap();
        assert_eq!(
            work.unit.writes[0].increments,
            BTreeMap::from([("stock".into(), -2)])
        );
        let Record::StockMove(stock_move) = &work.records[1] else {
            panic!("{:?}", work.records)
        };
        assert_eq!(stock_move.reason.as_deref(), Some("damaged"));
        assert_eq!(work.audit[0].action, "stock.adjust");
        assert_eq!(
            work.unit.label,
            UnitLabel::AdjustStock {
                quantity: -2,
                unit: "piece".into(),
                name: tea.name.clone()
            }
        );
        // A loose product's label keeps the stock field's milli-units and names the unit, so
        // the app shows "1.5 kg" in the tablet's language.
        let mut rice = product("rice", 60_00, 0);
        rice.unit = crate::QuantityUnit::Kilogram;
        let received = move_stock(
            &context(),
            &rice,
            StockMoveKind::Receive,
            1_500,
            None,
            &mut counter(),
        )
        .unwrap();
        assert_eq!(
            received.unit.label,
            UnitLabel::ReceiveStock {
                quantity: 1_500,
                unit: "kg".into(),
                name: rice.name.clone()
            }
        );
        let check = |kind, quantity, reason: Option<&str>, expected| {
            assert_eq!(
                move_stock(&context(), &tea, kind, quantity, reason, &mut counter()).unwrap_err(),
                expected
            );
        };
        check(
            StockMoveKind::Receive,
            0,
            None,
            StockError::NonPositiveReceipt,
        );
        check(
            StockMoveKind::Adjust,
            -1,
            Some(" "),
            StockError::AdjustmentWithoutReason,
        );
        check(
            StockMoveKind::Adjust,
            0,
            Some("count"),
            StockError::ZeroAdjustment,
        );
        check(StockMoveKind::Sale, -1, None, StockError::NotAManualMove);
    }

    #[test]
    fn an_import_fills_units_up_to_the_commit_limit() {
        let products: Vec<Product> = (0..10_000)
            .map(|i| product(&format!("p{i}"), 1_00, if i % 2 == 0 { 5 } else { 0 }))
            .collect();
        let units = import_products(&context(), &products, &mut counter());
        // 1.5 writes per product on average: 15,000 writes, at most 497 entity writes a unit.
        assert_eq!(units.len(), 31);
        let mut imported = 0;
        for work in &units {
            assert!(work.unit.writes.len() <= MAX_UNIT_WRITES);
            let commit = commit_of(&[&work.unit]);
            assert!(commit.writes.len() <= 500, "{}", commit.writes.len());
            imported += work
                .records
                .iter()
                .filter(|record| matches!(record, Record::Product(_)))
                .count();
        }
        assert_eq!(imported, 10_000);
        assert_eq!(
            units[0].unit.label,
            UnitLabel::ImportProducts {
                first: 1,
                last: 331,
                total: 10000
            }
        );
        assert_eq!(
            units[0].unit.label.to_string(),
            "Import products 1–331 of 10000"
        );
        assert!(import_products(&context(), &[], &mut counter()).is_empty());
    }

    #[test]
    fn customers_are_created_and_upi_payments_confirmed() {
        let mut customer = Customer::new("c1".into(), "Asha", Some("98765"));
        customer.credit_balance_minor = 20_00;
        let work = create_customer(&context(), &customer, &mut counter()).unwrap();
        assert_eq!(
            work.unit.writes[0].increments,
            BTreeMap::from([("creditBalance".into(), 20_00)])
        );
        assert!(!work.unit.writes[0].fields.contains_key("creditBalance"));
        assert_eq!(
            create_customer(
                &context(),
                &Customer::new("c2".into(), "", None),
                &mut counter()
            ),
            Err(CustomerError::EmptyName)
        );
        let payment = PaymentRecord {
            id: "pay1".into(),
            bill_id: Some("b1".into()),
            customer_id: None,
            method: PaymentMethod::Upi,
            amount_minor: 10_00,
            received_minor: None,
            change_minor: None,
            confirmed: Some(false),
            at_millis: 0,
            device_id: "dev-A".into(),
        };
        let work = confirm_upi_payment(&context(), &payment, &mut counter()).unwrap();
        assert_eq!(work.unit.writes[0].mask, Some(vec!["confirmed".into()]));
        let confirmed = PaymentRecord {
            confirmed: Some(true),
            ..payment.clone()
        };
        assert_eq!(
            confirm_upi_payment(&context(), &confirmed, &mut counter()),
            Err(ConfirmError::AlreadyConfirmed)
        );
        let cash = PaymentRecord {
            method: PaymentMethod::Cash,
            ..payment
        };
        assert_eq!(
            confirm_upi_payment(&context(), &cash, &mut counter()),
            Err(ConfirmError::NotUpi)
        );
    }

    #[test]
    fn a_customer_edit_patches_only_what_changed() {
        let mut before = Customer::new("c1".into(), "Asha", Some("98765"));
        before.credit_balance_minor = 70_00;
        let mut after = before.clone();
        after.phone = Some("+91 90000 11111".into());
        after.credit_limit_minor = Some(500_00);
        after.credit_balance_minor = 0; // ignored: a counter
        let work = edit_customer(&context(), &before, &after, None, &mut counter())
            .unwrap()
            .unwrap();
        assert_eq!(
            work.unit.writes[0].mask,
            Some(vec![
                "creditLimit".into(),
                "phone".into(),
                "phoneDigits".into()
            ])
        );
        let Record::Customer(edited) = &work.records[0] else {
            panic!("{:?}", work.records)
        };
        assert_eq!(edited.credit_balance_minor, 70_00);
        assert_eq!(edited.phone_digits.as_deref(), Some("919000011111"));
        assert_eq!(
            edit_customer(&context(), &before, &before, None, &mut counter()),
            Ok(None)
        );
        after.name = " ".into();
        assert_eq!(
            edit_customer(&context(), &before, &after, None, &mut counter()),
            Err(CustomerError::EmptyName)
        );
    }

    #[test]
    fn settings_are_saved_as_one_patch() {
        let settings = ShopSettings {
            upi_id: Some("shop@okbank".into()),
            ..ShopSettings::default()
        };
        let work = save_settings(&context(), None, &settings, None, &mut counter()).unwrap();
        assert_eq!(
            paths(&work.unit),
            ["shops/s1/settings/profile", "shops/s1/audit/id-2"]
        );
        let bad = ShopSettings {
            cash_rounding_step_minor: 0,
            ..ShopSettings::default()
        };
        assert_eq!(
            save_settings(&context(), None, &bad, None, &mut counter()),
            Err(SettingsError::BadRoundingStep)
        );
    }
}
