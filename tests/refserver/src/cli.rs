//! The command line of the `rowsync-refserver` binary (also reused by the
//! project CLI as `rowsync serve`): plain `std::env::args` parsing into
//! [`CliOptions`], then open, seed, listen and serve until killed.

use std::path::PathBuf;
use std::time::Duration;

use crate::{RefServer, RunningServer, ServerConfig, ServerError};

/// Usage text of the command line.
pub const USAGE: &str = "usage: rowsync-refserver [--port N] [--host ADDR] [--data FILE] \
[--seed-products N] [--seed-persons N] [--seed-orders N] [--admin] [--token-ttl SECS] [--user NAME:PASS]... \
[--database-id N] [--package-number N] [--rate-limit PER_SEC] [--retry-after-date] \
[--bare-login] [--omit-error-list] [--seed N] [--verbose] [--dialect mahak|documented] \
[--exclusive-bound] [--page-cap-total] [--server-page-cap N] [--ignore-page-size] [--unordered] \
[--resend-updates] [--refuse-offset-dates] [--visitor-id N] [--repeat-save-index] \
[--refuse-saves-after-apply] [--stall-pulls] [--pull-objects normal|null-data|null-objects|missing] \
[--duplicate-pulled-keys] [--plain-passwords] [--clock-offset SECONDS] [--no-server-time] \
[--upload-without-additional-data] [--user-visitor NAME:ID]... [--seed-pictures N] \
[--slow-picture ID]... [--slow-picture-ms MS] [--missing-picture ID]... [--cut-picture ID]...";

/// Parsed command-line options.
#[derive(Debug, Clone)]
pub struct CliOptions {
    /// Address to listen on (default `127.0.0.1`).
    pub host: String,
    /// Port (default 8080; 0 = any free port).
    pub port: u16,
    /// Products to generate at start.
    pub seed_products: usize,
    /// Persons to generate at start.
    pub seed_persons: usize,
    /// Orders (with their lines) to generate at start, after the products
    /// and persons (mahak dialect).
    pub seed_orders: usize,
    /// Pictures (with their files) to generate at start, after the
    /// products (mahak dialect).
    pub seed_pictures: usize,
    /// The server configuration.
    pub config: ServerConfig,
}

fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, ServerError> {
    let v = v.ok_or_else(|| ServerError::Usage(format!("{flag} needs a value\n{USAGE}")))?;
    v.parse()
        .map_err(|_| ServerError::Usage(format!("bad value `{v}` for {flag}\n{USAGE}")))
}

/// Parses the arguments (without the program name).
pub fn parse_cli(args: impl IntoIterator<Item = String>) -> Result<CliOptions, ServerError> {
    let mut o = CliOptions {
        host: "127.0.0.1".to_string(),
        port: 8080,
        seed_products: 0,
        seed_persons: 0,
        seed_orders: 0,
        seed_pictures: 0,
        config: ServerConfig {
            verbose: false,
            ..ServerConfig::default()
        },
    };
    let mut users = Vec::new();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--port" => o.port = value(&flag, args.next())?,
            "--host" => o.host = value(&flag, args.next())?,
            "--data" => o.config.data = Some(PathBuf::from(value::<String>(&flag, args.next())?)),
            "--seed-products" => o.seed_products = value(&flag, args.next())?,
            "--seed-persons" => o.seed_persons = value(&flag, args.next())?,
            "--seed-orders" => o.seed_orders = value(&flag, args.next())?,
            "--admin" => o.config.admin = true,
            "--token-ttl" => o.config.token_ttl = Duration::from_secs(value(&flag, args.next())?),
            "--user" => {
                let v: String = value(&flag, args.next())?;
                let (n, p) = v.split_once(':').ok_or_else(|| {
                    ServerError::Usage(format!("--user wants NAME:PASS\n{USAGE}"))
                })?;
                users.push((n.to_string(), p.to_string()));
            }
            "--user-visitor" => {
                let v: String = value(&flag, args.next())?;
                let pair = v
                    .split_once(':')
                    .and_then(|(n, id)| Some((n.to_string(), id.parse::<i64>().ok()?)));
                let Some(pair) = pair else {
                    return Err(ServerError::Usage(format!(
                        "--user-visitor wants NAME:ID\n{USAGE}"
                    )));
                };
                o.config.user_visitors.push(pair);
            }
            "--database-id" => o.config.database_id = value(&flag, args.next())?,
            "--package-number" => o.config.package_number = value(&flag, args.next())?,
            "--rate-limit" => o.config.rate_limit_per_sec = Some(value(&flag, args.next())?),
            "--retry-after-date" => o.config.retry_after_http_date = true,
            "--bare-login" => o.config.bare_login = true,
            "--omit-error-list" => o.config.omit_error_list = true,
            "--seed" => o.config.seed = value(&flag, args.next())?,
            "--dialect" => {
                let v: String = value(&flag, args.next())?;
                o.config.dialect = v
                    .parse()
                    .map_err(|e| ServerError::Usage(format!("{e}\n{USAGE}")))?;
            }
            "--exclusive-bound" => o.config.exclusive_lower_bound = true,
            "--page-cap-total" => o.config.page_cap_total = true,
            "--server-page-cap" => o.config.server_page_cap = Some(value(&flag, args.next())?),
            "--ignore-page-size" => o.config.ignore_page_size = true,
            "--unordered" => o.config.unordered = true,
            "--resend-updates" => o.config.resend_updates = true,
            "--refuse-offset-dates" => o.config.refuse_offset_dates = true,
            "--visitor-id" => o.config.visitor_id = value(&flag, args.next())?,
            "--repeat-save-index" => o.config.repeat_save_index = true,
            "--refuse-saves-after-apply" => o.config.refuse_saves_after_apply = true,
            "--stall-pulls" => o.config.stall_pulls = true,
            "--pull-objects" => {
                let v: String = value(&flag, args.next())?;
                o.config.pull_objects = v
                    .parse()
                    .map_err(|e| ServerError::Usage(format!("{e}\n{USAGE}")))?;
            }
            "--duplicate-pulled-keys" => o.config.duplicate_pulled_keys = true,
            "--plain-passwords" => o.config.plain_passwords = true,
            "--clock-offset" => o.config.clock_offset_seconds = value(&flag, args.next())?,
            "--no-server-time" => o.config.omit_server_time = true,
            "--upload-without-additional-data" => o.config.upload_without_additional_data = true,
            "--seed-pictures" => o.seed_pictures = value(&flag, args.next())?,
            "--slow-picture" => o.config.slow_pictures.push(value(&flag, args.next())?),
            "--slow-picture-ms" => {
                o.config.slow_picture_delay = Duration::from_millis(value(&flag, args.next())?)
            }
            "--missing-picture" => o.config.missing_pictures.push(value(&flag, args.next())?),
            "--cut-picture" => o.config.cut_pictures.push(value(&flag, args.next())?),
            "--verbose" | "-v" => o.config.verbose = true,
            "--help" | "-h" => return Err(ServerError::Usage(USAGE.to_string())),
            other => {
                return Err(ServerError::Usage(format!(
                    "unknown argument `{other}`\n{USAGE}"
                )))
            }
        }
    }
    if !users.is_empty() {
        o.config.users = users;
    }
    Ok(o)
}

/// Parses `args` (without the program name), opens and seeds the server,
/// prints the base URL on stdout and serves until the process is killed.
pub fn run_cli(args: impl IntoIterator<Item = String>) -> Result<(), ServerError> {
    let o = parse_cli(args)?;
    let server = RefServer::open(o.config)?;
    let started = std::time::Instant::now();
    server.admin().seed_products(o.seed_products)?;
    server.admin().seed_persons(o.seed_persons)?;
    server.admin().seed_orders(o.seed_orders)?;
    if o.seed_pictures > 0 {
        server.admin().seed_pictures(o.seed_pictures)?;
    }
    if o.seed_products + o.seed_persons + o.seed_orders + o.seed_pictures > 0 {
        eprintln!(
            "seeded {} products, {} persons (people), {} orders and {} pictures in {:.2?}",
            o.seed_products,
            o.seed_persons,
            o.seed_orders,
            o.seed_pictures,
            started.elapsed()
        );
    }
    let running = RunningServer::serve(server, &format!("{}:{}", o.host, o.port))?;
    println!("{}", running.base_url());
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_flags() {
        let o = parse_cli(args(
            "--port 0 --data x.db --seed-products 10 --admin --token-ttl 5 --user a:b --user c:d:e",
        ))
        .unwrap();
        assert_eq!(o.port, 0);
        assert_eq!(o.seed_products, 10);
        assert!(o.config.admin);
        assert_eq!(o.config.token_ttl, Duration::from_secs(5));
        assert_eq!(
            o.config.users,
            vec![("a".into(), "b".into()), ("c".into(), "d:e".into())]
        );
        assert_eq!(o.config.dialect, crate::Dialect::Mahak, "mahak by default");
        let o = parse_cli(args("--dialect documented --unordered --server-page-cap 7")).unwrap();
        assert_eq!(o.config.dialect, crate::Dialect::Documented);
        assert!(o.config.unordered);
        assert_eq!(o.config.server_page_cap, Some(7));
        let o = parse_cli(args(
            "--seed-orders 5 --resend-updates --refuse-offset-dates --visitor-id 9",
        ))
        .unwrap();
        assert_eq!(o.seed_orders, 5);
        assert!(o.config.resend_updates);
        assert!(o.config.refuse_offset_dates);
        assert_eq!(o.config.visitor_id, 9);
        let o = parse_cli(args(
            "--repeat-save-index --refuse-saves-after-apply --stall-pulls \
             --pull-objects null-objects --duplicate-pulled-keys --plain-passwords",
        ))
        .unwrap();
        assert!(o.config.repeat_save_index && o.config.refuse_saves_after_apply);
        assert!(o.config.stall_pulls && o.config.duplicate_pulled_keys);
        assert!(o.config.plain_passwords);
        assert_eq!(o.config.pull_objects, crate::PullObjects::NullObjects);
        let o = parse_cli(args(
            "--clock-offset -1200 --no-server-time --upload-without-additional-data",
        ))
        .unwrap();
        assert_eq!(o.config.clock_offset_seconds, -1200);
        assert!(o.config.omit_server_time && o.config.upload_without_additional_data);
        assert!(parse_cli(args("--clock-offset soon")).is_err());
        let o = parse_cli(args(
            "--seed-pictures 3 --slow-picture 1 --slow-picture-ms 50 --missing-picture 2 \
             --cut-picture 3 --cut-picture 4",
        ))
        .unwrap();
        assert_eq!(o.seed_pictures, 3);
        assert_eq!(o.config.slow_pictures, [1]);
        assert_eq!(o.config.slow_picture_delay, Duration::from_millis(50));
        assert_eq!(o.config.missing_pictures, [2]);
        assert_eq!(o.config.cut_pictures, [3, 4]);
        assert!(parse_cli(args("--pull-objects sometimes")).is_err());
        assert!(parse_cli(args("--dialect klingon")).is_err());
        assert!(parse_cli(args("--port")).is_err());
        assert!(parse_cli(args("--bogus")).is_err());
        assert!(parse_cli(args("--user nocolon")).is_err());
    }
}
