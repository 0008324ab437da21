//! Conflict resolution: what happens when a record has a pending local change
//! and the server's version moved on (a pull brought a newer version, or a save
//! answered 2002). Resolution is a pure function of the record's base (the
//! last server version seen), its local version and the server version; the
//! store applies the outcome and writes the conflict log.
//!
//! Outcomes beyond the per-field rules, for every policy:
//! - local delete against a server update: the server's update wins and the
//!   record comes back. A delete is the most destructive edit and the other
//!   side evidently still uses the record; the dropped delete is logged, so
//!   the app can delete again knowingly.
//! - local update against a server delete: the delete wins (the record is a
//!   tombstone); the local values are kept in the conflict log. Resurrecting a
//!   record the office deleted would undo a business decision silently.
//! - both deleted: no conflict, nothing to log.

use serde_json::{Map, Value};

use crate::catalogue::{CollectionDef, ConflictPolicy};
use crate::record::same_business_data;

/// What the app's own resolver sees.
#[derive(Debug)]
pub struct ConflictInput<'a> {
    /// The collection.
    pub collection: &'a str,
    /// The last server version the device saw (None for a record the server
    /// never confirmed).
    pub base: Option<&'a Map<String, Value>>,
    /// The local version, with its pending change.
    pub local: &'a Map<String, Value>,
    /// The server's current version.
    pub server: &'a Map<String, Value>,
}

/// An app-supplied conflict resolver for a non-financial collection.
pub trait ConflictResolver: Send + Sync {
    /// Returns the record to keep (it is pushed again if it differs from the
    /// server version), or `None` to fall back to the collection's policy.
    fn resolve(&self, input: &ConflictInput<'_>) -> Option<Map<String, Value>>;
}

/// How a conflict ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The record to store.
    pub record: Map<String, Value>,
    /// Whether the stored record is a tombstone.
    pub deleted: bool,
    /// Whether a local change remains to be pushed.
    pub pending: bool,
    /// Fields whose local value was overridden or discarded.
    pub fields: Vec<String>,
    /// The resolution's name, for the conflict log.
    pub resolution: &'static str,
}

impl Resolved {
    /// True when a local value was discarded or overridden (worth logging).
    pub fn overrode_local(&self) -> bool {
        !self.fields.is_empty()
    }
}

fn is_meta(def: &CollectionDef, key: &str) -> bool {
    key == "rowVersion" || key == "deleted" || key == def.id_field || key == def.client_id_field
}

/// Fields whose local value differs from the server's (bookkeeping excluded).
fn differing(
    def: &CollectionDef,
    local: &Map<String, Value>,
    server: &Map<String, Value>,
) -> Vec<String> {
    let mut out: Vec<String> = local
        .keys()
        .chain(server.keys())
        .filter(|k| !is_meta(def, k) && local.get(*k) != server.get(*k))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Resolves a conflict for `def`. `resolver` is the app's own, if any; it is
/// never consulted for financial collections.
pub fn resolve(
    def: &CollectionDef,
    resolver: Option<&dyn ConflictResolver>,
    base: Option<&Map<String, Value>>,
    local: &Map<String, Value>,
    local_deleted: bool,
    server: &Map<String, Value>,
    server_deleted: bool,
) -> Resolved {
    let server_wins = |resolution| Resolved {
        record: server.clone(),
        deleted: server_deleted,
        pending: false,
        fields: if local_deleted && !server_deleted {
            vec!["deleted".to_string()]
        } else {
            differing(def, local, server)
        },
        resolution,
    };
    if server_deleted {
        if local_deleted {
            return Resolved {
                fields: Vec::new(),
                ..server_wins("both_deleted")
            };
        }
        return server_wins("server_delete_wins");
    }
    if local_deleted {
        return server_wins("server_update_beats_local_delete");
    }
    if def.financial {
        return server_wins("server_wins");
    }
    if let Some(custom) = resolver {
        let input = ConflictInput {
            collection: &def.name,
            base,
            local,
            server,
        };
        if let Some(mut kept) = custom.resolve(&input) {
            copy_meta(def, server, &mut kept);
            let fields = differing(def, local, &kept);
            let pending = !same_business_data(&kept, server);
            return Resolved {
                record: kept,
                deleted: false,
                pending,
                fields,
                resolution: "custom",
            };
        }
    }
    match def.policy {
        ConflictPolicy::ServerWins => server_wins("server_wins"),
        ConflictPolicy::FieldMerge => merge(def, base, local, server),
    }
}

/// Ids and rowVersion always come from the server's version.
fn copy_meta(def: &CollectionDef, server: &Map<String, Value>, into: &mut Map<String, Value>) {
    for key in [
        def.id_field.as_str(),
        def.client_id_field.as_str(),
        "rowVersion",
        "deleted",
    ] {
        match server.get(key) {
            Some(v) => into.insert(key.to_string(), v.clone()),
            None => into.remove(key),
        };
    }
}

/// Three-way field merge. A field changed only locally keeps the local value;
/// changed only on the server, or on both sides, takes the server value.
/// Values (nested objects and arrays included) compare as wholes; a missing
/// field is a value of its own.
fn merge(
    def: &CollectionDef,
    base: Option<&Map<String, Value>>,
    local: &Map<String, Value>,
    server: &Map<String, Value>,
) -> Resolved {
    let empty = Map::new();
    let base = base.unwrap_or(&empty);
    let mut record = server.clone();
    let mut fields = Vec::new();
    let mut keys: Vec<&String> = base
        .keys()
        .chain(local.keys())
        .chain(server.keys())
        .collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        if is_meta(def, key) {
            continue;
        }
        let (b, l, s) = (base.get(key), local.get(key), server.get(key));
        let local_changed = l != b;
        let server_changed = s != b;
        if local_changed && !server_changed {
            match l {
                Some(v) => record.insert(key.clone(), v.clone()),
                None => record.remove(key),
            };
        } else if local_changed && l != s {
            fields.push(key.clone());
        }
    }
    let pending = !same_business_data(&record, server);
    Resolved {
        record,
        deleted: false,
        pending,
        fields,
        resolution: "field_merge",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn field_merge_keeps_one_sided_changes_and_logs_both_sided() {
        let cat = Catalogue::documented();
        let def = cat.require("persons").unwrap();
        let base = obj(
            json!({"personId":1,"name":"Ali","phone":"1","address":"a","note":"n","rowVersion":5}),
        );
        let local = obj(
            json!({"personId":1,"name":"Ali","phone":"2","address":"a","note":"mine","rowVersion":5}),
        );
        let server = obj(
            json!({"personId":1,"name":"Ali","phone":"1","address":"b","note":"theirs","rowVersion":9}),
        );
        let r = resolve(def, None, Some(&base), &local, false, &server, false);
        assert_eq!(r.record["phone"], "2");
        assert_eq!(r.record["address"], "b");
        assert_eq!(r.record["note"], "theirs");
        assert_eq!(r.record["rowVersion"], 9);
        assert_eq!(r.fields, vec!["note".to_string()]);
        assert!(r.pending);
    }

    #[test]
    fn financial_collections_always_take_the_server_version() {
        let cat = Catalogue::documented();
        let def = cat.require("payments").unwrap();
        let base = obj(json!({"paymentId":1,"amount":10,"rowVersion":1}));
        let local = obj(json!({"paymentId":1,"amount":20,"rowVersion":1}));
        let server = obj(json!({"paymentId":1,"amount":30,"rowVersion":2}));
        struct Keep;
        impl ConflictResolver for Keep {
            fn resolve(&self, i: &ConflictInput<'_>) -> Option<Map<String, Value>> {
                Some(i.local.clone())
            }
        }
        let r = resolve(def, Some(&Keep), Some(&base), &local, false, &server, false);
        assert_eq!(r.record, server);
        assert!(!r.pending);
        assert_eq!(r.fields, vec!["amount".to_string()]);
    }

    #[test]
    fn deletes_against_updates() {
        let cat = Catalogue::documented();
        let def = cat.require("persons").unwrap();
        let base = obj(json!({"personId":1,"name":"A"}));
        let server = obj(json!({"personId":1,"name":"B"}));
        let r = resolve(def, None, Some(&base), &base, true, &server, false);
        assert!(!r.deleted && !r.pending);
        assert_eq!(r.resolution, "server_update_beats_local_delete");
        let local = obj(json!({"personId":1,"name":"C"}));
        let r = resolve(def, None, Some(&base), &local, false, &server, true);
        assert!(r.deleted && !r.pending && r.overrode_local());
        let r = resolve(def, None, Some(&base), &base, true, &server, true);
        assert!(r.deleted && !r.overrode_local());
    }

    /// A tiny deterministic generator, so the property test needs no crate.
    fn pick(rng: &mut fastrand::Rng) -> Option<Value> {
        match rng.u8(..5) {
            0 => None,
            1 => Some(json!(rng.u8(..3))),
            2 => Some(json!(format!("s{}", rng.u8(..3)))),
            3 => Some(json!({"n": rng.u8(..2)})),
            _ => Some(json!([rng.u8(..2)])),
        }
    }

    #[test]
    fn property_one_sided_changes_are_never_lost() {
        let cat = Catalogue::documented();
        let merge_def = cat.require("persons").unwrap();
        let fin_def = cat.require("invoices").unwrap();
        let mut rng = fastrand::Rng::with_seed(7);
        let keys = ["a", "b", "c", "d", "e"];
        for _ in 0..5_000 {
            let (mut base, mut local, mut server) = (Map::new(), Map::new(), Map::new());
            for k in keys {
                let b = pick(&mut rng);
                let l = if rng.bool() {
                    b.clone()
                } else {
                    pick(&mut rng)
                };
                let s = if rng.bool() {
                    b.clone()
                } else {
                    pick(&mut rng)
                };
                for (m, v) in [(&mut base, b), (&mut local, l), (&mut server, s)] {
                    if let Some(v) = v {
                        m.insert(k.to_string(), v);
                    }
                }
            }
            let r = resolve(merge_def, None, Some(&base), &local, false, &server, false);
            for k in keys {
                let (b, l, s, m) = (base.get(k), local.get(k), server.get(k), r.record.get(k));
                if l != b && s == b {
                    assert_eq!(m, l, "local-only change of {k} lost");
                }
                if s != b {
                    assert_eq!(m, s, "server change of {k} lost");
                }
                if l == b {
                    assert_eq!(m, s);
                }
            }
            assert_eq!(r.pending, !same_business_data(&r.record, &server));
            let f = resolve(fin_def, None, Some(&base), &local, false, &server, false);
            assert_eq!(f.record, server);
            assert!(!f.pending);
        }
    }
}
