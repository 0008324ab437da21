//! What the integrators' own code shows about the real server (issue 25),
//! each habit of the reference server switched on and off, over loopback
//! HTTP: the password hashing per server, and a pull checkpoint that moves
//! only on what a pull brought.

use rowsync::{Engine, Error, PasswordHash, RecordId};
use rowsync_e2e::*;
use rowsync_refserver::{RunningServer, ServerConfig};
use serde_json::json;

fn engine_hashing(db: &TempDb, server: &RunningServer, how: PasswordHash) -> Engine {
    let e = Engine::open(&db.0).unwrap();
    e.configure(rowsync::Settings {
        password_hash: how,
        ..mahak_settings(&server.base_url())
    })
    .unwrap();
    e.set_credentials(credentials()).unwrap();
    e
}

/// Issue 25.1: a server that takes the password plain refuses its MD5, and
/// the default (MD5) server refuses it plain; the setting picks the form.
/// Neither form is ever stored.
#[test]
fn the_password_is_hashed_as_the_server_wants_it() {
    for plain_server in [false, true] {
        let server = start(ServerConfig {
            plain_passwords: plain_server,
            ..mahak_server_config()
        });
        server.server().admin().seed_products(2).unwrap();
        for how in [PasswordHash::Md5, PasswordHash::Plain] {
            let db = TempDb::new("i-password");
            let e = engine_hashing(&db, &server, how);
            let result = e.sync();
            let right = (how == PasswordHash::Plain) == plain_server;
            if right {
                result.unwrap_or_else(|err| panic!("{how:?} on plain={plain_server}: {err}"));
                assert_eq!(local_all(&e, "products").len(), 2);
            } else {
                assert!(
                    matches!(result, Err(Error::AuthFailed { .. })),
                    "{how:?} on plain={plain_server}: {result:?}"
                );
            }
            drop(e);
            let raw = std::fs::read(&db.0).unwrap();
            assert_eq!(credentials().password, "pass1");
            for form in ["pass1", PASS1_MD5] {
                assert!(
                    !raw.windows(form.len()).any(|w| w == form.as_bytes()),
                    "no form of the password is stored"
                );
            }
        }
    }
}

/// The MD5 of the test user's password (`pass1`), as a server wants it.
const PASS1_MD5: &str = "a722c63db8ec8625af6cf71cb8c2d939";

/// Issue 25.4: the device saves an order while another client's order, at
/// a lower row version than the save answer's, is not pulled yet. The next
/// sync still brings that order: a save's row version is no pull checkpoint.
#[test]
fn a_save_answer_does_not_move_the_pull_checkpoint() {
    let server = start(mahak_server_config());
    let admin = server.server().admin();
    admin.seed_products(2).unwrap();
    admin.seed_persons(1).unwrap();
    let db = TempDb::new("i-checkpoint");
    let e = mahak_engine(&db, &server.base_url());
    e.sync().unwrap();
    let person = local_all(&e, "people")[0]["personId"].as_i64().unwrap();
    // Another client's order reaches the server first (a lower version).
    let other = admin
        .upsert(
            "orders",
            json!({"orderType": 203, "personId": person, "orderClientId": 0,
                   "description": "another visitor"}),
        )
        .unwrap()["orderId"]
        .as_i64()
        .unwrap();
    // Ours is saved after it: its answer's RowVersion is above the other's.
    let mine = e
        .create("orders", json!({"orderType": 203, "personId": person}))
        .unwrap();
    let oc = client_id(&mine, "order");
    // The save goes out before any pull of orders in this sync.
    e.configure(rowsync::Settings {
        collections: vec!["products".into()],
        ..e.settings().unwrap()
    })
    .unwrap();
    e.sync().unwrap();
    assert!(e
        .get("orders", RecordId::Client(oc))
        .unwrap()
        .is_some_and(|o| o["orderId"].is_i64()));
    e.configure(rowsync::Settings {
        collections: Vec::new(),
        ..e.settings().unwrap()
    })
    .unwrap();
    e.sync().unwrap();
    assert!(
        e.get("orders", RecordId::Server(other)).unwrap().is_some(),
        "the other client's order, below our save's version, is pulled"
    );
}
