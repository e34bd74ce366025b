//! The product CSV format: import with per-row errors, and export in the same format.
//!
//! A header row names the columns, in any order and any case: `name, sku, barcode, price,
//! stock, tax_rate, unit, category, low_stock` (`name` and `price` are required; other
//! columns are ignored and listed). Several barcodes go in one cell separated by `|`. Prices
//! have a decimal point (or comma) in the shop's currency, at most its minor digits; the tax
//! rate is a percentage (`18`, `12.5`); stock and the low-stock threshold are in the product's
//! unit (`1.250` kg). The file is UTF-8 with or without a byte-order mark, separated by commas
//! or semicolons (the header row decides: spreadsheets in countries with a decimal comma
//! write semicolons).
//!
//! Rows are numbered as the file's lines are, the header being row 1, so a message points at
//! the line a person sees in a spreadsheet. Good rows are returned beside the errors; the app
//! previews both and imports the good ones with [`crate::actions::import_products`].

use std::collections::{BTreeMap, HashMap};

use crate::money::{format_decimal, format_decimal_trimmed, parse_decimal, AmountError};
use crate::product::{name_key, Product, ProductError, QuantityError, QuantityUnit, UnknownUnit};
use crate::settings::ShopSettings;

/// The columns, in the order export writes them.
pub const COLUMNS: [&str; 9] = [
    "name",
    "sku",
    "barcode",
    "price",
    "stock",
    "tax_rate",
    "unit",
    "category",
    "low_stock",
];

/// The separator between several barcodes in one cell.
pub const BARCODE_SEPARATOR: char = '|';

/// What is wrong with the file as a whole.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsvFileError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not UTF-8 text (save it as \"CSV UTF-8\")")]
    NotUtf8,
    #[error("the header row has no \"{0}\" column")]
    MissingColumn(&'static str),
    #[error("the header row names \"{0}\" twice")]
    DuplicateColumn(String),
    #[error("the file cannot be read as CSV: {0}")]
    Unreadable(String),
}

/// What is wrong with one row: where, and the [`RowProblem`] (the app shows it in the
/// tablet's language; its `Display` is English, for logs and tests).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("row {row}{}: {problem}", column.map(|column| format!(", {column}")).unwrap_or_default())]
pub struct RowError {
    /// The line number in the file; the header is row 1.
    pub row: u64,
    /// The column at fault, if one is (its name in the file's header, one of [`COLUMNS`]).
    pub column: Option<&'static str>,
    pub problem: RowProblem,
}

/// Why a row cannot be imported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RowProblem {
    /// The CSV reader could not read the row (its own words).
    #[error("cannot be read: {0}")]
    Unreadable(String),
    /// The price or the tax rate is not an amount.
    #[error(transparent)]
    Amount(#[from] AmountError),
    #[error(transparent)]
    Unit(#[from] UnknownUnit),
    /// The stock or the low-stock threshold is not a quantity in the row's unit.
    #[error(transparent)]
    Quantity(#[from] QuantityError),
    /// The tax rate as written ("150") is above 100%.
    #[error("{0}% is above 100%")]
    TaxRateAbove100(String),
    /// The product the row describes is not valid.
    #[error(transparent)]
    Product(#[from] ProductError),
    #[error("the barcode {barcode} is already on row {first_row}")]
    RepeatedBarcode { barcode: String, first_row: u64 },
    #[error("the SKU {sku} is already on row {first_row}")]
    RepeatedSku { sku: String, first_row: u64 },
    /// The catalogue already has the barcode (the app checks, after reading the file).
    #[error("the barcode {barcode} is already used by {owner}")]
    BarcodeInCatalogue { barcode: String, owner: String },
    /// The catalogue already has the SKU.
    #[error("the SKU {sku} is already used by {owner}")]
    SkuInCatalogue { sku: String, owner: String },
}

/// A good row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedProduct {
    pub row: u64,
    pub product: Product,
}

/// The outcome of reading a file: the good rows, the bad ones, and the columns ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CsvImport {
    pub products: Vec<ImportedProduct>,
    pub errors: Vec<RowError>,
    pub ignored_columns: Vec<String>,
    /// The separator the header row used.
    pub delimiter: char,
}

/// Comma or semicolon, by which the header row has more of.
fn detect_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    let count = |separator: char| header.chars().filter(|c| *c == separator).count();
    if count(';') > count(',') {
        b';'
    } else {
        b','
    }
}

/// Reads a product CSV file. Each good row becomes a new product with an id from `new_id`,
/// in the shop's currency. Barcodes and SKUs repeated within the file are refused on the later
/// row (the app checks them against the catalogue it has).
pub fn import_products_csv(
    bytes: &[u8],
    settings: &ShopSettings,
    new_id: &mut dyn FnMut() -> String,
) -> Result<CsvImport, CsvFileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| CsvFileError::NotUtf8)?;
    if text.trim().is_empty() {
        return Err(CsvFileError::Empty);
    }
    let delimiter = detect_delimiter(text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|error| CsvFileError::Unreadable(error.to_string()))?
        .clone();
    let mut positions: HashMap<&'static str, usize> = HashMap::new();
    let mut ignored_columns = Vec::new();
    for (position, header) in headers.iter().enumerate() {
        let header = header.trim().to_lowercase().replace([' ', '-'], "_");
        match COLUMNS.iter().find(|column| **column == header) {
            Some(column) => {
                if positions.insert(column, position).is_some() {
                    return Err(CsvFileError::DuplicateColumn(header));
                }
            }
            None if header.is_empty() => {}
            None => ignored_columns.push(header),
        }
    }
    for required in ["name", "price"] {
        if !positions.contains_key(required) {
            return Err(CsvFileError::MissingColumn(required));
        }
    }
    let mut import = CsvImport {
        ignored_columns,
        delimiter: char::from(delimiter),
        ..CsvImport::default()
    };
    // Line numbers come from byte offsets: the reader counts no blank lines, and a record's
    // position is where the reader began, before the blank lines it skipped.
    let line_starts: Vec<u64> = std::iter::once(0)
        .chain(
            text.bytes()
                .enumerate()
                .filter(|(_, byte)| *byte == b'\n')
                .map(|(at, _)| at as u64 + 1),
        )
        .collect();
    let line_of = |position: Option<&csv::Position>| -> u64 {
        position
            .map(|position| {
                let mut at = position.byte() as usize;
                while matches!(text.as_bytes().get(at), Some(b'\n' | b'\r')) {
                    at += 1;
                }
                line_starts.partition_point(|start| *start <= at as u64) as u64
            })
            .unwrap_or(0)
    };
    let mut seen_barcodes: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen_skus: BTreeMap<String, u64> = BTreeMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let row = line_of(error.position());
                import.errors.push(RowError {
                    row,
                    column: None,
                    problem: RowProblem::Unreadable(error.to_string()),
                });
                continue;
            }
        };
        let row = line_of(record.position());
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        let cells: HashMap<&'static str, &str> = positions
            .iter()
            .map(|(column, position)| (*column, record.get(*position).unwrap_or("").trim()))
            .collect();
        match read_row(&cells, settings) {
            Ok(mut product) => {
                let repeated_barcode = product
                    .barcodes
                    .iter()
                    .find_map(|barcode| seen_barcodes.get(barcode).map(|first| (barcode, first)));
                if let Some((barcode, first)) = repeated_barcode {
                    import.errors.push(RowError {
                        row,
                        column: Some("barcode"),
                        problem: RowProblem::RepeatedBarcode {
                            barcode: barcode.clone(),
                            first_row: *first,
                        },
                    });
                    continue;
                }
                if let Some(first) = product.sku.as_ref().and_then(|sku| seen_skus.get(sku)) {
                    import.errors.push(RowError {
                        row,
                        column: Some("sku"),
                        problem: RowProblem::RepeatedSku {
                            sku: product.sku.clone().unwrap_or_default(),
                            first_row: *first,
                        },
                    });
                    continue;
                }
                for barcode in &product.barcodes {
                    seen_barcodes.insert(barcode.clone(), row);
                }
                if let Some(sku) = &product.sku {
                    seen_skus.insert(sku.clone(), row);
                }
                product.id = new_id();
                import.products.push(ImportedProduct { row, product });
            }
            Err((column, problem)) => import.errors.push(RowError {
                row,
                column: Some(column),
                problem,
            }),
        }
    }
    Ok(import)
}

/// The column at fault and what is wrong with it.
type CellError = (&'static str, RowProblem);

/// One row's product (without its id yet), or the first thing wrong with it.
fn read_row(
    cells: &HashMap<&'static str, &str>,
    settings: &ShopSettings,
) -> Result<Product, CellError> {
    let cell = |column: &str| -> &str { cells.get(column).copied().unwrap_or("") };
    let at = |column: &'static str| move |problem: RowProblem| (column, problem);
    let name = cell("name");
    if name.is_empty() {
        return Err(("name", RowProblem::Product(ProductError::EmptyName)));
    }
    let price_minor = parse_decimal(cell("price"), settings.minor_unit_exponent)
        .map_err(|error| at("price")(error.into()))?;
    let unit = QuantityUnit::parse(cell("unit")).map_err(|error| at("unit")(error.into()))?;
    let quantity = |column: &'static str| -> Result<Option<i64>, CellError> {
        let text = cell(column);
        if text.is_empty() {
            return Ok(None);
        }
        unit.read_quantity(text)
            .map(Some)
            .map_err(|error| at(column)(error.into()))
    };
    let stock = quantity("stock")?.unwrap_or(0);
    let low_stock_threshold = quantity("low_stock")?;
    let tax_rate_basis_points = match cell("tax_rate").trim_end_matches('%').trim() {
        "" => 0,
        text => {
            let basis_points =
                parse_decimal(text, 2).map_err(|error| at("tax_rate")(error.into()))?;
            u32::try_from(basis_points)
                .ok()
                .filter(|bp| *bp <= 10_000)
                .ok_or_else(|| at("tax_rate")(RowProblem::TaxRateAbove100(text.to_owned())))?
        }
    };
    let optional = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    let barcodes: Vec<String> = cell("barcode")
        .split(BARCODE_SEPARATOR)
        .map(str::trim)
        .filter(|barcode| !barcode.is_empty())
        .map(str::to_owned)
        .collect();
    let product = Product {
        id: String::new(),
        name: name.to_owned(),
        name_key: name_key(name),
        price_minor,
        currency: settings.currency.clone(),
        server_updated_at_millis: None,
        sku: optional(cell("sku")),
        barcodes,
        unit,
        category: optional(cell("category")),
        tax_rate_basis_points,
        stock_on_hand: stock,
        low_stock_threshold,
    };
    product.validate().map_err(|error| {
        let column = match error {
            ProductError::EmptyName | ProductError::NameTooLong => "name",
            ProductError::NegativePrice => "price",
            ProductError::TaxRateTooHigh(_) => "tax_rate",
            ProductError::BadBarcode(_) | ProductError::BarcodeCheckDigit(_) => "barcode",
            ProductError::NegativeLowStockThreshold => "low_stock",
        };
        (column, RowProblem::Product(error))
    })?;
    Ok(product)
}

/// Writes products in the import format: a byte-order mark (so spreadsheet programs read the
/// file as UTF-8), the header row, one row per product, comma-separated. The same text as
/// [`export_products_csv_header`] followed by [`export_products_csv_rows`] of every product.
pub fn export_products_csv(products: &[Product], settings: &ShopSettings) -> String {
    let mut text = export_products_csv_header();
    text.push_str(&export_products_csv_rows(products, settings));
    text
}

/// The start of an export: the byte-order mark and the header row.
pub fn export_products_csv_header() -> String {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = writer.write_record(COLUMNS);
    let bytes = writer.into_inner().unwrap_or_default();
    format!("\u{FEFF}{}", String::from_utf8_lossy(&bytes))
}

/// Products as rows of an export, without the header: an export of a large catalogue is
/// written a page of products at a time after [`export_products_csv_header`], so that it
/// never holds every product at once.
pub fn export_products_csv_rows(products: &[Product], settings: &ShopSettings) -> String {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    for product in products {
        let decimals = product.unit.quantity_decimals();
        // Writing to a Vec cannot fail, and every record has the header's nine fields.
        let _ = writer.write_record([
            product.name.clone(),
            product.sku.clone().unwrap_or_default(),
            product.barcodes.join(&BARCODE_SEPARATOR.to_string()),
            format_decimal(product.price_minor, settings.minor_unit_exponent),
            format_decimal_trimmed(product.stock_on_hand, decimals),
            format_decimal_trimmed(i64::from(product.tax_rate_basis_points), 2),
            product.unit.as_str().to_owned(),
            product.category.clone().unwrap_or_default(),
            product
                .low_stock_threshold
                .map(|threshold| format_decimal_trimmed(threshold, decimals))
                .unwrap_or_default(),
        ]);
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(text: &str) -> Result<CsvImport, CsvFileError> {
        let mut next = 0;
        import_products_csv(text.as_bytes(), &ShopSettings::default(), &mut || {
            next += 1;
            format!("id-{next}")
        })
    }

    fn error(row: u64, column: &'static str, problem: RowProblem) -> RowError {
        RowError {
            row,
            column: Some(column),
            problem,
        }
    }

    #[test]
    fn a_good_file_gives_its_products() {
        let csv = "\u{FEFF}name,sku,barcode,price,stock,tax_rate,unit,category,low_stock\n\
                   Parle-G 250g,PG-250,8901063010017|8901063010024,25.00,48,18,piece,Biscuits,12\n\
                   \"Basmati rice, loose\",RICE-1,,120.5,12.250,5,kg,Grains,2.5\n\
                   चाय पत्ती,,,80,,,,,\n";
        let imported = import(csv).unwrap();
        assert_eq!(imported.errors, []);
        assert_eq!(imported.delimiter, ',');
        let products: Vec<&Product> = imported.products.iter().map(|p| &p.product).collect();
        assert_eq!(products.len(), 3);
        assert_eq!(products[0].id, "id-1");
        assert_eq!(products[0].barcodes, ["8901063010017", "8901063010024"]);
        assert_eq!(products[0].price_minor, 2500);
        assert_eq!(products[0].stock_on_hand, 48);
        assert_eq!(products[0].tax_rate_basis_points, 1800);
        assert_eq!(products[0].low_stock_threshold, Some(12));
        assert_eq!(products[1].name, "Basmati rice, loose");
        assert_eq!(products[1].unit, QuantityUnit::Kilogram);
        assert_eq!(products[1].price_minor, 12050);
        assert_eq!(products[1].stock_on_hand, 12_250);
        assert_eq!(products[1].low_stock_threshold, Some(2_500));
        assert_eq!(products[2].name, "चाय पत्ती");
        assert_eq!(products[2].currency, "INR");
        assert_eq!(imported.products[2].row, 4);
    }

    #[test]
    fn semicolons_any_column_order_and_extra_columns_are_read() {
        let csv = "Price;Name;Colour;Tax Rate\n12,50;Soap;green;12,5\n";
        let imported = import(csv).unwrap();
        assert_eq!(imported.delimiter, ';');
        assert_eq!(imported.ignored_columns, ["colour"]);
        let product = &imported.products[0].product;
        assert_eq!(
            (product.price_minor, product.tax_rate_basis_points),
            (1250, 1250)
        );
    }

    #[test]
    fn bad_rows_are_reported_by_row_and_column_and_good_rows_kept() {
        let csv = "name,sku,barcode,price,stock,tax_rate,unit\n\
                   Tea,T1,8901063010017,10,,,\n\
                   ,T2,,10,,,\n\
                   Soap,T3,,12.345,,,\n\
                   Rice,T4,,abc,,,\n\
                   Oil,T5,,10,,,litre\n\
                   Sugar,T6,,10,1.5,,piece\n\
                   Salt,T7,8901063010018,10,,,\n\
                   Dal,T8,8901063010017,10,,,\n\
                   Ghee,T1,,10,,,\n\
                   Jam,T9,,10,,150,\n\
                   \n\
                   Milk,T10,,-1,,,\n\
                   Curd,T11,,20,,,\n";
        let imported = import(csv).unwrap();
        let names: Vec<&str> = imported
            .products
            .iter()
            .map(|p| p.product.name.as_str())
            .collect();
        assert_eq!(names, ["Tea", "Curd"]);
        assert_eq!(
            imported.errors,
            [
                error(3, "name", ProductError::EmptyName.into()),
                error(
                    4,
                    "price",
                    AmountError::TooManyDecimals {
                        text: "12.345".into(),
                        allowed: 2
                    }
                    .into()
                ),
                error(5, "price", AmountError::NotANumber("abc".into()).into()),
                error(6, "unit", UnknownUnit("litre".into()).into()),
                error(7, "stock", QuantityError::WholePieces("1.5".into()).into()),
                error(
                    8,
                    "barcode",
                    ProductError::BarcodeCheckDigit("8901063010018".into()).into()
                ),
                error(
                    9,
                    "barcode",
                    RowProblem::RepeatedBarcode {
                        barcode: "8901063010017".into(),
                        first_row: 2
                    }
                ),
                error(
                    10,
                    "sku",
                    RowProblem::RepeatedSku {
                        sku: "T1".into(),
                        first_row: 2
                    }
                ),
                error(11, "tax_rate", RowProblem::TaxRateAbove100("150".into())),
                error(13, "price", AmountError::Negative.into()),
            ]
        );
        // The English of logs and tests: where, then what.
        let english: Vec<String> = imported.errors.iter().map(ToString::to_string).collect();
        assert_eq!(english[0], "row 3, name: the name is empty");
        assert_eq!(
            english[4],
            "row 7, stock: \"1.5\": pieces are counted in whole numbers"
        );
        assert_eq!(
            english[6],
            "row 9, barcode: the barcode 8901063010017 is already on row 2"
        );
    }

    #[test]
    fn rows_are_numbered_as_the_files_lines_with_crlf_and_quoted_line_breaks() {
        let csv = "name,price\r\nTea,10\r\n\"Two\nlines\",x\r\n\r\nSoap,abc\r\n";
        let imported = import(csv).unwrap();
        let rows: Vec<u64> = imported.errors.iter().map(|error| error.row).collect();
        assert_eq!(rows, [3, 6]);
        assert_eq!(imported.products[0].row, 2);
    }

    #[test]
    fn a_broken_file_says_why() {
        assert_eq!(import(""), Err(CsvFileError::Empty));
        assert_eq!(
            import("sku,price\nA,1\n"),
            Err(CsvFileError::MissingColumn("name"))
        );
        assert_eq!(
            import("name\nA\n"),
            Err(CsvFileError::MissingColumn("price"))
        );
        assert_eq!(
            import("name,price,Name\n"),
            Err(CsvFileError::DuplicateColumn("name".into()))
        );
        let mut next = 0;
        assert_eq!(
            import_products_csv(
                b"name,price\n\xFF,1\n",
                &ShopSettings::default(),
                &mut || {
                    next += 1;
                    next.to_string()
                }
            ),
            Err(CsvFileError::NotUtf8)
        );
        // A row with fewer cells than the header reads its missing cells as empty.
        let imported = import("name,price,sku\nTea,10\n").unwrap();
        assert_eq!(imported.products[0].product.sku, None);
    }

    // Guards the export written a page at a time (the app never holds the whole catalogue
    // for it): the header, then the rows of each page, is exactly the whole file.
    #[test]
    fn an_export_written_a_page_at_a_time_is_the_whole_export() {
        let csv = "name,sku,barcode,price,stock,tax_rate,unit,category,low_stock\n\
                   Parle-G 250g,PG-250,8901063010017|8901063010024,25.00,48,18,piece,Biscuits,12\n\
                   \"Basmati rice, \"\"extra long\"\"\",RICE-1,,120.50,12.25,5,kg,Grains,2.5\n\
                   चाय पत्ती,,,80.00,0,12.5,g,,\n\
                   Tea,,,10,1,0,piece,,\n";
        let products: Vec<Product> = import(csv)
            .unwrap()
            .products
            .into_iter()
            .map(|p| p.product)
            .collect();
        let settings = ShopSettings::default();
        let mut paged = export_products_csv_header();
        for page in products.chunks(3) {
            paged.push_str(&export_products_csv_rows(page, &settings));
        }
        assert_eq!(paged, export_products_csv(&products, &settings));
        assert_eq!(
            export_products_csv_header(),
            "\u{FEFF}name,sku,barcode,price,stock,tax_rate,unit,category,low_stock\n"
        );
        assert_eq!(export_products_csv_rows(&[], &settings), "");
    }

    #[test]
    fn an_export_imports_back_to_the_same_products() {
        let csv = "name,sku,barcode,price,stock,tax_rate,unit,category,low_stock\n\
                   Parle-G 250g,PG-250,8901063010017|8901063010024,25.00,48,18,piece,Biscuits,12\n\
                   \"Basmati rice, \"\"extra long\"\"\",RICE-1,,120.50,12.25,5,kg,Grains,2.5\n\
                   चाय पत्ती,,,80.00,0,12.5,g,,\n";
        let first = import(csv).unwrap();
        assert_eq!(first.errors, []);
        let products: Vec<Product> = first.products.into_iter().map(|p| p.product).collect();
        let exported = export_products_csv(&products, &ShopSettings::default());
        assert!(exported.starts_with('\u{FEFF}'));
        assert!(exported.contains("\"Basmati rice, \"\"extra long\"\"\""));
        let second = import(&exported).unwrap();
        assert_eq!(second.errors, []);
        let again: Vec<Product> = second.products.into_iter().map(|p| p.product).collect();
        assert_eq!(again, products);
        assert_eq!(
            export_products_csv(&again, &ShopSettings::default()),
            exported
        );
    }
}
