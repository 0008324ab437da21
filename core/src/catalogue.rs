//! The collections catalogue: which collections exist, how their records are
//! identified (server id, client id, code), which collection is the parent of
//! which, and how conflicts are resolved. It is data, not code: the 18 Mahak
//! collections of PROTOCOL.md section 4 are built in, and an app can register
//! more or change a non-financial collection's policy.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// How a conflict between a pending local change and a newer server version
/// is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// The server version replaces the local one; the local change is logged
    /// and dropped.
    ServerWins,
    /// Fields changed on one side only are merged; fields changed on both sides
    /// take the server value and are logged.
    FieldMerge,
}

impl ConflictPolicy {
    /// The policy's stable name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictPolicy::ServerWins => "server_wins",
            ConflictPolicy::FieldMerge => "field_merge",
        }
    }
}

/// A child collection's link to its parent collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentLink {
    /// The parent collection, for example `orders`.
    pub collection: String,
    /// The field in the child holding the parent's server id (`orderId`).
    pub id_field: String,
    /// The field in the child holding the parent's client id (`orderClientId`).
    pub client_id_field: String,
}

/// One collection of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionDef {
    /// Collection name as on the wire, for example `orders`.
    pub name: String,
    /// Singular key, for example `order`.
    pub key: String,
    /// Server id field, `<key>Id`.
    pub id_field: String,
    /// Client id field, `<key>ClientId`.
    pub client_id_field: String,
    /// Business code field, if the collection has one.
    pub code_field: Option<String>,
    /// Parent link, for detail collections.
    pub parent: Option<ParentLink>,
    /// Conflict policy.
    pub policy: ConflictPolicy,
    /// Financial collections always stay server-wins.
    pub financial: bool,
}

impl CollectionDef {
    /// A collection named `name` with singular `key`, no code, no parent,
    /// server-wins, not financial.
    pub fn new(name: &str, key: &str) -> Self {
        CollectionDef {
            name: name.to_string(),
            key: key.to_string(),
            id_field: format!("{key}Id"),
            client_id_field: format!("{key}ClientId"),
            code_field: None,
            parent: None,
            policy: ConflictPolicy::ServerWins,
            financial: false,
        }
    }

    /// Sets the code field.
    pub fn with_code(mut self, field: &str) -> Self {
        self.code_field = Some(field.to_string());
        self
    }

    /// Makes this a child of `parent` (whose singular key is `parent_key`).
    pub fn with_parent(mut self, parent: &str, parent_key: &str) -> Self {
        self.parent = Some(ParentLink {
            collection: parent.to_string(),
            id_field: format!("{parent_key}Id"),
            client_id_field: format!("{parent_key}ClientId"),
        });
        self
    }

    /// Sets the conflict policy.
    pub fn with_policy(mut self, policy: ConflictPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Marks the collection financial (always server-wins).
    pub fn financial(mut self) -> Self {
        self.financial = true;
        self.policy = ConflictPolicy::ServerWins;
        self
    }

    /// The pull checkpoint field of `GetAllDataV2`, `<name>RowVersion`.
    pub fn checkpoint_field(&self) -> String {
        format!("{}RowVersion", self.name)
    }
}

/// The set of collections the engine knows, in dependency order (a parent
/// always comes before its children).
#[derive(Debug, Clone)]
pub struct Catalogue {
    collections: Vec<CollectionDef>,
    index: HashMap<String, usize>,
}

impl Default for Catalogue {
    fn default() -> Self {
        Self::mahak()
    }
}

impl Catalogue {
    /// An empty catalogue.
    pub fn empty() -> Self {
        Catalogue {
            collections: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// The 18 collections of the Mahak Sync API (PROTOCOL.md section 4).
    pub fn mahak() -> Self {
        use ConflictPolicy::FieldMerge;
        let defs = [
            CollectionDef::new("banks", "bank").with_code("bankCode"),
            CollectionDef::new("bankGroups", "bankGroup"),
            CollectionDef::new("cashes", "cash")
                .with_code("cashCode")
                .financial(),
            CollectionDef::new("cheques", "cheque")
                .with_code("chequeCode")
                .financial(),
            CollectionDef::new("checklists", "checklist"),
            CollectionDef::new("persons", "person")
                .with_code("personCode")
                .with_policy(FieldMerge),
            CollectionDef::new("personGroups", "personGroup").with_policy(FieldMerge),
            CollectionDef::new("products", "product").with_code("productCode"),
            CollectionDef::new("productCategories", "productCategory"),
            CollectionDef::new("productDetails", "productDetail")
                .with_parent("products", "product"),
            CollectionDef::new("orders", "order"),
            CollectionDef::new("orderDetails", "orderDetail").with_parent("orders", "order"),
            CollectionDef::new("invoices", "invoice")
                .with_code("invoiceCode")
                .financial(),
            CollectionDef::new("invoiceDetails", "invoiceDetail")
                .with_parent("invoices", "invoice")
                .financial(),
            CollectionDef::new("payments", "payment").financial(),
            CollectionDef::new("receipts", "receipt").financial(),
            CollectionDef::new("journalEntries", "journalEntry").financial(),
            CollectionDef::new("journalEntryLines", "journalEntryLine")
                .with_parent("journalEntries", "journalEntry")
                .financial(),
        ];
        let mut cat = Catalogue::empty();
        for def in defs {
            cat.push(def);
        }
        cat
    }

    fn push(&mut self, def: CollectionDef) {
        self.index.insert(def.name.clone(), self.collections.len());
        self.collections.push(def);
    }

    /// Registers an app-defined collection. Its parent, if any, must already
    /// be registered, so the dependency order holds.
    pub fn register(&mut self, def: CollectionDef) -> Result<()> {
        if def.name.is_empty() || def.key.is_empty() {
            return Err(Error::Config(
                "a collection needs a name and a key".to_string(),
            ));
        }
        if self.index.contains_key(&def.name) {
            return Err(Error::Config(format!(
                "collection `{}` is already registered",
                def.name
            )));
        }
        if let Some(parent) = &def.parent {
            if !self.index.contains_key(&parent.collection) {
                return Err(Error::UnknownCollection(parent.collection.clone()));
            }
        }
        self.push(def);
        Ok(())
    }

    /// Changes a collection's conflict policy. Financial collections always
    /// stay server-wins.
    pub fn set_policy(&mut self, name: &str, policy: ConflictPolicy) -> Result<()> {
        let idx = *self
            .index
            .get(name)
            .ok_or_else(|| Error::UnknownCollection(name.to_string()))?;
        let def = &mut self.collections[idx];
        if def.financial && policy != ConflictPolicy::ServerWins {
            return Err(Error::Config(format!(
                "`{name}` is a financial collection: it always stays server-wins"
            )));
        }
        def.policy = policy;
        Ok(())
    }

    /// The collection named `name`.
    pub fn get(&self, name: &str) -> Option<&CollectionDef> {
        self.index.get(name).map(|&i| &self.collections[i])
    }

    /// The collection named `name`, or `UnknownCollection`.
    pub fn require(&self, name: &str) -> Result<&CollectionDef> {
        self.get(name)
            .ok_or_else(|| Error::UnknownCollection(name.to_string()))
    }

    /// Position of a collection in dependency order.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// All collections, parents before children.
    pub fn iter(&self) -> impl Iterator<Item = &CollectionDef> {
        self.collections.iter()
    }

    /// Number of collections.
    pub fn len(&self) -> usize {
        self.collections.len()
    }

    /// True when no collection is registered.
    pub fn is_empty(&self) -> bool {
        self.collections.is_empty()
    }

    /// The collections whose parent is `name`.
    pub fn children_of<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a CollectionDef> + 'a {
        self.collections
            .iter()
            .filter(move |c| c.parent.as_ref().is_some_and(|p| p.collection == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mahak_catalogue_has_18_collections_with_parents_first() {
        let cat = Catalogue::mahak();
        assert_eq!(cat.len(), 18);
        for def in cat.iter() {
            if let Some(p) = &def.parent {
                assert!(cat.position(&p.collection) < cat.position(&def.name));
            }
        }
        let od = cat.require("orderDetails").unwrap();
        assert_eq!(od.id_field, "orderDetailId");
        assert_eq!(od.client_id_field, "orderDetailClientId");
        let p = od.parent.as_ref().unwrap();
        assert_eq!(
            (p.id_field.as_str(), p.client_id_field.as_str()),
            ("orderId", "orderClientId")
        );
        assert_eq!(
            cat.require("journalEntries").unwrap().id_field,
            "journalEntryId"
        );
        assert_eq!(
            cat.require("orders").unwrap().checkpoint_field(),
            "ordersRowVersion"
        );
    }

    #[test]
    fn policies_follow_the_protocol() {
        let cat = Catalogue::mahak();
        for name in [
            "cashes",
            "cheques",
            "invoices",
            "invoiceDetails",
            "payments",
            "receipts",
            "journalEntries",
            "journalEntryLines",
        ] {
            let d = cat.require(name).unwrap();
            assert!(d.financial, "{name}");
            assert_eq!(d.policy, ConflictPolicy::ServerWins);
        }
        assert_eq!(
            cat.require("persons").unwrap().policy,
            ConflictPolicy::FieldMerge
        );
        assert_eq!(
            cat.require("personGroups").unwrap().policy,
            ConflictPolicy::FieldMerge
        );
        assert_eq!(
            cat.require("products").unwrap().policy,
            ConflictPolicy::ServerWins
        );
    }

    #[test]
    fn financial_policy_cannot_change_but_others_can() {
        let mut cat = Catalogue::mahak();
        assert!(matches!(
            cat.set_policy("payments", ConflictPolicy::FieldMerge),
            Err(Error::Config(_))
        ));
        cat.set_policy("products", ConflictPolicy::FieldMerge)
            .unwrap();
        assert_eq!(
            cat.require("products").unwrap().policy,
            ConflictPolicy::FieldMerge
        );
        assert!(matches!(
            cat.set_policy("nope", ConflictPolicy::ServerWins),
            Err(Error::UnknownCollection(_))
        ));
    }

    #[test]
    fn apps_register_collections_after_their_parent() {
        let mut cat = Catalogue::mahak();
        cat.register(CollectionDef::new("visits", "visit")).unwrap();
        cat.register(CollectionDef::new("visitNotes", "visitNote").with_parent("visits", "visit"))
            .unwrap();
        assert!(cat.register(CollectionDef::new("visits", "visit")).is_err());
        assert!(matches!(
            cat.register(CollectionDef::new("x", "x").with_parent("ghosts", "ghost")),
            Err(Error::UnknownCollection(_))
        ));
        assert_eq!(cat.children_of("visits").count(), 1);
    }
}
