//! One collection's definition: its names and id fields, the parents its
//! records link to, and its conflict policy.

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

/// A child collection's link to a parent collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentLink {
    /// The parent collection, for example `orders`.
    pub collection: String,
    /// The field in the child holding the parent's server id (`orderId`).
    pub id_field: String,
    /// The field in the child holding the parent's client id (`orderClientId`).
    pub client_id_field: String,
}

impl ParentLink {
    /// The link to `collection`, whose singular key is `key`.
    pub fn new(collection: &str, key: &str) -> Self {
        ParentLink {
            collection: collection.to_string(),
            id_field: format!("{key}Id"),
            client_id_field: format!("{key}ClientId"),
        }
    }
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
    /// The parent a record cannot exist without (an order line's order), if
    /// any: required at create, and the link a cascade follows.
    pub parent: Option<ParentLink>,
    /// Every parent link of the collection, the required one included (an
    /// order line links to `orders` and to `productDetails`). Parents come
    /// before children in the catalogue, so they are saved first.
    pub links: Vec<ParentLink>,
    /// The pull request's key for this collection in the mahak dialect
    /// (`fromPersonVersion`); `None` derives it from the key.
    pub pull_key: Option<String>,
    /// Reference data the app cannot write (`regions`, collections with no
    /// client id to map a saved record back).
    pub read_only: bool,
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
            links: Vec::new(),
            pull_key: None,
            read_only: false,
            policy: ConflictPolicy::ServerWins,
            financial: false,
        }
    }

    /// Sets the code field.
    pub fn with_code(mut self, field: &str) -> Self {
        self.code_field = Some(field.to_string());
        self
    }

    /// Makes this a child of `parent` (whose singular key is `parent_key`):
    /// a record needs it, and it is one of the links.
    pub fn with_parent(mut self, parent: &str, parent_key: &str) -> Self {
        let link = ParentLink::new(parent, parent_key);
        self.links.retain(|l| l.collection != parent);
        self.links.push(link.clone());
        self.parent = Some(link);
        self
    }

    /// Adds an optional link to `parent` (whose singular key is
    /// `parent_key`): a record may name it by server id or client id.
    pub fn with_link(mut self, parent: &str, parent_key: &str) -> Self {
        if !self.links.iter().any(|l| l.collection == parent) {
            self.links.push(ParentLink::new(parent, parent_key));
        }
        self
    }

    /// Marks the collection read-only: the app cannot write it.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// The mahak dialect's pull key, `from<Key>Version` unless set.
    pub fn pull_key(&self) -> String {
        match &self.pull_key {
            Some(k) => k.clone(),
            None => {
                let mut chars = self.key.chars();
                match chars.next() {
                    Some(first) => format!("from{}{}Version", first.to_uppercase(), chars.as_str()),
                    None => "fromVersion".to_string(),
                }
            }
        }
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
