//! Who may do what: Counterbook's access policy as pure functions of the signed-in user, the
//! document and, for writes, the document before and after the write.
//!
//! This is the same policy as `firestore.rules` at the repository root, rule for rule, and
//! `tests/access_control.rs` runs one table of cases against both (Google's emulator enforcing
//! the rules file, and this server) requiring identical outcomes. Change them together.
//!
//! - A user reaches only documents under `shops/{theirShop}/`, plus the shop document itself.
//! - The shop document and `shops/{shop}/users/...` are written by the owner only.
//! - Cashiers do not delete: no hard delete, and no soft delete (a write leaving `deleted: true`
//!   on a document that was not deleted, or creating one that is).
//! - Cashiers do not change the price of an existing product (`shops/{shop}/products/{id}`).
//! - Each role's part of the shop's work (`check_outcome`), judged on each document a commit
//!   writes as it was before the commit and as the commit leaves it, as the rules see
//!   `resource` and `request.resource`, with the rules' `get`/`getAfter` of other documents:
//!   - everyone: audit entries (`audit`) are append-only (after creation only the sync
//!     metadata changes; none is deleted), and an entry's `approvedBy`, when set, is the
//!     writer's own user id: a manager approves with their own token;
//!   - managers and cashiers: shop settings (`settings`) are the owner's;
//!   - cashiers sell, take payments and receive stock, and nothing else of the catalogue or
//!     the books: they add no product and change no product field but `stock` (and
//!     `lastBill`); stock goes down only in a sale (the product's `lastBill` names a bill this
//!     very commit creates as `final`); their stock moves are `sale`s or `receive`s of a
//!     positive quantity, never changed later; their bills are never created `void` nor changed
//!     later; their payments are never negative (a refund) nor changed later but to confirm
//!     them; they write no refund records (`refunds`); they neither set nor change a customer's `creditLimit` and never leave a
//!     customer's raised `creditBalance` above it; they never write `approvedBy`.
//! - Whoever writes them, a bill's voids and refunds keep to the bill as the server has it
//!   (`check_reversal`): a void bill takes no more writes, a bill with a refund is not voided,
//!   a refund moves its bill's tallies (`bills/{bill}/refunded/{line}` and `/all`, increments)
//!   and no line's tally goes above what the line sold; so a void or refund approved on a tablet
//!   that did not know of another tablet's is refused inside its commit.
//! - Queries (and lists and aggregations, which are queries too) are allowed only under the
//!   user's shop, and never across collection groups (`allDescendants`), which Firestore's rules
//!   cannot prove to stay inside one shop.
//!
//! `auth::authorize` maps every request onto these checks: a `:batchGet` is a read of each
//! document it names, a `PATCH` or `DELETE` is the one-write commit it stands for, and
//! `:beginTransaction` / `:rollback` touch no document (the reads and the commit made in the
//! transaction are judged one by one).

use std::collections::BTreeMap;

use counterbook_firestore_wire::{DocumentName, Value};

/// The collection whose documents only owners write.
const USERS_COLLECTION: &str = "users";
/// The collection whose `price` field cashiers must not change.
const PRODUCTS_COLLECTION: &str = "products";
const PRICE_FIELD: &str = "price";
const SOFT_DELETE_FIELD: &str = "deleted";
const SETTINGS_COLLECTION: &str = "settings";
const AUDIT_COLLECTION: &str = "audit";
const BILLS_COLLECTION: &str = "bills";
const PAYMENTS_COLLECTION: &str = "payments";
const STOCK_MOVES_COLLECTION: &str = "stockMoves";
const CUSTOMERS_COLLECTION: &str = "customers";
/// A bill's refunds: a manager's records, each with its lines and money back.
const REFUNDS_COLLECTION: &str = "refunds";
/// The sync engine's metadata, written with every document (DESIGN.md section 3).
const SYNC_METADATA_FIELDS: [&str; 3] = ["updatedAt", "updatedBy", "lastOp"];
const STOCK_FIELD: &str = "stock";
/// A product's last sale: the bill that a cashier's stock decrease belongs to.
const LAST_BILL_FIELD: &str = "lastBill";
const APPROVED_BY_FIELD: &str = "approvedBy";
const CREDIT_LIMIT_FIELD: &str = "creditLimit";
const CREDIT_BALANCE_FIELD: &str = "creditBalance";

/// What a user does in their shop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Owner,
    Manager,
    Cashier,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Manager, Role::Cashier];

    /// The spelling in tokens, the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Cashier => "cashier",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The signed-in user a request acts for, as its verified ID token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub email: String,
    pub shop: String,
    pub role: Role,
}

/// Why a request was refused; becomes a 403 `PERMISSION_DENIED`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("Missing or insufficient permissions: {document} is outside your shop")]
    OutsideShop { document: String },
    #[error("Missing or insufficient permissions: queries run only inside your shop")]
    QueryOutsideShop,
    #[error(
        "Missing or insufficient permissions: collection group queries (allDescendants) are not allowed"
    )]
    CollectionGroupQuery,
    #[error("Missing or insufficient permissions: only the shop owner changes {document}")]
    OwnerOnly { document: String },
    #[error("Missing or insufficient permissions: a {role} cannot delete {document}")]
    DeleteNotAllowed { role: Role, document: String },
    #[error("Missing or insufficient permissions: a {role} cannot change the price of {document}")]
    PriceChangeNotAllowed { role: Role, document: String },
    /// A write outside the role's part of the work (`check_outcome`); `what` says which.
    #[error("Missing or insufficient permissions: a {role} cannot {what} ({document})")]
    NotTheRolesWork {
        role: Role,
        what: &'static str,
        document: String,
    },
    /// A void or refund the bill as it stands on the server does not allow, whoever asks
    /// (`check_reversal`): typically made on a tablet that did not know of another's.
    #[error("Missing or insufficient permissions: {rule} ({document})")]
    BillRule { rule: BillRule, document: String },
}

/// What a bill's voids and refunds must keep to, whoever writes them (`check_reversal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BillRule {
    #[error("the bill is void: nothing more is written to it")]
    BillIsVoid,
    #[error("the bill has refunds: it is not voided")]
    VoidAfterRefund,
    #[error("a refund is of a completed bill of this shop, with its tallies moved")]
    RefundOfNoBill,
    #[error("a refund gives back more than was sold")]
    MoreThanSold,
    #[error("a refund's tallies move only with a new refund of a completed bill")]
    TallyWithoutRefund,
    #[error("a refund's tallies are never deleted")]
    TallyDeleted,
}

/// The fields of a document, as the policy reads them.
pub type Fields = BTreeMap<String, Value>;

/// Other documents as the commit being judged sees them: before it (the rules' `get`) and as
/// it leaves them (`getAfter`). `E` is the storage's error.
pub trait CommitDocuments<E> {
    fn before(&self, name: &DocumentName) -> Result<Option<Fields>, E>;
    fn after(&self, name: &DocumentName) -> Result<Option<Fields>, E>;
}

/// What one write does, as the policy sees it.
#[derive(Clone, Copy, Debug)]
pub enum WriteEffect<'a> {
    /// A `verify`: needs read access only.
    Verify,
    /// A hard delete (whether or not the document exists).
    Delete,
    /// A create (`before` is `None`) or an update, with the fields before and after it.
    Put {
        before: Option<&'a BTreeMap<String, Value>>,
        after: &'a BTreeMap<String, Value>,
    },
}

/// Where a document sits relative to the principal's shop.
enum Place<'a> {
    /// `shops/{shop}`.
    ShopDocument,
    /// `shops/{shop}/{collection}/{id}`: `nested` is false; deeper documents: true.
    InCollection { collection: &'a str, nested: bool },
}

fn place_in_shop<'a>(principal: &Principal, name: &'a DocumentName) -> Option<Place<'a>> {
    match name.segments.as_slice() {
        [shops, shop, rest @ ..] if shops == "shops" && *shop == principal.shop => match rest {
            [] => Some(Place::ShopDocument),
            [collection, _, deeper @ ..] => Some(Place::InCollection {
                collection,
                nested: !deeper.is_empty(),
            }),
            [_] => None,
        },
        _ => None,
    }
}

/// A `get` of one document (or a `verify` in a commit).
pub fn check_read(principal: &Principal, name: &DocumentName) -> Result<(), Denial> {
    place_in_shop(principal, name)
        .map(|_| ())
        .ok_or_else(|| Denial::OutsideShop {
            document: name.relative_path(),
        })
}

/// A query of the collection(s) `from` under `parent` (a document, or the root when it has no
/// segments).
pub fn check_query(
    principal: &Principal,
    parent: &DocumentName,
    any_all_descendants: bool,
) -> Result<(), Denial> {
    if place_in_shop(principal, parent).is_none() {
        return Err(Denial::QueryOutsideShop);
    }
    if any_all_descendants {
        return Err(Denial::CollectionGroupQuery);
    }
    Ok(())
}

/// A list (`GET` of a collection): a query of that one collection under its parent.
pub fn check_list(principal: &Principal, collection: &DocumentName) -> Result<(), Denial> {
    let parent = DocumentName {
        segments: collection
            .segments
            .split_last()
            .map_or_else(Vec::new, |(_, parent)| parent.to_vec()),
        ..collection.clone()
    };
    check_query(principal, &parent, false)
}

/// One write of a commit; a commit is allowed only if every one of its writes is.
pub fn check_write(
    principal: &Principal,
    name: &DocumentName,
    effect: WriteEffect<'_>,
) -> Result<(), Denial> {
    let document = || name.relative_path();
    let place = place_in_shop(principal, name).ok_or_else(|| Denial::OutsideShop {
        document: document(),
    })?;
    if let WriteEffect::Verify = effect {
        return Ok(());
    }
    let collection = match place {
        Place::ShopDocument => None,
        Place::InCollection { collection, .. } if collection == USERS_COLLECTION => None,
        Place::InCollection { collection, nested } => Some((collection, nested)),
    };
    let Some((collection, nested)) = collection else {
        return match principal.role {
            Role::Owner => Ok(()),
            Role::Manager | Role::Cashier => Err(Denial::OwnerOnly {
                document: document(),
            }),
        };
    };
    if principal.role != Role::Cashier {
        return Ok(());
    }
    match effect {
        WriteEffect::Verify => Ok(()),
        WriteEffect::Delete => Err(Denial::DeleteNotAllowed {
            role: principal.role,
            document: document(),
        }),
        WriteEffect::Put { before, after } => {
            let was_deleted = before.is_some_and(is_soft_deleted);
            if is_soft_deleted(after) && !was_deleted {
                return Err(Denial::DeleteNotAllowed {
                    role: principal.role,
                    document: document(),
                });
            }
            let is_product = collection == PRODUCTS_COLLECTION && !nested;
            if let (true, Some(before)) = (is_product, before) {
                if field_changed(before, after, PRICE_FIELD) {
                    return Err(Denial::PriceChangeNotAllowed {
                        role: principal.role,
                        document: document(),
                    });
                }
            }
            Ok(())
        }
    }
}

/// Under a bill, the tallies of its refunds (`bills/{bill}/refunded/{key}`), as
/// `counterbook_shop::refunds` writes them.
const REFUNDED_COLLECTION: &str = "refunded";
const ALL_REFUNDS_TALLY: &str = "all";
const REFUNDED_QUANTITY_FIELD: &str = "quantity";
const REFUND_COUNT_FIELD: &str = "count";
const LAST_REFUND_FIELD: &str = "lastRefund";
const STATUS_FIELD: &str = "status";

/// A line's tally key: its 0-based index, written plainly (the rules' `'0|[1-9][0-9]{0,3}'`).
fn line_of_tally_key(key: &str) -> Option<usize> {
    let plain = !key.is_empty()
        && key.len() <= 4
        && key.bytes().all(|byte| byte.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    plain.then(|| key.parse().ok()).flatten()
}

/// A document of the principal's shop, by its path under `shops/{shop}/`.
fn in_shop(name: &DocumentName, path: &[&str]) -> DocumentName {
    let mut segments = name.segments[..2].to_vec();
    segments.extend(path.iter().map(|segment| (*segment).to_owned()));
    DocumentName {
        segments,
        ..name.clone()
    }
}

fn integer(value: Option<&Value>) -> Option<i64> {
    match value {
        Some(Value::Integer(integer)) => Some(*integer),
        _ => None,
    }
}

/// A bill's voids and refunds, for every role: judged on what the commit leaves against the
/// bill and its refund tallies (`bills/{bill}/refunded/{line}` and `/all`) before it, so that a
/// void or refund made on a tablet that did not know of another's is refused inside the very
/// commit, whoever approved it:
/// - a void bill is never written again (no second void, no refund of it);
/// - a bill with a refund (its `all` tally exists) is not voided;
/// - a new refund record names a bill that is `final` before and after the commit, and moves
///   its `all` tally's `count` up and each of its lines' tallies by at least that line's
///   quantity (at least: two refunds of the bill may share a commit, their increments folded);
/// - a line's tally only goes up, with the `all` tally, of a bill `final` before and after the
///   commit, and never above the line's quantity sold; the `all` tally's `count` only goes up,
///   naming as `lastRefund` a refund record the commit creates; tallies are never deleted.
///
/// `firestore.rules` states the same, except what no rule can: a loop over a refund record's
/// lines (that each moved its line's tally). Each honest refund moves its tallies, so the
/// second of two racing refunds is refused there too, at the tally of the line it over-refunds.
fn check_reversal<E>(
    name: &DocumentName,
    place: &[String],
    before: Option<&Fields>,
    after: Option<&Fields>,
    others: &dyn CommitDocuments<E>,
) -> Result<Result<(), BillRule>, E> {
    fn status(fields: Option<&Fields>) -> Option<&Value> {
        fields.and_then(|fields| fields.get(STATUS_FIELD))
    }
    let is_final = |fields: Option<&Fields>| is_text(status(fields), "final");
    let tally_count = |fields: Option<&Fields>| {
        fields.map_or(Some(0), |fields| integer(fields.get(REFUND_COUNT_FIELD)))
    };
    match place {
        [collection, bill] if collection == BILLS_COLLECTION => {
            if after.is_none() {
                return Ok(Ok(()));
            }
            if is_text(status(before), "void") {
                return Ok(Err(BillRule::BillIsVoid));
            }
            let all = in_shop(
                name,
                &[
                    BILLS_COLLECTION,
                    bill,
                    REFUNDED_COLLECTION,
                    ALL_REFUNDS_TALLY,
                ],
            );
            if before.is_some()
                && is_text(status(after), "void")
                && (others.before(&all)?.is_some() || others.after(&all)?.is_some())
            {
                return Ok(Err(BillRule::VoidAfterRefund));
            }
            Ok(Ok(()))
        }
        [collection, _] if collection == REFUNDS_COLLECTION => {
            let (None, Some(after)) = (before, after) else {
                return Ok(Ok(()));
            };
            let Some(Value::String(bill)) = after.get("billId") else {
                return Ok(Err(BillRule::RefundOfNoBill));
            };
            if bill.is_empty() || bill.contains('/') {
                return Ok(Err(BillRule::RefundOfNoBill));
            }
            let bill_name = in_shop(name, &[BILLS_COLLECTION, bill]);
            let all = in_shop(
                name,
                &[
                    BILLS_COLLECTION,
                    bill,
                    REFUNDED_COLLECTION,
                    ALL_REFUNDS_TALLY,
                ],
            );
            let all_before = others.before(&all)?;
            let all_after = others.after(&all)?;
            let counted = match (tally_count(all_before.as_ref()), all_after.as_ref()) {
                (Some(was), Some(now)) => {
                    integer(now.get(REFUND_COUNT_FIELD)).is_some_and(|now| now > was)
                }
                _ => false,
            };
            if !is_final(others.before(&bill_name)?.as_ref())
                || !is_final(others.after(&bill_name)?.as_ref())
                || !counted
            {
                return Ok(Err(BillRule::RefundOfNoBill));
            }
            // Each refunded line's tally moved by at least its quantity.
            let mut by_line: BTreeMap<String, i64> = BTreeMap::new();
            if let Some(Value::Array(lines)) = after.get("lines") {
                for line in lines {
                    let Value::Map(line) = line else {
                        return Ok(Err(BillRule::RefundOfNoBill));
                    };
                    match (integer(line.get("line")), integer(line.get("quantity"))) {
                        (Some(index), Some(quantity)) if index >= 0 && quantity > 0 => {
                            *by_line.entry(index.to_string()).or_default() += quantity;
                        }
                        _ => return Ok(Err(BillRule::RefundOfNoBill)),
                    }
                }
            }
            for (line, quantity) in by_line {
                let tally = in_shop(name, &[BILLS_COLLECTION, bill, REFUNDED_COLLECTION, &line]);
                let was = others.before(&tally)?.map_or(Some(0), |fields| {
                    integer(fields.get(REFUNDED_QUANTITY_FIELD))
                });
                let now = others
                    .after(&tally)?
                    .and_then(|fields| integer(fields.get(REFUNDED_QUANTITY_FIELD)));
                match (was, now) {
                    (Some(was), Some(now)) if now - was >= quantity => {}
                    _ => return Ok(Err(BillRule::RefundOfNoBill)),
                }
            }
            Ok(Ok(()))
        }
        [collection, bill, tallies, key]
            if collection == BILLS_COLLECTION && tallies == REFUNDED_COLLECTION =>
        {
            let Some(after) = after else {
                return Ok(Err(BillRule::TallyDeleted));
            };
            let bill_name = in_shop(name, &[BILLS_COLLECTION, bill]);
            let bill_before = others.before(&bill_name)?;
            if !is_final(bill_before.as_ref()) || !is_final(others.after(&bill_name)?.as_ref()) {
                return Ok(Err(BillRule::TallyWithoutRefund));
            }
            if key == ALL_REFUNDS_TALLY {
                let moved = match (tally_count(before), integer(after.get(REFUND_COUNT_FIELD))) {
                    (Some(was), Some(now)) => now > was,
                    _ => false,
                };
                let Some(Value::String(refund)) = after.get(LAST_REFUND_FIELD) else {
                    return Ok(Err(BillRule::TallyWithoutRefund));
                };
                if !moved || refund.is_empty() || refund.contains('/') {
                    return Ok(Err(BillRule::TallyWithoutRefund));
                }
                let refund = in_shop(name, &[REFUNDS_COLLECTION, refund]);
                if others.before(&refund)?.is_some() || others.after(&refund)?.is_none() {
                    return Ok(Err(BillRule::TallyWithoutRefund));
                }
                return Ok(Ok(()));
            }
            let Some(line) = line_of_tally_key(key) else {
                return Ok(Err(BillRule::TallyWithoutRefund));
            };
            let was = before.map_or(Some(0), |fields| {
                integer(fields.get(REFUNDED_QUANTITY_FIELD))
            });
            let now = integer(after.get(REFUNDED_QUANTITY_FIELD));
            let (Some(was), Some(now)) = (was, now) else {
                return Ok(Err(BillRule::TallyWithoutRefund));
            };
            let all = in_shop(
                name,
                &[
                    BILLS_COLLECTION,
                    bill,
                    REFUNDED_COLLECTION,
                    ALL_REFUNDS_TALLY,
                ],
            );
            let all_before = others.before(&all)?;
            let all_moved = match (tally_count(all_before.as_ref()), others.after(&all)?) {
                (Some(was), Some(now)) => {
                    integer(now.get(REFUND_COUNT_FIELD)).is_some_and(|now| now > was)
                }
                _ => false,
            };
            if now <= was || !all_moved {
                return Ok(Err(BillRule::TallyWithoutRefund));
            }
            let sold = match bill_before.as_ref().and_then(|bill| bill.get("lines")) {
                Some(Value::Array(lines)) => match lines.get(line) {
                    Some(Value::Map(line)) => integer(line.get("quantity")),
                    _ => None,
                },
                _ => None,
            };
            match sold {
                Some(sold) if now <= sold => Ok(Ok(())),
                _ => Ok(Err(BillRule::MoreThanSold)),
            }
        }
        // Nothing lives below a tally.
        [collection, _, tallies, _, _, ..]
            if collection == BILLS_COLLECTION && tallies == REFUNDED_COLLECTION =>
        {
            Ok(Err(BillRule::TallyWithoutRefund))
        }
        _ => Ok(Ok(())),
    }
}

/// One document of a commit, judged on the role's part of the shop's work: `before` is the
/// document before the whole commit, `after` what the commit leaves (`None`: missing or
/// deleted); `others` reads any other document before and after the commit. The outer
/// `Result` is the storage's; the inner one the policy's answer. Documents outside the
/// principal's shop, the shop document, users and nested documents are left to `check_write`.
pub fn check_outcome<E>(
    principal: &Principal,
    name: &DocumentName,
    before: Option<&Fields>,
    after: Option<&Fields>,
    others: &dyn CommitDocuments<E>,
) -> Result<Result<(), Denial>, E> {
    if place_in_shop(principal, name).is_some() {
        if let Err(rule) = check_reversal(name, &name.segments[2..], before, after, others)? {
            return Ok(Err(Denial::BillRule {
                rule,
                document: name.relative_path(),
            }));
        }
    }
    let role = principal.role;
    if role == Role::Cashier && is_refund_tally(name) {
        return Ok(Err(Denial::NotTheRolesWork {
            role,
            what: "refund",
            document: name.relative_path(),
        }));
    }
    let Some(Place::InCollection {
        collection,
        nested: false,
    }) = place_in_shop(principal, name)
    else {
        return Ok(Ok(()));
    };
    let refuse = |what: &'static str| {
        Err(Denial::NotTheRolesWork {
            role,
            what,
            document: name.relative_path(),
        })
    };
    if collection == AUDIT_COLLECTION {
        let Some(after) = after else {
            return Ok(refuse("delete an audit entry"));
        };
        if let Some(before) = before {
            if !only_changed(before, after, &[]) {
                return Ok(refuse("change an audit entry"));
            }
        }
        match (role, after.get(APPROVED_BY_FIELD)) {
            (_, None | Some(Value::Null)) => {}
            (Role::Cashier, Some(_)) => return Ok(refuse("approve")),
            (_, Some(Value::String(approver))) if *approver == principal.user_id => {}
            (_, Some(_)) => return Ok(refuse("record another person's approval")),
        }
        return Ok(Ok(()));
    }
    if role == Role::Owner {
        return Ok(Ok(()));
    }
    if collection == SETTINGS_COLLECTION {
        return Ok(Err(Denial::OwnerOnly {
            document: name.relative_path(),
        }));
    }
    if role == Role::Manager {
        return Ok(Ok(()));
    }
    // A cashier. Deleting is `check_write`'s business.
    let Some(after) = after else {
        return Ok(Ok(()));
    };
    let outcome = match collection {
        PRODUCTS_COLLECTION => match before {
            None => refuse("add a product"),
            Some(before) if !only_changed(before, after, &[STOCK_FIELD, LAST_BILL_FIELD]) => {
                refuse("change a product other than its stock")
            }
            Some(before) if !at_least(after.get(STOCK_FIELD), before.get(STOCK_FIELD)) => {
                if sold_in_this_commit(name, after, others)? {
                    Ok(())
                } else {
                    refuse("take stock down outside a sale")
                }
            }
            Some(_) => Ok(()),
        },
        STOCK_MOVES_COLLECTION => {
            let kind = after.get("kind");
            let positive =
                matches!(number(after.get("quantity")), Some(quantity) if quantity > 0.0);
            if before.is_some_and(|before| !only_changed(before, after, &[])) {
                refuse("change a stock move")
            } else if is_text(kind, "sale") || (is_text(kind, "receive") && positive) {
                Ok(())
            } else {
                refuse("adjust stock")
            }
        }
        BILLS_COLLECTION => match before {
            None if is_text(after.get("status"), "void") => refuse("void a bill"),
            None => Ok(()),
            Some(before) if only_changed(before, after, &[]) => Ok(()),
            Some(_) => refuse("change a bill"),
        },
        PAYMENTS_COLLECTION => match before {
            None if number(after.get("amount")).is_some_and(|amount| amount < 0.0) => {
                refuse("refund")
            }
            None => Ok(()),
            Some(before)
                if only_changed(before, after, &["confirmed"])
                    && (!field_changed(before, after, "confirmed")
                        || matches!(after.get("confirmed"), Some(Value::Boolean(true)))) =>
            {
                Ok(())
            }
            Some(_) => refuse("change a payment"),
        },
        REFUNDS_COLLECTION => refuse("refund"),
        CUSTOMERS_COLLECTION => {
            let limit_changed = match before {
                None => !matches!(after.get(CREDIT_LIMIT_FIELD), None | Some(Value::Null)),
                Some(before) => field_changed(before, after, CREDIT_LIMIT_FIELD),
            };
            let balance_raised = !at_least(
                before.and_then(|before| before.get(CREDIT_BALANCE_FIELD)),
                after.get(CREDIT_BALANCE_FIELD),
            );
            let over_limit = match (
                number(after.get(CREDIT_BALANCE_FIELD)),
                number(after.get(CREDIT_LIMIT_FIELD)),
            ) {
                (Some(balance), Some(limit)) => balance > limit,
                _ => false,
            };
            if limit_changed {
                refuse("set a credit limit")
            } else if balance_raised && over_limit {
                refuse("sell on credit over the customer's limit")
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    };
    Ok(outcome)
}

/// Whether `name` is a refund tally under a bill (`shops/{shop}/bills/{bill}/refunded/{key}`).
fn is_refund_tally(name: &DocumentName) -> bool {
    matches!(name.segments.as_slice(),
        [shops, _, bills, _, refunded, _]
            if shops == "shops" && bills == BILLS_COLLECTION && refunded == REFUNDED_COLLECTION)
}

/// Whether a cashier's stock decrease on `product` is a sale: its `lastBill` names a bill of
/// the same shop that did not exist before this commit and that the commit leaves `final`.
fn sold_in_this_commit<E>(
    product: &DocumentName,
    after: &Fields,
    others: &dyn CommitDocuments<E>,
) -> Result<bool, E> {
    let Some(Value::String(bill_id)) = after.get(LAST_BILL_FIELD) else {
        return Ok(false);
    };
    if bill_id.is_empty() || bill_id.contains('/') {
        return Ok(false);
    }
    let mut bill = product.clone();
    let Some(shop) = product.segments.get(1).cloned() else {
        return Ok(false);
    };
    bill.segments = vec![
        "shops".to_owned(),
        shop,
        BILLS_COLLECTION.to_owned(),
        bill_id.clone(),
    ];
    if others.before(&bill)?.is_some() {
        return Ok(false);
    }
    Ok(others
        .after(&bill)?
        .is_some_and(|fields| is_text(fields.get("status"), "final")))
}

/// Whether only `allowed` fields and the sync metadata differ between `before` and `after`
/// (the rules' `diff(...).affectedKeys().hasOnly([...])`).
fn only_changed(before: &Fields, after: &Fields, allowed: &[&str]) -> bool {
    before
        .keys()
        .chain(after.keys())
        .filter(|field| {
            !allowed.contains(&field.as_str()) && !SYNC_METADATA_FIELDS.contains(&field.as_str())
        })
        .all(|field| !field_changed(before, after, field))
}

/// A number's value, as the rules compare numbers (integers and doubles alike).
fn number(value: Option<&Value>) -> Option<f64> {
    match value {
        Some(Value::Integer(integer)) => Some(*integer as f64),
        Some(Value::Double(double)) => Some(*double),
        _ => None,
    }
}

/// `new >= old`, a missing field counting as 0 (the rules' `get(field, 0)`); anything that is
/// not a number is not "at least" anything, as such a comparison fails in the rules.
fn at_least(new: Option<&Value>, old: Option<&Value>) -> bool {
    let zero = Value::Integer(0);
    match (
        number(Some(new.unwrap_or(&zero))),
        number(Some(old.unwrap_or(&zero))),
    ) {
        (Some(new), Some(old)) => new >= old,
        _ => false,
    }
}

fn is_text(value: Option<&Value>, text: &str) -> bool {
    matches!(value, Some(Value::String(value)) if value == text)
}

/// `deleted == true`, as the rules' `data.get('deleted', false) == true`.
fn is_soft_deleted(fields: &BTreeMap<String, Value>) -> bool {
    matches!(fields.get(SOFT_DELETE_FIELD), Some(Value::Boolean(true)))
}

/// Whether `field` is among the rules' `diff(...).affectedKeys()`: added, removed, or set to a
/// value that is not equal (numbers compare by value, so 10 and 10.0 are the same price, as the
/// emulator agrees).
fn field_changed(
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
    field: &str,
) -> bool {
    match (before.get(field), after.get(field)) {
        (None, None) => false,
        (Some(old), Some(new)) => old.firestore_cmp(new) != std::cmp::Ordering::Equal,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(shop: &str, role: Role) -> Principal {
        Principal {
            user_id: "u1".into(),
            email: "u1@example.com".into(),
            shop: shop.into(),
            role,
        }
    }

    fn name(path: &str) -> DocumentName {
        DocumentName::new("p", "(default)", path).unwrap()
    }

    fn fields(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.clone()))
            .collect()
    }

    fn check(role: Role, path: &str, effect: WriteEffect<'_>, allowed: bool) {
        let outcome = check_write(&principal("s1", role), &name(path), effect);
        assert_eq!(
            outcome.is_ok(),
            allowed,
            "{role} {path} {effect:?}: {outcome:?}"
        );
    }

    #[test]
    fn reads_and_queries_stay_inside_the_shop() {
        let cashier = principal("s1", Role::Cashier);
        assert!(check_read(&cashier, &name("shops/s1")).is_ok());
        assert!(check_read(&cashier, &name("shops/s1/products/p")).is_ok());
        assert!(check_read(&cashier, &name("shops/s1/products/p/history/h")).is_ok());
        assert!(check_read(&cashier, &name("shops/s2/products/p")).is_err());
        assert!(check_read(&cashier, &name("shops/s10/products/p")).is_err());
        assert!(check_read(&cashier, &name("products/p")).is_err());
        let root = DocumentName::parse("projects/p/databases/(default)/documents").unwrap();
        assert_eq!(
            check_query(&cashier, &root, false),
            Err(Denial::QueryOutsideShop)
        );
        assert!(check_query(&cashier, &name("shops/s1"), false).is_ok());
        assert!(check_query(&cashier, &name("shops/s1/products/p"), false).is_ok());
        assert!(check_query(&cashier, &name("shops/s2"), false).is_err());
        assert!(check_list(&cashier, &name("shops/s1/products")).is_ok());
        assert!(check_list(&cashier, &name("shops/s1/products/p/history")).is_ok());
        assert_eq!(
            check_list(&cashier, &name("shops")),
            Err(Denial::QueryOutsideShop)
        );
        assert!(check_list(&cashier, &name("shops/s2/products")).is_err());
        assert!(check_list(&cashier, &name("catalog")).is_err());
        assert_eq!(
            check_query(&cashier, &name("shops/s1"), true),
            Err(Denial::CollectionGroupQuery)
        );
    }

    #[test]
    fn roles_and_writes() {
        let priced = fields(&[
            ("price", Value::Integer(10)),
            ("name", Value::String("a".into())),
        ]);
        let repriced = fields(&[
            ("price", Value::Integer(11)),
            ("name", Value::String("a".into())),
        ]);
        let same_price_as_double = fields(&[
            ("price", Value::Double(10.0)),
            ("name", Value::String("a".into())),
        ]);
        let renamed = fields(&[
            ("price", Value::Integer(10)),
            ("name", Value::String("b".into())),
        ]);
        let deleted = fields(&[
            ("price", Value::Integer(10)),
            ("deleted", Value::Boolean(true)),
        ]);
        let put = |before, after| WriteEffect::Put { before, after };

        for role in Role::ALL {
            let not_cashier = role != Role::Cashier;
            let owner = role == Role::Owner;
            let cases = [
                ("shops/s1/products/p", put(None, &priced), true),
                ("shops/s1/products/p", put(Some(&priced), &renamed), true),
                (
                    "shops/s1/products/p",
                    put(Some(&priced), &same_price_as_double),
                    true,
                ),
                (
                    "shops/s1/products/p",
                    put(Some(&priced), &repriced),
                    not_cashier,
                ),
                (
                    "shops/s1/products/p",
                    put(Some(&priced), &deleted),
                    not_cashier,
                ),
                ("shops/s1/products/p", put(None, &deleted), not_cashier),
                // Editing a document that was already soft-deleted is not deleting it.
                ("shops/s1/bills/b", put(Some(&deleted), &deleted), true),
                ("shops/s1/products/p", WriteEffect::Delete, not_cashier),
                ("shops/s1/bills/b", WriteEffect::Delete, not_cashier),
                ("shops/s1/products/p", WriteEffect::Verify, true),
                // The price rule is about products only, not a bill line's price.
                ("shops/s1/bills/b", put(Some(&priced), &repriced), true),
                (
                    "shops/s1/products/p/history/h",
                    put(Some(&priced), &repriced),
                    true,
                ),
                ("shops/s1", put(Some(&priced), &renamed), owner),
                ("shops/s1/users/u2", put(None, &priced), owner),
                ("shops/s1/users/u2", WriteEffect::Delete, owner),
                ("shops/s1/users/u2/devices/d", put(None, &priced), owner),
                ("shops/s2/products/p", put(None, &priced), false),
                ("shops/s2/products/p", WriteEffect::Verify, false),
                ("shops/s2", put(None, &priced), false),
                ("products/p", put(None, &priced), false),
            ];
            for (path, effect, allowed) in cases {
                check(role, path, effect, allowed);
            }
        }
    }

    /// Other documents for `check_outcome`: bill `new` is created by the commit as `final`,
    /// bill `old` existed before it.
    struct Bills;

    impl CommitDocuments<()> for Bills {
        fn before(&self, name: &DocumentName) -> Result<Option<Fields>, ()> {
            Ok(name
                .relative_path()
                .ends_with("bills/old")
                .then(|| fields(&[("status", Value::String("final".into()))])))
        }

        fn after(&self, name: &DocumentName) -> Result<Option<Fields>, ()> {
            let path = name.relative_path();
            Ok((path.ends_with("bills/old") || path.ends_with("bills/new"))
                .then(|| fields(&[("status", Value::String("final".into()))])))
        }
    }

    fn check_role(role: Role, path: &str, before: Option<&Fields>, after: Option<&Fields>) -> bool {
        let mut principal = principal("s1", role);
        principal.user_id = "me".into();
        check_outcome(&principal, &name(path), before, after, &Bills)
            .unwrap()
            .is_ok()
    }

    #[test]
    fn each_role_does_its_part_of_the_work() {
        let int = Value::Integer;
        let text = |value: &str| Value::String(value.into());
        let product = fields(&[
            ("name", text("Chai")),
            ("price", int(10)),
            ("stock", int(5)),
        ]);
        let with = |base: &Fields, changes: &[(&str, Value)]| {
            let mut changed = base.clone();
            for (field, value) in changes {
                changed.insert(field.to_string(), value.clone());
            }
            changed
        };
        let sold = with(&product, &[("stock", int(4)), ("lastBill", text("new"))]);
        let sold_on_old_bill = with(&product, &[("stock", int(4)), ("lastBill", text("old"))]);
        let bare_decrease = with(&product, &[("stock", int(4)), ("updatedAt", int(1))]);
        let received = with(&product, &[("stock", int(9))]);
        let renamed = with(&product, &[("name", text("Masala chai"))]);
        let customer = fields(&[("creditLimit", int(1000)), ("creditBalance", int(500))]);
        let within = with(&customer, &[("creditBalance", int(900))]);
        let over = with(&customer, &[("creditBalance", int(1100))]);
        let paid_back = with(&over, &[("creditBalance", int(1050))]);
        let new_limit = with(&customer, &[("creditLimit", int(5000))]);
        let approved_by_me = fields(&[("action", text("bill.void")), ("approvedBy", text("me"))]);
        let approved_by_other = fields(&[("action", text("bill.void")), ("approvedBy", text("x"))]);
        let entry = fields(&[
            ("action", text("bill.finalize")),
            ("approvedBy", Value::Null),
        ]);
        let rewritten = with(&entry, &[("action", text("nothing"))]);
        let receive = fields(&[("kind", text("receive")), ("quantity", int(5))]);
        let receive_nothing = fields(&[("kind", text("receive")), ("quantity", int(0))]);
        let adjust = fields(&[("kind", text("adjust")), ("quantity", int(-2))]);
        let final_bill = fields(&[("status", text("final"))]);
        let void_bill = fields(&[("status", text("void"))]);
        let payment = fields(&[("amount", int(500)), ("confirmed", Value::Boolean(false))]);
        let refund = fields(&[("amount", int(-500))]);
        let confirmed = with(&payment, &[("confirmed", Value::Boolean(true))]);
        let changed_amount = with(&payment, &[("amount", int(1))]);
        let settings = fields(&[("shopName", text("Kirana"))]);
        let refund_record = fields(&[("billId", text("b")), ("moneyBack", int(500))]);
        let returned = fields(&[("kind", text("return")), ("quantity", int(1))]);

        for role in Role::ALL {
            let cashier = role == Role::Cashier;
            let owner = role == Role::Owner;
            let cases: [(&str, Option<&Fields>, Option<&Fields>, bool); 29] = [
                // A refund record alone (no bill, no tallies moved) is nobody's: see
                // `reversals_keep_to_the_bill_as_the_server_has_it`.
                ("shops/s1/refunds/r", None, Some(&refund_record), false),
                ("shops/s1/stockMoves/m", None, Some(&returned), !cashier),
                ("shops/s1/products/p", Some(&product), Some(&sold), true),
                ("shops/s1/products/p", Some(&product), Some(&received), true),
                (
                    "shops/s1/products/p",
                    Some(&product),
                    Some(&bare_decrease),
                    !cashier,
                ),
                (
                    "shops/s1/products/p",
                    Some(&product),
                    Some(&sold_on_old_bill),
                    !cashier,
                ),
                (
                    "shops/s1/products/p",
                    Some(&product),
                    Some(&renamed),
                    !cashier,
                ),
                ("shops/s1/products/p", None, Some(&product), !cashier),
                ("shops/s1/stockMoves/m", None, Some(&receive), true),
                (
                    "shops/s1/stockMoves/m",
                    None,
                    Some(&receive_nothing),
                    !cashier,
                ),
                ("shops/s1/stockMoves/m", None, Some(&adjust), !cashier),
                (
                    "shops/s1/stockMoves/m",
                    Some(&receive),
                    Some(&adjust),
                    !cashier,
                ),
                ("shops/s1/bills/b", None, Some(&final_bill), true),
                ("shops/s1/bills/b", None, Some(&void_bill), !cashier),
                (
                    "shops/s1/bills/b",
                    Some(&final_bill),
                    Some(&void_bill),
                    !cashier,
                ),
                ("shops/s1/payments/y", None, Some(&payment), true),
                ("shops/s1/payments/y", None, Some(&refund), !cashier),
                (
                    "shops/s1/payments/y",
                    Some(&payment),
                    Some(&confirmed),
                    true,
                ),
                (
                    "shops/s1/payments/y",
                    Some(&payment),
                    Some(&changed_amount),
                    !cashier,
                ),
                ("shops/s1/customers/c", Some(&customer), Some(&within), true),
                (
                    "shops/s1/customers/c",
                    Some(&customer),
                    Some(&over),
                    !cashier,
                ),
                // Paying back while still over the limit raises nothing.
                ("shops/s1/customers/c", Some(&over), Some(&paid_back), true),
                (
                    "shops/s1/customers/c",
                    Some(&customer),
                    Some(&new_limit),
                    !cashier,
                ),
                ("shops/s1/settings/profile", None, Some(&settings), owner),
                ("shops/s1/audit/a", None, Some(&entry), true),
                ("shops/s1/audit/a", None, Some(&approved_by_me), !cashier),
                ("shops/s1/audit/a", None, Some(&approved_by_other), false),
                ("shops/s1/audit/a", Some(&entry), Some(&rewritten), false),
                ("shops/s1/audit/a", Some(&entry), None, false),
            ];
            for (path, before, after, allowed) in cases {
                assert_eq!(
                    check_role(role, path, before, after),
                    allowed,
                    "{role} {path} {before:?} -> {after:?}"
                );
            }
            // Nested documents and other shops are `check_write`'s business.
            assert!(check_role(
                role,
                "shops/s1/settings/p/history/h",
                None,
                Some(&settings)
            ));
        }
    }

    /// Documents before and after a commit, by path under `shops/s1/`.
    #[derive(Default)]
    struct Commit {
        before: BTreeMap<String, Fields>,
        after: BTreeMap<String, Fields>,
    }

    impl CommitDocuments<()> for Commit {
        fn before(&self, name: &DocumentName) -> Result<Option<Fields>, ()> {
            Ok(self.before.get(&name.relative_path()).cloned())
        }

        fn after(&self, name: &DocumentName) -> Result<Option<Fields>, ()> {
            Ok(self.after.get(&name.relative_path()).cloned())
        }
    }

    fn bill_fields(status: &str) -> Fields {
        fields(&[
            ("status", Value::String(status.into())),
            (
                "lines",
                Value::Array(vec![Value::Map(fields(&[("quantity", Value::Integer(2))]))]),
            ),
        ])
    }

    fn refund_count(count: i64) -> Fields {
        fields(&[
            ("count", Value::Integer(count)),
            ("lastRefund", Value::String("r2".into())),
        ])
    }

    fn line_tally(quantity: i64) -> Fields {
        fields(&[("quantity", Value::Integer(quantity))])
    }

    const BILL: &str = "shops/s1/bills/b";
    const ALL_TALLY: &str = "shops/s1/bills/b/refunded/all";
    const LINE_TALLY: &str = "shops/s1/bills/b/refunded/0";
    const REFUND: &str = "shops/s1/refunds/r2";

    /// Bill `b` (2 pieces on line 0) with 1 refunded before; this commit refunds 1 more as
    /// `r2`, moving the tallies to `count` 2 and `quantity` 2.
    fn refunded_once() -> Commit {
        let refund = fields(&[
            ("billId", Value::String("b".into())),
            (
                "lines",
                Value::Array(vec![Value::Map(fields(&[
                    ("line", Value::Integer(0)),
                    ("quantity", Value::Integer(1)),
                ]))]),
            ),
        ]);
        Commit {
            before: BTreeMap::from([
                (BILL.into(), bill_fields("final")),
                (ALL_TALLY.into(), refund_count(1)),
                (LINE_TALLY.into(), line_tally(1)),
            ]),
            after: BTreeMap::from([
                (BILL.into(), bill_fields("final")),
                (ALL_TALLY.into(), refund_count(2)),
                (LINE_TALLY.into(), line_tally(2)),
                (REFUND.into(), refund),
            ]),
        }
    }

    /// The bill rule a manager's write of `path` in `commit` breaks, if any.
    fn broken_bill_rule(commit: &Commit, path: &str) -> Option<BillRule> {
        let outcome = check_outcome(
            &principal("s1", Role::Manager),
            &name(path),
            commit.before.get(path),
            commit.after.get(path),
            commit,
        )
        .unwrap();
        match outcome {
            Ok(()) => None,
            Err(Denial::BillRule { rule, .. }) => Some(rule),
            Err(other) => panic!("{other}"),
        }
    }

    fn bill_void_before_and_after(commit: &mut Commit) {
        for documents in [&mut commit.before, &mut commit.after] {
            documents.insert(BILL.into(), bill_fields("void"));
        }
    }

    #[test]
    fn reversals_keep_to_the_bill_as_the_server_has_it() {
        type Change = fn(&mut Commit);
        let cases: [(&str, Change, &str, Option<BillRule>); 10] = [
            // The rest of the line: allowed, every document of it.
            ("the rest of the line", |_| {}, REFUND, None),
            ("the rest of the line", |_| {}, ALL_TALLY, None),
            ("the rest of the line", |_| {}, LINE_TALLY, None),
            (
                "past what was sold",
                |commit| {
                    commit.after.insert(LINE_TALLY.into(), line_tally(3));
                },
                LINE_TALLY,
                Some(BillRule::MoreThanSold),
            ),
            (
                "the refund record without its line's tally moved",
                |commit| {
                    commit.after.insert(LINE_TALLY.into(), line_tally(1));
                },
                REFUND,
                Some(BillRule::RefundOfNoBill),
            ),
            (
                "a line's tally moved without the count of refunds",
                |commit| {
                    commit.after.insert(ALL_TALLY.into(), refund_count(1));
                },
                LINE_TALLY,
                Some(BillRule::TallyWithoutRefund),
            ),
            (
                "refunding a void bill",
                bill_void_before_and_after,
                REFUND,
                Some(BillRule::RefundOfNoBill),
            ),
            (
                "writing a void bill at all",
                bill_void_before_and_after,
                BILL,
                Some(BillRule::BillIsVoid),
            ),
            (
                "voiding a bill that has a refund",
                |commit| commit.after = BTreeMap::from([(BILL.into(), bill_fields("void"))]),
                BILL,
                Some(BillRule::VoidAfterRefund),
            ),
            (
                "deleting a tally",
                |commit| {
                    commit.after.remove(LINE_TALLY);
                },
                LINE_TALLY,
                Some(BillRule::TallyDeleted),
            ),
        ];
        for (what, change, path, broken) in cases {
            let mut commit = refunded_once();
            change(&mut commit);
            assert_eq!(broken_bill_rule(&commit, path), broken, "{what}: {path}");
        }
        // Voiding a bill that has no refund is fine.
        let mut voided = refunded_once();
        voided.before.retain(|path, _| path == BILL);
        voided.after = BTreeMap::from([(BILL.into(), bill_fields("void"))]);
        assert_eq!(broken_bill_rule(&voided, BILL), None);
        // Tallies are no cashier's.
        let commit = refunded_once();
        assert!(matches!(
            check_outcome(
                &principal("s1", Role::Cashier),
                &name(LINE_TALLY),
                commit.before.get(LINE_TALLY),
                commit.after.get(LINE_TALLY),
                &commit
            )
            .unwrap(),
            Err(Denial::NotTheRolesWork { .. })
        ));
        assert_eq!(line_of_tally_key("07"), None);
        assert_eq!(line_of_tally_key("12"), Some(12));
    }

    #[test]
    fn price_changes_include_adding_and_removing_the_field() {
        let with_price = fields(&[("price", Value::Integer(10))]);
        let without = fields(&[]);
        assert!(field_changed(&with_price, &without, "price"));
        assert!(field_changed(&without, &with_price, "price"));
        assert!(!field_changed(&without, &without, "price"));
        let nan = fields(&[("price", Value::Double(f64::NAN))]);
        assert!(!field_changed(&nan, &nan.clone(), "price"));
    }
}
