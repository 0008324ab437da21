//! Fewer bytes on the wire (issue 15): the engine asks for gzip and the
//! reference server compresses when asked; the replica is the same either
//! way, and the pipelined pull applies exactly what the step-by-step one
//! does.

use rowsync::{Dialect, Settings};
use rowsync_e2e::*;
use serde_json::Value;

fn replica(e: &rowsync::Engine) -> Vec<(String, Vec<Value>)> {
    e.catalogue()
        .unwrap()
        .iter()
        .map(|c| (c.name.clone(), local_all(e, &c.name)))
        .collect()
}

#[test]
fn gzip_shrinks_a_first_sync_and_changes_nothing_else() {
    let server = start(mahak_server_config());
    server.server().admin().seed_products(2_000).unwrap();
    server.server().admin().seed_persons(500).unwrap();
    let mut downloaded = Vec::new();
    let mut replicas = Vec::new();
    for gzip in [false, true] {
        let db = TempDb::new("gzip");
        let e = mahak_engine(&db, &server.base_url());
        e.configure(Settings {
            gzip,
            page_size: 500,
            ..e.settings().unwrap()
        })
        .unwrap();
        let before = server.server().wire_bytes();
        let report = e.sync_all().unwrap();
        assert!(report.applied() > 4_000, "{report:?}");
        downloaded.push(server.server().wire_bytes() - before);
        replicas.push(replica(&e));
    }
    eprintln!(
        "bytes on the wire: identity {}, gzip {}",
        downloaded[0], downloaded[1]
    );
    assert!(
        downloaded[1] * 3 < downloaded[0],
        "gzip should cut the bytes at least threefold: {downloaded:?}"
    );
    assert_eq!(replicas[0], replicas[1], "the same replica either way");
}

#[test]
fn the_pipelined_pull_applies_what_the_step_by_step_one_does() {
    for dialect in [Dialect::Mahak, Dialect::Documented] {
        let server = start(match dialect {
            Dialect::Mahak => mahak_server_config(),
            Dialect::Documented => server_config(),
        });
        server.server().admin().seed_products(1_500).unwrap();
        server.server().admin().seed_persons(300).unwrap();
        let mut replicas = Vec::new();
        let mut pages = Vec::new();
        let mut engines = Vec::new();
        for pipelined in [false, true] {
            let db = TempDb::new("pipeline");
            let e = engine_for(&db, &server.base_url(), dialect);
            e.configure(Settings {
                pipelined_pull: pipelined,
                page_size: 200,
                ..e.settings().unwrap()
            })
            .unwrap();
            let report = e.sync_all().unwrap();
            pages.push(report.pull_requests);
            let status = e.status().unwrap();
            replicas.push((replica(&e), status.checkpoints));
            engines.push((db, e));
        }
        // Then an incremental pull of a server edit, in each.
        let id = local_all(&engines[0].1, "products")[7]["productId"]
            .as_i64()
            .unwrap();
        let mut m = serde_json::Map::new();
        m.insert("name".into(), Value::from("renamed"));
        server
            .server()
            .admin()
            .update_fields("products", id, m)
            .unwrap();
        for (_, e) in &engines {
            assert_eq!(e.sync_all().unwrap().applied(), 1, "{dialect}");
            let got = e.get("products", rowsync::RecordId::Server(id)).unwrap();
            assert_eq!(got.unwrap()["name"], "renamed");
        }
        assert_eq!(pages[0], pages[1], "{dialect}: the same pages");
        assert!(pages[0] > 5, "{dialect}: several pages ({pages:?})");
        let (a, b) = (&replicas[0], &replicas[1]);
        assert_eq!(a, b, "{dialect}: the same replica and checkpoints");
    }
}
