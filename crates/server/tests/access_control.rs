//! One access-control table, two backends, identical outcomes.
//!
//! Every case (each role of shop `s1`, and no token; against its own shop, another shop, and
//! outside `shops/`; getting, listing, batchGet alone and along a document of `s1`, querying,
//! counting, creating, renaming and repricing by commit and by REST `PATCH`, soft-deleting,
//! hard-deleting by commit and by REST `DELETE`, managing users, renaming in a transaction,
//! verifying a missing document; and each role's part of the work: selling from stock, stock
//! down outside a sale or naming an old bill, receiving and adjusting stock, voiding a bill,
//! refunding, taking and confirming payments, writing settings, credit within and over a
//! customer's limit, changing the limit, adding a customer, audit entries with and without an
//! approval, approving for someone else, editing and deleting an audit entry; the whole units
//! the app writes for a void and a refund, a refund record alone, stock returned; and against
//! what the server holds: a void of a refunded or a void bill, a refund of a void bill, past
//! what was sold or of the rest of a line, a refund tally moved alone or deleted)
//! runs against
//! (a) Google's Firestore emulator enforcing `firestore.rules` from the repository root, with
//!     the unsigned mock ID tokens the Firebase emulators accept (as the Firebase JS SDK's
//!     `mockUserToken` builds them: header `{"alg":"none","type":"JWT"}`, the claims, an empty
//!     signature), and
//! (b) the real `counterbook-server` binary in authenticated mode, its shops and users made
//!     with the admin CLI, with signed ID tokens from its sign-in endpoint.
//! Both must allow or deny every case exactly as the table expects. The emulator must start:
//! if it cannot, this test fails; it never skips. `ACCESS_CONTROL_TRACE=1` prints every answer
//! (the emulator's denials name the rule lines they tried).

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use support::accounts::{add_person, add_shop, call, signed_in};
use support::binary::{free_port, start_group, ProcessGroup, RunningServer, EMULATOR};

const PROJECT: &str = "demo-counterbook";
/// Java takes a while on a small machine; this is a ceiling, not a wait.
const EMULATOR_START_LIMIT: Duration = Duration::from_secs(180);

fn rules_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firestore.rules")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Owner,
    Manager,
    Cashier,
    NoToken,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// `shops/s1`, the shop of every signed-in user here.
    OwnShop,
    /// `shops/s2`.
    OtherShop,
    /// A root collection, outside `shops/`.
    OutsideShops,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    Get,
    Query,
    /// `GET` of the products collection.
    List,
    /// `:batchGet` of the product alone.
    BatchGet,
    /// `:batchGet` of a product of the user's own shop `s1` and then the target's product:
    /// the whole batch is in `s1` for `OwnShop`, mixed for the other targets.
    BatchGetAlongOwnShop,
    /// `:runAggregationQuery` counting the products collection.
    Count,
    CreateProduct,
    RenameProduct,
    /// REST `PATCH` of the product's name (`updateMask.fieldPaths=name`).
    PatchName,
    ChangePrice,
    /// REST `PATCH` of the product's price.
    PatchPrice,
    SoftDelete,
    HardDelete,
    /// REST `DELETE` of the product.
    RestDelete,
    WriteUserDocument,
    /// `:beginTransaction`, then a commit renaming the product in that transaction.
    RenameInTransaction,
    /// A commit verifying that a document next to the product, which does not exist, exists:
    /// the precondition fails where the document may be read, and must tell nothing elsewhere.
    VerifyMissing,
    // Each role's part of the work (issue 10). Stock travels as increments, as the app sends it.
    /// A sale: a `final` bill created, and the product's stock down with `lastBill` naming it.
    SellFromStock,
    /// The product's stock down alone.
    StockDownOutsideSale,
    /// The stock down naming a bill that existed before the commit.
    StockDownNamingOldBill,
    /// Stock up with a `receive` stock move.
    ReceiveStock,
    /// Stock down with an `adjust` stock move (a reason, as the app sends it).
    AdjustStock,
    /// An existing `final` bill's status set to `void`.
    VoidBill,
    /// A payment of a negative amount.
    Refund,
    TakePayment,
    /// An unconfirmed UPI payment's `confirmed` set to true.
    ConfirmUpi,
    /// A document of `settings` written.
    WriteSettings,
    /// A customer's balance raised by a credit sale, staying within the limit.
    CreditWithinLimit,
    /// The same, past the limit (an override).
    CreditOverLimit,
    /// A customer's `creditLimit` changed.
    SetCreditLimit,
    CreateCustomer,
    AuditEntry,
    /// An audit entry whose `approvedBy` is the writer's own uid (an approval).
    AuditApprovedBySelf,
    /// An audit entry whose `approvedBy` is someone else.
    AuditApprovedByOther,
    /// An existing audit entry changed.
    EditAuditEntry,
    /// An existing audit entry deleted.
    DeleteAuditEntry,
    /// A void as the app's unit writes it (`counterbook_shop::reversals::void_bill`): the
    /// final bill's status set to `void`, the sold stock back up with a `void` stock move, the
    /// money back as a negative payment, the customer's credit taken off their balance, and
    /// the audit entry.
    VoidBillUnit,
    /// A refund as the app's unit writes it: a `refunds` record, the stock back up with a
    /// `return` stock move, the money back as a negative payment, and the audit entry.
    RefundUnit,
    /// A `refunds` record alone.
    RefundRecord,
    /// Stock up with a `return` stock move alone.
    ReturnStock,
    // A bill's voids and refunds against what the server holds (a tablet that did not know of
    // another's): refused whoever asks.
    /// The void unit of a bill refunded before (its `refunded/all` tally exists).
    VoidRefundedBill,
    /// The void unit of a bill already void.
    VoidVoidBill,
    /// The refund unit of a bill already void.
    RefundVoidBill,
    /// A refund unit of the last piece of a line already refunded whole (2 of 2 sold).
    RefundPastSold,
    /// A refund unit of the rest of a line half refunded before (1 more of 2 sold): allowed.
    RefundRestOfLine,
    /// A line's refund tally moved alone, with no refund.
    RefundTallyAlone,
    /// A refund tally deleted.
    DeleteRefundTally,
}

/// The operations of each role's part of the work, run for every who on their own shop and
/// another one.
const ROLE_OPERATIONS: [Operation; 30] = [
    Operation::SellFromStock,
    Operation::StockDownOutsideSale,
    Operation::StockDownNamingOldBill,
    Operation::ReceiveStock,
    Operation::AdjustStock,
    Operation::VoidBill,
    Operation::Refund,
    Operation::TakePayment,
    Operation::ConfirmUpi,
    Operation::WriteSettings,
    Operation::CreditWithinLimit,
    Operation::CreditOverLimit,
    Operation::SetCreditLimit,
    Operation::CreateCustomer,
    Operation::AuditEntry,
    Operation::AuditApprovedBySelf,
    Operation::AuditApprovedByOther,
    Operation::EditAuditEntry,
    Operation::DeleteAuditEntry,
    Operation::VoidBillUnit,
    Operation::RefundUnit,
    Operation::RefundRecord,
    Operation::ReturnStock,
    Operation::VoidRefundedBill,
    Operation::VoidVoidBill,
    Operation::RefundVoidBill,
    Operation::RefundPastSold,
    Operation::RefundRestOfLine,
    Operation::RefundTallyAlone,
    Operation::DeleteRefundTally,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Denied,
    /// 404 `NOT_FOUND`: a precondition `exists: true` failed.
    NotFound,
}

struct Case {
    number: usize,
    who: Who,
    target: Target,
    operation: Operation,
    expected: Outcome,
}

/// The policy, stated once more in the plainest words, as the table's expectations.
fn expected_outcome(who: Who, target: Target, operation: Operation) -> Outcome {
    use Operation::*;
    let allowed = match (who, target) {
        (Who::NoToken, _) | (_, Target::OtherShop | Target::OutsideShops) => false,
        (_, Target::OwnShop) => match operation {
            // Everyone in the shop reads, sells, takes payments, receives stock, adds
            // customers and writes audit entries.
            Get | Query | List | BatchGet | BatchGetAlongOwnShop | Count | SellFromStock
            | ReceiveStock | TakePayment | ConfirmUpi | CreditWithinLimit | CreateCustomer
            | AuditEntry => true,
            // Managers also change the catalogue, prices and stock, void, refund, override
            // credit limits, delete, and approve.
            CreateProduct
            | RenameProduct
            | PatchName
            | RenameInTransaction
            | ChangePrice
            | PatchPrice
            | SoftDelete
            | HardDelete
            | RestDelete
            | StockDownOutsideSale
            | StockDownNamingOldBill
            | AdjustStock
            | VoidBill
            | Refund
            | VoidBillUnit
            | RefundUnit
            | RefundRestOfLine
            | ReturnStock
            | CreditOverLimit
            | SetCreditLimit
            | AuditApprovedBySelf => who != Who::Cashier,
            // Owners also manage people and settings.
            WriteUserDocument | WriteSettings => who == Who::Owner,
            // Nobody approves for someone else, or rewrites the audit trail.
            AuditApprovedByOther | EditAuditEntry | DeleteAuditEntry => false,
            // Nobody voids a refunded or void bill, refunds a void one or past what was sold,
            // writes a refund record without its bill's tallies, or touches a tally alone.
            VoidRefundedBill | VoidVoidBill | RefundVoidBill | RefundPastSold | RefundRecord
            | RefundTallyAlone | DeleteRefundTally => false,
            VerifyMissing => return Outcome::NotFound,
        },
    };
    if allowed {
        Outcome::Allowed
    } else {
        Outcome::Denied
    }
}

fn table() -> Vec<Case> {
    use Operation::*;
    let mut cases = Vec::new();
    let mut add = |who, target, operation| {
        cases.push(Case {
            number: cases.len(),
            who,
            target,
            operation,
            expected: expected_outcome(who, target, operation),
        })
    };
    for who in [Who::Owner, Who::Manager, Who::Cashier, Who::NoToken] {
        for target in [Target::OwnShop, Target::OtherShop] {
            for operation in [
                Get,
                Query,
                List,
                BatchGet,
                BatchGetAlongOwnShop,
                Count,
                CreateProduct,
                RenameProduct,
                PatchName,
                ChangePrice,
                PatchPrice,
                SoftDelete,
                HardDelete,
                RestDelete,
                WriteUserDocument,
                RenameInTransaction,
                VerifyMissing,
            ]
            .into_iter()
            .chain(ROLE_OPERATIONS)
            {
                add(who, target, operation);
            }
        }
        for operation in [
            Get,
            Query,
            List,
            BatchGet,
            BatchGetAlongOwnShop,
            Count,
            CreateProduct,
            PatchName,
            HardDelete,
            RestDelete,
            VerifyMissing,
        ] {
            add(who, Target::OutsideShops, operation);
        }
    }
    cases
}

/// One backend under test.
struct Backend {
    name: &'static str,
    base_url: String,
    /// Tokens of owner, manager, cashier of `s1`.
    tokens: [String; 3],
    /// Their user ids (the tokens' `sub`, the rules' `request.auth.uid`).
    user_ids: [String; 3],
    /// A token that may write `shops/{shop}` for seeding, by shop.
    seeding_token: Box<dyn Fn(&str) -> String>,
}

impl Backend {
    fn documents_url(&self) -> String {
        format!(
            "{}/v1/projects/{PROJECT}/databases/(default)/documents",
            self.base_url
        )
    }

    fn user_id(&self, who: Who) -> &str {
        match who {
            Who::Owner => &self.user_ids[0],
            Who::Manager => &self.user_ids[1],
            Who::Cashier | Who::NoToken => &self.user_ids[2],
        }
    }

    /// Writes `writes` with the seeding token of `shop` and asserts it worked.
    fn seed(&self, shop: &str, case: &Case, writes: Value) {
        let (status, body) = self.commit(Some(&(self.seeding_token)(shop)), writes);
        assert_eq!(
            status, 200,
            "{}: seeding case {}: {body}",
            self.name, case.number
        );
    }

    fn token(&self, who: Who) -> Option<&str> {
        match who {
            Who::Owner => Some(&self.tokens[0]),
            Who::Manager => Some(&self.tokens[1]),
            Who::Cashier => Some(&self.tokens[2]),
            Who::NoToken => None,
        }
    }

    fn commit(&self, token: Option<&str>, writes: Value) -> (u16, Value) {
        call(
            "POST",
            &format!("{}:commit", self.documents_url()),
            token,
            Some(&json!({ "writes": writes })),
        )
    }

    /// Runs one case on fresh documents of its own and says what happened.
    fn run(&self, case: &Case) -> Outcome {
        let shop = match case.target {
            Target::OwnShop => "s1",
            Target::OtherShop => "s2",
            Target::OutsideShops => "",
        };
        let id = format!("case-{}", case.number);
        let (collection_parent, product) = if shop.is_empty() {
            (String::new(), format!("catalog/{id}"))
        } else {
            (
                format!("shops/{shop}"),
                format!("shops/{shop}/products/{id}"),
            )
        };
        let name = |path: &str| format!("projects/{PROJECT}/databases/(default)/documents/{path}");
        if !shop.is_empty() {
            let (status, body) = self.commit(
                Some(&(self.seeding_token)(shop)),
                json!([{"update": {"name": name(&product), "fields": {
                    "name": {"stringValue": "Chai"}, "price": {"integerValue": "1500"}
                }}}]),
            );
            assert_eq!(
                status, 200,
                "{}: seeding case {}: {body}",
                self.name, case.number
            );
        }
        let token = self.token(case.who);
        let masked = |field: &str, value: Value| {
            json!([{"update": {"name": name(&product), "fields": {field: value}},
                    "updateMask": {"fieldPaths": [field]}}])
        };
        let documents = self.documents_url();
        let document_url = format!("{documents}/{product}");
        // `{parent}:verb` for queries of the products (or, outside shops, catalog) collection.
        let (parent_url, collection) = if shop.is_empty() {
            (documents.clone(), "catalog")
        } else {
            (format!("{documents}/{collection_parent}"), "products")
        };
        let batch_get = |names: Vec<String>| {
            call(
                "POST",
                &format!("{documents}:batchGet"),
                token,
                Some(&json!({ "documents": names })),
            )
        };
        let rest_patch = |field: &str, value: Value| {
            call(
                "PATCH",
                &format!("{document_url}?updateMask.fieldPaths={field}"),
                token,
                Some(&json!({"fields": {field: value}})),
            )
        };
        let (status, body) = match case.operation {
            Operation::Get => call("GET", &document_url, token, None),
            Operation::Query => call(
                "POST",
                &format!("{parent_url}:runQuery"),
                token,
                Some(&json!({"structuredQuery": {"from": [{"collectionId": collection}]}})),
            ),
            Operation::List => call("GET", &format!("{parent_url}/{collection}"), token, None),
            Operation::BatchGet => batch_get(vec![name(&product)]),
            Operation::BatchGetAlongOwnShop => {
                let own = format!("shops/s1/products/{id}-own");
                let (status, body) = self.commit(
                    Some(&(self.seeding_token)("s1")),
                    json!([{"update": {"name": name(&own), "fields": {
                        "name": {"stringValue": "Ginger"}, "price": {"integerValue": "700"}
                    }}}]),
                );
                assert_eq!(status, 200, "{}: seeding {own}: {body}", self.name);
                batch_get(vec![name(&own), name(&product)])
            }
            Operation::Count => call(
                "POST",
                &format!("{parent_url}:runAggregationQuery"),
                token,
                Some(&json!({"structuredAggregationQuery": {
                    "structuredQuery": {"from": [{"collectionId": collection}]},
                    "aggregations": [{"alias": "products", "count": {}}]
                }})),
            ),
            Operation::PatchName => rest_patch("name", json!({"stringValue": "Masala chai"})),
            Operation::PatchPrice => rest_patch("price", json!({"integerValue": "1600"})),
            Operation::RestDelete => call("DELETE", &document_url, token, None),
            Operation::RenameInTransaction => {
                let (status, body) = call(
                    "POST",
                    &format!("{documents}:beginTransaction"),
                    token,
                    Some(&json!({})),
                );
                match body["transaction"].as_str() {
                    Some(transaction) if status == 200 => call(
                        "POST",
                        &format!("{documents}:commit"),
                        token,
                        Some(&json!({
                            "writes": masked("name", json!({"stringValue": "Masala chai"})),
                            "transaction": transaction,
                        })),
                    ),
                    _ => (status, body),
                }
            }
            Operation::CreateProduct => self.commit(
                token,
                json!([{"update": {"name": name(&format!("{product}-new")), "fields": {
                            "name": {"stringValue": "Rusk"}, "price": {"integerValue": "900"}}},
                        "currentDocument": {"exists": false}}]),
            ),
            Operation::RenameProduct => {
                self.commit(token, masked("name", json!({"stringValue": "Masala chai"})))
            }
            Operation::ChangePrice => {
                self.commit(token, masked("price", json!({"integerValue": "1600"})))
            }
            Operation::SoftDelete => {
                self.commit(token, masked("deleted", json!({"booleanValue": true})))
            }
            Operation::HardDelete => self.commit(token, json!([{"delete": name(&product)}])),
            Operation::VerifyMissing => self.commit(
                token,
                json!([{"verify": name(&format!("{product}-absent")),
                        "currentDocument": {"exists": true}}]),
            ),
            Operation::SellFromStock
            | Operation::StockDownOutsideSale
            | Operation::StockDownNamingOldBill
            | Operation::ReceiveStock
            | Operation::AdjustStock => {
                let bill = format!("{collection_parent}/bills/{id}-bill");
                if case.operation == Operation::StockDownNamingOldBill {
                    self.seed(
                        shop,
                        case,
                        json!([{"update": {"name": name(&bill), "fields": {
                            "status": {"stringValue": "final"}}}}]),
                    );
                }
                let (delta, last_bill) = match case.operation {
                    Operation::SellFromStock | Operation::StockDownNamingOldBill => (-1, true),
                    Operation::ReceiveStock => (5, false),
                    _ => (-2, false),
                };
                let mut fields = json!({});
                let mut mask = json!([]);
                if last_bill {
                    fields = json!({"lastBill": {"stringValue": format!("{id}-bill")}});
                    mask = json!(["lastBill"]);
                }
                let mut writes = vec![json!({
                    "update": {"name": name(&product), "fields": fields},
                    "updateMask": {"fieldPaths": mask},
                    "updateTransforms": [{"fieldPath": "stock", "increment": {"integerValue": delta.to_string()}}],
                })];
                let stock_move = |kind: &str, reason: Value| {
                    json!({"update": {"name": name(&format!("{collection_parent}/stockMoves/{id}-move")),
                        "fields": {"productId": {"stringValue": id}, "kind": {"stringValue": kind},
                                   "quantity": {"integerValue": delta.to_string()}, "reason": reason}}})
                };
                match case.operation {
                    Operation::SellFromStock => {
                        writes.insert(0, json!({"update": {"name": name(&bill), "fields": {
                            "status": {"stringValue": "final"}, "total": {"integerValue": "1500"}}}}));
                        writes.push(stock_move("sale", json!({"nullValue": null})));
                    }
                    Operation::ReceiveStock => writes.push(stock_move("receive", json!({"nullValue": null}))),
                    Operation::AdjustStock => writes.push(stock_move("adjust", json!({"stringValue": "broken"}))),
                    _ => {}
                }
                self.commit(token, Value::Array(writes))
            }
            Operation::VoidBill => {
                let bill = format!("{collection_parent}/bills/{id}");
                self.seed(
                    shop,
                    case,
                    json!([{"update": {"name": name(&bill), "fields": {
                        "status": {"stringValue": "final"}, "total": {"integerValue": "1500"}}}}]),
                );
                self.commit(
                    token,
                    json!([{"update": {"name": name(&bill), "fields": {"status": {"stringValue": "void"}}},
                            "updateMask": {"fieldPaths": ["status"]}}]),
                )
            }
            Operation::VoidBillUnit
            | Operation::RefundUnit
            | Operation::VoidRefundedBill
            | Operation::VoidVoidBill
            | Operation::RefundVoidBill
            | Operation::RefundPastSold
            | Operation::RefundRestOfLine
            | Operation::RefundTallyAlone
            | Operation::DeleteRefundTally => {
                use Operation::*;
                let bill = format!("{collection_parent}/bills/{id}");
                let customer = format!("{collection_parent}/customers/{id}");
                let status = if matches!(case.operation, VoidVoidBill | RefundVoidBill) {
                    "void"
                } else {
                    "final"
                };
                // One line of 2 pieces.
                self.seed(
                    shop,
                    case,
                    json!([
                        {"update": {"name": name(&bill), "fields": {
                            "status": {"stringValue": status}, "total": {"integerValue": "3000"},
                            "customerId": {"stringValue": id},
                            "lines": {"arrayValue": {"values": [{"mapValue": {"fields": {
                                "productId": {"stringValue": id}, "quantity": {"integerValue": "2"}}}}]}}}}},
                        {"update": {"name": name(&customer), "fields": {
                            "name": {"stringValue": "Asha"}, "creditLimit": {"integerValue": "5000"},
                            "creditBalance": {"integerValue": "1500"}}}},
                    ]),
                );
                let increment = |path: &str, field: &str, delta: i64| {
                    json!({"update": {"name": name(path), "fields": {}},
                           "updateMask": {"fieldPaths": []},
                           "updateTransforms": [{"fieldPath": field,
                               "increment": {"integerValue": delta.to_string()}}]})
                };
                let line_tally = format!("{bill}/refunded/0");
                let all_tally = format!("{bill}/refunded/all");
                // A unit as `counterbook_shop::reversals` writes it: a void, or a refund of
                // `quantity` of the line (its record, the tallies, stock back, money back).
                let unit = |void: bool, refund: &str, quantity: i64| {
                    let kind = if void { "void" } else { "return" };
                    let mut writes = vec![
                        increment(&product, "stock", quantity),
                        json!({"update": {"name": name(&format!("{collection_parent}/stockMoves/{refund}-move")),
                            "fields": {"productId": {"stringValue": id}, "kind": {"stringValue": kind},
                                       "quantity": {"integerValue": quantity.to_string()},
                                       "billId": {"stringValue": id},
                                       "reason": {"stringValue": "wrong bill"}}}}),
                        json!({"update": {"name": name(&format!("{collection_parent}/payments/{refund}-back")),
                            "fields": {"method": {"stringValue": "cash"}, "amount": {"integerValue": "-1500"},
                                       "billId": {"stringValue": id}}}}),
                        json!({"update": {"name": name(&format!("{collection_parent}/audit/{refund}")), "fields": {
                            "action": {"stringValue": if void { "bill.void" } else { "bill.refund" }},
                            "cashier": {"stringValue": "asha"}, "deleted": {"booleanValue": false}}}}),
                    ];
                    if void {
                        writes.insert(0, json!({"update": {"name": name(&bill), "fields": {"status": {"stringValue": "void"}}},
                                                "updateMask": {"fieldPaths": ["status"]}}));
                        writes.push(increment(&customer, "creditBalance", -1500));
                    } else {
                        writes.splice(0..0, [
                            json!({"update": {"name": name(&format!("{collection_parent}/refunds/{refund}")),
                                "fields": {"billId": {"stringValue": id}, "total": {"integerValue": "1500"},
                                           "moneyBack": {"integerValue": "1500"}, "method": {"stringValue": "cash"},
                                           "lines": {"arrayValue": {"values": [{"mapValue": {"fields": {
                                               "line": {"integerValue": "0"},
                                               "quantity": {"integerValue": quantity.to_string()}}}}]}}}}}),
                            increment(&line_tally, "quantity", quantity),
                            json!({"update": {"name": name(&all_tally), "fields": {"lastRefund": {"stringValue": refund}}},
                                   "updateMask": {"fieldPaths": ["lastRefund"]},
                                   "updateTransforms": [{"fieldPath": "count", "increment": {"integerValue": "1"}}]}),
                        ]);
                    }
                    Value::Array(writes)
                };
                let earlier = format!("{id}-earlier");
                let later = format!("{id}-later");
                // What was refunded before, as a refund unit through the seeding token.
                match case.operation {
                    VoidRefundedBill | RefundRestOfLine | RefundTallyAlone | DeleteRefundTally => {
                        self.seed(shop, case, unit(false, &earlier, 1))
                    }
                    RefundPastSold => self.seed(shop, case, unit(false, &earlier, 2)),
                    _ => {}
                }
                match case.operation {
                    VoidBillUnit | VoidRefundedBill | VoidVoidBill => self.commit(token, unit(true, &later, 2)),
                    RefundUnit | RefundVoidBill => self.commit(token, unit(false, &later, 2)),
                    RefundPastSold | RefundRestOfLine => self.commit(token, unit(false, &later, 1)),
                    RefundTallyAlone => self.commit(token, json!([increment(&line_tally, "quantity", 1)])),
                    _ => self.commit(token, json!([{"delete": name(&line_tally)}])),
                }
            }
            Operation::RefundRecord => self.commit(
                token,
                json!([{"update": {"name": name(&format!("{collection_parent}/refunds/{id}")), "fields": {
                    "billId": {"stringValue": "b1"}, "total": {"integerValue": "1500"},
                    "moneyBack": {"integerValue": "1500"}, "method": {"stringValue": "cash"}}}}]),
            ),
            Operation::ReturnStock => self.commit(
                token,
                json!([
                    {"update": {"name": name(&product), "fields": {}}, "updateMask": {"fieldPaths": []},
                     "updateTransforms": [{"fieldPath": "stock", "increment": {"integerValue": "1"}}]},
                    {"update": {"name": name(&format!("{collection_parent}/stockMoves/{id}-move")),
                     "fields": {"productId": {"stringValue": id}, "kind": {"stringValue": "return"},
                                "quantity": {"integerValue": "1"}}}},
                ]),
            ),
            Operation::Refund | Operation::TakePayment => {
                let amount = if case.operation == Operation::Refund { "-500" } else { "500" };
                self.commit(
                    token,
                    json!([{"update": {"name": name(&format!("{collection_parent}/payments/{id}")), "fields": {
                        "method": {"stringValue": "cash"}, "amount": {"integerValue": amount}}}}]),
                )
            }
            Operation::ConfirmUpi => {
                let payment = format!("{collection_parent}/payments/{id}");
                self.seed(
                    shop,
                    case,
                    json!([{"update": {"name": name(&payment), "fields": {
                        "method": {"stringValue": "upi"}, "amount": {"integerValue": "500"},
                        "confirmed": {"booleanValue": false}}}}]),
                );
                self.commit(
                    token,
                    json!([{"update": {"name": name(&payment), "fields": {"confirmed": {"booleanValue": true}}},
                            "updateMask": {"fieldPaths": ["confirmed"]}}]),
                )
            }
            Operation::WriteSettings => self.commit(
                token,
                json!([{"update": {"name": name(&format!("{collection_parent}/settings/{id}")), "fields": {
                    "shopName": {"stringValue": "Kirana"}, "currency": {"stringValue": "INR"}}}}]),
            ),
            Operation::CreditWithinLimit | Operation::CreditOverLimit | Operation::SetCreditLimit => {
                let customer = format!("{collection_parent}/customers/{id}");
                self.seed(
                    shop,
                    case,
                    json!([{"update": {"name": name(&customer), "fields": {
                        "name": {"stringValue": "Asha"}, "creditLimit": {"integerValue": "1000"},
                        "creditBalance": {"integerValue": "500"}}}}]),
                );
                let write = match case.operation {
                    Operation::SetCreditLimit => json!({
                        "update": {"name": name(&customer), "fields": {"creditLimit": {"integerValue": "5000"}}},
                        "updateMask": {"fieldPaths": ["creditLimit"]}}),
                    _ => {
                        let delta = if case.operation == Operation::CreditOverLimit { "600" } else { "200" };
                        json!({"update": {"name": name(&customer), "fields": {}},
                               "updateMask": {"fieldPaths": []},
                               "updateTransforms": [{"fieldPath": "creditBalance", "increment": {"integerValue": delta}}]})
                    }
                };
                self.commit(token, json!([write]))
            }
            Operation::CreateCustomer => self.commit(
                token,
                json!([{"update": {"name": name(&format!("{collection_parent}/customers/{id}")), "fields": {
                    "name": {"stringValue": "Ravi"}, "phone": {"stringValue": "98765 43210"},
                    "creditLimit": {"nullValue": null}}}}]),
            ),
            Operation::AuditEntry | Operation::AuditApprovedBySelf | Operation::AuditApprovedByOther => {
                let approved_by = match case.operation {
                    Operation::AuditEntry => json!({"nullValue": null}),
                    Operation::AuditApprovedBySelf => json!({"stringValue": self.user_id(case.who)}),
                    _ => json!({"stringValue": "someone-else"}),
                };
                self.commit(
                    token,
                    json!([{"update": {"name": name(&format!("{collection_parent}/audit/{id}")), "fields": {
                        "action": {"stringValue": "bill.void"}, "cashier": {"stringValue": "asha"},
                        "approvedBy": approved_by, "deleted": {"booleanValue": false}}}}]),
                )
            }
            Operation::EditAuditEntry | Operation::DeleteAuditEntry => {
                let entry = format!("{collection_parent}/audit/{id}");
                self.seed(
                    shop,
                    case,
                    json!([{"update": {"name": name(&entry), "fields": {
                        "action": {"stringValue": "bill.finalize"}, "deleted": {"booleanValue": false}}}}]),
                );
                if case.operation == Operation::DeleteAuditEntry {
                    self.commit(token, json!([{"delete": name(&entry)}]))
                } else {
                    self.commit(
                        token,
                        json!([{"update": {"name": name(&entry), "fields": {"action": {"stringValue": "nothing"}}},
                                "updateMask": {"fieldPaths": ["action"]}}]),
                    )
                }
            }
            Operation::WriteUserDocument => self.commit(
                token,
                json!([{"update": {"name": name(&format!("{collection_parent}/users/{id}")),
                                   "fields": {"role": {"stringValue": "owner"}}}}]),
            ),
        };
        if std::env::var_os("ACCESS_CONTROL_TRACE").is_some() {
            eprintln!(
                "{}: case {} {:?} {:?} {:?}: {status} {body}",
                self.name, case.number, case.who, case.target, case.operation
            );
        }
        match status {
            200 => Outcome::Allowed,
            401 | 403 => {
                assert!(
                    body["error"]["status"] == "PERMISSION_DENIED"
                        || body["error"]["status"] == "UNAUTHENTICATED",
                    "{}: case {}: {body}",
                    self.name,
                    case.number
                );
                Outcome::Denied
            }
            404 if body["error"]["status"] == "NOT_FOUND" => Outcome::NotFound,
            other => panic!(
                "{}: case {} ({:?} {:?} {:?}) answered {other}: {body}",
                self.name, case.number, case.who, case.target, case.operation
            ),
        }
    }
}

/// What the Firebase JS SDK's `mockUserToken` sends to the emulators: an unsigned JWT.
fn mock_user_token(user_id: &str, shop: &str, role: &str) -> String {
    let header = json!({"alg": "none", "type": "JWT"});
    let payload = json!({
        "iss": format!("https://securetoken.google.com/{PROJECT}"),
        "aud": PROJECT,
        "iat": 0,
        "exp": 3600,
        "auth_time": 0,
        "sub": user_id,
        "user_id": user_id,
        "email": format!("{role}@{shop}.test"),
        "firebase": {"sign_in_provider": "password", "identities": {}},
        "shop": shop,
        "role": role,
    });
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.", encode(&header), encode(&payload))
}

fn emulator_backend() -> (ProcessGroup, Backend) {
    let port = free_port();
    let rules = rules_file();
    assert!(rules.exists(), "{} is missing", rules.display());
    let (group, _) = start_group(
        "the Firestore emulator",
        EMULATOR,
        &[
            "start".into(),
            "--host=127.0.0.1".into(),
            format!("--port={port}"),
            format!("--rules={}", rules.display()),
        ],
        "Dev App Server is now running",
        EMULATOR_START_LIMIT,
    );
    let backend = Backend {
        name: "Firestore emulator with firestore.rules",
        base_url: format!("http://127.0.0.1:{port}"),
        tokens: ["owner", "manager", "cashier"]
            .map(|role| mock_user_token(&format!("{role}-1"), "s1", role)),
        user_ids: ["owner", "manager", "cashier"].map(|role| format!("{role}-1")),
        // The emulator's admin credential, which bypasses the rules: only for seeding.
        seeding_token: Box::new(|_shop| "owner".to_owned()),
    };
    (group, backend)
}

fn server_backend(data: &Path) -> (ProcessGroup, Backend) {
    for shop in ["s1", "s2"] {
        add_shop(data, shop);
    }
    for (shop, role) in [
        ("s1", "owner"),
        ("s1", "manager"),
        ("s1", "cashier"),
        ("s2", "owner"),
    ] {
        add_person(data, shop, &format!("{role}@{shop}.test"), role);
    }
    let server = RunningServer::start(data, &["--project", PROJECT]);
    let base_url = server.base_url.clone();
    let people = ["owner", "manager", "cashier"]
        .map(|role| signed_in(&base_url, &format!("{role}@s1.test")));
    let tokens = people.clone().map(|(token, _)| token);
    let user_ids = people.map(|(_, user_id)| user_id);
    let owner_of_s1 = tokens[0].clone();
    let (owner_of_s2, _) = signed_in(&base_url, "owner@s2.test");
    let backend = Backend {
        name: "counterbook-server",
        base_url,
        tokens,
        user_ids,
        seeding_token: Box::new(move |shop| match shop {
            "s1" => owner_of_s1.clone(),
            _ => owner_of_s2.clone(),
        }),
    };
    (server.group, backend)
}

#[test]
fn the_emulator_with_firestore_rules_and_counterbook_server_allow_and_deny_the_same() {
    let cases = table();
    let data = tempfile::tempdir().unwrap();
    // The server first: it is quick, and the emulator's JVM then has the machine to itself.
    let (server_group, server) = server_backend(data.path());
    let server_outcomes: Vec<Outcome> = cases.iter().map(|case| server.run(case)).collect();
    drop(server_group);
    let (emulator_group, emulator) = emulator_backend();
    let emulator_outcomes: Vec<Outcome> = cases.iter().map(|case| emulator.run(case)).collect();
    drop(emulator_group);

    let mut disagreements = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let (on_emulator, on_server) = (emulator_outcomes[index], server_outcomes[index]);
        if on_emulator != case.expected || on_server != case.expected {
            disagreements.push(format!(
                "case {:>2}: {:?} on {:?}, {:?}: expected {:?}, emulator {:?}, server {:?}",
                case.number,
                case.who,
                case.target,
                case.operation,
                case.expected,
                on_emulator,
                on_server
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
    let allowed = cases
        .iter()
        .filter(|case| case.expected == Outcome::Allowed)
        .count();
    eprintln!(
        "{} cases agree on both backends ({allowed} allowed, {} denied)",
        cases.len(),
        cases.len() - allowed
    );
    // The table must keep testing both answers, not only denials.
    assert!(allowed >= 40 && cases.len() - allowed >= 120, "{allowed}");
}
