//! Undoing a completed bill, each a manager's action and one unit of work: a void (the whole
//! bill, as if it never happened) and a refund (chosen lines and quantities given back).
//!
//! A final bill is never edited (DESIGN.md section 3). A **void** sets its `status` to `void`
//! (the only field the bill write names, so the sync core's bill rules apply: a void wins over
//! an edit and a bill is never voided twice) and writes the compensating movements: per product
//! a stock increment of what was sold with a `void` stock move, the customer's balance down by
//! the bill's credit, and per payment a payment record of the opposite amount (the money
//! handed back), so a voided bill's payments sum to zero. A **refund** is its own record
//! ([`crate::refunds::Refund`]) with its lines, tax and money back; the goods go back to stock
//! (`return` stock moves) and the money back is one payment record of a negative amount (or,
//! on credit, the customer's balance down). A bill with a refund is not voided (refund the
//! rest instead), and a void bill is not refunded.
//!
//! What another tablet did meanwhile is the server's to judge: a refund also moves its bill's
//! tallies ([`crate::refunds::REFUNDED_COLLECTION`], increments: each refunded line's
//! quantity, and the count of refunds), and the server and `firestore.rules` refuse, inside the
//! commit, a refund past what was sold, a refund or any write of a void bill, and a void of a
//! bill that has a refund. A tablet that did not know is told so by its unit's refusal.
//!
//! What the server and `firestore.rules` refuse a cashier here: a bill changed after creation,
//! stock moves of kind `void` or `return`, negative payments, refund records. So each unit
//! goes with a manager's approval ([`crate::actions::UnitOfWork::approved`]).

use counterbook_firestore_wire::{map_by_insertion, Value};
use counterbook_sync::{BaseVersion, DocumentWrite, UnitLabel};

use crate::actions::{
    audit_entry, increment, unit_of_work, ActionContext, NewId, Record, UnitOfWork,
};
use crate::customer::{Customer, CREDIT_BALANCE_FIELD, CUSTOMERS_COLLECTION};
use crate::payment::PaymentMethod;
use crate::product::{product_path, Product, STOCK_FIELD};
use crate::records::{Bill, BillStatus, PaymentRecord, StockMove, StockMoveKind};
use crate::refunds::{
    all_refunds_path, refund_figures, refunded_line_path, Refund, RefundError, RefundRequest,
    LAST_REFUND_FIELD, REFUNDED_QUANTITY_FIELD, REFUND_COUNT_FIELD,
};

/// The bill field a void changes.
pub const STATUS_FIELD: &str = "status";

/// Why a bill cannot be voided.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VoidError {
    #[error("the bill is already void")]
    AlreadyVoid,
    #[error("only a completed bill can be voided")]
    NotFinal,
    #[error("the bill has refunds: refund the rest of it instead")]
    HasRefunds,
    #[error("a void needs a reason")]
    NoReason,
}

/// A completed bill to void, with what this device knows around it.
#[derive(Clone, Debug)]
pub struct VoidRequest<'a> {
    pub bill: &'a Bill,
    /// The bill's products as this device has them (their local stock goes back up at once);
    /// a product not among them still gets its stock increment.
    pub products: &'a [Product],
    /// The bill's customer as this device has it, if it has them.
    pub customer: Option<&'a Customer>,
    /// Refunds made of this bill so far (a bill with any is not voided).
    pub refunds: &'a [Refund],
    /// The server version of the bill the void starts from, when known: a bill voided on
    /// another tablet meanwhile then makes this void a conflict, never a second void.
    pub base: Option<BaseVersion>,
    pub reason: &'a str,
}

fn customer_path(shop_id: &str, customer_id: &str) -> String {
    format!("shops/{shop_id}/{CUSTOMERS_COLLECTION}/{customer_id}")
}

/// The quantities sold per product, in the order of first appearance on the bill.
fn quantities_by_product(pairs: impl Iterator<Item = (String, i64)>) -> Vec<(String, i64)> {
    let mut by_product: Vec<(String, i64)> = Vec::new();
    for (product_id, quantity) in pairs {
        match by_product.iter_mut().find(|(id, _)| *id == product_id) {
            Some((_, total)) => *total = total.saturating_add(quantity),
            None => by_product.push((product_id, quantity)),
        }
    }
    by_product
}

/// A unit's writes and the device's records, gathered as it is built.
#[derive(Default)]
struct Parts {
    writes: Vec<DocumentWrite>,
    records: Vec<Record>,
}

/// Stock coming back to the shelf from a bill.
struct Restock<'a> {
    bill: &'a Bill,
    /// (product id, quantity back), one entry per product.
    by_product: &'a [(String, i64)],
    /// The products as this device has them.
    products: &'a [Product],
    kind: StockMoveKind,
    reason: &'a str,
}

/// Per product an increment and a stock move of `restock.kind` naming the bill, and the
/// product's local record with its stock up.
fn restock(
    context: &ActionContext<'_>,
    restock: &Restock<'_>,
    new_id: NewId<'_>,
    parts: &mut Parts,
) {
    let shop = context.shop_id;
    for (product_id, quantity) in restock.by_product {
        parts.writes.push(increment(
            product_path(shop, product_id),
            STOCK_FIELD,
            *quantity,
        ));
        let stock_move = StockMove {
            id: new_id(),
            product_id: product_id.clone(),
            kind: restock.kind,
            quantity: *quantity,
            bill_id: Some(restock.bill.id.clone()),
            reason: Some(restock.reason.to_owned()),
            device_id: context.device_id.to_owned(),
            at_millis: context.now_millis,
        };
        parts.writes.push(DocumentWrite::create(
            stock_move.document_path(shop),
            stock_move.to_fields(),
        ));
        if let Some(product) = restock.products.iter().find(|p| p.id == *product_id) {
            let mut restocked = product.clone();
            restocked.stock_on_hand = restocked.stock_on_hand.saturating_add(*quantity);
            parts.records.push(Record::Product(restocked));
        }
        parts.records.push(Record::StockMove(stock_move));
    }
}

/// Money back on the bill's customer's balance: the balance down by `amount`.
fn credit_back(
    context: &ActionContext<'_>,
    customer_id: &str,
    customer: Option<&Customer>,
    amount_minor: i64,
    parts: &mut Parts,
) {
    parts.writes.push(increment(
        customer_path(context.shop_id, customer_id),
        CREDIT_BALANCE_FIELD,
        -amount_minor,
    ));
    if let Some(customer) = customer.filter(|customer| customer.id == customer_id) {
        let mut owing = customer.clone();
        owing.credit_balance_minor = owing.credit_balance_minor.saturating_sub(amount_minor);
        parts.records.push(Record::Customer(owing));
    }
}

fn money_back_record(
    context: &ActionContext<'_>,
    bill: &Bill,
    id: String,
    method: PaymentMethod,
    amount_minor: i64,
) -> PaymentRecord {
    PaymentRecord {
        id,
        bill_id: Some(bill.id.clone()),
        customer_id: bill.customer_id.clone(),
        method,
        amount_minor: -amount_minor,
        received_minor: None,
        change_minor: None,
        confirmed: None,
        at_millis: context.now_millis,
        device_id: context.device_id.to_owned(),
    }
}

/// The refund's tallies under its bill ([`crate::refunds::REFUNDED_COLLECTION`]): each
/// refunded line's quantity up, and the count of the bill's refunds up, naming this one. All
/// increments: another tablet's refund of the same bill adds to them.
fn tally_refund(shop: &str, bill: &Bill, refund: &Refund, parts: &mut Parts) {
    let mut by_line: Vec<(usize, i64)> = Vec::new();
    for line in &refund.lines {
        match by_line.iter_mut().find(|(index, _)| *index == line.line) {
            Some((_, quantity)) => *quantity = quantity.saturating_add(line.quantity),
            None => by_line.push((line.line, line.quantity)),
        }
    }
    for (line, quantity) in by_line {
        parts.writes.push(increment(
            refunded_line_path(shop, &bill.id, line),
            REFUNDED_QUANTITY_FIELD,
            quantity,
        ));
    }
    let mut all = DocumentWrite::patch(
        all_refunds_path(shop, &bill.id),
        map_by_insertion([(
            LAST_REFUND_FIELD.to_owned(),
            Value::String(refund.id.clone()),
        )]),
        None,
    );
    all.increments.insert(REFUND_COUNT_FIELD.to_owned(), 1);
    parts.writes.push(all);
}

/// Voids a completed bill (see the module's documentation). The voided bill is among the
/// records, as the device keeps it.
pub fn void_bill(
    context: &ActionContext<'_>,
    request: &VoidRequest<'_>,
    new_id: NewId<'_>,
) -> Result<UnitOfWork, VoidError> {
    let bill = request.bill;
    match bill.status {
        BillStatus::Void => return Err(VoidError::AlreadyVoid),
        BillStatus::Draft => return Err(VoidError::NotFinal),
        BillStatus::Final => {}
    }
    if request
        .refunds
        .iter()
        .any(|refund| refund.bill_id == bill.id && refund.stands())
    {
        return Err(VoidError::HasRefunds);
    }
    let reason = request.reason.trim();
    if reason.is_empty() {
        return Err(VoidError::NoReason);
    }
    let shop = context.shop_id;
    let unit_id = new_id();
    let path = bill.document_path(shop);
    let status = |status: BillStatus| {
        map_by_insertion([(
            STATUS_FIELD.to_owned(),
            Value::String(status.as_str().into()),
        )])
    };
    let voided = Bill {
        status: BillStatus::Void,
        ..bill.clone()
    };
    let mut parts = Parts {
        writes: vec![DocumentWrite::patch(
            path.clone(),
            status(BillStatus::Void),
            request.base.clone(),
        )],
        records: vec![Record::Bill(voided)],
    };
    let sold = quantities_by_product(
        bill.lines
            .iter()
            .map(|line| (line.product_id.clone(), line.quantity)),
    );
    let stock_back = Restock {
        bill,
        by_product: &sold,
        products: request.products,
        kind: StockMoveKind::Void,
        reason,
    };
    restock(context, &stock_back, new_id, &mut parts);
    for payment in &bill.settlement.payments {
        if payment.amount_minor == 0 {
            continue;
        }
        let record = money_back_record(
            context,
            bill,
            new_id(),
            payment.method,
            payment.amount_minor,
        );
        parts.writes.push(DocumentWrite::create(
            record.document_path(shop),
            record.to_fields(),
        ));
        parts.records.push(Record::Payment(record));
    }
    if let (Some(customer_id), true) = (&bill.customer_id, bill.settlement.credit_minor > 0) {
        credit_back(
            context,
            customer_id,
            request.customer,
            bill.settlement.credit_minor,
            &mut parts,
        );
    }
    let mut after = status(BillStatus::Void);
    after.insert("reason".to_owned(), Value::String(reason.to_owned()));
    let audit = audit_entry(
        context,
        new_id(),
        "bill.void",
        path,
        Some(status(BillStatus::Final)),
        Some(after),
    );
    Ok(unit_of_work(
        context,
        unit_id,
        UnitLabel::VoidBill {
            bill: bill.number.clone(),
        },
        parts.writes,
        parts.records,
        audit,
    ))
}

/// A refund made: its unit of work and the refund record (also among the records).
#[derive(Clone, Debug, PartialEq)]
pub struct RefundMade {
    pub work: UnitOfWork,
    pub refund: Refund,
}

/// Refunds chosen lines and quantities of a completed bill (see the module's documentation).
/// `refunds` are the refunds made of it so far; `products` and `customer` as this device has
/// them.
pub fn refund_bill(
    context: &ActionContext<'_>,
    bill: &Bill,
    refunds: &[Refund],
    products: &[Product],
    customer: Option<&Customer>,
    request: &RefundRequest<'_>,
    new_id: NewId<'_>,
) -> Result<RefundMade, RefundError> {
    let figures = refund_figures(bill, refunds, request)?;
    let shop = context.shop_id;
    let unit_id = new_id();
    let refund_id = new_id();
    let payment = money_back_record(
        context,
        bill,
        new_id(),
        request.method,
        figures.money_back_minor,
    );
    let refund = Refund {
        id: refund_id,
        bill_id: bill.id.clone(),
        bill_number: bill.number.clone(),
        customer_id: bill.customer_id.clone(),
        lines: figures.lines,
        taxable_minor: figures.taxable_minor,
        tax_minor: figures.tax_minor,
        total_minor: figures.total_minor,
        rounding_minor: figures.rounding_minor,
        money_back_minor: figures.money_back_minor,
        method: request.method,
        payment_id: payment.id.clone(),
        reason: request.reason.trim().to_owned(),
        device_id: context.device_id.to_owned(),
        cashier: context.cashier.map(str::to_owned),
        at_millis: context.now_millis,
        refused: None,
    };
    let refund_fields = refund.to_fields();
    let mut parts = Parts {
        writes: vec![DocumentWrite::create(
            refund.document_path(shop),
            refund_fields.clone(),
        )],
        records: vec![Record::Refund(refund.clone())],
    };
    tally_refund(shop, bill, &refund, &mut parts);
    let returned = quantities_by_product(
        refund
            .lines
            .iter()
            .map(|line| (line.product_id.clone(), line.quantity)),
    );
    let stock_back = Restock {
        bill,
        by_product: &returned,
        products,
        kind: StockMoveKind::Return,
        reason: &refund.reason,
    };
    restock(context, &stock_back, new_id, &mut parts);
    parts.writes.push(DocumentWrite::create(
        payment.document_path(shop),
        payment.to_fields(),
    ));
    parts.records.push(Record::Payment(payment));
    if request.method == PaymentMethod::Credit {
        if let Some(customer_id) = &bill.customer_id {
            credit_back(
                context,
                customer_id,
                customer,
                refund.money_back_minor,
                &mut parts,
            );
        }
    }
    let audit = audit_entry(
        context,
        new_id(),
        "bill.refund",
        refund.document_path(shop),
        None,
        Some(refund_fields),
    );
    let work = unit_of_work(
        context,
        unit_id,
        UnitLabel::RefundBill {
            bill: bill.number.clone(),
        },
        parts.writes,
        parts.records,
        audit,
    );
    Ok(RefundMade { work, refund })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::{complete_sale, Sale};
    use crate::bill::BillLine;
    use crate::fixtures::{assert_one_commit, context, ids, paths, product};
    use crate::payment::Tender;
    use crate::series::BillNumber;
    use crate::settings::ShopSettings;
    use std::collections::BTreeMap;

    /// A sale of 3 tea and 1 soap (tea on two lines) to Asha: ₹100.00 on credit, the rest in
    /// cash; with the products and the customer as they stand after it.
    fn sold() -> (Bill, Vec<Product>, Customer) {
        let (tea, soap) = (product("tea", 120_00, 10), product("soap", 45_00, 5));
        let mut customer = Customer::new("c1".into(), "Asha", None);
        customer.credit_balance_minor = 50_00;
        let number = BillNumber::parse("T2-000007").unwrap();
        let lines = [
            BillLine::of_product(&tea, 2),
            BillLine::of_product(&soap, 1),
            BillLine::of_product(&tea, 1),
        ];
        let tenders = [
            Tender::Credit {
                amount_minor: 100_00,
            },
            Tender::Cash {
                received_minor: 500_00,
            },
        ];
        let settings = ShopSettings::default();
        let products = [tea, soap];
        let sale = Sale {
            number: &number,
            lines: &lines,
            tenders: &tenders,
            customer: Some(&customer),
            products: &products,
            settings: &settings,
            day: "2026-12-01",
        };
        let completed = complete_sale(&context(), &sale, &mut ids("sale")).unwrap();
        let mut after_products = Vec::new();
        let mut after_customer = customer;
        for record in completed.work.records {
            match record {
                Record::Product(product) => after_products.push(product),
                Record::Customer(customer) => after_customer = customer,
                _ => {}
            }
        }
        (completed.bill, after_products, after_customer)
    }

    #[test]
    fn a_void_restores_stock_and_balance_refunds_payments_and_marks_the_bill_void() {
        let (bill, products, customer) = sold();
        assert_eq!(customer.credit_balance_minor, 150_00);
        let request = VoidRequest {
            bill: &bill,
            products: &products,
            customer: Some(&customer),
            refunds: &[],
            base: None,
            reason: " wrong customer ",
        };
        let work = void_bill(&context(), &request, &mut ids("void")).unwrap();
        let unit = &work.unit;
        assert_eq!(
            unit.label,
            UnitLabel::VoidBill {
                bill: "T2-000007".into()
            }
        );
        assert_eq!(
            paths(unit),
            [
                "shops/s1/bills/sale-2",
                "shops/s1/products/tea",
                "shops/s1/stockMoves/void-2",
                "shops/s1/products/soap",
                "shops/s1/stockMoves/void-3",
                "shops/s1/payments/void-4",
                "shops/s1/payments/void-5",
                "shops/s1/customers/c1",
                "shops/s1/audit/void-6",
            ]
        );
        // The bill write names its status only, so the sync core's bill rules hold.
        assert_eq!(unit.writes[0].mask, Some(vec!["status".to_owned()]));
        assert_eq!(
            unit.writes[0].fields.get("status"),
            Some(&Value::String("void".into()))
        );
        assert_eq!(
            unit.writes[1].increments,
            BTreeMap::from([("stock".into(), 3)])
        );
        assert_eq!(
            unit.writes[3].increments,
            BTreeMap::from([("stock".into(), 1)])
        );
        assert_eq!(
            unit.writes[7].increments,
            BTreeMap::from([("creditBalance".into(), -100_00)])
        );
        let payments: Vec<&PaymentRecord> = work
            .records
            .iter()
            .filter_map(|record| match record {
                Record::Payment(payment) => Some(payment),
                _ => None,
            })
            .collect();
        let paid: i64 = bill
            .settlement
            .payments
            .iter()
            .map(|p| p.amount_minor)
            .sum();
        let back: i64 = payments.iter().map(|p| p.amount_minor).sum();
        assert_eq!(paid + back, 0, "a voided bill's payments sum to zero");
        let moves: Vec<&StockMove> = work
            .records
            .iter()
            .filter_map(|record| match record {
                Record::StockMove(stock_move) => Some(stock_move),
                _ => None,
            })
            .collect();
        assert!(moves.iter().all(|m| m.kind == StockMoveKind::Void
            && m.bill_id.as_deref() == Some("sale-2")
            && m.reason.as_deref() == Some("wrong customer")));
        assert!(work
            .records
            .contains(&Record::Product(product("tea", 120_00, 10))));
        assert!(work
            .records
            .contains(&Record::Product(product("soap", 45_00, 5))));
        assert!(work.records.iter().any(|record| matches!(record,
            Record::Customer(c) if c.credit_balance_minor == 50_00)));
        assert!(work.records.iter().any(|record| matches!(record,
            Record::Bill(b) if b.status == BillStatus::Void && b.id == bill.id)));
        assert_eq!(work.audit[0].action, "bill.void");
        assert_one_commit(unit);
    }

    #[test]
    fn a_bill_is_voided_once_and_not_after_a_refund() {
        let (bill, products, customer) = sold();
        let request = VoidRequest {
            bill: &bill,
            products: &products,
            customer: Some(&customer),
            refunds: &[],
            base: None,
            reason: "mistake",
        };
        let voided = Bill {
            status: BillStatus::Void,
            ..bill.clone()
        };
        let check = |request: VoidRequest<'_>, expected: VoidError| {
            assert_eq!(
                void_bill(&context(), &request, &mut ids("v")).unwrap_err(),
                expected
            );
        };
        check(
            VoidRequest {
                bill: &voided,
                ..request.clone()
            },
            VoidError::AlreadyVoid,
        );
        check(
            VoidRequest {
                reason: "  ",
                ..request.clone()
            },
            VoidError::NoReason,
        );
        let refund = refund_bill(
            &context(),
            &bill,
            &[],
            &products,
            Some(&customer),
            &RefundRequest {
                quantities: &[(1, 1)],
                method: PaymentMethod::Cash,
                reason: "damaged",
                cash_rounding_step_minor: 1,
            },
            &mut ids("r"),
        )
        .unwrap()
        .refund;
        check(
            VoidRequest {
                refunds: std::slice::from_ref(&refund),
                ..request.clone()
            },
            VoidError::HasRefunds,
        );
        // A void bill is not refunded either.
        assert_eq!(
            refund_bill(
                &context(),
                &voided,
                &[],
                &products,
                None,
                &RefundRequest {
                    quantities: &[(1, 1)],
                    method: PaymentMethod::Cash,
                    reason: "damaged",
                    cash_rounding_step_minor: 1,
                },
                &mut ids("r"),
            )
            .unwrap_err(),
            RefundError::BillVoided
        );
    }

    #[test]
    fn a_refund_is_its_own_record_with_lines_tax_money_back_and_stock_returned() {
        let (bill, products, customer) = sold();
        let request = RefundRequest {
            quantities: &[(0, 1), (1, 1)],
            method: PaymentMethod::Credit,
            reason: "stale",
            cash_rounding_step_minor: 1_00,
        };
        let made = refund_bill(
            &context(),
            &bill,
            &[],
            &products,
            Some(&customer),
            &request,
            &mut ids("r"),
        )
        .unwrap();
        let refund = &made.refund;
        assert_eq!(refund.total_minor, 120_00 + 45_00);
        assert_eq!(refund.money_back_minor, 165_00);
        assert_eq!(refund.lines.len(), 2);
        // Other tablets read it back from its document as it was made.
        let document = counterbook_firestore_wire::Document {
            name: format!(
                "projects/p/databases/(default)/documents/{}",
                refund.document_path("s1")
            ),
            fields: refund.to_fields(),
            ..Default::default()
        };
        assert_eq!(Refund::from_document(&document).as_ref(), Ok(refund));
        assert_eq!(
            paths(&made.work.unit),
            [
                "shops/s1/refunds/r-2",
                "shops/s1/bills/sale-2/refunded/0",
                "shops/s1/bills/sale-2/refunded/1",
                "shops/s1/bills/sale-2/refunded/all",
                "shops/s1/products/tea",
                "shops/s1/stockMoves/r-4",
                "shops/s1/products/soap",
                "shops/s1/stockMoves/r-5",
                "shops/s1/payments/r-3",
                "shops/s1/customers/c1",
                "shops/s1/audit/r-6",
            ]
        );
        let writes = &made.work.unit.writes;
        // The tallies the server judges the refund by: increments only (a refund from another
        // tablet adds to them), and the count of refunds naming this one.
        assert_eq!(
            writes[1].increments,
            BTreeMap::from([("quantity".into(), 1)])
        );
        assert!(!writes[1].sets_fields());
        assert_eq!(writes[3].increments, BTreeMap::from([("count".into(), 1)]));
        assert_eq!(
            writes[3].fields.get("lastRefund"),
            Some(&Value::String("r-2".into()))
        );
        assert_eq!(writes[3].base, None);
        assert_eq!(writes[4].increments, BTreeMap::from([("stock".into(), 1)]));
        assert_eq!(
            writes[9].increments,
            BTreeMap::from([("creditBalance".into(), -165_00)])
        );
        assert_eq!(
            writes[8].fields.get("amount"),
            Some(&Value::Integer(-165_00))
        );
        assert!(made.work.records.iter().any(|record| matches!(record,
            Record::StockMove(m) if m.kind == StockMoveKind::Return && m.quantity == 1)));
        assert_one_commit(&made.work.unit);

        // What is left: 1 tea on line 0 and 1 on line 2; soap is all back.
        let refunds = [made.refund.clone()];
        assert_eq!(
            crate::refunds::refundable_quantities(&bill, &refunds),
            [1, 0, 1]
        );
        let again = |quantities: &[(usize, i64)], method| {
            refund_bill(
                &context(),
                &bill,
                &refunds,
                &products,
                None,
                &RefundRequest {
                    quantities,
                    method,
                    reason: "stale",
                    cash_rounding_step_minor: 1_00,
                },
                &mut ids("s"),
            )
        };
        assert_eq!(
            again(&[(1, 1)], PaymentMethod::Cash).unwrap_err(),
            RefundError::MoreThanSold {
                line: 1,
                name: "Product soap".into(),
                left: 0
            }
        );
        assert_eq!(
            again(&[(0, 0)], PaymentMethod::Cash).unwrap_err(),
            RefundError::NothingToRefund
        );
        assert_eq!(
            again(&[(9, 1)], PaymentMethod::Cash).unwrap_err(),
            RefundError::NoSuchLine { line: 9 }
        );
        let cash = again(&[(0, 1), (2, 1)], PaymentMethod::Cash).unwrap();
        assert_eq!(cash.refund.money_back_minor, 240_00);
        assert!(!paths(&cash.work.unit).contains(&"shops/s1/customers/c1"));
    }
}
