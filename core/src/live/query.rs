//! A live query as the app writes it ([`Query`]: a collection, equality
//! filters, an order, a limit), its validation against the catalogue into
//! a [`Plan`] (names in the catalogue's naming, values the SQL compares),
//! and one run of a plan on the replica.

use rusqlite::Connection;
use serde_json::{Map, Value};

use crate::catalogue::Catalogue;
use crate::error::{Error, Result};
use crate::store::{self, Match};

/// The most records a query may ask for.
pub const MAX_LIMIT: u32 = 10_000;

/// The records a query returns when it names no limit.
pub const DEFAULT_LIMIT: u32 = 1_000;

/// The longest field name a query may name.
const MAX_FIELD_LEN: usize = 128;

fn default_limit() -> u32 {
    DEFAULT_LIMIT
}

/// What a live query returns: the live records of `collection` whose
/// fields equal every filter, in `order`, at most `limit`. Tombstones are
/// never returned.
///
/// ```
/// use rowsync::Query;
/// let q = Query::new("products").filter("productCategoryId", 3).order_by_desc("price").limit(20);
/// assert_eq!(q.limit, 20);
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// The collection.
    pub collection: String,
    /// Fields and the value each must equal (`null` matches a field that
    /// is null or absent). Strings, numbers, booleans and null only.
    #[serde(default)]
    pub filters: Map<String, Value>,
    /// The order; none: the local order (oldest first).
    #[serde(default)]
    pub order: Option<Order>,
    /// At most this many records (1 to [`MAX_LIMIT`]).
    #[serde(default = "default_limit")]
    pub limit: u32,
}

/// A query's order: a field and a direction. Records without the field
/// (or with `null`) come first when ascending; ties keep the local order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// The field.
    pub field: String,
    /// Largest first.
    #[serde(default)]
    pub descending: bool,
}

impl Query {
    /// Every live record of `collection`, in local order, at most
    /// [`DEFAULT_LIMIT`].
    pub fn new(collection: &str) -> Query {
        Query {
            collection: collection.to_string(),
            filters: Map::new(),
            order: None,
            limit: DEFAULT_LIMIT,
        }
    }

    /// Only records whose `field` equals `value`.
    pub fn filter(mut self, field: &str, value: impl Into<Value>) -> Query {
        self.filters.insert(field.to_string(), value.into());
        self
    }

    /// Ordered by `field`, smallest first.
    pub fn order_by(mut self, field: &str) -> Query {
        self.order = Some(Order {
            field: field.to_string(),
            descending: false,
        });
        self
    }

    /// Ordered by `field`, largest first.
    pub fn order_by_desc(mut self, field: &str) -> Query {
        self.order = Some(Order {
            field: field.to_string(),
            descending: true,
        });
        self
    }

    /// At most `n` records.
    pub fn limit(mut self, n: u32) -> Query {
        self.limit = n;
        self
    }

    /// Checks the query against `catalogue` and puts its names in the
    /// catalogue's naming (as a write would be): an unknown collection is
    /// `UnknownCollection`; a bad field name, a value that is an object or
    /// an array, or a limit out of range is `InvalidQuery`.
    pub(crate) fn plan(&self, catalogue: &Catalogue) -> Result<Plan> {
        let def = catalogue.require(&self.collection)?;
        let bad = |field: &str, reason: &str| Error::InvalidQuery {
            collection: def.name.clone(),
            field: field.to_string(),
            reason: reason.to_string(),
        };
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(bad("limit", &format!("must be between 1 and {MAX_LIMIT}")));
        }
        for (field, value) in &self.filters {
            check_field(field).map_err(|r| bad(field, r))?;
            if value.is_array() || value.is_object() {
                return Err(bad(
                    field,
                    "a filter compares a string, a number, a boolean or null",
                ));
            }
        }
        if let Some(o) = &self.order {
            check_field(&o.field).map_err(|r| bad(&o.field, r))?;
        }
        let naming = |m: Map<String, Value>| match catalogue.local_naming() {
            Some(dialect) => dialect.codec().normalise_local(m),
            None => m,
        };
        let filters = naming(self.filters.clone())
            .into_iter()
            .map(|(field, value)| (path(&field), matcher(&value)))
            .collect();
        let order = match &self.order {
            Some(o) => {
                let named = naming(Map::from_iter([(o.field.clone(), Value::Null)]));
                let field = named
                    .keys()
                    .next()
                    .cloned()
                    .unwrap_or_else(|| o.field.clone());
                Some((path(&field), o.descending))
            }
            None => None,
        };
        Ok(Plan {
            collection: def.name.clone(),
            parent: def.parent.as_ref().map(|p| p.collection.clone()),
            filters,
            order,
            limit: self.limit,
        })
    }
}

/// A field name a query may use: letters, digits and `_`, not starting
/// with a digit (every field of the catalogues is one).
fn check_field(field: &str) -> std::result::Result<(), &'static str> {
    if field.is_empty() || field.len() > MAX_FIELD_LEN {
        return Err("a field name has 1 to 128 characters");
    }
    if field.starts_with(|c: char| c.is_ascii_digit())
        || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err("a field name is letters, digits and `_`, not starting with a digit");
    }
    Ok(())
}

fn path(field: &str) -> String {
    format!("$.\"{field}\"")
}

fn matcher(value: &Value) -> Match {
    match value {
        Value::Bool(b) => Match::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Match::Int(i),
            None => Match::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Match::Text(s.clone()),
        // Checked before: only null is left.
        _ => Match::Null,
    }
}

/// A checked query, ready to run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The collection.
    pub(crate) collection: String,
    /// The collection's required parent: a sync that confirms a parent's
    /// create writes its server id into its children.
    pub(crate) parent: Option<String>,
    filters: Vec<(String, Match)>,
    order: Option<(String, bool)>,
    limit: u32,
}

impl Plan {
    /// Runs the query on `conn`.
    pub(crate) fn run(&self, conn: &Connection) -> Result<Vec<Value>> {
        let coll = store::coll_id_of(conn, &self.collection)?;
        let order = self.order.as_ref().map(|(p, d)| (p.as_str(), *d));
        store::query_rows(conn, coll, &self.filters, order, self.limit)?
            .iter()
            .map(|text| Ok(serde_json::from_str(text)?))
            .collect()
    }
}
