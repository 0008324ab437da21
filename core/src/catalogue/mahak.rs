//! The mahak dialect's catalogue: the 57 collections of the real server's
//! Swagger (`CommitDataModel` in `tests/fixtures/mahak/swagger-v3.json`),
//! parents first. Each names its singular key (`<key>Id`, `<key>ClientId`,
//! `<key>Code`), its pull key in `RequestAllDataModel`, and every parent it
//! links to by a `<parent>Id` + `<parent>ClientId` pair. The table was
//! derived from the Swagger; the test below derives it again and fails when
//! the two disagree.
//!
//! Two links of the Swagger are left out because they would make a cycle:
//! `orders` names a `receipt` and a `payment`, while receipts and payments
//! name their `order`. A receipt or payment is written after its order, so
//! the order is their parent.

use super::collection::{CollectionDef, ConflictPolicy};

#[derive(Clone, Copy)]
enum Policy {
    ServerWins,
    Merge,
    Financial,
}
use Policy::{Financial, Merge, ServerWins};

struct Spec {
    name: &'static str,
    key: &'static str,
    /// The server id field when it is not `<key>Id`.
    id: Option<&'static str>,
    pull: &'static str,
    code: Option<&'static str>,
    /// Singular keys of the parents linked to.
    links: &'static [&'static str],
    /// The parent a record cannot exist without.
    primary: Option<&'static str>,
    policy: Policy,
    /// No client id in the model (or no ids at all): reference data.
    read_only: bool,
}

#[rustfmt::skip]
const SPECS: &[Spec] = &[
    Spec { name: "bankGroups", key: "bankGroup", id: None, pull: "fromBankGroupVersion", code: Some("bankGroupCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "banks", key: "bank", id: None, pull: "fromBankVersion", code: Some("bankCode"), links: &["bankGroup"], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "currencies", key: "currency", id: None, pull: "fromCurrencyVersion", code: Some("currencyCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "cashes", key: "cash", id: None, pull: "fromCashVersion", code: Some("cashCode"), links: &[], primary: None, policy: Financial, read_only: false },
    Spec { name: "expenseGroups", key: "expenseGroup", id: None, pull: "fromExpenseGroupVersion", code: Some("expenseGroupCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "personGroups", key: "personGroup", id: None, pull: "fromPersonGroupVersion", code: Some("personGroupCode"), links: &[], primary: None, policy: Merge, read_only: false },
    Spec { name: "people", key: "person", id: None, pull: "fromPersonVersion", code: Some("personCode"), links: &["personGroup"], primary: None, policy: Merge, read_only: false },
    Spec { name: "checklists", key: "checklist", id: None, pull: "fromChecklistVersion", code: Some("checklistCode"), links: &["person"], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "orders", key: "order", id: None, pull: "fromOrderVersion", code: Some("orderCode"), links: &["person"], primary: None, policy: Financial, read_only: false },
    Spec { name: "personAddresses", key: "personAddress", id: None, pull: "fromPersonAddressVersion", code: Some("personAddressCode"), links: &["person"], primary: Some("person"), policy: Merge, read_only: false },
    Spec { name: "pictures", key: "picture", id: None, pull: "fromPictureVersion", code: Some("pictureCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "photoGalleries", key: "photoGallery", id: None, pull: "fromPhotoGalleryVersion", code: None, links: &[], primary: None, policy: ServerWins, read_only: true },
    Spec { name: "productCategories", key: "productCategory", id: None, pull: "fromProductCategoryVersion", code: Some("productCategoryCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "products", key: "product", id: None, pull: "fromProductVersion", code: Some("productCode"), links: &["productCategory"], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "productDetails", key: "productDetail", id: None, pull: "fromProductDetailVersion", code: Some("productDetailCode"), links: &["product"], primary: Some("product"), policy: ServerWins, read_only: false },
    Spec { name: "orderDetails", key: "orderDetail", id: None, pull: "fromOrderDetailVersion", code: None, links: &["order", "productDetail"], primary: Some("order"), policy: Financial, read_only: false },
    Spec { name: "productProperties", key: "productProperty", id: None, pull: "fromProductPropertyVersion", code: None, links: &["product"], primary: Some("product"), policy: ServerWins, read_only: true },
    Spec { name: "propertyDescriptions", key: "propertyDescription", id: None, pull: "fromPropertyDescriptionVersion", code: Some("propertyDescriptionCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "propertyDescriptionValues", key: "propertyDescriptionValue", id: None, pull: "fromPropertyDescriptionValueVersion", code: Some("propertyDescriptionValueCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "productDetailStoreAssets", key: "productDetailStoreAsset", id: None, pull: "fromProductDetailStoreAssetVersion", code: None, links: &[], primary: None, policy: ServerWins, read_only: true },
    Spec { name: "receipts", key: "receipt", id: None, pull: "fromReceiptVersion", code: Some("receiptCode"), links: &["order"], primary: None, policy: Financial, read_only: false },
    Spec { name: "cheques", key: "cheque", id: None, pull: "fromChequeVersion", code: Some("chequeCode"), links: &["receipt", "bank"], primary: None, policy: Financial, read_only: false },
    Spec { name: "transactions", key: "transaction", id: None, pull: "fromTransactionVersion", code: Some("transactionCode"), links: &[], primary: None, policy: Financial, read_only: false },
    Spec { name: "visitors", key: "visitor", id: None, pull: "fromVisitorVersion", code: Some("visitorCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "visitorCashes", key: "visitorCash", id: None, pull: "fromVisitorCashVersion", code: None, links: &["cash", "visitor"], primary: None, policy: Financial, read_only: true },
    Spec { name: "visitorBanks", key: "visitorBank", id: None, pull: "fromVisitorBankVersion", code: None, links: &["bank", "visitor"], primary: None, policy: Financial, read_only: true },
    Spec { name: "visitorPeople", key: "visitorPerson", id: None, pull: "fromVisitorPersonVersion", code: None, links: &["person", "visitor"], primary: None, policy: ServerWins, read_only: true },
    Spec { name: "visitorLocations", key: "visitorLocation", id: None, pull: "fromVisitorLocationVersion", code: None, links: &[], primary: None, policy: ServerWins, read_only: true },
    Spec { name: "visitorProducts", key: "visitorProduct", id: None, pull: "fromVisitorProductVersion", code: None, links: &["productDetail", "visitor"], primary: None, policy: ServerWins, read_only: true },
    Spec { name: "promotions", key: "promotion", id: None, pull: "fromPromotionVersion", code: Some("promotionCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "promotionDetails", key: "promotionDetail", id: None, pull: "fromPromotionDetailVersion", code: Some("promotionDetailCode"), links: &["promotion"], primary: Some("promotion"), policy: ServerWins, read_only: false },
    Spec { name: "promotionEntities", key: "promotionEntity", id: None, pull: "fromPromotionEntityVersion", code: Some("promotionEntityCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "returnReasons", key: "returnReason", id: None, pull: "fromReturnReasonVersion", code: Some("returnReasonCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "transferAccounts", key: "transferAccount", id: None, pull: "fromTransferAccountVersion", code: Some("transferAccountCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "transferStores", key: "transferStore", id: None, pull: "fromTransferStoreVersion", code: Some("transferStoreCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "transferStoreDetails", key: "transferStoreDetail", id: None, pull: "fromTransferStoreDetailVersion", code: None, links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "expenses", key: "expense", id: None, pull: "fromExpenseVersion", code: Some("expenseCode"), links: &["expenseGroup"], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "visitorExpenses", key: "visitorExpense", id: None, pull: "fromVisitorExpenseVersion", code: None, links: &["expense", "visitor"], primary: None, policy: Financial, read_only: true },
    Spec { name: "incomeGroups", key: "incomeGroup", id: None, pull: "fromIncomeGroupVersion", code: Some("incomeGroupCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "incomes", key: "income", id: None, pull: "fromIncomeVersion", code: Some("incomeCode"), links: &["incomeGroup"], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "visitorIncomes", key: "visitorIncome", id: None, pull: "fromVisitorIncomeVersion", code: None, links: &["income", "visitor"], primary: None, policy: Financial, read_only: true },
    Spec { name: "costLevelNames", key: "costLevelName", id: None, pull: "fromCostLevelNameVersion", code: Some("costLevelNameCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "notRegisters", key: "notRegister", id: None, pull: "fromNotRegisterVersion", code: Some("notRegisterCode"), links: &["person"], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "projects", key: "project", id: None, pull: "fromProjectVersion", code: Some("projectCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "stores", key: "store", id: None, pull: "fromStoreVersion", code: Some("storeCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "settings", key: "setting", id: None, pull: "fromSettingVersion", code: Some("settingCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "extraDatas", key: "extraData", id: None, pull: "fromExtraDataVersion", code: None, links: &[], primary: None, policy: ServerWins, read_only: true },
    Spec { name: "regions", key: "region", id: Some("cityID"), pull: "fromRegionVersion", code: None, links: &[], primary: None, policy: ServerWins, read_only: true },
    Spec { name: "missions", key: "mission", id: None, pull: "fromMissionVersion", code: Some("missionCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "missionDetails", key: "missionDetail", id: None, pull: "fromMissionDetailVersion", code: Some("missionDetailCode"), links: &["person", "mission"], primary: Some("mission"), policy: ServerWins, read_only: false },
    Spec { name: "units", key: "unit", id: None, pull: "fromUnitVersion", code: Some("unitCode"), links: &[], primary: None, policy: ServerWins, read_only: false },
    Spec { name: "orderTaxStatuses", key: "orderTaxStatus", id: None, pull: "fromOrderTaxStatusVersion", code: None, links: &[], primary: None, policy: ServerWins, read_only: true },
    Spec { name: "companies", key: "companyInfo", id: None, pull: "fromCompanyVersion", code: None, links: &[], primary: None, policy: ServerWins, read_only: true },
    Spec { name: "payments", key: "payment", id: None, pull: "fromPaymentVersion", code: Some("paymentCode"), links: &["order"], primary: None, policy: Financial, read_only: false },
    Spec { name: "paymentCheques", key: "paymentCheque", id: None, pull: "fromPaymentChequeVersion", code: Some("paymentChequeCode"), links: &["payment", "bank"], primary: Some("payment"), policy: Financial, read_only: false },
    Spec { name: "mahakpays", key: "mahakPay", id: None, pull: "fromMahakPayVersion", code: Some("mahakPayCode"), links: &[], primary: None, policy: Financial, read_only: false },
    Spec { name: "taxOrderReceipts", key: "taxOrderReceipt", id: None, pull: "fromTaxOrderReceiptVersion", code: Some("taxOrderReceiptCode"), links: &[], primary: None, policy: Financial, read_only: false },
];

/// The collections, parents first.
pub(super) fn collections() -> Vec<CollectionDef> {
    fn name_of(key: &'static str) -> &'static str {
        SPECS.iter().find(|s| s.key == key).map_or(key, |s| s.name)
    }
    SPECS
        .iter()
        .map(|s| {
            let mut def = CollectionDef::new(s.name, s.key);
            if let Some(id) = s.id {
                def.id_field = id.to_string();
            }
            def.pull_key = Some(s.pull.to_string());
            if let Some(code) = s.code {
                def = def.with_code(code);
            }
            for link in s.links {
                def = if s.primary == Some(*link) {
                    def.with_parent(name_of(link), link)
                } else {
                    def.with_link(name_of(link), link)
                };
            }
            def = match s.policy {
                ServerWins => def,
                Merge => def.with_policy(ConflictPolicy::FieldMerge),
                Financial => def.financial(),
            };
            if s.read_only {
                def = def.read_only();
            }
            def
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::Catalogue;
    use serde_json::Value;
    use std::collections::{BTreeMap, BTreeSet};

    fn swagger() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/mahak/swagger-v3.json"
        );
        let text = std::fs::read_to_string(path).expect("the Swagger fixture is in the repo");
        serde_json::from_str(&text).expect("the Swagger is JSON")
    }

    fn props<'a>(defs: &'a Value, model: &str) -> Vec<&'a str> {
        defs[model]["properties"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Derives, from the Swagger alone, what the table must say of each
    /// collection: key, id, client id, code, pull key and parent links.
    #[test]
    fn the_catalogue_matches_the_swagger() {
        let s = swagger();
        let defs = &s["definitions"];
        let commit = defs["CommitDataModel"]["properties"]
            .as_object()
            .expect("CommitDataModel");
        let pull_keys: BTreeSet<&str> = props(defs, "RequestAllDataModel").into_iter().collect();
        let mut keys: BTreeMap<String, String> = BTreeMap::new();
        let mut models = Vec::new();
        for (name, v) in commit {
            let model = v["items"]["$ref"]
                .as_str()
                .and_then(|r| r.rsplit('/').next())
                .expect("a $ref");
            let entity = model.trim_end_matches("Model");
            let key = format!("{}{}", entity[..1].to_lowercase(), &entity[1..]);
            let p = props(defs, model);
            if p.contains(&format!("{key}Id").as_str()) {
                keys.insert(key.clone(), name.clone());
            }
            models.push((name.clone(), entity.to_string(), key, p));
        }
        let cat = Catalogue::mahak();
        assert_eq!(
            cat.len(),
            commit.len(),
            "one collection per CommitDataModel key"
        );
        assert_eq!(cat.len(), 57);
        for (name, entity, key, p) in &models {
            let def = cat
                .require(name)
                .expect("every Swagger collection is in the catalogue");
            let has = |f: &str| p.contains(&f);
            if has(&format!("{key}Id")) {
                assert_eq!(def.key, *key, "{name}");
                assert_eq!(def.id_field, format!("{key}Id"), "{name}");
                assert_eq!(def.client_id_field, format!("{key}ClientId"), "{name}");
                assert_eq!(def.read_only, !has(&def.client_id_field), "{name}");
            } else {
                assert!(def.read_only, "{name} has no ids of the usual form");
                assert!(has(&def.id_field), "{name}: `{}`", def.id_field);
            }
            let code = format!("{key}Code");
            assert_eq!(
                def.code_field.as_deref(),
                has(&code).then_some(code.as_str()),
                "{name}"
            );
            // The pull key is in RequestAllDataModel and names this entity.
            let pull = def.pull_key();
            assert!(pull_keys.contains(pull.as_str()), "{name}: {pull}");
            let stem = &pull["from".len()..pull.len() - "Version".len()];
            assert!(entity.starts_with(stem), "{name}: {pull} vs {entity}");
            // Every <p>Id + <p>ClientId pair naming another collection is a
            // link, but the two that would make a cycle.
            let mut expected: BTreeSet<String> = BTreeSet::new();
            for f in p {
                if let Some(pk) = f.strip_suffix("ClientId") {
                    if pk != key && has(&format!("{pk}Id")) {
                        if let Some(parent) = keys.get(pk) {
                            expected.insert(parent.clone());
                        }
                    }
                }
            }
            if name == "orders" {
                expected.remove("receipts");
                expected.remove("payments");
            }
            let got: BTreeSet<String> = def.links.iter().map(|l| l.collection.clone()).collect();
            assert_eq!(got, expected, "{name}");
            for link in &def.links {
                assert!(
                    cat.position(&link.collection) < cat.position(name),
                    "{name} comes after its parent {}",
                    link.collection
                );
                let parent = cat.require(&link.collection).expect("parent");
                assert_eq!(link.id_field, parent.id_field, "{name}");
                assert_eq!(link.client_id_field, parent.client_id_field, "{name}");
            }
        }
    }

    #[test]
    fn order_lines_link_orders_and_product_details() {
        let cat = Catalogue::mahak();
        let od = cat.require("orderDetails").expect("orderDetails");
        let parent = od.parent.as_ref().expect("an order line needs its order");
        assert_eq!(parent.collection, "orders");
        let linked: Vec<&str> = od.links.iter().map(|l| l.collection.as_str()).collect();
        assert_eq!(linked, ["orders", "productDetails"]);
        assert_eq!(od.pull_key(), "fromOrderDetailVersion");
        assert_eq!(
            cat.require("people").expect("people").pull_key(),
            "fromPersonVersion"
        );
        assert!(cat.require("regions").expect("regions").read_only);
        assert!(cat.get("invoices").is_none() && cat.get("persons").is_none());
    }

    #[test]
    fn policies_follow_the_issue() {
        use super::super::ConflictPolicy::{FieldMerge, ServerWins};
        let cat = Catalogue::mahak();
        for name in [
            "orders",
            "orderDetails",
            "receipts",
            "payments",
            "paymentCheques",
            "cheques",
            "cashes",
            "transactions",
            "taxOrderReceipts",
            "mahakpays",
            "visitorCashes",
            "visitorBanks",
            "visitorIncomes",
            "visitorExpenses",
        ] {
            let d = cat.require(name).expect(name);
            assert!(d.financial && d.policy == ServerWins, "{name}");
        }
        for name in ["people", "personGroups", "personAddresses"] {
            assert_eq!(cat.require(name).expect(name).policy, FieldMerge, "{name}");
        }
        assert_eq!(
            cat.require("products").expect("products").policy,
            ServerWins
        );
    }
}
