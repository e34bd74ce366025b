//! Property tests of the formats the shop crate reads and writes: CSV export imports back to
//! the same products, in-store labels read back their item and value, ESC/POS bytes decode
//! to the image sent, a scanner's burst is always recognised, and typing is never lost.

use counterbook_shop::barcode::{check_digit, has_valid_check_digit, Nomenclature, ScannedCode};
use counterbook_shop::csv_import::{export_products_csv, import_products_csv};
use counterbook_shop::escpos::{
    decode, encode_receipt, raster_image, MonochromeBitmap, PrintOptions,
};
use counterbook_shop::product::{Product, QuantityUnit};
use counterbook_shop::scanner::{ScanDetector, ScannerConfig};
use counterbook_shop::settings::ShopSettings;
use proptest::prelude::*;

fn any_product() -> impl Strategy<Value = Product> {
    (
        "[A-Za-z0-9चायé ,\"'-]{1,30}",
        proptest::option::of("[A-Z0-9-]{1,10}"),
        prop::collection::vec("[0-9]{4,7}", 0..3),
        0i64..100_000_000,
        prop::sample::select(QuantityUnit::ALL.to_vec()),
        0i64..1_000_000,
        0u32..=10_000,
        proptest::option::of("[A-Za-z ]{1,12}"),
        proptest::option::of(0i64..10_000),
    )
        .prop_filter_map(
            "names that trim to nothing are refused by design",
            |(name, sku, barcodes, price, unit, stock, rate, category, low)| {
                let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
                if name.is_empty() {
                    return None;
                }
                let mut product = Product::new(String::new(), &name, price, "INR");
                product.sku = sku;
                product.barcodes = barcodes;
                product.unit = unit;
                product.stock_on_hand = stock;
                product.tax_rate_basis_points = rate;
                product.category = category
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty());
                product.low_stock_threshold = low;
                Some(product)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_exported_catalogue_imports_back_unchanged(products in prop::collection::vec(any_product(), 0..20)) {
        // Repeats are refused on import by design; keep the first of each.
        let mut seen = std::collections::BTreeSet::new();
        let products: Vec<Product> = products
            .into_iter()
            .filter(|p| {
                let keys: Vec<String> = p.barcodes.iter().cloned().chain(p.sku.iter().map(|s| format!("sku:{s}"))).collect();
                let fresh = keys.iter().all(|key| !seen.contains(key))
                    && keys.len() == keys.iter().collect::<std::collections::BTreeSet<_>>().len();
                if fresh {
                    seen.extend(keys);
                }
                fresh
            })
            .collect();
        let settings = ShopSettings::default();
        let csv = export_products_csv(&products, &settings);
        let imported = import_products_csv(csv.as_bytes(), &settings, &mut String::new).unwrap();
        prop_assert_eq!(&imported.errors, &[]);
        let back: Vec<Product> = imported.products.into_iter().map(|p| p.product).collect();
        prop_assert_eq!(back, products);
    }

    #[test]
    fn a_label_reads_back_its_item_and_value(item in 0u32..100_000, value in 0i64..100_000, weighed in any::<bool>()) {
        let prefix = if weighed { "22" } else { "21" };
        let body = format!("{prefix}{item:05}{value:05}");
        let code = format!("{body}{}", check_digit(&body).unwrap());
        prop_assert!(has_valid_check_digit(&code));
        let scanned = Nomenclature::default().parse(&code);
        prop_assert!(has_valid_check_digit(scanned.lookup_barcode()));
        match scanned {
            ScannedCode::WeightEmbedded { ref item_code, .. } if weighed => {
                prop_assert_eq!(item_code, &format!("{item:05}"));
                prop_assert_eq!(scanned.embedded_quantity_milli(), Some(value));
            }
            ScannedCode::PriceEmbedded { ref item_code, .. } if !weighed => {
                prop_assert_eq!(item_code, &format!("{item:05}"));
                prop_assert_eq!(scanned.embedded_price_minor(2), Some(value));
            }
            other => prop_assert!(false, "{:?}", other),
        }
        // One wrong digit is always caught by the check digit.
        let position = (item as usize) % 12;
        let mut wrong: Vec<u8> = code.bytes().collect();
        wrong[position] = b'0' + (wrong[position] - b'0' + 1) % 10;
        prop_assert!(!has_valid_check_digit(std::str::from_utf8(&wrong).unwrap()));
    }

    #[test]
    fn escpos_bytes_decode_to_the_image_sent(
        width_bytes in 1u32..=72,
        height in 0u32..300,
        band_rows in 1u32..300,
        seed in any::<u64>(),
    ) {
        let width = width_bytes * 8;
        let mut bitmap = MonochromeBitmap::blank(width, height);
        let mut state = seed;
        for byte in bitmap.bits.iter_mut() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *byte = (state >> 56) as u8;
        }
        let options = PrintOptions { paper_width_dots: 576, band_rows, ..PrintOptions::default() };
        let commands = decode(&encode_receipt(&bitmap, &options).unwrap()).unwrap();
        let image = raster_image(&commands).unwrap();
        prop_assert_eq!(image.bits, bitmap.bits);
        prop_assert_eq!(image.height_dots, height);
    }

    #[test]
    fn a_scanner_burst_is_always_recognised(
        code in "[0-9A-Z]{4,20}",
        gaps in prop::collection::vec(0.5f64..30.0, 21),
        typed_before in "[0-9]{0,5}",
    ) {
        let mut detector = ScanDetector::default();
        let mut at = 0.0;
        for digit in typed_before.chars() {
            at += 200.0;
            detector.key_down(&format!("Digit{digit}"), &digit.to_string(), at);
        }
        at += 500.0;
        for (index, character) in code.chars().enumerate() {
            let key_code = if character.is_ascii_digit() { format!("Digit{character}") } else { format!("Key{character}") };
            detector.key_down(&key_code, &character.to_string(), at);
            at += gaps[index];
        }
        let outcome = detector.key_down("Enter", "Enter", at);
        prop_assert!(outcome.suppress);
        prop_assert_eq!(outcome.scan.map(|scan| scan.code), Some(code));
    }

    #[test]
    fn typing_is_never_lost_whatever_its_rhythm(
        keys in prop::collection::vec((0u32..10, 1.0f64..400.0), 1..40),
        hold_first_key in any::<bool>(),
    ) {
        let mut detector = ScanDetector::new(ScannerConfig { hold_first_key, ..ScannerConfig::default() });
        let mut field = String::new();
        let mut typed = String::new();
        let mut at = 0.0;
        for (digit, gap) in keys {
            at += gap;
            if let Some(text) = detector.tick(at) {
                field.push_str(&text);
            }
            let key = char::from_digit(digit, 10).unwrap().to_string();
            typed.push_str(&key);
            let outcome = detector.key_down(&format!("Digit{digit}"), &key, at);
            if let Some(text) = outcome.release {
                field.push_str(&text);
            }
            if !outcome.suppress {
                field.push_str(&key);
            }
        }
        if let Some(text) = detector.tick(at + 10_000.0) {
            field.push_str(&text);
        }
        prop_assert_eq!(field, typed);
    }
}
