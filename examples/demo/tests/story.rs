//! The demo is a test too: its story, with every check, must happen as told
//! against the reference server in the real Mahak dialect.

#[test]
fn the_shops_day_happens_as_told() {
    assert!(
        rowsync_demo::run(),
        "a check of the demo failed: see the story above"
    );
}
