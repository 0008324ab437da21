//! `rowsync pending`: the outbox by the user that made each change (a
//! shared device that changes hands with `init --username`), and the way
//! out for a user who will not sign in again: export that user's changes
//! as JSON, then discard them (only as exported; the discard trail keeps
//! them). The sentence `sync` says when it stops before another user's
//! changes is here too.

use std::io::Write;

use super::{open_configured, print_json, Args, Failure, Outcome};

/// What `sync` says when it stopped before `user`'s changes.
pub(crate) fn another_user(a: &Args, user: &str, count: u64, current: &str) -> Failure {
    let db = a.db.display();
    Failure {
        message: format!(
            "sync stopped: {count} change(s) made by `{user}` wait on this device and are never sent as `{current}` (`{current}`'s own changes went out); \
             to send them, `{user}` signs in again (`rowsync --db {db} init --username {user}`, then `sync`), \
             or keep them with `rowsync --db {db} pending export --user {user} --out FILE` and then `rowsync --db {db} pending discard --user {user}`"
        ),
        code: 1,
    }
}

pub(crate) fn pending(a: &mut Args) -> Outcome {
    let user = a.value("--user")?;
    let out = a.value("--out")?;
    let verb = a.rest.first().cloned();
    match verb.as_deref() {
        None | Some("list") => {
            a.positional(if a.rest.is_empty() { &[] } else { &["list"] })?;
            list(a)
        }
        Some("export") => {
            a.positional(&["export"])?;
            let user = need_user(user)?;
            export(a, &user, out.as_deref())
        }
        Some("discard") => {
            a.positional(&["discard"])?;
            let user = need_user(user)?;
            discard(a, &user)
        }
        Some(other) => Err(Failure::usage(format!(
            "pending wants list, export or discard, not `{other}`"
        ))),
    }
}

fn need_user(user: Option<String>) -> Result<String, Failure> {
    match user {
        Some(u) if !u.trim().is_empty() => Ok(u),
        _ => Err(Failure::usage("--user NAME is needed")),
    }
}

fn list(a: &Args) -> Outcome {
    let engine = open_configured(a)?;
    let users = engine.pending_by_user()?;
    if a.json {
        return print_json(&users);
    }
    let current = engine.settings()?.username;
    if users.is_empty() {
        writeln!(std::io::stdout().lock(), "the outbox is empty")?;
    }
    for u in &users {
        let name = u.user.as_deref().unwrap_or("(unknown user)");
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{name:<16} {} pending, {} parked{}{}",
            u.pending,
            u.parked,
            u.visitor_id
                .map_or(String::new(), |v| format!(", visitor {v}")),
            match &u.user {
                Some(n) if *n != current => "  (sent only when this user signs in and syncs)",
                _ => "",
            }
        )?;
    }
    Ok(())
}

fn export(a: &Args, user: &str, out: Option<&str>) -> Outcome {
    let engine = open_configured(a)?;
    let changes = engine.export_pending(user)?;
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "user": user,
        "count": changes.len(),
        "changes": changes,
    }))?;
    match out {
        None | Some("-") => writeln!(std::io::stdout().lock(), "{text}")?,
        Some(path) => {
            // Written whole beside the target, then renamed: a kill never
            // leaves half an export under the name asked for.
            let tmp = format!("{path}.part");
            {
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(text.as_bytes())?;
                f.write_all(b"\n")?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, path)?;
            writeln!(
                std::io::stderr().lock(),
                "exported {} change(s) of `{user}` to {path}; `rowsync --db {} pending discard --user {user}` now drops them from this device",
                changes.len(),
                a.db.display()
            )?;
        }
    }
    Ok(())
}

fn discard(a: &Args, user: &str) -> Outcome {
    let engine = open_configured(a)?;
    match engine.discard_pending(user) {
        Ok(n) => {
            if a.json {
                return print_json(&serde_json::json!({"user": user, "discarded": n}));
            }
            writeln!(
                std::io::stdout().lock(),
                "discarded {n} change(s) of `{user}`; the discard trail keeps them"
            )?;
            Ok(())
        }
        Err(rowsync::Error::PendingChanges(n)) => Err(Failure {
            message: format!(
                "{n} change(s) of `{user}` were not exported as they are now: run `rowsync --db {} pending export --user {user} --out FILE` first",
                a.db.display()
            ),
            code: 1,
        }),
        Err(e) => Err(e.into()),
    }
}
