//! The collections catalogue: which collections exist, how their records are
//! identified (server id, client id, code), which collections a record links
//! to as parents, and how conflicts are resolved. It is data, not code: the
//! 57 collections of the real server's Swagger (`mahak.rs`, the default) and
//! the 18 of the documented dialect (PROTOCOL.md section 4) are built in, and
//! an app can register more or change a non-financial collection's policy.

mod collection;
mod mahak;

use std::collections::HashMap;

use crate::error::{Error, Result};

pub use collection::{CollectionDef, ConflictPolicy, ParentLink};

/// The set of collections the engine knows, in dependency order (a parent
/// always comes before its children).
#[derive(Debug, Clone)]
pub struct Catalogue {
    collections: Vec<CollectionDef>,
    index: HashMap<String, usize>,
    /// The dialect whose naming local writes are put in (the mahak one keeps
    /// records in camelCase whatever case they come in: the server answers
    /// in PascalCase), if any.
    naming: Option<Dialect>,
}

impl Default for Catalogue {
    fn default() -> Self {
        Self::mahak()
    }
}

/// Which dialect of the Mahak Sync API the engine speaks (see
/// `docs/WIRE.md` and `docs/PROTOCOL.md`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// What the production Mahak server speaks (the default).
    #[default]
    Mahak,
    /// The API as the seed document describes it.
    Documented,
}

impl Dialect {
    /// The dialect's stable name (`mahak`, `documented`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Mahak => "mahak",
            Dialect::Documented => "documented",
        }
    }

    /// The built-in catalogue of this dialect.
    pub fn catalogue(self) -> Catalogue {
        match self {
            Dialect::Mahak => Catalogue::mahak(),
            Dialect::Documented => Catalogue::documented(),
        }
    }
}

impl std::str::FromStr for Dialect {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mahak" => Ok(Dialect::Mahak),
            "documented" => Ok(Dialect::Documented),
            other => Err(Error::Config(format!(
                "unknown dialect `{}`: use `mahak` or `documented`",
                other.escape_debug()
            ))),
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Catalogue {
    /// An empty catalogue.
    pub fn empty() -> Self {
        Catalogue {
            collections: Vec::new(),
            index: HashMap::new(),
            naming: None,
        }
    }

    /// The 57 collections of the real server's Swagger (`CommitDataModel`),
    /// parents first, with every parent link (WIRE.md section 5).
    pub fn mahak() -> Self {
        let mut cat = Catalogue::empty();
        for def in mahak::collections() {
            cat.push(def);
        }
        cat.naming = Some(Dialect::Mahak);
        cat
    }

    /// The 18 collections of the documented dialect (PROTOCOL.md section 4).
    pub fn documented() -> Self {
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
        for link in def.parent.iter().chain(&def.links) {
            if !self.index.contains_key(&link.collection) {
                return Err(Error::UnknownCollection(link.collection.clone()));
            }
        }
        let mut def = def;
        if let Some(parent) = def.parent.clone() {
            if !def.links.contains(&parent) {
                def.links.push(parent);
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

    /// True when records are kept in camelCase whatever case the app or
    /// the server writes them in (`Name` and `name` are one field).
    pub fn camel_keys(&self) -> bool {
        self.naming.is_some()
    }

    /// The dialect whose naming a local write is put in before it is
    /// stored (its codec's `normalise_local`), if any.
    pub fn local_naming(&self) -> Option<Dialect> {
        self.naming
    }

    /// Number of collections.
    pub fn len(&self) -> usize {
        self.collections.len()
    }

    /// True when no collection is registered.
    pub fn is_empty(&self) -> bool {
        self.collections.is_empty()
    }

    /// The collections that link to `name`, with the link.
    pub fn linking_to<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a CollectionDef, &'a ParentLink)> + 'a {
        self.collections.iter().flat_map(move |c| {
            c.links
                .iter()
                .filter(move |l| l.collection == name)
                .map(move |l| (c, l))
        })
    }

    /// `chosen` with their link collections, in dependency order: what a
    /// pull of `chosen` takes so their records stay whole. A collection's
    /// link collections are its required children (a product's details:
    /// a detail cannot exist without its product), and theirs, and the
    /// required parent of each of those; and the read-only collections
    /// that link to any of them (the server's reference data about them:
    /// a visitor's stock of a product detail). So `products` comes with
    /// `productDetails`, `productProperties` and `visitorProducts`;
    /// `orders` with `orderDetails`; `people` with `personAddresses` and
    /// `visitorPeople`. A collection that merely links to them and that
    /// the app writes (an order line links to a product detail) is not
    /// taken: it is the app's data, pulled with its own parent.
    /// `UnknownCollection` for a name not in the catalogue.
    pub fn with_links<S: AsRef<str>>(&self, chosen: &[S]) -> Result<Vec<String>> {
        let mut taken: Vec<bool> = vec![false; self.collections.len()];
        let mut todo: Vec<usize> = Vec::new();
        for name in chosen {
            let name = name.as_ref();
            let i = *self
                .index
                .get(name)
                .ok_or_else(|| Error::UnknownCollection(name.to_string()))?;
            todo.push(i);
        }
        // Required parents and children, to a fixed point.
        while let Some(i) = todo.pop() {
            if std::mem::replace(&mut taken[i], true) {
                continue;
            }
            let def = &self.collections[i];
            let parent = def
                .parent
                .as_ref()
                .and_then(|p| self.index.get(&p.collection));
            let children = self
                .children_of(&def.name)
                .filter_map(|c| self.index.get(&c.name));
            todo.extend(parent.into_iter().chain(children).copied());
        }
        let core: Vec<usize> = (0..taken.len()).filter(|&i| taken[i]).collect();
        for i in core {
            let name = &self.collections[i].name;
            for (c, _) in self.linking_to(name).filter(|(c, _)| c.read_only) {
                if let Some(&j) = self.index.get(&c.name) {
                    taken[j] = true;
                }
            }
        }
        Ok(self
            .collections
            .iter()
            .zip(taken)
            .filter(|(_, t)| *t)
            .map(|(c, _)| c.name.clone())
            .collect())
    }

    /// The collections whose required parent is `name`.
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
    fn link_collections_come_with_the_chosen_ones() {
        let cat = Catalogue::mahak();
        let with = |names: &[&str]| cat.with_links(names).unwrap();
        assert_eq!(
            with(&["products"]),
            [
                "products",
                "productDetails",
                "productProperties",
                "visitorProducts"
            ]
        );
        assert_eq!(with(&["productDetails"]), with(&["products"]));
        assert_eq!(with(&["orders"]), ["orders", "orderDetails"]);
        assert_eq!(
            with(&["people"]),
            ["people", "personAddresses", "visitorPeople"]
        );
        assert_eq!(with(&["visitorProducts"]), ["visitorProducts"]);
        assert_eq!(
            with(&["visitorProducts", "regions"]),
            ["visitorProducts", "regions"]
        );
        assert!(matches!(
            cat.with_links(&["products", "nope"]),
            Err(Error::UnknownCollection(n)) if n == "nope"
        ));
    }

    #[test]
    fn documented_catalogue_has_18_collections_with_parents_first() {
        let cat = Catalogue::documented();
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
        let cat = Catalogue::documented();
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
