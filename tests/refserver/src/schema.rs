//! The mahak dialect's collections, derived at start from the vendor's
//! Swagger (`tests/fixtures/mahak/swagger-v3.json`, embedded): the 57 keys of
//! `CommitDataModel`, each model's `<key>Id`/`<key>ClientId`/`<key>Code`
//! fields, its parent links (every `<p>Id` + `<p>ClientId` pair naming
//! another collection), its `from<Entity>Version` pull key, and the names the
//! real server writes in its answers (PascalCase, with the capture's odd
//! ones). The server derives this itself rather than reading the engine's
//! table, so the two are checked against the same source independently.

use std::collections::HashMap;

use serde_json::Value;

const SWAGGER: &str = include_str!("../../fixtures/mahak/swagger-v3.json");

/// A parent link of a mahak collection: `<p>Id` + `<p>ClientId` naming
/// another collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    /// The parent collection (`orders`).
    pub collection: String,
    /// `orderId`.
    pub id_field: String,
    /// `orderClientId`.
    pub client_id_field: String,
}

/// One mahak collection, as the server derives it from the Swagger. The
/// server's own type, not the engine's: the engine's catalogue may change
/// without the server following it.
#[derive(Debug, Clone)]
pub(crate) struct Coll {
    /// Name in requests (`orderDetails`).
    pub name: String,
    /// `orderDetailId` (`cityID` for `regions`).
    pub id_field: String,
    /// `orderDetailClientId` (empty for `regions`, which has none).
    pub client_id_field: String,
    /// `orderDetailCode`, when the model has one.
    pub code_field: Option<String>,
    /// Every parent link.
    pub links: Vec<Link>,
    /// Reference data no client may write (`regions`, models without a
    /// client id).
    pub read_only: bool,
}

/// The mahak dialect's view of the catalogue.
#[derive(Debug, Clone)]
pub(crate) struct MahakSchema {
    /// The collections, parents first.
    pub collections: Vec<Coll>,
    /// Collection name to its position in `collections`.
    index: HashMap<String, usize>,
    /// Pull key (`fromPersonVersion`, lowercased) to collection name.
    pub pull_keys: HashMap<String, String>,
    /// Every collection in `CommitDataModel` order, with the name a pull
    /// answer gives it (`Banks`, ..., `companies`, `Mahakpays`).
    pub pull_names: Vec<(String, String)>,
    /// Every collection in `SaveAllDataResult` order, with the name a save
    /// answer gives it (`Companies`, `MahakPays`).
    pub save_names: Vec<(String, String)>,
}

pub(crate) fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn props(defs: &Value, model: &str) -> Vec<String> {
    defs[model]["properties"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

impl MahakSchema {
    /// Derives the schema from the embedded Swagger.
    pub fn load() -> Result<MahakSchema, String> {
        let swagger: Value =
            serde_json::from_str(SWAGGER).map_err(|e| format!("the Swagger is not JSON: {e}"))?;
        let defs = &swagger["definitions"];
        let commit = defs["CommitDataModel"]["properties"]
            .as_object()
            .ok_or("no CommitDataModel in the Swagger")?;
        // (collection, entity, key, properties)
        let mut models: Vec<(String, String, String, Vec<String>)> = Vec::new();
        for (name, v) in commit {
            let model = v["items"]["$ref"]
                .as_str()
                .and_then(|r| r.rsplit('/').next())
                .ok_or_else(|| format!("`{name}` has no model"))?;
            let entity = model.trim_end_matches("Model").to_string();
            let key = lower_first(&entity);
            models.push((name.clone(), entity, key, props(defs, model)));
        }
        let keys: HashMap<String, String> = models
            .iter()
            .filter(|(_, _, key, p)| p.contains(&format!("{key}Id")))
            .map(|(name, _, key, _)| (key.clone(), name.clone()))
            .collect();
        let position: HashMap<&str, usize> = models
            .iter()
            .enumerate()
            .map(|(i, (n, ..))| (n.as_str(), i))
            .collect();
        // Every <p>Id + <p>ClientId pair naming another collection.
        let mut links: HashMap<String, Vec<String>> = HashMap::new();
        for (name, _, key, p) in &models {
            let l = p
                .iter()
                .filter_map(|f| f.strip_suffix("ClientId"))
                .filter(|pk| *pk != key && p.contains(&format!("{pk}Id")) && keys.contains_key(*pk))
                .map(str::to_string)
                .collect();
            links.insert(name.clone(), l);
        }
        // Without the links that make a cycle (an order names its receipt
        // and payment, which name their order): the one to the collection
        // that comes later in the Swagger goes.
        let key_of: HashMap<&str, &str> =
            keys.iter().map(|(k, n)| (n.as_str(), k.as_str())).collect();
        let snapshot = links.clone();
        for (name, l) in links.iter_mut() {
            let Some(own_key) = key_of.get(name.as_str()) else {
                continue;
            };
            l.retain(|pk| {
                let parent = &keys[pk];
                let back = snapshot[parent].iter().any(|k| k == own_key);
                !(back && position.get(parent.as_str()) > position.get(name.as_str()))
            });
        }
        // Parents first, in Swagger order otherwise.
        let mut done: Vec<String> = Vec::new();
        let mut left: Vec<&str> = models.iter().map(|(n, ..)| n.as_str()).collect();
        while !left.is_empty() {
            let next = left.iter().position(|n| {
                links[*n]
                    .iter()
                    .all(|pk| keys.get(pk).is_some_and(|p| done.contains(p)))
            });
            let Some(i) = next else {
                return Err(format!("a cycle among {left:?}"));
            };
            done.push(left.remove(i).to_string());
        }
        let pull_props = props(defs, "RequestAllDataModel");
        let mut collections = Vec::new();
        let mut pull_keys = HashMap::new();
        for name in &done {
            let Some((_, entity, key, p)) = models.iter().find(|(n, ..)| n == name) else {
                continue;
            };
            let has_id = p.contains(&format!("{key}Id"));
            let (id_field, client_id_field) = if has_id {
                (format!("{key}Id"), format!("{key}ClientId"))
            } else {
                // `regions`: no ids of the usual form; the city is the id,
                // and there is no client id at all.
                ("cityID".to_string(), String::new())
            };
            let code_field = Some(format!("{key}Code")).filter(|c| p.contains(c));
            let links = links[name]
                .iter()
                .map(|pk| Link {
                    collection: keys[pk].clone(),
                    id_field: format!("{pk}Id"),
                    client_id_field: format!("{pk}ClientId"),
                })
                .collect();
            let read_only = !has_id || !p.contains(&client_id_field);
            let pull = pull_props.iter().find(|k| {
                k.strip_prefix("from")
                    .and_then(|k| k.strip_suffix("Version"))
                    .is_some_and(|stem| !stem.is_empty() && entity.starts_with(stem))
            });
            if let Some(pull) = pull {
                pull_keys.insert(pull.to_ascii_lowercase(), name.clone());
            }
            collections.push(Coll {
                name: name.clone(),
                id_field,
                client_id_field,
                code_field,
                links,
                read_only,
            });
        }
        let index = collections
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let pull_names = models
            .iter()
            .map(|(n, ..)| {
                let shown = if n == "companies" {
                    n.clone()
                } else {
                    upper_first(n)
                };
                (n.clone(), shown)
            })
            .collect();
        let save_names = props(defs, "SaveAllDataResult")
            .iter()
            .map(|k| {
                let name = commit
                    .keys()
                    .find(|c| c.eq_ignore_ascii_case(k))
                    .cloned()
                    .unwrap_or_else(|| k.clone());
                (name, upper_first(k))
            })
            .collect();
        Ok(MahakSchema {
            collections,
            index,
            pull_keys,
            pull_names,
            save_names,
        })
    }
}

impl MahakSchema {
    /// The collection named `name` (exactly).
    pub fn get(&self, name: &str) -> Option<&Coll> {
        self.index.get(name).map(|&i| &self.collections[i])
    }

    /// The collection named `name` without regard to case.
    pub fn find(&self, name: &str) -> Option<&Coll> {
        self.get(name).or_else(|| {
            self.collections
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))
        })
    }
}

/// Gives every object key of a JSON text (valid JSON) an uppercase first
/// letter: the PascalCase the real server answers in. Strings are copied as
/// they are.
pub(crate) fn pascal_keys(json: &str, out: &mut String) {
    let bytes = json.as_bytes();
    let mut buf = bytes.to_vec();
    let mut stack: Vec<bool> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let s = i + 1;
                if expect_key && bytes.get(s).is_some_and(u8::is_ascii_lowercase) {
                    buf[s] = bytes[s].to_ascii_uppercase();
                }
                i = s;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                expect_key = false;
            }
            b'{' => {
                stack.push(true);
                expect_key = true;
            }
            b'[' => {
                stack.push(false);
                expect_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
            }
            b',' => expect_key = stack.last() == Some(&true),
            _ => {}
        }
        i += 1;
    }
    // Only ASCII letters changed, to ASCII: the text is still UTF-8.
    match String::from_utf8(buf) {
        Ok(text) => out.push_str(&text),
        Err(_) => out.push_str(json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_swagger_gives_57_collections_with_their_links_and_names() {
        let s = MahakSchema::load().unwrap();
        assert_eq!(s.collections.len(), 57);
        let od = s.get("orderDetails").unwrap();
        let linked: Vec<&str> = od.links.iter().map(|l| l.collection.as_str()).collect();
        assert_eq!(linked, ["orders", "productDetails"]);
        let orders = s.get("orders").unwrap();
        let linked: Vec<&str> = orders.links.iter().map(|l| l.collection.as_str()).collect();
        assert_eq!(
            linked,
            ["people"],
            "receipts and payments name their order, not the reverse"
        );
        let receipts = s.get("receipts").unwrap();
        assert!(receipts.links.iter().any(|l| l.collection == "orders"));
        assert_eq!(s.pull_keys["frompersonversion"], "people");
        assert_eq!(s.pull_keys["fromcompanyversion"], "companies");
        assert_eq!(s.pull_keys.len(), 57);
        let pull: Vec<&str> = s.pull_names.iter().map(|(_, n)| n.as_str()).collect();
        assert!(pull.contains(&"companies") && pull.contains(&"Mahakpays"));
        let save: Vec<&str> = s.save_names.iter().map(|(_, n)| n.as_str()).collect();
        assert!(save.contains(&"Companies") && save.contains(&"MahakPays"));
        assert_eq!(save.len(), 55, "SaveAllDataResult lists 55 collections");
        assert!(s.get("regions").unwrap().read_only);
    }

    #[test]
    fn pascal_keys_changes_keys_only() {
        let mut out = String::from("[");
        pascal_keys(
            r#"{"productId":1,"name":"a\"b {c}","x":[{"deep":"v"}]}"#,
            &mut out,
        );
        assert_eq!(
            out,
            r#"[{"ProductId":1,"Name":"a\"b {c}","X":[{"Deep":"v"}]}"#
        );
    }
}
