//! Generators of realistic seed records (~250 bytes each) for products and
//! persons, written straight as JSON text so a million of them load in
//! seconds. Values come from a seeded `fastrand::Rng`: the same seed gives the
//! same data.

const ADJECTIVES: &[&str] = &[
    "Premium", "Classic", "Organic", "Fresh", "Golden", "Royal", "Family", "Light", "Spicy",
    "Smoked", "Roasted", "Natural",
];
const GOODS: &[&str] = &[
    "Basmati Rice",
    "Green Tea",
    "Saffron",
    "Pistachio",
    "Dates",
    "Olive Oil",
    "Black Tea",
    "Honey",
    "Walnuts",
    "Barberry",
    "Rose Water",
    "Dried Lime",
];
const UNITS: &[&str] = &["box", "pack", "kg", "bottle", "carton", "piece"];
const FIRST: &[&str] = &[
    "Ali", "Sara", "Reza", "Maryam", "Hossein", "Zahra", "Mehdi", "Fatemeh", "Amir", "Narges",
    "Hamid", "Leila",
];
const LAST: &[&str] = &[
    "Rezaei",
    "Ahmadi",
    "Hosseini",
    "Karimi",
    "Moradi",
    "Jafari",
    "Rahimi",
    "Mohammadi",
    "Sadeghi",
    "Kazemi",
];
const CITIES: &[&str] = &[
    "Tehran", "Isfahan", "Shiraz", "Tabriz", "Mashhad", "Yazd", "Rasht",
];
const STREETS: &[&str] = &["Azadi", "Enghelab", "Valiasr", "Ferdowsi", "Hafez", "Saadi"];

fn pick<'a>(rng: &mut fastrand::Rng, list: &[&'a str]) -> &'a str {
    list[rng.usize(0..list.len())]
}

/// A product record as JSON text.
pub(crate) fn product(rng: &mut fastrand::Rng, id: i64, row_version: i64) -> String {
    let adjective = pick(rng, ADJECTIVES);
    let good = pick(rng, GOODS);
    let unit = pick(rng, UNITS);
    let price = rng.i64(10..5_000) * 500;
    let stock = rng.u32(0..2_000);
    let category = rng.u32(1..40);
    let barcode = 6_260_000_000_000u64 + rng.u64(0..9_999_999_999);
    let day = rng.u32(1..29);
    let month = rng.u32(1..13);
    format!(
        "{{\"barcode\":\"{barcode}\",\"categoryId\":{category},\"deleted\":false,\
         \"description\":\"{adjective} {good} per {unit}\",\
         \"name\":\"{adjective} {good} {id}\",\"price\":{price},\"productClientId\":null,\
         \"productCode\":\"P{id:07}\",\"productId\":{id},\"rowVersion\":{row_version},\
         \"stock\":{stock},\"unit\":\"{unit}\",\
         \"updatedAt\":\"2025-{month:02}-{day:02}T10:00:00Z\"}}"
    )
}

/// A person record as JSON text.
pub(crate) fn person(rng: &mut fastrand::Rng, id: i64, row_version: i64) -> String {
    let first = pick(rng, FIRST);
    let last = pick(rng, LAST);
    let city = pick(rng, CITIES);
    let street = pick(rng, STREETS);
    let no = rng.u32(1..300);
    let mobile = rng.u64(100_000_000..999_999_999);
    let credit = rng.i64(0..200) * 100_000;
    let kind = if rng.u8(0..4) == 0 {
        "supplier"
    } else {
        "customer"
    };
    format!(
        "{{\"address\":\"No. {no}, {street} St, {city}\",\"creditLimit\":{credit},\
         \"deleted\":false,\"email\":\"{}.{}{id}@example.com\",\"mobile\":\"09{mobile}\",\
         \"name\":\"{first} {last} {id}\",\"personClientId\":null,\
         \"personCode\":\"C{id:07}\",\"personGroupId\":null,\"personId\":{id},\
         \"rowVersion\":{row_version},\"type\":\"{kind}\"}}",
        first.to_ascii_lowercase(),
        last.to_ascii_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_records_are_json_of_about_250_bytes() {
        let mut rng = fastrand::Rng::with_seed(1);
        for i in 1..50 {
            for text in [product(&mut rng, i, i * 10), person(&mut rng, i, i * 10)] {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v["rowVersion"], i * 10);
                assert!((180..320).contains(&text.len()), "{} {text}", text.len());
            }
        }
    }
}
