//! Per-collection pull schedules (issue 13, part 3): low-churn reference
//! collections (banks, person groups, regions, ...) are pulled less often
//! than orders, people and payments. A collection is due when it was never
//! pulled, or when its interval has passed since its last complete pull.
//! The push is never held back by a schedule; `Engine::sync_all` pulls
//! everything regardless.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// Collections that change rarely (both dialects' names): pulled every six
/// hours by default. Everything else: at every sync.
const LOW_CHURN: &[&str] = &[
    "bankGroups",
    "banks",
    "currencies",
    "expenseGroups",
    "incomeGroups",
    "personGroups",
    "productCategories",
    "productProperties",
    "propertyDescriptions",
    "propertyDescriptionValues",
    "regions",
    "returnReasons",
    "costLevelNames",
    "units",
    "companies",
    "projects",
    "stores",
    "settings",
    "orderTaxStatuses",
];

/// The default interval of a low-churn collection, in seconds.
pub const LOW_CHURN_SECS: u64 = 6 * 3600;

/// The interval of `collection`, in seconds (0: at every sync): the
/// settings' own, else the default by churn.
pub fn interval_of(collection: &str, intervals: &BTreeMap<String, u64>) -> u64 {
    match intervals.get(collection) {
        Some(secs) => *secs,
        None if LOW_CHURN.contains(&collection) => LOW_CHURN_SECS,
        None => 0,
    }
}

/// True when `collection` is due at `now`, given when it was last pulled.
pub fn is_due(
    collection: &str,
    intervals: &BTreeMap<String, u64>,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    let interval = interval_of(collection, intervals);
    match last {
        None => true,
        Some(_) if interval == 0 => true,
        Some(at) => {
            let secs = i64::try_from(interval).unwrap_or(i64::MAX);
            at.checked_add_signed(chrono::Duration::seconds(secs))
                .is_none_or(|next| next <= now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_churn_collections_wait_and_the_rest_do_not() {
        let none = BTreeMap::new();
        let now = Utc::now();
        let an_hour_ago = now - chrono::Duration::hours(1);
        assert!(is_due("banks", &none, None, now), "never pulled");
        assert!(!is_due("banks", &none, Some(an_hour_ago), now));
        assert!(is_due(
            "banks",
            &none,
            Some(now - chrono::Duration::hours(7)),
            now
        ));
        assert!(is_due("orders", &none, Some(now), now));
        let mut own = BTreeMap::new();
        own.insert("orders".to_string(), 600);
        own.insert("banks".to_string(), 0);
        assert!(!is_due("orders", &own, Some(now), now));
        assert!(is_due("banks", &own, Some(now), now));
    }
}
