//! The local API's write and read flows. A write is validated against the
//! catalogue, then the record and its pending change are written in the same
//! transaction, coalesced with any earlier pending change of the record:
//! create+update is one create, create+delete before any push is nothing at
//! all, update+delete is a delete. Nothing half-written is ever stored: every
//! check runs before the first row is touched, and an error rolls the whole
//! group back.

use rusqlite::OptionalExtension;
use serde_json::{Map, Value};

use crate::catalogue::{Catalogue, CollectionDef};
use crate::error::{Error, Result};
use crate::record::{self, Meta};
use crate::store::{self, Row, Tx};

pub use crate::listeners::{ChangeOrigin, Changes};
pub use crate::record::{Op, RecordId};

/// Finds a record by either id.
pub(crate) fn find(conn: &rusqlite::Connection, coll: i64, id: RecordId) -> Result<Option<Row>> {
    match id {
        RecordId::Server(s) => store::row_by_server_id(conn, coll, s),
        RecordId::Client(c) => store::row_by_client_id(conn, coll, c),
    }
}

fn parse(data: &str) -> Result<Value> {
    Ok(serde_json::from_str(data)?)
}

/// A group of local writes that commit together and are pushed together
/// (for example an order and its lines). Obtained from `Engine::write`.
pub struct Writer<'w, 'a> {
    pub(crate) tx: &'w mut Tx<'a>,
    pub(crate) catalogue: &'w Catalogue,
    pub(crate) group: i64,
    pub(crate) changes: &'w mut Changes,
}

impl<'w> Writer<'w, '_> {
    /// Names, in `record` (to be written to `collection`), the record that
    /// operation `op` of this group stored: `earlier` is its collection and
    /// the record as stored, `None` when that operation stored none. The
    /// catalogue's link from `collection` to that collection (an order
    /// line's `orderClientId`, an order's `personClientId`) gets its client
    /// id, or its server id when it has no client id. For groups whose later
    /// writes name earlier ones by position (the C API's `parent_op`), which
    /// could not know the ids when they were written.
    pub fn link_to_op(
        &self,
        collection: &str,
        record: &mut Value,
        op: u32,
        earlier: Option<(&str, &Value)>,
    ) -> Result<()> {
        let invalid = |field: &str, reason: String| Error::InvalidRecord {
            collection: collection.to_string(),
            field: field.to_string(),
            reason,
        };
        let (parent_collection, parent) = earlier.ok_or_else(|| {
            invalid(
                "parent_op",
                format!("operation {op} is not an earlier create, put or update of the group"),
            )
        })?;
        let def = self.catalogue.require(collection)?;
        let link = def
            .links
            .iter()
            .find(|l| l.collection == parent_collection)
            .ok_or_else(|| {
                invalid(
                    "parent_op",
                    format!("`{collection}` has no link to `{parent_collection}` (operation {op})"),
                )
            })?;
        let pdef = self.catalogue.require(parent_collection)?;
        let id_of = |field: &str| parent.get(field).filter(|v| !v.is_null()).cloned();
        let (field, id) = match id_of(&pdef.client_id_field) {
            Some(cid) => (&link.client_id_field, cid),
            None => match id_of(&pdef.id_field) {
                Some(sid) => (&link.id_field, sid),
                None => {
                    return Err(invalid(
                        "parent_op",
                        format!("operation {op} stored a `{parent_collection}` record with no id"),
                    ))
                }
            },
        };
        match record {
            Value::Object(obj) => {
                obj.insert(field.clone(), id);
                Ok(())
            }
            _ => Err(invalid("record", "must be a JSON object".into())),
        }
    }

    fn live(&self, def: &CollectionDef, id: RecordId) -> Result<(i64, Row)> {
        let coll = self.tx.coll_id(&def.name)?;
        match find(self.tx, coll, id)? {
            Some(row) if !row.deleted => Ok((coll, row)),
            _ => Err(Error::NotFound {
                collection: def.name.clone(),
                id: id.to_string(),
            }),
        }
    }

    /// The collection, checked writable, and the record as an object in the
    /// catalogue's naming.
    fn writable(
        &self,
        collection: &str,
        value: Value,
    ) -> Result<(&'w CollectionDef, Map<String, Value>)> {
        let def = self.catalogue.require(collection)?;
        if def.read_only {
            return Err(Error::invalid(
                collection,
                "record",
                "is reference data the server owns: it cannot be written",
            ));
        }
        // What the engine accepts, it can read back (invariant 14).
        if record::value_depth(&value) > record::MAX_DEPTH {
            return Err(Error::invalid(
                collection,
                "record",
                format!("is nested deeper than {} levels", record::MAX_DEPTH),
            ));
        }
        let Value::Object(obj) = value else {
            return Err(Error::invalid(
                collection,
                "record",
                "must be a JSON object",
            ));
        };
        // The naming of the catalogue's dialect (key case, dates).
        let obj = match self.catalogue.local_naming() {
            Some(dialect) => dialect.codec().normalise_local(obj),
            None => obj,
        };
        Ok((def, obj))
    }

    /// Checks the optional parents a record names by client id (an order
    /// line's product detail): each must be a live local record, and its
    /// server id is filled in when known. One named by server id is left to
    /// the server to check: the replica may not hold it. With `patched`
    /// (an update), only the links the patch writes must be live: an edit
    /// of an order's note does not fail because its customer was deleted
    /// since.
    fn link_others(
        &self,
        def: &CollectionDef,
        obj: &mut Map<String, Value>,
        patched: Option<&[String]>,
    ) -> Result<()> {
        let primary = def.parent.as_ref().map(|p| p.collection.as_str());
        for link in def
            .links
            .iter()
            .filter(|l| Some(l.collection.as_str()) != primary)
        {
            let by_id = obj
                .get(&link.id_field)
                .is_some_and(|v| !v.is_null() && v != &Value::from(0));
            let cid = match obj.get(&link.client_id_field) {
                None | Some(Value::Null) => continue,
                Some(v) => v.as_i64().ok_or_else(|| {
                    Error::invalid(
                        &def.name,
                        &link.client_id_field,
                        "must be an integer or null",
                    )
                })?,
            };
            if by_id || cid == 0 {
                continue;
            }
            let pcoll = self.tx.coll_id(&link.collection)?;
            match store::row_by_client_id(self.tx, pcoll, cid)? {
                Some(parent) if !parent.deleted => {
                    if let Some(sid) = parent.server_id {
                        obj.insert(link.id_field.clone(), Value::from(sid));
                    }
                }
                _ if patched.is_some_and(|p| !p.contains(&link.client_id_field)) => {}
                _ => {
                    return Err(Error::invalid(
                        &def.name,
                        &link.client_id_field,
                        format!(
                            "no `{}` record with {} {cid}",
                            link.collection, link.client_id_field
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Checks a child's parent and fills in whichever of its ids is known.
    /// Returns the parent's client id, if it has one.
    fn link_parent(
        &self,
        def: &CollectionDef,
        obj: &mut Map<String, Value>,
        meta: &Meta,
    ) -> Result<Option<i64>> {
        let Some(p) = &def.parent else {
            return Ok(None);
        };
        let pcoll = self.tx.coll_id(&p.collection)?;
        let (parent, asked) = if let Some(pid) = meta.parent_id {
            (
                store::row_by_server_id(self.tx, pcoll, pid)?,
                (&p.id_field, pid),
            )
        } else if let Some(pc) = meta.parent_client_id.filter(|&c| c != 0) {
            (
                store::row_by_client_id(self.tx, pcoll, pc)?,
                (&p.client_id_field, pc),
            )
        } else {
            return Err(Error::invalid(
                &def.name,
                &p.client_id_field,
                format!(
                    "a `{}` record needs its parent: set `{}` or `{}`",
                    def.name, p.id_field, p.client_id_field
                ),
            ));
        };
        let parent = match parent {
            Some(row) if !row.deleted => row,
            _ => {
                return Err(Error::invalid(
                    &def.name,
                    asked.0,
                    format!("no `{}` record with {} {}", p.collection, asked.0, asked.1),
                ))
            }
        };
        if let Some(sid) = parent.server_id {
            obj.insert(p.id_field.clone(), Value::from(sid));
        }
        let pclient = parent.client_id.filter(|&c| c != 0);
        if let Some(c) = pclient {
            obj.insert(p.client_id_field.clone(), Value::from(c));
        }
        Ok(pclient)
    }

    /// Creates a record; returns it as stored (with its new client id).
    pub fn create(&mut self, collection: &str, value: Value) -> Result<Value> {
        let (def, mut obj) = self.writable(collection, value)?;
        let meta = record::meta_of(def, &obj)?;
        if meta.server_id.is_some() {
            return Err(Error::invalid(
                collection,
                &def.id_field,
                "is assigned by the server: leave it null on create",
            ));
        }
        if meta.deleted {
            return Err(Error::invalid(
                collection,
                "deleted",
                "a new record cannot be deleted",
            ));
        }
        let coll = self.tx.coll_id(collection)?;
        let given = meta.identity_client_id();
        let mut client_id = given.unwrap_or_else(record::new_client_id);
        let parent_client_id = self.link_parent(def, &mut obj, &meta)?;
        self.link_others(def, &mut obj, None)?;
        obj.insert(def.id_field.clone(), Value::Null);
        obj.insert("rowVersion".to_string(), Value::Null);
        obj.insert("deleted".to_string(), Value::Bool(false));
        // The client-id index says whether an id is taken: the insert is
        // tried, not preceded by a lookup. A made-up id that is taken (it
        // practically never is) is made up again.
        let mut attempts = 0;
        let local_id = loop {
            obj.insert(def.client_id_field.clone(), Value::from(client_id));
            let data = serde_json::to_string(&obj)?;
            let inserted = self.tx.insert_new_record(&store::NewRow {
                coll,
                server_id: None,
                client_id: Some(client_id),
                parent_client_id,
                row_version: None,
                deleted: false,
                data: &data,
            })?;
            match inserted {
                Some(local_id) => break local_id,
                None if given.is_some() => {
                    return Err(Error::invalid(
                        collection,
                        &def.client_id_field,
                        format!("client id {client_id} is already used by another record"),
                    ));
                }
                None if attempts >= 16 => {
                    return Err(Error::Database(
                        "no free client id after 16 tries".to_string(),
                    ));
                }
                None => {
                    attempts += 1;
                    client_id = record::new_client_id();
                }
            }
        };
        self.tx
            .insert_pending(local_id, self.group, Op::Create, None)?;
        self.changes
            .note(collection, None, Some(client_id), ChangeOrigin::Local);
        Ok(Value::Object(obj))
    }

    /// Sets the given fields of a record (a shallow patch); returns the record
    /// as stored. Ids, `rowVersion` and `deleted` are the engine's to manage.
    pub fn update(&mut self, collection: &str, id: RecordId, patch: Value) -> Result<Value> {
        let (def, patch) = self.writable(collection, patch)?;
        let meta = record::meta_of(def, &patch)?;
        let (_, row) = self.live(def, id)?;
        if meta.server_id.is_some() && meta.server_id != row.server_id {
            return Err(Error::invalid(
                collection,
                &def.id_field,
                "cannot change a record's server id",
            ));
        }
        if meta.identity_client_id().is_some() && meta.client_id != row.client_id {
            return Err(Error::invalid(
                collection,
                &def.client_id_field,
                "cannot change a record's client id",
            ));
        }
        if meta.deleted {
            return Err(Error::invalid(
                collection,
                "deleted",
                "use delete to delete a record",
            ));
        }
        let mut obj = row.object()?;
        if let Some(p) = &def.parent {
            for field in [&p.id_field, &p.client_id_field] {
                if let Some(v) = patch.get(field) {
                    if !v.is_null() && obj.get(field) != Some(v) {
                        return Err(Error::invalid(
                            collection,
                            field,
                            "cannot move a record to another parent",
                        ));
                    }
                }
            }
        }
        let before = obj.clone();
        let patched: Vec<String> = patch.keys().cloned().collect();
        for (k, v) in patch {
            if k == "rowVersion" || k == "deleted" || k == def.id_field || k == def.client_id_field
            {
                continue;
            }
            if def
                .parent
                .as_ref()
                .is_some_and(|p| k == p.id_field || k == p.client_id_field)
            {
                continue;
            }
            obj.insert(k, v);
        }
        self.link_others(def, &mut obj, Some(&patched))?;
        if obj == before {
            return Ok(Value::Object(obj));
        }
        let data = serde_json::to_string(&obj)?;
        self.tx.update_record_data(row.local_id, false, &data)?;
        match store::pending_of(self.tx, row.local_id)? {
            None => {
                self.tx
                    .insert_pending(row.local_id, self.group, Op::Update, Some(&row.data))?
            }
            Some(p) => self.tx.touch_pending(row.local_id, p.op)?,
        }
        self.changes.note(
            collection,
            row.server_id,
            row.client_id,
            ChangeOrigin::Local,
        );
        Ok(Value::Object(obj))
    }

    /// Refuses to delete a create that never left the device while a live
    /// record of another collection names it by client id (an order made for
    /// a new customer): the link would dangle and the sale could never be
    /// saved. Its own children (the primary parent link) are dropped with it.
    fn refuse_if_named(&self, collection: &str, client_id: i64) -> Result<()> {
        for def in self.catalogue.iter() {
            if def
                .parent
                .as_ref()
                .is_some_and(|p| p.collection == collection)
            {
                continue;
            }
            for link in def.links.iter().filter(|l| l.collection == collection) {
                let coll = self.tx.coll_id(&def.name)?;
                let path = format!("$.{}", link.client_id_field);
                let named: Option<Option<i64>> = self
                    .tx
                    .query_row(
                        "SELECT client_id FROM rs_records WHERE coll = ?1 AND deleted = 0
                         AND json_extract(data, ?2) = ?3 LIMIT 1",
                        rusqlite::params![coll, path, client_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(other) = named {
                    return Err(Error::invalid(
                        collection,
                        &link.client_id_field,
                        format!(
                            "`{}` record c:{} still names it; delete or change that first",
                            def.name,
                            other.unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Deletes a record (logically: it is kept as a tombstone until the server
    /// confirmed the delete). A record the server never saw simply goes away,
    /// with the pending lines that depended on it.
    pub fn delete(&mut self, collection: &str, id: RecordId) -> Result<()> {
        let (def, _) = self.writable(collection, Value::Object(Map::new()))?;
        let (_, row) = self.live(def, id)?;
        let pending = store::pending_of(self.tx, row.local_id)?;
        self.changes.note(
            collection,
            row.server_id,
            row.client_id,
            ChangeOrigin::Local,
        );
        match pending {
            Some(p)
                if p.op == Op::Create && p.sent_counter.is_none() && row.server_id.is_none() =>
            {
                if let Some(cid) = row.client_id.filter(|&c| c != 0) {
                    self.refuse_if_named(collection, cid)?;
                    for child in self.catalogue.children_of(collection) {
                        let ccoll = self.tx.coll_id(&child.name)?;
                        for l in self.tx.orphaned_creates(ccoll, cid)? {
                            self.tx.drop_pending(l)?;
                            self.tx.remove_record(l)?;
                        }
                    }
                }
                self.tx.drop_pending(row.local_id)?;
                self.tx.remove_record(row.local_id)?;
            }
            pending => {
                let mut obj = row.object()?;
                obj.insert("deleted".to_string(), Value::Bool(true));
                self.tx
                    .update_record_data(row.local_id, true, &serde_json::to_string(&obj)?)?;
                match pending {
                    Some(_) => self.tx.touch_pending(row.local_id, Op::Delete)?,
                    None => self.tx.insert_pending(
                        row.local_id,
                        self.group,
                        Op::Delete,
                        Some(&row.data),
                    )?,
                }
            }
        }
        Ok(())
    }

    /// Creates the record, or updates it when it carries the server id or
    /// client id of an existing record.
    pub fn put(&mut self, collection: &str, value: Value) -> Result<Value> {
        let (def, obj) = self.writable(collection, value)?;
        let meta = record::meta_of(def, &obj)?;
        let value = Value::Object(obj);
        let coll = self.tx.coll_id(collection)?;
        let existing = match (meta.server_id, meta.identity_client_id()) {
            (Some(s), _) => Some(RecordId::Server(s)),
            (None, Some(c)) if store::row_by_client_id(self.tx, coll, c)?.is_some() => {
                Some(RecordId::Client(c))
            }
            _ => None,
        };
        match existing {
            Some(id) => self.update(collection, id, value),
            None => self.create(collection, value),
        }
    }

    /// Reads a record inside the group (sees the group's own writes).
    pub fn get(&self, collection: &str, id: RecordId) -> Result<Option<Value>> {
        let def = self.catalogue.require(collection)?;
        let coll = self.tx.coll_id(&def.name)?;
        get(self.tx, coll, id)
    }
}

/// A live (not deleted) record by id.
pub(crate) fn get(conn: &rusqlite::Connection, coll: i64, id: RecordId) -> Result<Option<Value>> {
    match find(conn, coll, id)? {
        Some(row) if !row.deleted => Ok(Some(parse(&row.data)?)),
        _ => Ok(None),
    }
}

/// How to list a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOptions {
    /// At most this many records.
    pub limit: u64,
    /// Skip this many records.
    pub offset: u64,
    /// Start after this cursor (from `Page::next_cursor`).
    pub after: Option<i64>,
    /// Include tombstones.
    pub include_deleted: bool,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            limit: 1_000,
            offset: 0,
            after: None,
            include_deleted: false,
        }
    }
}

/// A page of records.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The records, in local order.
    pub records: Vec<Value>,
    /// Pass as `ListOptions::after` for the next page; none at the end.
    pub next_cursor: Option<i64>,
}

pub(crate) fn list(conn: &rusqlite::Connection, coll: i64, opts: &ListOptions) -> Result<Page> {
    let rows = store::list_rows(
        conn,
        coll,
        opts.include_deleted,
        opts.after.unwrap_or(0),
        opts.offset,
        opts.limit,
    )?;
    let next_cursor = if (rows.len() as u64) == opts.limit {
        rows.last().map(|r| r.local_id)
    } else {
        None
    };
    let records = rows.iter().map(|r| parse(&r.data)).collect::<Result<_>>()?;
    Ok(Page {
        records,
        next_cursor,
    })
}

/// Drops one parked change (the app gave up on its dead letter): the
/// record returns to the server's version, or disappears if the server
/// never had it, with the pending creates of children that needed it.
pub(crate) fn discard_change(
    tx: &mut store::Tx<'_>,
    cat: &Catalogue,
    local_id: i64,
    changes: &mut Changes,
) -> Result<()> {
    let Some(row) = store::row_by_local_id(tx, local_id)? else {
        return Ok(());
    };
    let pending = store::pending_of(tx, local_id)?;
    let coll_name = store::dead_letters::collection_of(tx, local_id)?;
    changes.note(
        &coll_name,
        row.server_id,
        row.client_id,
        ChangeOrigin::Local,
    );
    match pending.and_then(|p| p.base) {
        Some(base) => {
            let deleted = serde_json::from_str::<Value>(&base)?
                .get("deleted")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            tx.drop_pending(local_id)?;
            tx.update_record(local_id, row.server_id, row.row_version, deleted, &base)?;
        }
        None => {
            if let Some(cid) = row.client_id.filter(|&c| c != 0) {
                for child in cat.children_of(&coll_name) {
                    let ccoll = tx.coll_id(&child.name)?;
                    for l in tx.orphaned_creates(ccoll, cid)? {
                        tx.drop_pending(l)?;
                        tx.remove_record(l)?;
                    }
                }
            }
            tx.drop_pending(local_id)?;
            tx.remove_record(local_id)?;
        }
    }
    Ok(())
}
