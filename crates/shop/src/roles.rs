//! Who may do what in a shop: the three roles and the actions that need more than a cashier.
//!
//! A cashier sells, parks bills, takes payments and receives stock. A manager may also add and change
//! products and prices, adjust stock, void and refund bills and override a customer's credit limit. The owner
//! may also change the shop's settings and its people. The app asks for a manager's PIN when a
//! cashier tries a manager's action; the server (and `firestore.rules`) refuse a cashier's token
//! writing what only a manager may write, whatever the app did.

use serde::{Deserialize, Serialize};

/// A person's role in their shop, as the ID token's `role` claim says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Cashier,
    Manager,
    Owner,
}

/// An action that not every role may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuardedAction {
    /// Add a product, or change its price or any other field (not its stock).
    ChangeProducts,
    AdjustStock,
    VoidBill,
    Refund,
    OverrideCreditLimit,
    ChangeShopSettings,
    ManagePeople,
}

impl GuardedAction {
    /// Every guarded action.
    pub const ALL: [GuardedAction; 7] = [
        GuardedAction::ChangeProducts,
        GuardedAction::AdjustStock,
        GuardedAction::VoidBill,
        GuardedAction::Refund,
        GuardedAction::OverrideCreditLimit,
        GuardedAction::ChangeShopSettings,
        GuardedAction::ManagePeople,
    ];
}

impl Role {
    /// Every role, the least first.
    pub const ALL: [Role; 3] = [Role::Cashier, Role::Manager, Role::Owner];

    /// The role of a `role` claim (`None` for anything else).
    pub fn from_claim(claim: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_claim() == claim)
    }

    /// The claim's spelling.
    pub fn as_claim(self) -> &'static str {
        match self {
            Role::Cashier => "cashier",
            Role::Manager => "manager",
            Role::Owner => "owner",
        }
    }

    /// The least role that may take `action`.
    pub fn needed_for(action: GuardedAction) -> Role {
        match action {
            GuardedAction::ChangeProducts
            | GuardedAction::AdjustStock
            | GuardedAction::VoidBill
            | GuardedAction::Refund
            | GuardedAction::OverrideCreditLimit => Role::Manager,
            GuardedAction::ChangeShopSettings | GuardedAction::ManagePeople => Role::Owner,
        }
    }

    /// Whether this role may take `action` itself (otherwise someone who may approves it).
    pub fn may(self, action: GuardedAction) -> bool {
        self >= Role::needed_for(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use GuardedAction::*;

    /// Issue 10's table: whether a cashier, a manager and the owner may take each action.
    const WHO_MAY: [(GuardedAction, [bool; 3]); 7] = [
        (ChangeProducts, [false, true, true]),
        (AdjustStock, [false, true, true]),
        (VoidBill, [false, true, true]),
        (Refund, [false, true, true]),
        (OverrideCreditLimit, [false, true, true]),
        (ChangeShopSettings, [false, false, true]),
        (ManagePeople, [false, false, true]),
    ];

    #[test]
    fn each_role_may_what_the_issue_lists() {
        for (action, allowed) in WHO_MAY {
            for (role, may) in Role::ALL.into_iter().zip(allowed) {
                assert_eq!(role.may(action), may, "{role:?} {action:?}");
            }
        }
        let listed: Vec<GuardedAction> = WHO_MAY.iter().map(|(action, _)| *action).collect();
        assert_eq!(listed, GuardedAction::ALL, "the table covers every action");
    }

    #[test]
    fn claims_round_trip_and_unknown_roles_are_none() {
        for role in Role::ALL {
            assert_eq!(Role::from_claim(role.as_claim()), Some(role));
        }
        assert_eq!(Role::from_claim("admin"), None);
    }
}
