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
            check(role, "shops/s1/products/p", put(None, &priced), true);
            check(
                role,
                "shops/s1/products/p",
                put(Some(&priced), &renamed),
                true,
            );
            check(
                role,
                "shops/s1/products/p",
                put(Some(&priced), &same_price_as_double),
                true,
            );
            check(
                role,
                "shops/s1/products/p",
                put(Some(&priced), &repriced),
                not_cashier,
            );
            check(
                role,
                "shops/s1/products/p",
                put(Some(&priced), &deleted),
                not_cashier,
            );
            check(
                role,
                "shops/s1/products/p",
                put(None, &deleted),
                not_cashier,
            );
            // Editing a document that was already soft-deleted is not deleting it.
            check(
                role,
                "shops/s1/bills/b",
                put(Some(&deleted), &deleted),
                true,
            );
            check(
                role,
                "shops/s1/products/p",
                WriteEffect::Delete,
                not_cashier,
            );
            check(role, "shops/s1/bills/b", WriteEffect::Delete, not_cashier);
            check(role, "shops/s1/products/p", WriteEffect::Verify, true);
            // The price rule is about products only, not a bill line's price.
            check(
                role,
                "shops/s1/bills/b",
                put(Some(&priced), &repriced),
                true,
            );
            check(
                role,
                "shops/s1/products/p/history/h",
                put(Some(&priced), &repriced),
                true,
            );
            let owner = role == Role::Owner;
            check(role, "shops/s1", put(Some(&priced), &renamed), owner);
            check(role, "shops/s1/users/u2", put(None, &priced), owner);
            check(role, "shops/s1/users/u2", WriteEffect::Delete, owner);
            check(
                role,
                "shops/s1/users/u2/devices/d",
                put(None, &priced),
                owner,
            );
            check(role, "shops/s2/products/p", put(None, &priced), false);
            check(role, "shops/s2/products/p", WriteEffect::Verify, false);
            check(role, "shops/s2", put(None, &priced), false);
            check(role, "products/p", put(None, &priced), false);
        }
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
