//! The shop's units of work pushed through the sync core's commit builder onto its in-memory
//! model of the server (the one the simulation checks convergence against): the documents
//! that arrive read back as the records the device stored, and counters are exact.

// Amounts are written as major_minor units (₹120.00 is `120_00`), on purpose.
#![allow(clippy::inconsistent_digit_grouping)]

use counterbook_firestore_wire::Document;
use counterbook_shop::actions::{
    add_product, complete_sale, create_customer, import_products, move_stock, ActionContext, Sale,
    UnitOfWork,
};
use counterbook_shop::bill::BillLine;
use counterbook_shop::customer::Customer;
use counterbook_shop::payment::Tender;
use counterbook_shop::product::{Product, QuantityUnit};
use counterbook_shop::records::{Bill, PaymentRecord, StockMove, StockMoveKind};
use counterbook_shop::series::BillNumber;
use counterbook_shop::settings::ShopSettings;
use counterbook_sync::sim::server::ServerModel;
use counterbook_sync::{commit_request_for_units, CommitContext};

struct Shop {
    server: ServerModel,
    clock: i64,
    next_id: u64,
}

impl Shop {
    fn new() -> Shop {
        Shop {
            server: ServerModel::new("p"),
            clock: 1_000,
            next_id: 0,
        }
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("0193a0b0-0000-7000-8000-{:012x}", self.next_id)
    }

    fn context<'a>(&mut self, device: &'a str) -> ActionContext<'a> {
        self.clock += 1;
        ActionContext {
            shop_id: "s1",
            device_id: device,
            device_name: None,
            cashier: None,
            person_id: None,
            now_millis: self.clock,
        }
    }

    /// Pushes units as the outbox would: one commit, with the devices stamp and markers.
    fn push(&mut self, device: &str, works: &[&UnitOfWork]) {
        let context = CommitContext {
            project: "p",
            database: "(default)",
            shop_id: "s1",
            device_id: device,
            record_device_changes: true,
        };
        let units: Vec<_> = works.iter().map(|work| &work.unit).collect();
        let request = commit_request_for_units(&context, &units, self.clock).unwrap();
        assert!(
            request.writes.len() <= 500,
            "{} writes",
            request.writes.len()
        );
        self.server.commit(&request, self.clock).unwrap();
    }

    fn document(&self, path: &str) -> Document {
        self.server
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not on the server"))
    }
}

#[test]
fn two_tablets_selling_leave_exact_stock_balances_and_readable_bills() {
    let mut shop = Shop::new();
    let settings = ShopSettings::default();
    let mut tea = Product::new(shop.id(), "Tea 250g", 120_00, "INR");
    tea.stock_on_hand = 10;
    tea.tax_rate_basis_points = 500;
    let mut rice = Product::new(shop.id(), "Rice", 80_00, "INR");
    rice.unit = QuantityUnit::Kilogram;
    let mut asha = Customer::new(shop.id(), "Asha", Some("98765 43210"));
    asha.credit_limit_minor = Some(1_000_00);
    let mut ids = {
        let mut next = 1_000u64;
        move || {
            next += 1;
            format!("0193a0b0-0000-7000-9000-{next:012x}")
        }
    };
    let context = shop.context("A");
    let setup = [
        add_product(&context, &tea, &mut ids).unwrap(),
        add_product(&context, &rice, &mut ids).unwrap(),
        create_customer(&context, &asha, &mut ids).unwrap(),
    ];
    shop.push("A", &setup.iter().collect::<Vec<_>>());
    let context = shop.context("A");
    let received = move_stock(
        &context,
        &rice,
        StockMoveKind::Receive,
        25_000,
        None,
        &mut ids,
    )
    .unwrap();
    shop.push("A", &[&received]);

    // Tablet A sells offline on credit, tablet B for cash; both reach the server later.
    let sale_a = {
        let number = BillNumber::parse("A-000001").unwrap();
        let lines = [
            BillLine::of_product(&tea, 3),
            BillLine::of_product(&rice, 1_500),
        ];
        let tenders = [Tender::Credit {
            amount_minor: 480_00,
        }];
        let context = shop.context("A");
        complete_sale(
            &context,
            &Sale {
                number: &number,
                lines: &lines,
                tenders: &tenders,
                customer: Some(&asha),
                products: &[],
                settings: &settings,
                day: "2026-12-01",
            },
            &mut ids,
        )
        .unwrap()
    };
    let sale_b = {
        let number = BillNumber::parse("B-000001").unwrap();
        let lines = [BillLine::of_product(&tea, 8)];
        let tenders = [Tender::Cash {
            received_minor: 1_000_00,
        }];
        let context = shop.context("B");
        complete_sale(
            &context,
            &Sale {
                number: &number,
                lines: &lines,
                tenders: &tenders,
                customer: None,
                products: &[],
                settings: &settings,
                day: "2026-12-01",
            },
            &mut ids,
        )
        .unwrap()
    };
    shop.push("B", &[&sale_b.work]);
    shop.push("A", &[&sale_a.work]);

    // Both sales count: 10 − 3 − 8 = −1, an oversell for the conflict inbox, never lost.
    let tea_now = Product::from_document(&shop.document(&tea.document_path("s1"))).unwrap();
    assert_eq!(tea_now.stock_on_hand, -1);
    assert_eq!(tea_now.name, "Tea 250g");
    let rice_now = Product::from_document(&shop.document(&rice.document_path("s1"))).unwrap();
    assert_eq!(rice_now.stock_on_hand, 25_000 - 1_500);
    let asha_now = Customer::from_document(&shop.document(&asha.document_path("s1"))).unwrap();
    assert_eq!(asha_now.credit_balance_minor, 480_00);
    assert_eq!(asha_now.phone_digits.as_deref(), Some("9876543210"));

    for sale in [&sale_a, &sale_b] {
        let bill = Bill::from_document(&shop.document(&sale.bill.document_path("s1"))).unwrap();
        assert_eq!(&bill, &sale.bill);
        for payment_id in &bill.payment_ids {
            let payment = PaymentRecord::from_document(
                &shop.document(&format!("shops/s1/payments/{payment_id}")),
            )
            .unwrap();
            assert_eq!(payment.bill_id.as_deref(), Some(bill.id.as_str()));
        }
    }
    let moves: Vec<StockMove> = shop
        .server
        .documents
        .keys()
        .filter(|path| path.starts_with("shops/s1/stockMoves/"))
        .map(|path| StockMove::from_document(&shop.document(path)).unwrap())
        .collect();
    let tea_moves: i64 = moves
        .iter()
        .filter(|m| m.product_id == tea.id)
        .map(|m| m.quantity)
        .sum();
    assert_eq!(
        tea_moves, tea_now.stock_on_hand,
        "the trail explains the counter"
    );
    let audits = shop
        .server
        .documents
        .keys()
        .filter(|path| path.starts_with("shops/s1/audit/"))
        .count();
    assert_eq!(audits, 6, "one audit entry per unit");
}

#[test]
fn a_large_import_arrives_whole_in_commits_of_at_most_500_writes() {
    let mut shop = Shop::new();
    let products: Vec<Product> = (0..2_000)
        .map(|index| {
            let mut product = Product::new(
                format!("p{index:05}"),
                &format!("Item {index}"),
                1_00,
                "INR",
            );
            product.stock_on_hand = index % 3;
            product
        })
        .collect();
    let mut ids = {
        let mut next = 0u64;
        move || {
            next += 1;
            format!("id-{next}")
        }
    };
    let context = shop.context("A");
    let units = import_products(&context, &products, &mut ids);
    for unit in &units {
        shop.push("A", &[unit]);
    }
    assert_eq!(shop.server.log.len(), units.len());
    assert!(units.len() < 2_000 / 200, "{} commits", units.len());
    for product in &products {
        let stored = Product::from_document(&shop.document(&product.document_path("s1"))).unwrap();
        assert_eq!(stored.stock_on_hand, product.stock_on_hand);
    }
}

mod random_sales {
    use super::*;
    use proptest::prelude::*;

    /// A sale: (product index, quantity) lines, and whether it goes on credit.
    fn any_sale() -> impl Strategy<Value = (Vec<(usize, i64)>, bool)> {
        (
            prop::collection::vec((0usize..5, 1i64..2_000), 1..8),
            any::<bool>(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever is sold, in whatever grouping of units into commits, the server's stock is
        /// the opening stock less every quantity sold, the customer owes every credit, and the
        /// stock moves add up to the counters.
        #[test]
        fn counters_on_the_server_are_exact(
            sales in prop::collection::vec(any_sale(), 1..12),
            batch in 1usize..5,
        ) {
            let mut shop = Shop::new();
            let settings = ShopSettings { cash_rounding_step_minor: 100, ..ShopSettings::default() };
            let products: Vec<Product> = (0..5)
                .map(|index| {
                    let mut product = Product::new(shop.id(), &format!("Item {index}"), 10_00 + index as i64, "INR");
                    product.unit = if index % 2 == 0 { QuantityUnit::Piece } else { QuantityUnit::Kilogram };
                    product.tax_rate_basis_points = [0, 500, 1200, 1800, 2800][index];
                    product.stock_on_hand = 1_000_000;
                    product
                })
                .collect();
            let customer = Customer::new(shop.id(), "Asha", None);
            let mut ids = {
                let mut next = 1_000u64;
                move || {
                    next += 1;
                    format!("0193a0b0-0000-7000-9000-{next:012x}")
                }
            };
            let context = shop.context("A");
            let mut setup: Vec<UnitOfWork> = products
                .iter()
                .map(|product| add_product(&context, product, &mut ids).unwrap())
                .collect();
            setup.push(create_customer(&context, &customer, &mut ids).unwrap());
            shop.push("A", &setup.iter().collect::<Vec<_>>());

            let mut sold = [0i64; 5];
            let mut credit = 0i64;
            let mut works = Vec::new();
            for (number, (lines, on_credit)) in sales.iter().enumerate() {
                let lines: Vec<BillLine> = lines
                    .iter()
                    .map(|(index, quantity)| {
                        sold[*index] += quantity;
                        BillLine::of_product(&products[*index], *quantity)
                    })
                    .collect();
                let total = counterbook_shop::bill::bill_totals(&lines, settings.tax_mode)
                    .unwrap()
                    .total_minor;
                let tenders = if *on_credit {
                    credit += total;
                    vec![Tender::Credit { amount_minor: total }]
                } else {
                    vec![Tender::Cash { received_minor: total + 100 }]
                };
                let bill_number = BillNumber { series: "A".into(), number: number as u64 + 1 };
                let context = shop.context("A");
                let completed = complete_sale(
                    &context,
                    &Sale {
                        number: &bill_number,
                        lines: &lines,
                        tenders: &tenders,
                        customer: Some(&customer),
                        products: &products,
                        settings: &settings,
                        day: "2026-12-01",
                    },
                    &mut ids,
                )
                .unwrap();
                prop_assert!(completed.bill.settlement.change_minor >= 0);
                works.push(completed.work);
            }
            for chunk in works.chunks(batch) {
                shop.push("A", &chunk.iter().collect::<Vec<_>>());
            }
            for (index, product) in products.iter().enumerate() {
                let stored = Product::from_document(&shop.document(&product.document_path("s1"))).unwrap();
                prop_assert_eq!(stored.stock_on_hand, 1_000_000 - sold[index]);
                let moved: i64 = shop
                    .server
                    .documents
                    .keys()
                    .filter(|path| path.starts_with("shops/s1/stockMoves/"))
                    .map(|path| StockMove::from_document(&shop.document(path)).unwrap())
                    .filter(|stock_move| stock_move.product_id == product.id)
                    .map(|stock_move| stock_move.quantity)
                    .sum();
                prop_assert_eq!(moved, stored.stock_on_hand);
            }
            let owed = Customer::from_document(&shop.document(&customer.document_path("s1"))).unwrap();
            prop_assert_eq!(owed.credit_balance_minor, credit);
        }
    }
}

#[test]
fn a_void_and_a_refund_on_the_server_leave_exact_stock_balance_and_records() {
    use counterbook_shop::payment::PaymentMethod;
    use counterbook_shop::records::BillStatus;
    use counterbook_shop::refunds::RefundRequest;
    use counterbook_shop::reversals::{refund_bill, void_bill, VoidRequest};

    let mut shop = Shop::new();
    let settings = ShopSettings::default();
    let mut soap = Product::new(shop.id(), "Soap", 35_00, "INR");
    soap.stock_on_hand = 20;
    let mut asha = Customer::new(shop.id(), "Asha", None);
    asha.credit_limit_minor = Some(1_000_00);
    let mut ids = {
        let mut next = 5_000u64;
        move || {
            next += 1;
            format!("0193a0b0-0000-7000-9000-{next:012x}")
        }
    };
    let context = shop.context("A");
    let setup = [
        add_product(&context, &soap, &mut ids).unwrap(),
        create_customer(&context, &asha, &mut ids).unwrap(),
    ];
    shop.push("A", &setup.iter().collect::<Vec<_>>());
    let mut sell = |shop: &mut Shop, number: &str, quantity: i64| {
        let number = BillNumber::parse(number).unwrap();
        let lines = [BillLine::of_product(&soap, quantity)];
        let tenders = [Tender::Credit {
            amount_minor: 35_00 * quantity,
        }];
        let context = shop.context("A");
        let sale = complete_sale(
            &context,
            &Sale {
                number: &number,
                lines: &lines,
                tenders: &tenders,
                customer: Some(&asha),
                products: &[],
                settings: &settings,
                day: "2026-12-01",
            },
            &mut ids,
        )
        .unwrap();
        shop.push("A", &[&sale.work]);
        sale.bill
    };
    let voided = sell(&mut shop, "A-000001", 3);
    let refunded = sell(&mut shop, "A-000002", 4);

    let context = shop.context("A");
    let void = void_bill(
        &context,
        &VoidRequest {
            bill: &voided,
            products: &[],
            customer: None,
            refunds: &[],
            base: None,
            reason: "wrong customer",
        },
        &mut ids,
    )
    .unwrap();
    let context = shop.context("A");
    let refund = refund_bill(
        &context,
        &refunded,
        &[],
        &[],
        None,
        &RefundRequest {
            quantities: &[(0, 1)],
            method: PaymentMethod::Credit,
            reason: "damaged",
            cash_rounding_step_minor: 1,
        },
        &mut ids,
    )
    .unwrap();
    shop.push("A", &[&void, &refund.work]);

    // 20 − 3 − 4 + 3 (void) + 1 (returned) = 17; the balance 7 × 35 − 3 × 35 − 35 = 105.
    let soap_now = Product::from_document(&shop.document(&soap.document_path("s1"))).unwrap();
    assert_eq!(soap_now.stock_on_hand, 17);
    let asha_now = Customer::from_document(&shop.document(&asha.document_path("s1"))).unwrap();
    assert_eq!(asha_now.credit_balance_minor, 105_00);
    let bill = Bill::from_document(&shop.document(&voided.document_path("s1"))).unwrap();
    assert_eq!(bill.status, BillStatus::Void);
    assert_eq!(
        Bill {
            status: BillStatus::Final,
            ..bill
        },
        voided,
        "a void changes the bill's status only"
    );
    let refund_document = shop.document(&refund.refund.document_path("s1"));
    assert_eq!(
        refund_document
            .fields
            .get("moneyBack")
            .and_then(|v| v.as_integer()),
        Some(35_00)
    );
    let paid_on_voided: i64 = shop
        .server
        .documents
        .keys()
        .filter(|path| path.starts_with("shops/s1/payments/"))
        .map(|path| PaymentRecord::from_document(&shop.document(path)).unwrap())
        .filter(|payment| payment.bill_id.as_deref() == Some(voided.id.as_str()))
        .map(|payment| payment.amount_minor)
        .sum();
    assert_eq!(paid_on_voided, 0, "a voided bill's payments sum to zero");
}
