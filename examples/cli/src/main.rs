//! `rowsync`, the command line of the rowsync engine: configure a local
//! replica of a Mahak database, sync it, read and write its records, and look
//! at what the engine keeps for you (outbox, dead letters, conflicts, sync
//! log). Output is for people by default and JSON with `--json`. The password
//! never appears on the command line: it comes from `ROWSYNC_PASSWORD` or the
//! first line of stdin. Errors print one line to stderr and exit non-zero
//! (2 for a usage error, 1 for anything else).
//!
//! The argument parsing is plain `std::env::args`: global options (`--db`,
//! `--json`) may come anywhere, each subcommand takes its own flags and
//! answers `--help`.

mod pending;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use rowsync::{
    ConnectionState, Engine, ListOptions, OrderDisputeItem, RecordDisputeItem, RecordId, Settings,
    Status, SyncLogEntry, SyncReport, TaskInfo, TaskKind, TaskState, UploadSource,
};
use serde_json::Value;

const USAGE: &str = "\
rowsync: an offline-first replica of a Mahak database

usage: rowsync [--db FILE] [--json] COMMAND [ARGS]

commands:
  init --url URL --username U --database-id N --package-number N [--dialect mahak|documented]
                               store the server settings (never the password); run it
                               again with another --username to hand the device over
  wipe [--force]               delete the local data (keeps the settings), e.g. to switch
                               dialect or to follow a server that names another visitor
  sync [--all | --only a,b]    run one sync cycle: pull what is due (--all: everything), then push;
                               --only: pull these collections (with their links) now, push nothing
  stats                        the running totals of every sync: requests, bytes, retries, times
  put COLLECTION JSON          create a record, or update the one its ids name
  get COLLECTION ID            show a record (ID = server id, or c:ID for a client id)
  delete COLLECTION ID         delete a record (logically)
  why COLLECTION ID            where a record stands: synced, pending, in doubt, parked, ...
  hint FILE SIGNATURE          apply a push hint (secret from $ROWSYNC_HINT_SECRET)
  upload COLLECTION ID FILE [--name NAME]
                               queue a file for a record (sent after the record's save)
  dispute order ORDER_ID | record COLLECTION ID ROW_VERSION | reconcile COLLECTION
                               queue SolveOrderDispute / SolveDispute
  tasks [cancel ID]            the queued uploads and disputes
  pictures sync | path ID      fetch the pictures now (no password); a picture's cached file
  list COLLECTION [--include-deleted] [--limit N]
                               list a collection's records
  status                       checkpoints, outbox, dead letters, conflicts, last sync
  pending [list] | export --user U [--out FILE] | discard --user U
                               the outbox by user; a user's changes kept as JSON, dropped
  dlq list | retry ID | discard ID
                               the dead-letter queue: changes the server refused
  conflicts [--clear]          the conflict log
  log [--limit N]              the sync log (calls, statuses, tracking ids)
  encrypt                      encrypt a plain replica in place with the key (below)
  rekey                        change an encrypted replica's key ($ROWSYNC_NEW_DB_KEY
                               or --new-key-file FILE)
  serve [--port P] [--data FILE] [...]
                               run the reference server (see `rowsync serve --help`)
  demo                         play the point-of-sale demo against an in-process server

global options:
  --db FILE    the replica (default: $ROWSYNC_DB, else rowsync.db)
  --json       machine-readable output
  --key-file FILE
               the key of an encrypted replica: a file of exactly 32 raw bytes
  --help       help for rowsync or for a command

The password comes from $ROWSYNC_PASSWORD, else from the first line of stdin.
An encrypted replica's key comes from --key-file, else from $ROWSYNC_DB_KEY (a
passphrase); never from an argument, where `ps` would show it.";

/// A failure: a message for stderr and the exit code.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: format!("{} (try --help)", message.into()),
            code: 2,
        }
    }
}

impl From<rowsync::Error> for Failure {
    fn from(e: rowsync::Error) -> Failure {
        Failure {
            message: e.to_string(),
            code: 1,
        }
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Failure {
        Failure {
            message: format!("JSON: {e}"),
            code: 1,
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            // The reader went away: nothing left to say, and nothing wrong.
            return Failure {
                message: String::new(),
                code: 0,
            };
        }
        Failure {
            message: e.to_string(),
            code: 1,
        }
    }
}

type Outcome = Result<(), Failure>;

/// `println!` that reports a closed stdout (e.g. `rowsync list x | head`) as
/// a quiet exit instead of a panic.
macro_rules! say {
    ($($t:tt)*) => {
        writeln!(std::io::stdout().lock(), $($t)*)?
    };
}

// After `say!`, which it uses.
mod stats;

/// The parsed command line of one subcommand: its positional arguments and
/// its flags, with the global options taken out.
struct Args {
    /// The replica's path: any file name the system allows, UTF-8 or not.
    db: std::path::PathBuf,
    /// `--key-file`: a file holding the replica's 32-byte raw key.
    key_file: Option<std::path::PathBuf>,
    /// `--new-key-file` (rekey).
    new_key_file: Option<std::path::PathBuf>,
    json: bool,
    help: bool,
    command: Option<String>,
    rest: Vec<String>,
}

impl Args {
    /// Parses the arguments. Paths (`--db`) may be any bytes the system
    /// allows; every other argument must be UTF-8 (a clear usage error, never
    /// a panic).
    fn parse(argv: Vec<std::ffi::OsString>) -> Result<Args, Failure> {
        let mut a = Args {
            db: std::env::var_os("ROWSYNC_DB")
                .map_or_else(|| "rowsync.db".into(), std::path::PathBuf::from),
            key_file: None,
            new_key_file: None,
            json: false,
            help: false,
            command: None,
            rest: Vec::new(),
        };
        let mut it = argv.into_iter();
        while let Some(arg) = it.next() {
            if arg == "--db" && a.command.as_deref() != Some("serve") {
                a.db = it
                    .next()
                    .ok_or_else(|| Failure::usage("--db needs a file name"))?
                    .into();
                continue;
            }
            if (arg == "--key-file" || arg == "--new-key-file")
                && a.command.as_deref() != Some("serve")
            {
                let file = it
                    .next()
                    .ok_or_else(|| {
                        Failure::usage(format!("{} needs a file name", arg.to_string_lossy()))
                    })?
                    .into();
                if arg == "--key-file" {
                    a.key_file = Some(file);
                } else {
                    a.new_key_file = Some(file);
                }
                continue;
            }
            let arg = arg.into_string().map_err(|bad| {
                Failure::usage(format!(
                    "argument `{}` is not valid UTF-8",
                    bad.to_string_lossy()
                ))
            })?;
            // `serve` hands everything after it to the server's own parser.
            if a.command.as_deref() == Some("serve") {
                a.rest.push(arg);
                continue;
            }
            match arg.as_str() {
                "--json" => a.json = true,
                "--help" | "-h" => a.help = true,
                _ if a.command.is_none() && !arg.starts_with('-') => a.command = Some(arg),
                "--version" | "-V" if a.command.is_none() => {
                    a.command = Some("version".to_string())
                }
                _ if a.command.is_none() => {
                    return Err(Failure::usage(format!("unknown option `{arg}`")))
                }
                _ => a.rest.push(arg),
            }
        }
        Ok(a)
    }

    /// Takes `--flag VALUE` out of the arguments.
    fn value(&mut self, flag: &str) -> Result<Option<String>, Failure> {
        match self.rest.iter().position(|a| a == flag) {
            None => Ok(None),
            Some(i) => {
                if i + 1 >= self.rest.len() {
                    return Err(Failure::usage(format!("{flag} needs a value")));
                }
                let v = self.rest.remove(i + 1);
                self.rest.remove(i);
                Ok(Some(v))
            }
        }
    }

    /// Takes `--flag VALUE` out and parses it.
    fn number<T: std::str::FromStr>(&mut self, flag: &str) -> Result<Option<T>, Failure> {
        match self.value(flag)? {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| Failure::usage(format!("{flag} wants a number, not `{v}`"))),
        }
    }

    /// Takes a boolean `--flag` out.
    fn flag(&mut self, flag: &str) -> bool {
        let before = self.rest.len();
        self.rest.retain(|a| a != flag);
        self.rest.len() != before
    }

    /// The positional arguments, exactly `names.len()` of them (and no
    /// leftover flags).
    fn positional(&self, names: &[&str]) -> Result<Vec<String>, Failure> {
        if let Some(f) = self.rest.iter().find(|a| a.starts_with("--")) {
            return Err(Failure::usage(format!("unknown option `{f}`")));
        }
        if self.rest.len() != names.len() {
            return Err(Failure::usage(format!(
                "expected {}, got {} argument(s)",
                if names.is_empty() {
                    "no arguments".to_string()
                } else {
                    names.join(" ")
                },
                self.rest.len()
            )));
        }
        Ok(self.rest.clone())
    }
}

fn help_of(command: &str) -> Option<&'static str> {
    Some(match command {
        "init" => "usage: rowsync --db FILE init --url URL --username U --database-id N --package-number N\n       [--dialect mahak|documented] [--page-size N] [--batch-size N] [--max-attempts N]\n       [--collections a,b,...] [--login-endpoint NAME] [--pull-endpoint NAME]\n       [--save-endpoint NAME] [--order-dispute-endpoint NAME] [--dispute-endpoint NAME]\n       [--upload-endpoint NAME] [--app-id ID] [--order-types 201,202,...]\n       [--password-hash md5|plain] [--clock-skew-warning SECONDS]\n\nStores the server settings in the replica (created if missing). The password is\nnever stored: give it to `sync` through $ROWSYNC_PASSWORD or stdin.\n--dialect: `mahak` (the default) is what the real Mahak server speaks (MD5 login,\nGetAllData/SaveAllData); `documented` is the API document's dialect. The package\nnumber is sent as `packageNo` in the mahak dialect.\nThe endpoints default to the dialect's own (mahak: Login, GetAllData, SaveAllData;\nboth: SolveOrderDispute, SolveDispute, Upload);\ne.g. --pull-endpoint GetAllDataV2 names another. A replica that holds data keeps its\ndialect: `rowsync wipe` it first to switch.\nA plain http:// URL is accepted only for a loopback host.\n--order-types (mahak): pull only orders of these types (203 a visitor's order, 201 a\nshop's sale...); `all` lifts the filter. Widening it pulls the orders again.\n--password-hash (mahak): how the login sends the password, `md5` (the default, most\nservers) or `plain` (some servers). Neither form is ever stored.\n--clock-skew-warning (mahak): how far, in seconds, this device's clock may be from the\nserver's `ServerTime` before `sync` and `status` warn (780, 13 minutes, by default; 0\nnever warns). Nothing is refused because of it.\nA shared device changes hands by running `init` again with another --username: each\nchange remembers its user, and `sync` sends only the signed-in user's (see `pending`).",
        "sync" => "usage: rowsync --db FILE sync [--all | --only COLLECTION,...] [--json]\n\nRuns one sync cycle: pulls what changed on the server since the last checkpoints\nin the collections that are due (reference data such as banks and person groups\nevery six hours, the rest every time; --all pulls every collection now), then\npushes the outbox (never held back). Prints what happened, with the requests,\nbytes and retries; --json prints the SyncReport.\n--only products,visitorProducts pulls just those collections now, with their link\ncollections (products brings productDetails, productProperties, visitorProducts),\nand pushes nothing: a stock check before a sale. An unknown collection is refused\nbefore anything is done.\nThe password comes from $ROWSYNC_PASSWORD, else from the first line of stdin.\nExits 1 if the cycle failed (the changes stay in the outbox).",
        "stats" => "usage: rowsync --db FILE stats [--json]\n\nShows the running totals the replica keeps of every sync it ran: syncs (failed\nones), HTTP requests (logins), bytes sent and received (decoded and on the wire),\nretries by cause (transport, stall, 5xx, 429, cut short, token refresh), time per\nphase (login, pull, apply, push, tasks) and records pulled and pushed per\ncollection. Figures only: no record content, no token. --json prints them as JSON.",
        "put" => "usage: rowsync --db FILE put COLLECTION JSON\n\nCreates the record, or updates the one named by its server id or client id\n(e.g. {\"personId\": 7, \"mobile\": \"0912...\"}). Prints the record as stored.\nNothing is sent until the next `sync`.",
        "get" => "usage: rowsync --db FILE get COLLECTION ID\n\nPrints one live record. ID is a server id (123) or a client id (c:123).",
        "delete" => "usage: rowsync --db FILE delete COLLECTION ID\n\nDeletes a record logically (the delete is pushed on the next sync).\nID is a server id (123) or a client id (c:123).",
        "list" => "usage: rowsync --db FILE list COLLECTION [--include-deleted] [--limit N] [--json]\n\nLists records in local order (default limit 100; 0 = all). One JSON record per\nline; --json prints a JSON array of the records as stored.",
        "status" => "usage: rowsync --db FILE status [--json]\n\nShows the dialect, the last login's session (visitor, database, sync id, server\ntime), the pull checkpoints, the outbox (pending and parked changes, by the user\nthat made them, creates in doubt), the dead-letter queue, the conflict log size, the connection state and\nthe last sync. A create is in doubt when its save was sent but the answer never\ncame: the next sync confirms it by a pull before anything is sent again.",
        "dlq" => "usage: rowsync --db FILE dlq list [--json]\n       rowsync --db FILE dlq retry ID\n       rowsync --db FILE dlq discard ID\n\nThe dead-letter queue: groups of changes the server refused, with its words\n(the mahak server refuses record by record, often without a code; the\ndocumented dialect answers 2001 integrity or 3001 validation) and the tracking id. `retry` puts a group\nback in the outbox (fix the data with `put` first); `discard` drops it and\nreturns its records to the server's version.",
        "conflicts" => "usage: rowsync --db FILE conflicts [--clear] [--json]\n\nShows the conflict log: local changes that met a newer server version, the\nfields in conflict and how each was resolved. --clear empties it.",
        "log" => "usage: rowsync --db FILE log [--limit N] [--json]\n\nShows the newest sync-log rows (endpoint, HTTP status, duration, tracking id,\nerror), newest first. Default limit 50.",
        "wipe" => "usage: rowsync --db FILE wipe [--force] [--json]\n\nDeletes the replica's local data: records, outbox, dead letters, conflicts,\ncheckpoints and the login's session. The settings stay, so the next `sync` pulls\neverything again. Needed to switch dialect (`init --dialect`) on a replica that\nholds data, or when the server's login names another database or visitor.\nRefused while changes wait to be pushed or sit in the dead-letter queue, unless\n--force (they are then lost: it says how many, and whose). Another user's changes\nare better kept with `rowsync pending export` first.",
        "serve" => "usage: rowsync serve [--port N] [--dialect mahak|documented] [--seed-products N]\n       [--seed-persons N] [FLAGS...]\n\nRuns the reference Mahak Sync API server (the one the tests and the demo use),\nprints its base URL and serves until killed. It speaks the real server's dialect\nby default (the password arrives as its MD5 hash, GetAllData/SaveAllData);\n--dialect documented speaks the API document's. Default user user1:pass1,\ndatabase 1001, package 2002. Port 0 takes any free port.",
        "demo" => "usage: rowsync demo\n\nPlays a point-of-sale day against an in-process reference server speaking the\nreal Mahak dialect, with a throwaway replica: login (the shop's visitor), a first\nsync of products, product details, stock and people, offline sales (orders of type\n201 with their lines), a failed sync, then one that loses a save answer and sends\nnothing twice, a customer merged field by field, a payment the server wins, a\nrefused order and a refused line (the order saved) in the dead-letter queue, the\nfix, and the replica compared with the server.",
        "version" => "usage: rowsync --version",
        "pending" => "usage: rowsync --db FILE pending [list] [--json]\n       rowsync --db FILE pending export --user NAME [--out FILE]\n       rowsync --db FILE pending discard --user NAME [--json]\n\nA shared device changes hands with `rowsync init --username NAME`: every change\nremembers the user that made it (and that user's visitor), and a `sync` sends only\nthe signed-in user's own changes, stopping (exit 1) before another user's, which\nstay in the outbox, in order, until that user signs in again and syncs.\n`list` shows the outbox by user. For a user who will not sign in again, `export`\nwrites that user's pending changes as JSON (to stdout, or --out FILE, written whole),\nand `discard` then drops them from this device: each record returns to the server's\nversion, or disappears if the server never had it. A discard is refused unless the\nchanges were exported as they are now, and each discarded change is kept in the\nreplica's discard trail. `wipe --force` is the only way to drop them unexported.",
        "hint" => "usage: ROWSYNC_HINT_SECRET=... rowsync --db FILE hint PAYLOAD_FILE SIGNATURE [--json]\n\nApplies a push hint: PAYLOAD_FILE holds the payload as received (- for stdin),\n{\"id\": \"...\", \"collections\": [\"orders\", ...], \"sentAt\": \"...\"}, and SIGNATURE is\nthe hex HMAC-SHA256 of those bytes under the shared secret. The collections it\nnames are pulled at the next `sync`. A bad signature is refused (exit 1) and\nchanges nothing; a hint id seen in the last 24 hours is a duplicate.",
        "why" => "usage: rowsync --db FILE why COLLECTION ID [--json]\n\nSays where one record stands, and why it is not on the server yet if it is not.\nExactly one of: synced (at which version, last sync), pending (which change,\nsince when, why the last sync ended), in flight, in doubt (sent, answer lost:\nthe next sync checks the server first), parked (the server's words and the dead\nletter to retry or discard), waiting behind a parked parent (which), overridden\nby a conflict (the log entry), deleted, or never seen.\nID is a server id (123) or a client id (c:123). --json prints the state as JSON.",
        "upload" => "usage: rowsync --db FILE upload COLLECTION ID FILE [--name NAME] [--json]\n\nQueues FILE for one record (/Sync/Upload): a photo of a signed invoice, of a shop\nfront. The bytes are copied into the replica now (encrypted with it, if it is), so\nFILE may be deleted afterwards. The next `sync` sends it once the record has a\nserver id, after the record's own save; a refusal parks it in the dead-letter\nqueue with the server's words. ID is a server id (123) or a client id (c:123);\n--name gives the file name sent (default: FILE's). In the mahak dialect the server\ntakes files for `pictures` records (X-PictureId): attach a photo to an order by\ncreating a `pictures` record for it, then uploading the file for that picture.\nA file over the settings' max_upload_bytes (10 MiB by default) is refused (exit 1).",
        "dispute" => "usage: rowsync --db FILE dispute order ORDER_ID [--code N] [--resolution R] [--reason T] [--amount A]\n       rowsync --db FILE dispute record COLLECTION ID ROW_VERSION [--resolution R] [--reason T]\n       rowsync --db FILE dispute reconcile COLLECTION\n\nQueues a dispute, sent by the next `sync`: `order` is SolveOrderDispute (the mahak\nserver takes a resolution --code; the documented one a --resolution accept, reject\nor adjust, with --reason and --amount), `record` is SolveDispute for one record at\nthe row version held, and `reconcile` tells the server every record of COLLECTION\nthe replica holds with its row version (the vendor plugin's repair of a diverged\nreplica). A dispute is durable and never sent twice: the mahak server does not\ndeduplicate, so one whose answer was lost is parked, not resent. Prints the ids\nof the queued tasks.",
        "pictures" => "usage: rowsync --db FILE pictures sync [--json]\n       rowsync --db FILE pictures path PICTURE_ID [--json]\n\nThe picture cache beside the replica (FILE.pictures/ unless the settings' picture_dir\nsays otherwise): every sync fetches the pictures of `pictures` records there, with\nplain GETs and no token. `pictures sync` runs it now, with no password (the files are\npublic). `pictures path` prints the cached file of a picture (its pictureId), or exits 1\nwhen there is none yet (not fetched, failed, evicted, deleted); with --json it prints\n{\"picture_id\", \"path\"} (path null) and exits 0.",
        "tasks" => "usage: rowsync --db FILE tasks [--json]\n       rowsync --db FILE tasks cancel ID\n\nLists the queued uploads and disputes: waiting for their record's server id,\nqueued, in doubt (sent, answer lost), or parked (see `rowsync dlq`). `cancel`\nremoves one that is not parked.",
        "encrypt" => "usage: ROWSYNC_DB_KEY=... rowsync --db FILE encrypt\n       rowsync --db FILE --key-file KEYFILE encrypt\n\nEncrypts a plain replica in place (SQLCipher): its data is exported into a new\nencrypted file beside it, synced to disk, then renamed over the old one, so a\nkill at any moment leaves either the old plain file or the new encrypted one.\nFrom then on every command needs the key. No other process may have it open.",
        "rekey" => "usage: ROWSYNC_DB_KEY=old ROWSYNC_NEW_DB_KEY=new rowsync --db FILE rekey\n       rowsync --db FILE --key-file OLD --new-key-file NEW rekey\n\nChanges an encrypted replica's key. The new key comes from --new-key-file (32\nraw bytes) or $ROWSYNC_NEW_DB_KEY (a passphrase).",
        _ => return None,
    })
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match run(argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) if f.code == 0 => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("rowsync: {}", f.message.replace('\n', " "));
            ExitCode::from(f.code)
        }
    }
}

fn run(argv: Vec<std::ffi::OsString>) -> Outcome {
    let mut a = Args::parse(argv)?;
    let Some(command) = a.command.clone() else {
        if a.help {
            say!("{USAGE}");
            return Ok(());
        }
        return Err(Failure::usage("no command given"));
    };
    let Some(help) = help_of(&command) else {
        return Err(Failure::usage(format!("unknown command `{command}`")));
    };
    if a.help && command != "serve" {
        say!("{help}");
        return Ok(());
    }
    match command.as_str() {
        "serve" => serve(&a),
        "demo" => {
            a.positional(&[])?;
            if rowsync_demo::run() {
                Ok(())
            } else {
                Err(Failure {
                    message: "the demo did not go as expected (see above)".into(),
                    code: 1,
                })
            }
        }
        "version" => {
            say!("rowsync {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        "init" => init(&mut a),
        "wipe" => wipe(&mut a),
        "sync" => sync(&mut a),
        "put" => put(&a),
        "get" => get(&a),
        "delete" => delete(&a),
        "list" => list(&mut a),
        "status" => status(&a),
        "stats" => stats::stats(&a),
        "dlq" => dlq(&a),
        "conflicts" => conflicts(&mut a),
        "log" => log(&mut a),
        "encrypt" => encrypt(&a),
        "why" => why(&a),
        "hint" => hint_cmd(&a),
        "rekey" => rekey(&a),
        "upload" => upload(&mut a),
        "dispute" => dispute(&mut a),
        "tasks" => tasks_cmd(&a),
        "pending" => pending::pending(&mut a),
        "pictures" => pictures_cmd(&a),
        _ => Err(Failure::usage(format!("unknown command `{command}`"))),
    }
}

/// A key from a file of exactly 32 raw bytes, else from the environment
/// variable `var` (a passphrase); None when neither is given.
fn key_from(file: Option<&std::path::Path>, var: &str) -> Result<Option<rowsync::DbKey>, Failure> {
    if let Some(file) = file {
        let bytes = std::fs::read(file).map_err(|e| Failure {
            message: format!("cannot read the key file `{}`: {e}", file.display()),
            code: 1,
        })?;
        return rowsync::DbKey::raw(&bytes).map(Some).map_err(|_| Failure {
            message: format!(
                "the key file `{}` must hold exactly 32 bytes, not {}",
                file.display(),
                bytes.len()
            ),
            code: 1,
        });
    }
    match std::env::var_os(var) {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Some("") => Ok(None),
            Some(text) => Ok(Some(rowsync::DbKey::passphrase(text))),
            None => Err(Failure::usage(format!("${var} is not valid UTF-8"))),
        },
    }
}

fn open(a: &Args) -> Result<Engine, Failure> {
    let key = key_from(a.key_file.as_deref(), "ROWSYNC_DB_KEY")?;
    let opened = match key {
        Some(key) => Engine::open_encrypted(&a.db, key),
        None => Engine::open(&a.db),
    };
    opened.map_err(|e| Failure {
        message: format!("cannot open replica `{}`: {e}", a.db.display()),
        code: 1,
    })
}

fn encrypt(a: &Args) -> Outcome {
    a.positional(&[])?;
    let Some(key) = key_from(a.key_file.as_deref(), "ROWSYNC_DB_KEY")? else {
        return Err(Failure::usage(
            "encrypt needs a key: --key-file FILE or $ROWSYNC_DB_KEY",
        ));
    };
    Engine::encrypt_in_place(&a.db, &key)?;
    if a.json {
        say!("{}", serde_json::json!({"encrypted": true}));
    } else {
        say!(
            "encrypted {}: from now on every command needs the key",
            a.db.display()
        );
    }
    Ok(())
}

fn rekey(a: &Args) -> Outcome {
    a.positional(&[])?;
    let Some(new) = key_from(a.new_key_file.as_deref(), "ROWSYNC_NEW_DB_KEY")? else {
        return Err(Failure::usage(
            "rekey needs the new key: --new-key-file FILE or $ROWSYNC_NEW_DB_KEY",
        ));
    };
    let e = open_configured(a)?;
    e.rekey(new)?;
    if a.json {
        say!("{}", serde_json::json!({"rekeyed": true}));
    } else {
        say!("the key of {} is changed", a.db.display());
    }
    Ok(())
}

/// Opens a replica that `init` must have configured.
fn open_configured(a: &Args) -> Result<Engine, Failure> {
    if !std::path::Path::new(&a.db).exists() {
        return Err(Failure {
            message: format!(
                "no replica at `{}`: run `rowsync --db {} init ...` first",
                a.db.display(),
                a.db.display()
            ),
            code: 1,
        });
    }
    open(a)
}

/// An engine error, with what to type when the way out is a command.
fn hint(e: rowsync::Error, a: &Args) -> Failure {
    let mut message = e.to_string();
    if matches!(
        e,
        rowsync::Error::ReplicaMismatch { .. } | rowsync::Error::DialectMismatch { .. }
    ) {
        message.push_str(&format!(" (`rowsync --db {} wipe`)", a.db.display()));
    }
    Failure { message, code: 1 }
}

fn print_json(v: &impl serde::Serialize) -> Outcome {
    let text = serde_json::to_string_pretty(v)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

fn parse_id(s: &str) -> Result<RecordId, Failure> {
    let (client, digits) = match s.strip_prefix("c:") {
        Some(d) => (true, d),
        None => (false, s),
    };
    let n: i64 = digits.parse().map_err(|_| {
        Failure::usage(format!(
            "bad record id `{s}`: use a server id (123) or a client id (c:123)"
        ))
    })?;
    Ok(if client {
        RecordId::Client(n)
    } else {
        RecordId::Server(n)
    })
}

// ----- serve -----------------------------------------------------------------

/// The server's own flags, as its parser lists them (so this help never
/// falls behind the server's switches).
fn server_flags() -> String {
    match rowsync_refserver::parse_cli(["--help".to_string()]) {
        Err(rowsync_refserver::ServerError::Usage(text)) => text
            .trim_start_matches("usage:")
            .trim()
            .trim_start_matches("rowsync-refserver")
            .trim()
            .to_string(),
        _ => String::new(),
    }
}

/// Wraps `[--flag ...]` groups to lines of about 80 characters.
fn wrap_flags(flags: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    // A group starts at `[` and keeps what follows it (`VALUE]`, `...`).
    let mut groups: Vec<String> = Vec::new();
    for word in flags.split_whitespace() {
        match groups.last_mut() {
            Some(last) if !word.starts_with('[') => {
                last.push(' ');
                last.push_str(word);
            }
            _ => groups.push(word.to_string()),
        }
    }
    for group in &groups {
        if !line.is_empty() && line.len() + group.len() + 1 > 80 - indent.len() {
            out.push_str(indent);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(group);
    }
    if !line.is_empty() {
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn serve(a: &Args) -> Outcome {
    if a.help || a.rest.iter().any(|x| x == "--help" || x == "-h") {
        say!("{}", help_of("serve").unwrap_or_default());
        let flags = server_flags();
        if !flags.is_empty() {
            say!(
                "\nall the server's flags:\n{}",
                wrap_flags(&flags, "  ").trim_end()
            );
        }
        return Ok(());
    }
    // Check the flags first: a usage error is exit 2, anything later (a port
    // in use, an unreadable data file) exit 1.
    if let Err(e) = rowsync_refserver::parse_cli(a.rest.clone()) {
        return Err(Failure {
            message: format!(
                "serve: {} (try `rowsync serve --help`)",
                e.to_string().lines().next().unwrap_or_default()
            ),
            code: 2,
        });
    }
    rowsync_refserver::run_cli(a.rest.clone()).map_err(|e| Failure {
        message: format!("serve: {e}"),
        code: 1,
    })
}

// ----- init ------------------------------------------------------------------

fn init(a: &mut Args) -> Outcome {
    if a.rest.iter().any(|x| x == "--password") {
        return Err(Failure::usage(
            "the password is never an argument: set ROWSYNC_PASSWORD or pipe it on stdin to `sync`",
        ));
    }
    let url = a.value("--url")?;
    let username = a.value("--username")?;
    let database_id = a.number::<i64>("--database-id")?;
    let package_number = a.number::<i64>("--package-number")?;
    let page_size = a.number::<u32>("--page-size")?;
    let batch_size = a.number::<usize>("--batch-size")?;
    let max_attempts = a.number::<u32>("--max-attempts")?;
    let collections = a.value("--collections")?;
    let login_endpoint = a.value("--login-endpoint")?;
    let pull_endpoint = a.value("--pull-endpoint")?;
    let save_endpoint = a.value("--save-endpoint")?;
    let order_dispute_endpoint = a.value("--order-dispute-endpoint")?;
    let dispute_endpoint = a.value("--dispute-endpoint")?;
    let upload_endpoint = a.value("--upload-endpoint")?;
    let app_id = a.value("--app-id")?;
    let clock_skew_warning = match a.value("--clock-skew-warning")? {
        None => None,
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            Failure::usage(format!(
                "--clock-skew-warning: `{v}` is not a number of seconds"
            ))
        })?),
    };
    let password_hash = match a.value("--password-hash")? {
        None => None,
        Some(v) => Some(
            v.parse::<rowsync::PasswordHash>()
                .map_err(|e| Failure::usage(format!("--password-hash: {e}")))?,
        ),
    };
    let order_types = match a.value("--order-types")? {
        None => None,
        Some(v) if v.trim().eq_ignore_ascii_case("all") => Some(Vec::new()),
        Some(v) => Some(
            v.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| {
                    t.parse::<i64>().map_err(|_| {
                        Failure::usage(format!(
                            "--order-types wants order types such as 201,202 (or `all`), not `{t}`"
                        ))
                    })
                })
                .collect::<Result<Vec<i64>, Failure>>()?,
        ),
    };
    let dialect = match a.value("--dialect")? {
        Some(d) => Some(
            d.parse::<rowsync::Dialect>()
                .map_err(|e| Failure::usage(e.to_string()))?,
        ),
        None => None,
    };
    a.positional(&[])?;
    for (flag, v) in [("--url", &url), ("--username", &username)] {
        if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(Failure::usage(format!("{flag} cannot be empty")));
        }
    }
    // The engine checks endpoint names only when it calls them: say it now.
    for (flag, v) in [
        ("--login-endpoint", &login_endpoint),
        ("--pull-endpoint", &pull_endpoint),
        ("--save-endpoint", &save_endpoint),
        ("--order-dispute-endpoint", &order_dispute_endpoint),
        ("--dispute-endpoint", &dispute_endpoint),
        ("--upload-endpoint", &upload_endpoint),
    ] {
        if let Some(v) = v.as_deref().map(str::trim) {
            let plain = v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !plain {
                return Err(Failure::usage(format!(
                    "{flag} wants an endpoint name such as GetAllDataV2 (letters, digits, `_`, `-`), not `{v}`"
                )));
            }
        }
    }
    // A new replica is created only once the settings are complete.
    let existing = if std::path::Path::new(&a.db).exists() {
        Some(open(a)?)
    } else {
        None
    };
    let mut s: Settings = match &existing {
        Some(engine) => engine.settings()?,
        None => Settings::default(),
    };
    let missing: Vec<&str> = [
        ("--url", url.is_none() && s.base_url.is_empty()),
        ("--username", username.is_none() && s.username.is_empty()),
        ("--database-id", database_id.is_none() && s.database_id == 0),
        (
            "--package-number",
            package_number.is_none() && s.package_number == 0,
        ),
    ]
    .into_iter()
    .filter(|(_, m)| *m)
    .map(|(f, _)| f)
    .collect();
    if !missing.is_empty() {
        return Err(Failure::usage(format!("init needs {}", missing.join(", "))));
    }
    if let Some(v) = dialect {
        s.dialect = v;
    }
    if let Some(v) = url {
        s.base_url = v;
    }
    if let Some(v) = username {
        s.username = v;
    }
    if let Some(v) = database_id {
        s.database_id = v;
    }
    if let Some(v) = package_number {
        s.package_number = v;
    }
    if let Some(v) = page_size {
        s.page_size = v;
    }
    if let Some(v) = batch_size {
        s.batch_size = v;
    }
    if let Some(v) = max_attempts {
        s.max_attempts = v;
    }
    for (field, value) in [
        (&mut s.login_endpoint, login_endpoint),
        (&mut s.pull_endpoint, pull_endpoint),
        (&mut s.save_endpoint, save_endpoint),
        (&mut s.order_dispute_endpoint, order_dispute_endpoint),
        (&mut s.dispute_endpoint, dispute_endpoint),
        (&mut s.upload_endpoint, upload_endpoint),
        (&mut s.app_id, app_id),
    ] {
        if let Some(v) = value {
            *field = v.trim().to_string();
        }
    }
    if let Some(v) = order_types {
        s.order_types = v;
    }
    if let Some(v) = password_hash {
        s.password_hash = v;
    }
    if let Some(v) = clock_skew_warning {
        s.clock_skew_warning_seconds = v;
    }
    if let Some(v) = collections {
        s.collections = v
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
    }
    let engine = match existing {
        Some(engine) => engine,
        None => open(a)?,
    };
    engine.configure(s.clone()).map_err(|e| hint(e, a))?;
    if a.json {
        // As stored (the engine tidies some, such as the order types).
        return print_json(&engine.settings()?);
    }
    say!(
        "configured {}: {} as {} (database {}, package {}, {} dialect)",
        a.db.display(),
        s.base_url,
        s.username,
        s.database_id,
        s.package_number,
        s.dialect
    );
    say!(
        "next: ROWSYNC_PASSWORD=... rowsync --db {} sync",
        a.db.display()
    );
    Ok(())
}

// ----- wipe ------------------------------------------------------------------

fn wipe(a: &mut Args) -> Outcome {
    let force = a.flag("--force");
    a.positional(&[])?;
    let engine = open_configured(a)?;
    let status = engine.status()?;
    let before = status.counts;
    let by_user: Vec<String> = status
        .pending_by_user
        .iter()
        .map(|u| {
            format!(
                "{} of {}",
                u.pending + u.parked,
                u.user.as_deref().unwrap_or("an unknown user")
            )
        })
        .collect();
    match engine.wipe(force) {
        Ok(()) => {}
        Err(rowsync::Error::PendingChanges(n)) => {
            return Err(Failure {
                message: format!(
                    "{n} change(s) wait to be pushed or sit in the dead-letter queue: sync them first, or `wipe --force` to lose them"
                ),
                code: 1,
            })
        }
        Err(e) => return Err(e.into()),
    }
    if a.json {
        return print_json(&serde_json::json!({
            "wiped": true,
            "lost_changes": before.pending + before.parked,
            "lost_by_user": status.pending_by_user,
        }));
    }
    say!(
        "wiped {}: no records, no session, no checkpoints; the settings are kept{}",
        a.db.display(),
        if before.pending + before.parked > 0 {
            format!(
                " ({} unsent change(s) dropped: {})",
                before.pending + before.parked,
                by_user.join(", ")
            )
        } else {
            String::new()
        }
    );
    say!("the next `rowsync sync` pulls everything again");
    Ok(())
}

// ----- sync ------------------------------------------------------------------

fn password() -> Result<String, Failure> {
    if let Ok(p) = std::env::var("ROWSYNC_PASSWORD") {
        if !p.is_empty() {
            return Ok(p);
        }
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password for the Mahak server: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let p = line.trim_end_matches(['\r', '\n']).to_string();
    if p.is_empty() {
        return Err(Failure {
            message: "no password: set ROWSYNC_PASSWORD or give it on stdin".into(),
            code: 1,
        });
    }
    Ok(p)
}

fn sync(a: &mut Args) -> Outcome {
    let all = a.flag("--all");
    let only: Option<Vec<String>> = a.value("--only")?.map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    });
    a.positional(&[])?;
    if all && only.is_some() {
        return Err(Failure::usage("--all and --only do not go together"));
    }
    let engine = open_configured(a)?;
    if engine.settings()?.base_url.is_empty() {
        return Err(Failure {
            message: format!(
                "`{}` has no server URL: run `rowsync init` first",
                a.db.display()
            ),
            code: 1,
        });
    }
    engine.set_password(&password()?)?;
    let result = match (&only, all) {
        (Some(only), _) => engine.sync_collections(only),
        (None, true) => engine.sync_all(),
        (None, false) => engine.sync(),
    };
    match result {
        Ok(report) => {
            if a.json {
                print_json(&report)
            } else {
                print_report(&report)
            }
        }
        Err(e) => {
            if a.json {
                if let Some(report) = engine.last_report()? {
                    print_json(&report)?;
                }
            }
            if let rowsync::Error::PendingChangesOfAnotherUser { user, count } = &e {
                let current = engine.settings()?.username;
                return Err(pending::another_user(a, user, *count, &current));
            }
            let kept = if matches!(e, rowsync::Error::InDoubt { .. }) {
                "local changes are kept; creates in doubt are confirmed by a pull before any is sent again"
            } else {
                "local changes are kept in the outbox"
            };
            let mut f = hint(e, a);
            f.message = format!("sync failed: {} ({kept})", f.message);
            Err(f)
        }
    }
}

fn print_report(r: &SyncReport) -> Outcome {
    say!(
        "pulled {} record(s) in {} request(s), {} changed the replica",
        r.pulled(),
        r.pull_requests,
        r.applied()
    );
    say!(
        "pushed {} change(s) in {} request(s); {} conflict(s) resolved, {} change(s) parked",
        r.pushed,
        r.push_requests,
        r.conflicts,
        r.parked
    );
    for (name, c) in r
        .collections
        .iter()
        .filter(|(_, c)| c.pulled + c.applied + c.deleted + c.pushed + c.conflicts + c.parked > 0)
    {
        say!(
            "  {name:<18} pulled {:>6}  applied {:>6}  deleted {:>4}  pushed {:>4}  conflicts {:>3}  parked {:>3}",
            c.pulled, c.applied, c.deleted, c.pushed, c.conflicts, c.parked
        );
    }
    for (collection, client_id, server_id) in &r.id_mappings {
        say!("  new on the server: {collection} c:{client_id} -> id {server_id}");
    }
    say!(
        "outbox: {} pending, {} dead letter(s)",
        r.pending,
        r.dead_letters
    );
    stats::print_sync_metrics(&r.metrics)?;
    if r.dead_letters > 0 {
        say!("see `rowsync dlq list` for what the server refused");
    }
    if let (true, Some(skew)) = (r.clock_skew_warning, r.clock_skew_seconds) {
        say!(
            "warning: {}: the dates written here are off by that much (nothing was refused)",
            skew_text(skew)
        );
    }
    Ok(())
}

// ----- records ---------------------------------------------------------------

fn put(a: &Args) -> Outcome {
    let p = a.positional(&["COLLECTION", "JSON"])?;
    let record: Value = serde_json::from_str(&p[1]).map_err(|e| Failure {
        message: format!("the record is not valid JSON: {e}"),
        code: 1,
    })?;
    let engine = open_configured(a)?;
    let stored = engine.put(&p[0], record)?;
    if a.json {
        return print_json(&stored);
    }
    print_json(&stored)?;
    say!("stored locally; it goes to the server on the next `rowsync sync`");
    Ok(())
}

fn get(a: &Args) -> Outcome {
    let p = a.positional(&["COLLECTION", "ID"])?;
    let id = parse_id(&p[1])?;
    let engine = open_configured(a)?;
    match engine.get(&p[0], id)? {
        Some(v) => print_json(&v),
        None => Err(Failure {
            message: format!("no live `{}` record with {id}", p[0]),
            code: 1,
        }),
    }
}

fn hint_cmd(a: &Args) -> Outcome {
    let p = a.positional(&["PAYLOAD_FILE", "SIGNATURE"])?;
    let payload = if p[0] == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
        b
    } else {
        std::fs::read(&p[0]).map_err(|e| Failure {
            message: format!("cannot read `{}`: {e}", p[0]),
            code: 1,
        })?
    };
    let secret = std::env::var_os("ROWSYNC_HINT_SECRET")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Failure::usage("hint needs the secret in $ROWSYNC_HINT_SECRET"))?;
    let engine = open_configured(a)?;
    engine.set_hint_secret(Some(secret.as_encoded_bytes()))?;
    let outcome = engine.apply_hint(&payload, &p[1])?;
    if a.json {
        return print_json(&serde_json::to_value(&outcome)?);
    }
    match outcome {
        rowsync::HintOutcome::Applied { due, unknown } => {
            say!("due at the next sync: {}", due.join(", "));
            if !unknown.is_empty() {
                say!("not in the catalogue (ignored): {}", unknown.join(", "));
            }
        }
        rowsync::HintOutcome::Duplicate => say!("a duplicate: this hint was applied already"),
    }
    Ok(())
}

fn why(a: &Args) -> Outcome {
    let p = a.positional(&["COLLECTION", "ID"])?;
    let id = parse_id(&p[1])?;
    let engine = open_configured(a)?;
    let x = engine.explain(&p[0], id)?;
    if a.json {
        return print_json(&serde_json::to_value(&x)?);
    }
    say!("{} {id}: {}", p[0], x.words());
    Ok(())
}

fn delete(a: &Args) -> Outcome {
    let p = a.positional(&["COLLECTION", "ID"])?;
    let id = parse_id(&p[1])?;
    let engine = open_configured(a)?;
    engine.delete(&p[0], id)?;
    if a.json {
        return print_json(&serde_json::json!({"deleted": true, "collection": p[0], "id": id}));
    }
    say!(
        "deleted {} {id} locally; the delete goes to the server on the next sync",
        p[0]
    );
    Ok(())
}

fn list(a: &mut Args) -> Outcome {
    let include_deleted = a.flag("--include-deleted");
    let limit = a.number::<u64>("--limit")?.unwrap_or(100);
    let p = a.positional(&["COLLECTION"])?;
    let engine = open_configured(a)?;
    let mut records = Vec::new();
    let mut options = ListOptions {
        limit: if limit == 0 { 1_000 } else { limit.min(1_000) },
        include_deleted,
        ..ListOptions::default()
    };
    loop {
        let page = engine.list(&p[0], &options)?;
        records.extend(page.records);
        match page.next_cursor {
            Some(c) if limit == 0 || (records.len() as u64) < limit => options.after = Some(c),
            _ => break,
        }
    }
    if limit > 0 {
        records.truncate(limit as usize);
    }
    if a.json {
        return print_json(&records);
    }
    let mut out = std::io::stdout().lock();
    for r in &records {
        writeln!(out, "{}", serde_json::to_string(r)?)?;
    }
    let total = engine.count(&p[0], include_deleted)?;
    writeln!(
        out,
        "({} of {} {} record(s){})",
        records.len(),
        total,
        p[0],
        if include_deleted {
            ", deleted included"
        } else {
            ""
        }
    )?;
    Ok(())
}

// ----- status ----------------------------------------------------------------

fn connection_text(c: &ConnectionState) -> String {
    match c {
        ConnectionState::Unknown => "unknown (no sync in this process)".into(),
        ConnectionState::Online => "online".into(),
        ConnectionState::Offline { next_attempt } => match next_attempt {
            Some(t) => format!("offline (next attempt after {t})"),
            None => "offline".into(),
        },
        ConnectionState::Stalled { endpoint } => {
            format!("the server stalls (its answer to {endpoint} stopped coming)")
        }
        ConnectionState::AuthFailed => "login refused".into(),
        ConnectionState::Syncing => "syncing".into(),
        ConnectionState::Uploading {
            file,
            files,
            bytes,
            bytes_done,
            bytes_total,
            ..
        } => format!(
            "uploading file {file} of {files} ({bytes} bytes; {bytes_done} of {bytes_total} sent)"
        ),
        ConnectionState::ClockSkewed { skew_seconds } => {
            format!("online, but {}", skew_text(*skew_seconds))
        }
        ConnectionState::FetchingPictures {
            picture,
            pictures,
            bytes_done,
        } => format!("fetching picture {picture} of {pictures} ({bytes_done} bytes so far)"),
    }
}

/// How far the device's clock is from the server's, in words.
fn skew_text(skew_seconds: i64) -> String {
    let way = if skew_seconds >= 0 {
        "ahead of"
    } else {
        "behind"
    };
    format!(
        "this device's clock is {}s {way} the server's",
        skew_seconds.unsigned_abs()
    )
}

// ----- uploads and disputes ----------------------------------------------

fn upload(a: &mut Args) -> Outcome {
    let name = a.value("--name")?;
    let p = a.positional(&["COLLECTION", "ID", "FILE"])?;
    let id = parse_id(&p[1])?;
    let path = std::path::PathBuf::from(&p[2]);
    let name = match name {
        Some(n) => n,
        None => path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .ok_or_else(|| Failure::usage(format!("`{}` names no file", p[2])))?,
    };
    let engine = open_configured(a)?;
    let task = engine.queue_upload(&p[0], id, UploadSource::Path(path), &name)?;
    if a.json {
        return print_json(&serde_json::json!({"upload": task}));
    }
    say!(
        "queued upload #{task}: {name} for {} {id}; the next sync sends it once the record is on the server",
        p[0]
    );
    Ok(())
}

fn dispute(a: &mut Args) -> Outcome {
    let code = a.number::<i64>("--code")?.unwrap_or(0);
    let resolution = a.value("--resolution")?.unwrap_or_default();
    let reason = a.value("--reason")?.unwrap_or_default();
    let amount = a.number::<f64>("--amount")?.unwrap_or(0.0);
    let int = |v: &str, what: &str| {
        v.parse::<i64>()
            .map_err(|_| Failure::usage(format!("{what} wants a number, not `{v}`")))
    };
    let engine;
    let ids = match a.rest.first().map(String::as_str) {
        Some("order") => {
            let p = a.positional(&["order", "ORDER_ID"])?;
            let order_id = int(&p[1], "ORDER_ID")?;
            engine = open_configured(a)?;
            engine.solve_order_dispute(vec![OrderDisputeItem {
                order_id,
                code,
                resolution,
                reason,
                amount,
            }])?
        }
        Some("record") => {
            let p = a.positional(&["record", "COLLECTION", "ID", "ROW_VERSION"])?;
            let item = RecordDisputeItem {
                id: int(&p[2], "ID")?,
                row_version: int(&p[3], "ROW_VERSION")?,
                resolution,
                reason,
            };
            engine = open_configured(a)?;
            engine.solve_dispute(&p[1], vec![item])?
        }
        Some("reconcile") => {
            let p = a.positional(&["reconcile", "COLLECTION"])?;
            engine = open_configured(a)?;
            engine.reconcile_dispute(&p[1])?
        }
        _ => {
            return Err(Failure::usage(
                "dispute wants `order`, `record` or `reconcile`",
            ))
        }
    };
    if a.json {
        return print_json(&serde_json::json!({"tasks": ids}));
    }
    match ids.as_slice() {
        [] => say!("nothing to dispute: the replica holds no synced record there"),
        ids => say!(
            "queued {} dispute request(s) ({}); the next sync sends them",
            ids.len(),
            ids.iter()
                .map(|i| format!("#{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    Ok(())
}

fn task_line(t: &TaskInfo) -> String {
    let what = match (t.kind, &t.file_name) {
        (TaskKind::Upload, Some(f)) => format!(
            "upload {f} ({} bytes) for {} {}",
            t.size,
            t.collection.as_deref().unwrap_or("?"),
            t.record
                .map(|r| r.to_string())
                .unwrap_or_else(|| "(record gone)".into())
        ),
        (TaskKind::OrderDispute, _) => format!("SolveOrderDispute of {} order(s)", t.items),
        (_, _) => format!(
            "SolveDispute of {} {} record(s)",
            t.items,
            t.collection.as_deref().unwrap_or("?")
        ),
    };
    let state = match &t.state {
        TaskState::WaitingForRecord => "waiting for its record's server id".to_string(),
        TaskState::Queued => "queued".to_string(),
        TaskState::InDoubt => "in doubt (sent, the answer never came)".to_string(),
        TaskState::Parked { dead_letter } => format!("parked in dead letter #{dead_letter}"),
    };
    let error = t
        .last_error
        .as_deref()
        .map(|e| format!("; last error: {e}"))
        .unwrap_or_default();
    format!(
        "#{}  {what}: {state}, {} attempt(s){error}",
        t.id, t.attempts
    )
}

fn tasks_cmd(a: &Args) -> Outcome {
    if a.rest.first().map(String::as_str) == Some("cancel") {
        let p = a.positional(&["cancel", "ID"])?;
        let id: i64 = p[1]
            .trim_start_matches('#')
            .parse()
            .map_err(|_| Failure::usage(format!("bad task id `{}`", p[1])))?;
        open_configured(a)?.cancel_task(id)?;
        say!("task #{id} removed from the queue");
        return Ok(());
    }
    a.positional(&[])?;
    let engine = open_configured(a)?;
    let tasks = engine.tasks()?;
    if a.json {
        return print_json(&serde_json::to_value(&tasks)?);
    }
    if tasks.is_empty() {
        say!("no upload or dispute is queued");
    }
    for t in &tasks {
        say!("{}", task_line(t));
    }
    Ok(())
}

fn pictures_cmd(a: &Args) -> Outcome {
    if a.rest.first().map(String::as_str) == Some("path") {
        let p = a.positional(&["path", "PICTURE_ID"])?;
        let id: i64 = p[1]
            .parse()
            .map_err(|_| Failure::usage(format!("bad picture id `{}`", p[1])))?;
        let path = open_configured(a)?.picture_path(id)?;
        if a.json {
            return print_json(&serde_json::json!({"picture_id": id, "path": path}));
        }
        return match path {
            Some(path) => {
                say!("{}", path.display());
                Ok(())
            }
            None => Err(Failure {
                message: format!(
                    "picture {id} has no file in the cache yet (not fetched, failed, evicted or deleted): `rowsync pictures sync`"
                ),
                code: 1,
            }),
        };
    }
    let p = a.positional(&["sync"])?;
    if p[0] != "sync" {
        return Err(Failure::usage(format!(
            "unknown pictures command `{}`: sync or path",
            p[0]
        )));
    }
    let report = open_configured(a)?.sync_pictures()?;
    if a.json {
        return print_json(&report);
    }
    say!(
        "pictures: {} wanted, {} fetched, {} failed (tried again later), {} removed, {} evicted; {} in the cache ({} bytes)",
        report.wanted,
        report.fetched,
        report.failed,
        report.removed,
        report.evicted,
        report.cached,
        report.bytes
    );
    Ok(())
}

fn status(a: &Args) -> Outcome {
    a.positional(&[])?;
    let engine = open_configured(a)?;
    let s: Status = engine.status()?;
    let settings = engine.settings()?;
    if a.json {
        let mut v = serde_json::to_value(&s)?;
        if let Value::Object(m) = &mut v {
            m.insert("base_url".into(), Value::from(settings.base_url));
            m.insert("username".into(), Value::from(settings.username));
        }
        return print_json(&v);
    }
    say!("replica       {}", a.db.display());
    say!(
        "server        {}",
        if settings.base_url.is_empty() {
            "(not configured: run `rowsync init`)"
        } else {
            &settings.base_url
        }
    );
    say!("dialect       {}", s.dialect);
    if let Some(session) = &s.session {
        say!(
            "session       visitor {} of database {} ({}), sync id {}",
            session.visitor_id,
            session.database_id,
            session.user_title.trim(),
            session.sync_id
        );
        if !session.server_time.is_empty() {
            say!("              server time at login {}", session.server_time);
        }
    }
    if s.connection != ConnectionState::Unknown {
        say!("connection    {}", connection_text(&s.connection));
    }
    match (&s.last_sync, &s.last_error) {
        (None, _) => say!("last sync     never"),
        (Some(at), None) => say!("last sync     {at} (succeeded)"),
        (Some(at), Some(e)) => say!("last sync     {at} (failed: {e})"),
    }
    say!(
        "outbox        {} pending change(s), {} parked",
        s.counts.pending,
        s.counts.parked
    );
    if s.pending_by_user
        .iter()
        .any(|u| u.user.as_deref() != Some(&settings.username))
    {
        for u in &s.pending_by_user {
            let name = u.user.as_deref().unwrap_or("(unknown user)");
            say!(
                "  by {name}: {} pending, {} parked{}{}",
                u.pending,
                u.parked,
                u.visitor_id
                    .map_or(String::new(), |v| format!(" (visitor {v})")),
                if u.user.is_some() && u.user.as_deref() != Some(&settings.username) {
                    " - sent only when this user signs in and syncs (`rowsync pending`)"
                } else {
                    ""
                }
            );
        }
    }
    if s.discarded > 0 {
        say!(
            "discarded     {} change(s) exported and discarded (kept in the discard trail)",
            s.discarded
        );
    }
    if s.counts.in_doubt > 0 {
        say!(
            "in doubt      {} create(s) sent whose answer never came: the next sync confirms them by a pull first",
            s.counts.in_doubt
        );
    }
    if s.counts.uploads + s.counts.disputes > 0 {
        say!(
            "tasks         {} upload(s), {} dispute(s) queued",
            s.counts.uploads,
            s.counts.disputes
        );
    }
    for t in &s.uploads {
        say!("  {}", task_line(t));
    }
    say!("dead letters  {}", s.counts.dead_letters);
    say!("conflicts     {} logged", s.counts.conflicts);
    if let Some(skew) = s.clock_skew_seconds {
        let warn = if s.clock_skew_warning {
            " (past the warning threshold: fix the device's clock)"
        } else {
            ""
        };
        say!("clock         {}{warn}", skew_text(skew));
    }
    let moved: Vec<_> = s.checkpoints.iter().filter(|(_, v)| *v > 0).collect();
    if moved.is_empty() {
        say!("checkpoints   none yet (the first sync pulls everything)");
    } else {
        say!("checkpoints");
        for (c, v) in moved {
            say!("  {c:<18}  {v}");
        }
    }
    Ok(())
}

// ----- dead letters, conflicts, log ------------------------------------------

fn dlq(a: &Args) -> Outcome {
    let engine;
    match a.rest.first().map(String::as_str) {
        None | Some("list") => {
            a.positional(if a.rest.is_empty() { &[] } else { &["list"] })?;
            engine = open_configured(a)?;
            let letters = engine.dead_letters()?;
            if a.json {
                return print_json(&letters);
            }
            if letters.is_empty() {
                say!("the dead-letter queue is empty");
            }
            for l in &letters {
                say!(
                    "#{}  {}{}{}{}",
                    l.id,
                    // The real server's refusals often carry no code.
                    if l.code == 0 {
                        String::new()
                    } else {
                        format!("code {}  ", l.code)
                    },
                    l.message.trim(),
                    l.entity
                        .as_ref()
                        .map(|e| format!(
                            "  [{e}{}]",
                            l.field
                                .as_ref()
                                .map(|f| format!(".{f}"))
                                .unwrap_or_default()
                        ))
                        .unwrap_or_default(),
                    l.tracking_id
                        .as_ref()
                        .map(|t| format!("  tracking {t}"))
                        .unwrap_or_default()
                );
                say!("     parked at {}", l.parked_at);
                for c in &l.changes {
                    say!(
                        "     {:?} {} {}",
                        c.op,
                        c.collection,
                        ids(c.server_id, c.client_id)
                    );
                }
                for t in &l.tasks {
                    say!("     {}", task_line(t));
                }
            }
            Ok(())
        }
        Some(verb @ ("retry" | "discard")) => {
            let p = a.positional(&[verb, "ID"])?;
            let id: i64 = p[1]
                .trim_start_matches('#')
                .parse()
                .map_err(|_| Failure::usage(format!("bad dead-letter id `{}`", p[1])))?;
            engine = open_configured(a)?;
            if verb == "retry" {
                engine.retry_dead_letter(id)?;
                say!("dead letter #{id} is back in the outbox; run `rowsync sync` to send it");
            } else {
                engine.discard_dead_letter(id)?;
                say!("dead letter #{id} discarded; its records are back to the server's version");
            }
            Ok(())
        }
        Some(other) => Err(Failure::usage(format!(
            "unknown dlq action `{other}` (list, retry ID, discard ID)"
        ))),
    }
}

fn ids(server: Option<i64>, client: Option<i64>) -> String {
    match (server, client) {
        (Some(s), Some(c)) => format!("id {s} (c:{c})"),
        (Some(s), None) => format!("id {s}"),
        (None, Some(c)) => format!("c:{c}"),
        (None, None) => "(no id)".into(),
    }
}

fn conflicts(a: &mut Args) -> Outcome {
    let clear = a.flag("--clear");
    a.positional(&[])?;
    let engine = open_configured(a)?;
    if clear {
        let n = engine.clear_conflicts()?;
        if a.json {
            return print_json(&serde_json::json!({ "cleared": n }));
        }
        say!(
            "cleared {n} conflict-log entr{}",
            if n == 1 { "y" } else { "ies" }
        );
        return Ok(());
    }
    let entries = engine.conflicts()?;
    if a.json {
        return print_json(&entries);
    }
    if entries.is_empty() {
        say!("no conflicts logged");
    }
    for e in &entries {
        say!(
            "#{}  {} {}  {}  fields [{}]  at {}",
            e.id,
            e.collection,
            ids(e.server_id, e.client_id),
            e.resolution,
            e.fields.join(", "),
            e.at
        );
        for f in &e.fields {
            let pick = |v: &Option<Value>| {
                v.as_ref()
                    .and_then(|v| v.get(f))
                    .map(|x| x.to_string())
                    .unwrap_or_else(|| "-".into())
            };
            say!(
                "     {f}: base {}  local {}  server {}",
                pick(&e.base),
                pick(&e.local),
                pick(&e.server)
            );
        }
    }
    Ok(())
}

fn log(a: &mut Args) -> Outcome {
    let limit = a.number::<u32>("--limit")?.unwrap_or(50);
    a.positional(&[])?;
    let engine = open_configured(a)?;
    let rows: Vec<SyncLogEntry> = engine.sync_log(limit)?;
    if a.json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        say!("the sync log is empty");
    }
    for r in &rows {
        say!(
            "{}  {:<14} {:>4}  {:>6} ms  {}{}",
            r.at,
            r.endpoint,
            r.status.map_or_else(|| "-".to_string(), |s| s.to_string()),
            r.duration_ms,
            r.tracking_id.as_deref().unwrap_or("-"),
            r.error
                .as_ref()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
