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

// ----- a shop as the real server holds it (mahak dialect) --------------------

/// Persian goods, written as the Mahak desktop writes them: the Arabic `ي`
/// and `ك`, and trailing spaces.
const KALA: &[&str] = &[
    "چاي سبز ممتاز",
    "برنج هاشمي",
    "زعفران سرگل",
    "پسته اكبري",
    "خرما مضافتي",
    "روغن زيتون",
    "عسل كوهستان",
    "گردو ايراني",
    "زرشك پفكي",
    "گلاب كاشان",
    "ليمو عماني",
    "تيشرت نايكي",
];
const NAM: &[&str] = &[
    "علي",
    "سارا",
    "رضا",
    "مريم",
    "حسين",
    "زهرا",
    "مهدي",
    "فاطمه",
    "امير",
    "نرگس",
    "كاوه",
    "ليلا",
];
const FAMIL: &[&str] = &[
    "رضايي",
    "احمدي",
    "حسيني",
    "كريمي",
    "مرادي",
    "جعفري",
    "رحيمي",
    "محمدي",
    "صادقي",
    "كاظمي",
];
const SHAHR: &[&str] = &["تهران", "اصفهان", "شيراز", "تبريز", "مشهد", "يزد", "رشت"];

/// The bookkeeping fields the real server adds to every record.
fn stamps(row_version: i64) -> String {
    format!(
        "\"dataHash\":\"{row_version:040X}\",\"createDate\":\"2025-10-04T15:18:38.2345036\",\
         \"updateDate\":\"2025-11-28T19:15:55.3879336\",\"createSyncId\":241538754,\
         \"updateSyncId\":246006012,\"rowVersion\":{row_version}"
    )
}

/// A `products` record (made in the desktop: client id 0, a code).
pub(crate) fn mahak_product(rng: &mut fastrand::Rng, id: i64, category: i64, rv: i64) -> String {
    let kala = pick(rng, KALA);
    format!(
        "{{\"productId\":{id},\"productClientId\":0,\"productCode\":{id},\
         \"productCategoryId\":{category},\"name\":\"{kala} {id}  \",\"unitName\":\"عدد\",\
         \"unitName2\":\"كارتن\",\"unitCode\":null,\"unitCode2\":null,\"tags\":\"\",\
         \"unitRatio\":12,\"min\":1,\"taxPercent\":9,\"chargePercent\":0,\"width\":0,\
         \"height\":0,\"length\":0,\"weight\":0,\"type\":0,\"description\":null,\
         \"productTIN\":null,\"unitTIN\":null,\"deleted\":false,{},\
         \"productCategoryClientId\":0,\"productCategoryCode\":{category}}}",
        stamps(rv)
    )
}

/// A `productDetails` record: the sellable variant, with its prices.
pub(crate) fn mahak_product_detail(
    rng: &mut fastrand::Rng,
    id: i64,
    product: i64,
    rv: i64,
) -> (String, i64) {
    let price = rng.i64(10..5_000) * 10_000;
    let barcode = 6_260_000_000_000u64 + rng.u64(0..9_999_999_999);
    let text = format!(
        "{{\"productDetailId\":{id},\"productDetailClientId\":0,\"productDetailCode\":{id},\
         \"productId\":{product},\"productClientId\":0,\"productCode\":{product},\
         \"properties\":\"\",\"price1\":{price},\"price2\":{},\"price3\":{},\"price4\":0,\
         \"price5\":0,\"price6\":0,\"price7\":0,\"price8\":0,\"price9\":0,\"price10\":0,\
         \"defaultSellPriceLevel\":1,\"count1\":{},\"count2\":0,\"barcode\":\"{barcode}\",\
         \"deleted\":false,{}}}",
        price - price / 20,
        price - price / 10,
        rng.u32(0..500),
        stamps(rv)
    );
    (text, price)
}

/// A `visitorProducts` link: the visitor's stock and price of a detail.
pub(crate) fn mahak_visitor_product(
    rng: &mut fastrand::Rng,
    id: i64,
    detail: i64,
    visitor: i64,
    price: i64,
    rv: i64,
) -> String {
    format!(
        "{{\"visitorProductId\":{id},\"productDetailId\":{detail},\"productDetailClientId\":0,\
         \"productDetailCode\":{detail},\"visitorId\":{visitor},\"visitorClientId\":0,\
         \"visitorCode\":{visitor},\"count1\":{},\"price\":{price},\"deleted\":false,{}}}",
        rng.u32(0..300),
        stamps(rv)
    )
}

/// A `people` record: Persian names with `ي`, `ك` and trailing spaces.
pub(crate) fn mahak_person(rng: &mut fastrand::Rng, id: i64, group: i64, rv: i64) -> String {
    let nam = pick(rng, NAM);
    let famil = pick(rng, FAMIL);
    let shahr = pick(rng, SHAHR);
    let mobile = rng.u64(100_000_000..999_999_999);
    let national = rng.u64(1_000_000_000..9_999_999_999);
    format!(
        "{{\"personId\":{id},\"personClientId\":0,\"personCode\":{id},\"personGroupId\":{group},\
         \"personGroupClientId\":0,\"personGroupCode\":{group},\"firstName\":\"{nam} \",\
         \"lastName\":\"{famil}\",\"name\":\"{nam} {famil} \",\"organization\":null,\
         \"nationalCode\":\"{national}\",\"mobile\":\"09{mobile}\",\"tell\":null,\
         \"address\":\"{shahr}، خيابان وليعصر، پلاك {}\",\"credit\":{},\"balance\":0,\
         \"type\":1,\"deleted\":false,{}}}",
        rng.u32(1..300),
        rng.i64(0..200) * 100_000,
        stamps(rv)
    )
}

/// A `visitorPeople` link: a customer the visitor may sell to.
pub(crate) fn mahak_visitor_person(id: i64, person: i64, visitor: i64, rv: i64) -> String {
    format!(
        "{{\"visitorPersonId\":{id},\"personId\":{person},\"personClientId\":0,\
         \"personCode\":{person},\"visitorId\":{visitor},\"visitorClientId\":0,\
         \"visitorCode\":{visitor},\"deleted\":false,{}}}",
        stamps(rv)
    )
}

/// The order types the vendor's code uses (WIRE.md section 5): sale
/// invoice (201), sales return (202), a field-sales visitor's order (203,
/// what the vendor's visitor app writes), purchase (204), and a delivery
/// pre-invoice (299) that the desktop sends to a delivery visitor, who pulls
/// it with `orderTypes: [299]` and turns it into a 201 when delivered.
pub(crate) const ORDER_TYPES: [i64; 5] = [201, 202, 203, 204, 299];

/// A field-sales visitor's order (written by the visitor's app).
pub(crate) const VISITOR_ORDER: i64 = 203;

/// A delivery pre-invoice (written in the desktop for a delivery visitor).
pub(crate) const DELIVERY_PRE_INVOICE: i64 = 299;

/// The client ids a field-sales app gave its records: the vendor's app
/// builds them from its user id and a timestamp, so they are large and
/// never 0 (the desktop's).
pub(crate) const FIELD_SALES_CLIENT_IDS: i64 = 7_100_000_000_000_000;

/// An order type as a shop's day mixes them: mostly sales, some of each of
/// the others.
pub(crate) fn order_type(rng: &mut fastrand::Rng) -> i64 {
    match rng.u8(0..20) {
        0 | 1 => ORDER_TYPES[1],
        2..=4 => ORDER_TYPES[2],
        5 | 6 => ORDER_TYPES[3],
        7..=9 => ORDER_TYPES[4],
        _ => ORDER_TYPES[0],
    }
}

/// An `orders` record, dated offset-free local time: made in the desktop
/// (`client_id` 0: an invoice of type 201, 202 or 204, or a 299 pre-invoice
/// for a delivery visitor) or by a field-sales app (a 203 with the app's
/// client id).
pub(crate) fn mahak_order(
    rng: &mut fastrand::Rng,
    id: i64,
    client_id: i64,
    person: i64,
    visitor: i64,
    order_type: i64,
    rv: i64,
) -> String {
    let month = rng.u32(1..13);
    let day = rng.u32(1..29);
    let hour = rng.u32(8..21);
    let minute = rng.u32(0..60);
    let discount = rng.i64(0..5) * 50_000;
    let title = match order_type {
        VISITOR_ORDER => "سفارش ويزيتور",
        DELIVERY_PRE_INVOICE => "پيش فاكتور توزيع",
        _ => "فاكتور",
    };
    format!(
        "{{\"orderId\":{id},\"orderClientId\":{client_id},\"orderCode\":{id},\"fiscalYear\":1404,\
         \"personId\":{person},\"personClientId\":0,\"personCode\":{person},\
         \"visitorId\":{visitor},\"orderType\":{order_type},\
         \"orderDate\":\"2025-{month:02}-{day:02}T{hour:02}:{minute:02}:00\",\
         \"deliveryDate\":\"2025-{month:02}-{day:02}T12:00:00\",\"discount\":{discount},\
         \"discountType\":0,\"sendCost\":0,\"otherCost\":0,\"settlementType\":1,\
         \"immediate\":false,\"description\":\"{title} {id} \",\"receiptId\":null,\
         \"paymentId\":null,\"deleted\":false,{}}}",
        stamps(rv)
    )
}

/// An `orderDetails` record: one line of order `order` (client ids 0 when
/// made in the desktop, else the app's for the line and its order), selling
/// product detail `detail`. Quantities may be fractional; amounts are
/// numbers.
pub(crate) fn mahak_order_detail(
    rng: &mut fastrand::Rng,
    (id, client_id): (i64, i64),
    (order, order_client_id): (i64, i64),
    detail: i64,
    rv: i64,
) -> String {
    let price = rng.i64(10..5_000) * 10_000;
    let count = if rng.u8(0..5) == 0 {
        format!("{}.5", rng.u32(0..10))
    } else {
        rng.u32(1..20).to_string()
    };
    format!(
        "{{\"orderDetailId\":{id},\"orderDetailClientId\":{client_id},\"orderId\":{order},\
         \"orderClientId\":{order_client_id},\"orderCode\":{order},\"itemType\":0,\
         \"productDetailId\":{detail},\"productDetailClientId\":0,\
         \"productDetailCode\":{detail},\"incomeId\":null,\"expenseId\":null,\
         \"price\":{price},\"count1\":{count},\"count2\":0,\"discount\":0,\
         \"discountType\":0,\"taxPercent\":9,\"chargePercent\":0,\"gift\":0,\
         \"description\":null,\"deleted\":false,{}}}",
        stamps(rv)
    )
}

/// The reference records a shop has before anything else: its visitor,
/// customer groups and product categories, as (collection, id, JSON text
/// without the row version's stamps).
pub(crate) fn mahak_reference(visitor: i64) -> Vec<(&'static str, i64, String)> {
    let mut out = vec![(
        "visitors",
        visitor,
        format!(
            "{{\"visitorId\":{visitor},\"visitorClientId\":0,\"visitorCode\":{visitor},\
             \"name\":\"فروشگاه مركزي \",\"deleted\":false"
        ),
    )];
    for (i, g) in ["مشتريان عمده", "مشتريان خرده ", "همكاران"]
        .iter()
        .enumerate()
    {
        let id = i as i64 + 1;
        out.push((
            "personGroups",
            id,
            format!(
                "{{\"personGroupId\":{id},\"personGroupClientId\":0,\"personGroupCode\":{id},\
                 \"name\":\"{g}\",\"deleted\":false"
            ),
        ));
    }
    for (i, c) in ["نوشيدني", "خشكبار", "پوشاك", "لبنيات "].iter().enumerate()
    {
        let id = i as i64 + 1;
        out.push((
            "productCategories",
            id,
            format!(
                "{{\"productCategoryId\":{id},\"productCategoryClientId\":0,\
                 \"productCategoryCode\":{id},\"name\":\"{c}\",\"deleted\":false"
            ),
        ));
    }
    out
}

/// Closes a reference record's text with its stamps.
pub(crate) fn close(text: &str, rv: i64) -> String {
    format!("{text},{}}}", stamps(rv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_records_are_json_of_about_250_bytes() {
        let mut rng = fastrand::Rng::with_seed(1);
        for i in 1..50 {
            for text in [
                product(&mut rng, i, i * 10),
                person(&mut rng, i, i * 10),
                mahak_product(&mut rng, i, 2, i * 10),
                mahak_product_detail(&mut rng, i, i, i * 10).0,
                mahak_visitor_product(&mut rng, i, i, 31, 5, i * 10),
                mahak_person(&mut rng, i, 1, i * 10),
                mahak_visitor_person(i, i, 31, i * 10),
                mahak_order(&mut rng, i, 0, i, 31, ORDER_TYPES[(i % 5) as usize], i * 10),
                mahak_order_detail(&mut rng, (i, 0), (i, 0), i, i * 10),
            ] {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v["rowVersion"], i * 10);
                assert!((180..800).contains(&text.len()), "{} {text}", text.len());
            }
        }
    }
}
