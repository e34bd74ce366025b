//! The cart at the counter: lines being rung up before the sale is completed, as pure data
//! (serde, so a parked bill survives a reload in IndexedDB).
//!
//! Rules: a repeat scan or pick of the same product adds to its line's quantity (one piece,
//! or the quantity given), unless that line has a discount or came from a label with an
//! embedded price or weight (each label is its own package, so it gets its own line). A
//! weight label sets the line's quantity; a price label sets its amount, the quantity being
//! that amount at the product's price (for a product sold by the piece: one piece at the
//! label's price). Quantities typed by the cashier are read in the product's unit
//! ([`parse_quantity`]: "2", "1.250" kg, "750" g).

use serde::{Deserialize, Serialize};

use crate::barcode::ScannedCode;
use crate::bill::{bill_totals, BillError, BillLine, BillTotals, LineDiscount};
use crate::money::divide_rounding_half_away;
use crate::product::{Product, QuantityError, QuantityUnit};
use crate::settings::{ShopSettings, TaxMode};

/// A cart line and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CartLine {
    pub line: BillLine,
    /// The label code the line came from, for price- and weight-embedded labels.
    #[serde(default)]
    pub label_code: Option<String>,
}

/// The bill being rung up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cart {
    pub lines: Vec<CartLine>,
    #[serde(default)]
    pub customer_id: Option<String>,
}

/// Why a cart change cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    #[error("there is no line {0}")]
    NoSuchLine(usize),
    #[error("the quantity must be above zero")]
    NonPositiveQuantity,
    #[error(transparent)]
    Quantity(#[from] QuantityError),
    #[error("{name} is sold by the piece: a weight label cannot be used for it")]
    WeightForPieces { name: String },
    #[error("{name} has no price, so a price label cannot give its quantity")]
    NoPriceForLabel { name: String },
    #[error("the label's price has more decimals than the currency")]
    LabelPrice,
    #[error("the discount is not valid: {0}")]
    Discount(BillError),
}

/// Reads a quantity typed in `unit`: whole pieces, or a decimal of kg/g/l/ml with at most
/// three decimals, as milli-units.
pub fn parse_quantity(text: &str, unit: QuantityUnit) -> Result<i64, CartError> {
    let quantity = unit.read_quantity(text)?;
    if quantity <= 0 {
        return Err(CartError::NonPositiveQuantity);
    }
    Ok(quantity)
}

impl Cart {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The bill lines, for totals and for completing the sale.
    pub fn bill_lines(&self) -> Vec<BillLine> {
        self.lines.iter().map(|line| line.line.clone()).collect()
    }

    pub fn totals(&self, tax_mode: TaxMode) -> Result<BillTotals, BillError> {
        bill_totals(&self.bill_lines(), tax_mode)
    }

    /// Adds `quantity` of `product` (one scan or pick is one piece, or 1000 milli-units for
    /// loose goods unless a quantity is typed). Returns the index of the line it went to.
    pub fn add_product(&mut self, product: &Product, quantity: i64) -> Result<usize, CartError> {
        if quantity <= 0 {
            return Err(CartError::NonPositiveQuantity);
        }
        let mergeable = self.lines.iter().position(|cart_line| {
            cart_line.label_code.is_none()
                && cart_line.line.product_id == product.id
                && cart_line.line.unit_price_minor == product.price_minor
                && cart_line.line.discount == LineDiscount::None
        });
        match mergeable {
            Some(index) => {
                let line = &mut self.lines[index].line;
                line.quantity = line.quantity.saturating_add(quantity);
                Ok(index)
            }
            None => {
                self.lines.push(CartLine {
                    line: BillLine::of_product(product, quantity),
                    label_code: None,
                });
                Ok(self.lines.len() - 1)
            }
        }
    }

    /// Adds what a scan found: the product, read with the code the scanner gave.
    pub fn add_scanned(
        &mut self,
        product: &Product,
        scanned: &ScannedCode,
        settings: &ShopSettings,
    ) -> Result<usize, CartError> {
        let one = product.unit.quantity_scale();
        match scanned {
            ScannedCode::Plain { .. } => self.add_product(product, one),
            ScannedCode::WeightEmbedded { code, .. } => {
                if !product.unit.is_loose() {
                    return Err(CartError::WeightForPieces {
                        name: product.name.clone(),
                    });
                }
                let quantity = scanned
                    .embedded_quantity_milli()
                    .filter(|quantity| *quantity > 0)
                    .ok_or(CartError::NonPositiveQuantity)?;
                Ok(self.push_label_line(BillLine::of_product(product, quantity), code))
            }
            ScannedCode::PriceEmbedded { code, .. } => {
                let amount = scanned
                    .embedded_price_minor(settings.minor_unit_exponent)
                    .ok_or(CartError::LabelPrice)?;
                let line = if product.unit.is_loose() {
                    if product.price_minor <= 0 {
                        return Err(CartError::NoPriceForLabel {
                            name: product.name.clone(),
                        });
                    }
                    // The quantity the label's amount buys at the product's price, rounded to
                    // a milli-unit; the line keeps the product's price.
                    let quantity = divide_rounding_half_away(
                        i128::from(amount) * 1000,
                        i128::from(product.price_minor),
                    )
                    .max(1);
                    BillLine::of_product(product, quantity)
                } else {
                    BillLine {
                        unit_price_minor: amount,
                        ..BillLine::of_product(product, 1)
                    }
                };
                Ok(self.push_label_line(line, code))
            }
        }
    }

    fn push_label_line(&mut self, line: BillLine, code: &str) -> usize {
        self.lines.push(CartLine {
            line,
            label_code: Some(code.to_owned()),
        });
        self.lines.len() - 1
    }

    fn line_mut(&mut self, index: usize) -> Result<&mut BillLine, CartError> {
        self.lines
            .get_mut(index)
            .map(|cart_line| &mut cart_line.line)
            .ok_or(CartError::NoSuchLine(index))
    }

    /// Sets a line's quantity (in stored steps: pieces or milli-units).
    pub fn set_quantity(&mut self, index: usize, quantity: i64) -> Result<(), CartError> {
        if quantity <= 0 {
            return Err(CartError::NonPositiveQuantity);
        }
        self.line_mut(index)?.quantity = quantity;
        Ok(())
    }

    /// Sets a line's quantity from what the cashier typed, in the line's unit.
    pub fn set_quantity_typed(&mut self, index: usize, text: &str) -> Result<(), CartError> {
        let unit = self.line_mut(index)?.unit;
        let quantity = parse_quantity(text, unit)?;
        self.set_quantity(index, quantity)
    }

    /// The +/− buttons: one piece, or one whole unit of a loose good; a line never goes below
    /// one step by −.
    pub fn step_quantity(&mut self, index: usize, up: bool) -> Result<(), CartError> {
        let line = self.line_mut(index)?;
        let step = line.unit.quantity_scale();
        line.quantity = if up {
            line.quantity.saturating_add(step)
        } else {
            (line.quantity - step).max(1)
        };
        Ok(())
    }

    /// Sets a line's discount; refused if it does not fit the line (more than its amount).
    pub fn set_discount(&mut self, index: usize, discount: LineDiscount) -> Result<(), CartError> {
        let line = self.line_mut(index)?;
        let mut changed = line.clone();
        changed.discount = discount;
        crate::bill::line_amounts(&changed, index, TaxMode::Inclusive)
            .map_err(CartError::Discount)?;
        *line = changed;
        Ok(())
    }

    pub fn remove(&mut self, index: usize) -> Result<CartLine, CartError> {
        if index >= self.lines.len() {
            return Err(CartError::NoSuchLine(index));
        }
        Ok(self.lines.remove(index))
    }

    pub fn clear(&mut self) {
        self.lines.clear();
        self.customer_id = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::barcode::{check_digit, Nomenclature};
    use crate::money::AmountError;

    fn product(id: &str, price: i64, unit: QuantityUnit) -> Product {
        let mut product = Product::new(id.into(), id, price, "INR");
        product.unit = unit;
        product
    }

    fn label(body: &str) -> ScannedCode {
        let code = format!("{body}{}", check_digit(body).unwrap());
        Nomenclature::default().parse(&code)
    }

    #[test]
    fn a_repeat_scan_adds_to_the_quantity() {
        let tea = product("tea", 25_00, QuantityUnit::Piece);
        let mut cart = Cart::default();
        let plain = Nomenclature::default().parse("8901063010017");
        let settings = ShopSettings::default();
        assert_eq!(cart.add_scanned(&tea, &plain, &settings), Ok(0));
        assert_eq!(cart.add_scanned(&tea, &plain, &settings), Ok(0));
        assert_eq!(cart.lines.len(), 1);
        assert_eq!(cart.lines[0].line.quantity, 2);
        // A discounted line is left alone: the next scan starts a new line.
        cart.set_discount(0, LineDiscount::Percent { basis_points: 1000 })
            .unwrap();
        assert_eq!(cart.add_scanned(&tea, &plain, &settings), Ok(1));
        let rice = product("rice", 80_00, QuantityUnit::Kilogram);
        assert_eq!(cart.add_product(&rice, 1000), Ok(2));
        assert_eq!(cart.add_product(&rice, 500), Ok(2));
        assert_eq!(cart.lines[2].line.quantity, 1500);
    }

    #[test]
    fn labels_give_their_weight_or_price_and_their_own_line() {
        let settings = ShopSettings::default();
        let rice = product("rice", 80_00, QuantityUnit::Kilogram);
        let mut cart = Cart::default();
        let weighed = label("221234501250");
        assert_eq!(cart.add_scanned(&rice, &weighed, &settings), Ok(0));
        assert_eq!(cart.add_scanned(&rice, &weighed, &settings), Ok(1));
        assert_eq!(cart.lines[0].line.quantity, 1250);
        let totals = cart.totals(TaxMode::Inclusive).unwrap();
        assert_eq!(totals.total_minor, 2 * 100_00);
        // ₹50.00 of rice at ₹80.00/kg is 0.625 kg.
        let priced = label("210004205000");
        assert_eq!(cart.add_scanned(&rice, &priced, &settings), Ok(2));
        assert_eq!(cart.lines[2].line.quantity, 625);
        // A piece with a price label sells at the label's price.
        let cake = product("cake", 0, QuantityUnit::Piece);
        let priced = label("210004203575");
        cart.add_scanned(&cake, &priced, &settings).unwrap();
        assert_eq!(cart.lines[3].line.unit_price_minor, 35_75);
        assert_eq!(
            cart.add_scanned(&cake, &weighed, &settings),
            Err(CartError::WeightForPieces {
                name: "cake".into()
            })
        );
        let free = product("free", 0, QuantityUnit::Kilogram);
        assert_eq!(
            cart.add_scanned(&free, &priced, &settings),
            Err(CartError::NoPriceForLabel {
                name: "free".into()
            })
        );
    }

    #[test]
    fn quantities_are_typed_in_the_products_unit() {
        let check = |text: &str, unit, expected: Result<i64, CartError>| {
            assert_eq!(parse_quantity(text, unit), expected, "{text:?} {unit:?}");
        };
        check("2", QuantityUnit::Piece, Ok(2));
        check("1.250", QuantityUnit::Kilogram, Ok(1250));
        check("0,5", QuantityUnit::Litre, Ok(500));
        check("750", QuantityUnit::Gram, Ok(750_000));
        check(
            "1.5",
            QuantityUnit::Piece,
            Err(CartError::Quantity(QuantityError::WholePieces(
                "1.5".into(),
            ))),
        );
        check(
            "0",
            QuantityUnit::Piece,
            Err(CartError::NonPositiveQuantity),
        );
        check(
            "two",
            QuantityUnit::Piece,
            Err(CartError::Quantity(QuantityError::Amount(
                AmountError::NotANumber("two".into()),
            ))),
        );
    }

    #[test]
    fn lines_step_are_typed_discounted_removed_and_cleared() {
        let rice = product("rice", 80_00, QuantityUnit::Kilogram);
        let mut cart = Cart {
            customer_id: Some("c1".into()),
            ..Cart::default()
        };
        cart.add_product(&rice, 250).unwrap();
        cart.step_quantity(0, true).unwrap();
        assert_eq!(cart.lines[0].line.quantity, 1250);
        cart.step_quantity(0, false).unwrap();
        cart.step_quantity(0, false).unwrap();
        assert_eq!(cart.lines[0].line.quantity, 1, "never below one step");
        cart.set_quantity_typed(0, "2.5").unwrap();
        assert_eq!(cart.lines[0].line.quantity, 2500);
        assert_eq!(
            cart.set_discount(0, LineDiscount::Amount { minor: 200_01 }),
            Err(CartError::Discount(BillError::DiscountAboveAmount {
                line: 0,
                name: "rice".into()
            }))
        );
        cart.set_discount(0, LineDiscount::Amount { minor: 200_00 })
            .unwrap();
        assert_eq!(cart.set_quantity(3, 1), Err(CartError::NoSuchLine(3)));
        // A parked cart survives its stored form.
        let stored = serde_json::to_string(&cart).unwrap();
        assert_eq!(serde_json::from_str::<Cart>(&stored).unwrap(), cart);
        assert_eq!(cart.remove(0).unwrap().line.product_id, "rice");
        assert_eq!(cart.remove(0), Err(CartError::NoSuchLine(0)));
        cart.add_product(&rice, 1).unwrap();
        cart.clear();
        assert!(cart.is_empty() && cart.customer_id.is_none());
    }
}
