/* C binding test, in the real Mahak dialect and vocabulary: an offline
 * write, a sync against the reference server, the session, a sale (an order
 * of type 201 for a new customer, with two lines on a pulled product detail)
 * written as one group and pushed with its ids mapped back, the change and
 * status callbacks, the error paths (NULL and invalid arguments, unknown
 * collection, not found, a dialect switch, a refused login), a live query
 * (its first result, its final one after a sale is written and synced,
 * silence once freed), a picture's cached file, every handed-out value
 * freed, and the server's clock (a second server, 20 minutes ahead: the
 * skew warns). Run by bindings/scripts/test-c.sh under ASan and
 * under valgrind. */

#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rowsync.h"

static int failures = 0;

#define CHECK(cond, what)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "FAIL %s:%d: %s (last error: %s)\n", __FILE__,  \
                    __LINE__, what, rowsync_last_error_message());          \
            failures++;                                                     \
        }                                                                   \
    } while (0)

/* The integer after the first `"key":` in `json`, or -1 (absent or null).
 * Enough for a test; an app would use a JSON library. */
static long long json_int(const char *json, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = json != NULL ? strstr(json, pattern) : NULL;
    if (at == NULL) return -1;
    char *end = NULL;
    long long v = strtoll(at + strlen(pattern), &end, 10);
    return end == at + strlen(pattern) ? -1 : v;
}

/* How many times `needle` occurs in `hay`. */
static int occurrences(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; p != NULL && (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

static int changes_seen = 0;

static void on_change(void *user_data, const char *events_json) {
    int *count = (int *)user_data;
    if (events_json != NULL && strstr(events_json, "\"collection\"") != NULL) {
        (*count)++;
    }
}

static int online_seen = 0;
static int states_seen = 0;

static void on_status(void *user_data, const char *state_json) {
    (void)user_data;
    states_seen++;
    if (state_json != NULL && strstr(state_json, "\"online\"") != NULL) {
        online_seen++;
    }
}

static int skew_notices = 0;

static void on_skew_status(void *user_data, const char *state_json) {
    (void)user_data;
    if (state_json != NULL && strstr(state_json, "\"clock_skewed\"") != NULL &&
        llabs(json_int(state_json, "skew_seconds") + 1200) <= 5) {
        skew_notices++;
    }
}

/* The server's clock: against `url`, a server 20 minutes ahead, the report
 * and the status carry clock_skew_seconds (about -1200: the device is
 * behind) and clock_skew_warning, the status callback is told
 * {"state":"clock_skewed"} once, and the state stays online; nothing is
 * refused. With a threshold of an hour, it is shown and does not warn.
 * Real time drifts: a tolerance, not exact seconds. */
static void clock_skew(const char *url) {
    RowsyncEngine *e = NULL;
    RowsyncSubscription *s = NULL;
    char *out = NULL;
    char settings[512];
    CHECK(rowsync_engine_open(":memory:", &e) == ROWSYNC_RESULT_OK, "open (clock)");
    snprintf(settings, sizeof settings, "{\"base_url\": \"%s\", \"max_attempts\": 2}", url);
    CHECK(rowsync_engine_configure(e, settings) == ROWSYNC_RESULT_OK, "configure (clock)");
    CHECK(rowsync_engine_settings(e, &out) == ROWSYNC_RESULT_OK &&
              json_int(out, "clock_skew_warning_seconds") == 780,
          "13 minutes by default");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_set_credentials(e, "user1", "pass1", 1001, 2002) == ROWSYNC_RESULT_OK,
          "credentials (clock)");
    CHECK(rowsync_engine_subscribe_status(e, on_skew_status, NULL, &s) == ROWSYNC_RESULT_OK,
          "subscribe status (clock)");
    CHECK(rowsync_engine_sync(e, &out) == ROWSYNC_RESULT_OK, "sync with a server 20 minutes ahead");
    CHECK(llabs(json_int(out, "clock_skew_seconds") + 1200) <= 5, "the report's skew");
    CHECK(out != NULL && strstr(out, "\"clock_skew_warning\":true") != NULL, "the report warns");
    CHECK(out != NULL && strstr(out, "\"connection\":{\"state\":\"online\"}") != NULL,
          "the state stays online");
    rowsync_string_free(out);
    out = NULL;
    CHECK(skew_notices == 1, "the status callback was told clock_skewed once");
    CHECK(rowsync_engine_status(e, &out) == ROWSYNC_RESULT_OK, "status (clock)");
    CHECK(llabs(json_int(out, "clock_skew_seconds") + 1200) <= 5 &&
              strstr(out, "\"clock_skew_warning\":true") != NULL,
          "the status warns");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_configure(e, "{\"clock_skew_warning_seconds\": 3600}") == ROWSYNC_RESULT_OK,
          "an hour's threshold");
    CHECK(rowsync_engine_status(e, &out) == ROWSYNC_RESULT_OK &&
              llabs(json_int(out, "clock_skew_seconds") + 1200) <= 5 &&
              strstr(out, "\"clock_skew_warning\":false") != NULL,
          "shown, no warning under an hour's threshold");
    rowsync_string_free(out);
    rowsync_subscription_free(s);
    rowsync_engine_free(e);
}

/* What a live-query callback was told. The callback runs on the engine's
 * own live-query thread, so everything here is behind the lock. */
struct watched {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int results;
    int errors;
    char *last; /* the newest records (malloc'd) */
};

static void watched_init(struct watched *w) {
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->changed, NULL);
    w->results = 0;
    w->errors = 0;
    w->last = NULL;
}

static void watched_free(struct watched *w) {
    free(w->last);
    pthread_cond_destroy(&w->changed);
    pthread_mutex_destroy(&w->lock);
}

static void on_records(void *user_data, RowsyncResult result, const char *json) {
    struct watched *w = user_data;
    pthread_mutex_lock(&w->lock);
    if (result == ROWSYNC_RESULT_OK && json != NULL) {
        free(w->last);
        w->last = strdup(json);
        w->results++;
    } else {
        w->errors++;
    }
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
}

/* True once `w`'s newest result is `expected` (waits at most 60 s: a guard
 * against a hang, not a timing check). */
static int wait_for(struct watched *w, const char *expected) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&w->lock);
    int ok = 0;
    while (!(ok = w->last != NULL && expected != NULL && strcmp(w->last, expected) == 0)) {
        if (pthread_cond_timedwait(&w->changed, &w->lock, &until) != 0) break;
    }
    pthread_mutex_unlock(&w->lock);
    return ok;
}

/* The query's records now, as `rowsync_engine_query` gives them (malloc'd
 * by the library: free with rowsync_string_free). */
static char *records_now(RowsyncEngine *engine, const char *query) {
    char *out = NULL;
    CHECK(rowsync_engine_query(engine, query, &out) == ROWSYNC_RESULT_OK, "query");
    return out;
}

/* The first result of a new watch: the engine runs watches in the order
 * they were made, so every earlier run is over once it came. */
static void barrier(RowsyncEngine *engine) {
    struct watched b;
    watched_init(&b);
    RowsyncLiveQuery *q = NULL;
    CHECK(rowsync_engine_watch(engine, "{\"collection\":\"checklists\"}", on_records, &b, &q) ==
              ROWSYNC_RESULT_OK,
          "barrier watch");
    CHECK(wait_for(&b, "[]"), "the barrier's first result");
    rowsync_live_query_free(q);
    watched_free(&b);
}

/* A live query: the sales, newest first, told at once and again after a
 * sale is written and synced; a query of a collection nobody touches never
 * runs again; bad queries are refused; once freed, silence. */
static void live_query(RowsyncEngine *engine, long long visitor, long long detail, long long price) {
    const char *q =
        "{\"collection\":\"orders\",\"filters\":{\"orderType\":201},"
        "\"order\":{\"field\":\"orderClientId\",\"descending\":true},\"limit\":50}";
    struct watched sales, banks;
    watched_init(&sales);
    watched_init(&banks);
    RowsyncLiveQuery *live = NULL, *quiet = NULL;
    CHECK(rowsync_engine_watch(engine, "{\"collection\":\"nope\"}", on_records, &sales, &live) ==
              ROWSYNC_RESULT_INVALID_INPUT,
          "a watch of an unknown collection is refused");
    CHECK(rowsync_engine_watch(engine, "{\"collection\":\"orders\",\"order\":{\"field\":\"a b\"}}",
                               on_records, &sales, &live) == ROWSYNC_RESULT_INVALID_INPUT,
          "a bad field is refused");
    CHECK(strstr(rowsync_last_error_message(), "a b") != NULL, "the message names the field");
    CHECK(rowsync_engine_watch(engine, "{\"collection\":", on_records, &sales, &live) ==
              ROWSYNC_RESULT_INVALID_INPUT,
          "a query that is not JSON is refused");
    CHECK(rowsync_engine_watch(engine, q, NULL, &sales, &live) == ROWSYNC_RESULT_NULL_ARGUMENT,
          "watch(NULL callback)");
    CHECK(rowsync_engine_watch(engine, q, on_records, &sales, NULL) == ROWSYNC_RESULT_NULL_ARGUMENT,
          "watch(NULL out)");
    CHECK(live == NULL, "nothing handed out on failure");
    CHECK(rowsync_engine_watch(engine, q, on_records, &sales, &live) == ROWSYNC_RESULT_OK, "watch");
    CHECK(rowsync_engine_watch(engine, "{\"collection\":\"banks\"}", on_records, &banks, &quiet) ==
              ROWSYNC_RESULT_OK,
          "watch banks");
    char *now = records_now(engine, q);
    CHECK(wait_for(&sales, now), "the first result at once");
    rowsync_string_free(now);
    CHECK(wait_for(&banks, "[]"), "banks' first result");

    char group[512];
    snprintf(group, sizeof group,
             "[{\"op\":\"create\",\"collection\":\"orders\","
             "  \"record\":{\"orderType\":201,\"visitorId\":%lld,\"description\":\"C watched\"}},"
             " {\"op\":\"create\",\"collection\":\"orderDetails\",\"parent_op\":0,"
             "  \"record\":{\"productDetailId\":%lld,\"count1\":1,\"price\":%lld}}]",
             visitor, detail, price);
    char *out = NULL;
    CHECK(rowsync_engine_write_group(engine, group, &out) == ROWSYNC_RESULT_OK, "the watched sale");
    rowsync_string_free(out);
    CHECK(rowsync_engine_sync(engine, NULL) == ROWSYNC_RESULT_OK, "sync the watched sale");
    now = records_now(engine, q);
    CHECK(now != NULL && strstr(now, "C watched") != NULL, "the sale is in the query");
    CHECK(wait_for(&sales, now), "the last result is the final one");
    rowsync_string_free(now);
    uint64_t runs = 0;
    CHECK(rowsync_live_query_runs(live, &runs) == ROWSYNC_RESULT_OK && runs >= 2, "the sales ran again");
    CHECK(rowsync_live_query_runs(quiet, &runs) == ROWSYNC_RESULT_OK && runs == 1,
          "nobody touched banks: no run again");
    CHECK(rowsync_live_query_runs(NULL, &runs) == ROWSYNC_RESULT_NULL_ARGUMENT, "runs(NULL)");

    rowsync_live_query_free(live);
    pthread_mutex_lock(&sales.lock);
    int before = sales.results;
    pthread_mutex_unlock(&sales.lock);
    CHECK(rowsync_engine_write_group(engine, group, &out) == ROWSYNC_RESULT_OK, "a sale after free");
    rowsync_string_free(out);
    barrier(engine);
    pthread_mutex_lock(&sales.lock);
    CHECK(sales.results == before && sales.errors == 0, "no call after free");
    pthread_mutex_unlock(&sales.lock);
    CHECK(rowsync_engine_sync(engine, NULL) == ROWSYNC_RESULT_OK, "sync the sale after free");
    rowsync_live_query_free(quiet);
    rowsync_live_query_free(NULL);
    watched_free(&sales);
    watched_free(&banks);
}

/* An encrypted replica: a customer written with a 32-byte key is not in
 * the file's bytes; a wrong key and a missing key are WRONG_KEY; the right
 * key reads it back. `dir` is a scratch directory. */
static void encrypted_replica(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/encrypted.db", dir);
    remove(path);
    unsigned char key[32];
    for (int i = 0; i < 32; i++) key[i] = (unsigned char)(i * 7 + 1);
    unsigned char wrong[32];
    memcpy(wrong, key, sizeof wrong);
    wrong[0] ^= 1;
    RowsyncEngine *e = NULL;
    char *out = NULL;
    CHECK(rowsync_engine_open_encrypted(path, key, 31, false, &e) == ROWSYNC_RESULT_CONFIG,
          "a raw key is 32 bytes");
    CHECK(rowsync_engine_open_encrypted(path, NULL, 32, false, &e) == ROWSYNC_RESULT_NULL_ARGUMENT,
          "NULL key");
    CHECK(rowsync_engine_open_encrypted(path, key, sizeof key, false, &e) == ROWSYNC_RESULT_OK,
          "open encrypted");
    CHECK(rowsync_engine_create(e, "people", "{\"name\": \"Zahra Karimi\", \"mobile\": \"09351112233\"}",
                                &out) == ROWSYNC_RESULT_OK,
          "write into the encrypted replica");
    long long client_id = json_int(out, "personClientId");
    rowsync_string_free(out);
    out = NULL;
    /* Why isn't it on the server? A pending create; an unknown id: never seen. */
    CHECK(rowsync_engine_explain(e, "people", ROWSYNC_ID_KIND_CLIENT, client_id, &out) == ROWSYNC_RESULT_OK &&
              out != NULL && strstr(out, "\"state\":\"pending\"") != NULL && strstr(out, "\"words\"") != NULL,
          "explain: pending");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_explain(e, "people", ROWSYNC_ID_KIND_SERVER, 424242, &out) == ROWSYNC_RESULT_OK &&
              out != NULL && strstr(out, "never_seen") != NULL,
          "explain: never seen");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_explain(e, "nope", ROWSYNC_ID_KIND_SERVER, 1, &out) == ROWSYNC_RESULT_INVALID_INPUT,
          "explain: unknown collection");
    rowsync_engine_free(e);
    e = NULL;

    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "the file exists");
    if (f) {
        static char bytes[1 << 20];
        size_t n = fread(bytes, 1, sizeof bytes, f);
        fclose(f);
        int seen = 0;
        for (size_t i = 0; i + 11 <= n; i++) {
            if (memcmp(bytes + i, "09351112233", 11) == 0 || memcmp(bytes + i, "Zahra", 5) == 0) seen = 1;
        }
        CHECK(n > 0 && !seen, "no record text in the encrypted file");
    }

    CHECK(rowsync_engine_open_encrypted(path, wrong, sizeof wrong, false, &e) == ROWSYNC_RESULT_WRONG_KEY,
          "wrong key");
    CHECK(e == NULL, "no handle on a wrong key");
    CHECK(rowsync_engine_open(path, &e) == ROWSYNC_RESULT_WRONG_KEY, "missing key");
    CHECK(rowsync_engine_open_encrypted(path, key, sizeof key, false, &e) == ROWSYNC_RESULT_OK,
          "the right key");
    CHECK(rowsync_engine_get(e, "people", ROWSYNC_ID_KIND_CLIENT, client_id, &out) == ROWSYNC_RESULT_OK &&
              out != NULL && strstr(out, "Zahra Karimi") != NULL,
          "read back with the key");
    rowsync_string_free(out);
    rowsync_engine_free(e);
    remove(path);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s BASE_URL BASE_URL_OF_A_SERVER_20_MINUTES_AHEAD\n", argv[0]);
        return 2;
    }
    const char *url = argv[1];
    RowsyncEngine *engine = NULL;
    RowsyncSubscription *sub = NULL;
    RowsyncSubscription *status_sub = NULL;
    char *out = NULL;

    /* NULL and invalid arguments: a code, a message, out untouched. */
    CHECK(rowsync_engine_open(NULL, &engine) == ROWSYNC_RESULT_NULL_ARGUMENT, "open(NULL path)");
    CHECK(strlen(rowsync_last_error_message()) > 0, "message after an error");
    CHECK(engine == NULL, "out not written on failure");
    CHECK(rowsync_engine_open(":memory:", NULL) == ROWSYNC_RESULT_NULL_ARGUMENT, "open(NULL out)");
    CHECK(rowsync_engine_create(NULL, "products", "{}", &out) == ROWSYNC_RESULT_NULL_ARGUMENT,
          "create(NULL engine)");
    CHECK(strcmp(rowsync_result_name(ROWSYNC_RESULT_REPLICA_MISMATCH),
                 "ROWSYNC_RESULT_REPLICA_MISMATCH") == 0,
          "every result has its name");
    rowsync_engine_free(NULL);
    rowsync_string_free(NULL);
    rowsync_subscription_free(NULL);

    CHECK(rowsync_engine_open(":memory:", &engine) == ROWSYNC_RESULT_OK, "open");
    CHECK(engine != NULL, "engine handle");
    CHECK(strlen(rowsync_last_error_message()) == 0, "message cleared on success");

    CHECK(rowsync_engine_subscribe_changes(engine, on_change, &changes_seen, &sub) ==
              ROWSYNC_RESULT_OK,
          "subscribe");
    CHECK(rowsync_engine_subscribe_changes(engine, NULL, NULL, &sub) ==
              ROWSYNC_RESULT_NULL_ARGUMENT,
          "subscribe(NULL callback)");

    CHECK(rowsync_engine_subscribe_status(engine, on_status, NULL, &status_sub) ==
              ROWSYNC_RESULT_OK,
          "subscribe status");
    CHECK(states_seen == 1, "status callback called at once with the current state");
    CHECK(rowsync_engine_subscribe_status(engine, NULL, NULL, &status_sub) ==
              ROWSYNC_RESULT_NULL_ARGUMENT,
          "subscribe_status(NULL callback)");

    /* Offline write. */
    CHECK(rowsync_engine_create(engine, "people",
                                "{\"personCode\": 7001, \"Name\": \"C customer\", \"mobile\": \"0912\"}",
                                &out) == ROWSYNC_RESULT_OK,
          "create");
    CHECK(out != NULL && strstr(out, "personClientId") != NULL, "created record has a client id");
    CHECK(out != NULL && strstr(out, "\"name\"") != NULL, "stored in camelCase");
    rowsync_string_free(out);
    out = NULL;
    CHECK(changes_seen >= 1, "change callback fired");

    /* A failing group stores nothing. */
    CHECK(rowsync_engine_write_group(
              engine,
              "[{\"op\":\"create\",\"collection\":\"orders\",\"record\":{\"orderType\":201}},"
              " {\"op\":\"create\",\"collection\":\"orderDetails\",\"record\":{\"count1\":2}}]",
              &out) == ROWSYNC_RESULT_INVALID_INPUT,
          "group with an orphan line fails");
    CHECK(out == NULL, "out untouched on a failed group");
    CHECK(rowsync_engine_list(engine, "orders", 10, 0, &out) == ROWSYNC_RESULT_OK, "list orders");
    CHECK(out != NULL && strstr(out, "\"records\":[]") != NULL, "the failed group's order not stored");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_write_group(engine, "{\"op\":1}", &out) == ROWSYNC_RESULT_INVALID_INPUT,
          "group that is not a list");
    CHECK(rowsync_engine_write_group(engine, NULL, &out) == ROWSYNC_RESULT_NULL_ARGUMENT,
          "group(NULL ops)");

    /* Invalid input. */
    CHECK(rowsync_engine_create(engine, "noSuchCollection", "{}", &out) ==
              ROWSYNC_RESULT_INVALID_INPUT,
          "unknown collection");
    CHECK(strstr(rowsync_last_error_message(), "noSuchCollection") != NULL, "message names it");
    CHECK(out == NULL, "out untouched on failure");
    CHECK(rowsync_engine_create(engine, "products", "{not json", &out) ==
              ROWSYNC_RESULT_INVALID_INPUT,
          "bad JSON");
    CHECK(rowsync_engine_get(engine, "products", 77, 1, &out) == ROWSYNC_RESULT_INVALID_ARGUMENT,
          "bad id kind");
    CHECK(rowsync_engine_get(engine, "products", ROWSYNC_ID_KIND_SERVER, 987654321, &out) ==
              ROWSYNC_RESULT_NOT_FOUND,
          "not found");
    CHECK(out == NULL, "out untouched on not found");

    /* Sync without configuration is a config error. */
    CHECK(rowsync_engine_sync(engine, NULL) == ROWSYNC_RESULT_CONFIG, "sync unconfigured");

    char settings[512];
    snprintf(settings, sizeof settings,
             "{\"base_url\": \"%s\", \"dialect\": \"mahak\", \"max_attempts\": 2}", url);
    CHECK(rowsync_engine_configure(engine, settings) == ROWSYNC_RESULT_OK, "configure");
    CHECK(rowsync_engine_configure(engine, "[1]") == ROWSYNC_RESULT_INVALID_INPUT,
          "configure(non-object)");
    CHECK(rowsync_engine_configure(engine, "{\"dialect\": \"klingon\"}") ==
              ROWSYNC_RESULT_INVALID_INPUT,
          "configure(unknown dialect)");
    CHECK(rowsync_engine_settings(engine, &out) == ROWSYNC_RESULT_OK, "settings");
    CHECK(out != NULL && strstr(out, "\"dialect\":\"mahak\"") != NULL &&
              json_int(out, "max_attempts") == 2 && strstr(out, url) != NULL,
          "settings read back, in the mahak dialect");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_settings(engine, NULL) == ROWSYNC_RESULT_NULL_ARGUMENT,
          "settings(NULL out)");
    CHECK(rowsync_engine_session(engine, &out) == ROWSYNC_RESULT_OK, "session before login");
    CHECK(out != NULL && strcmp(out, "null") == 0, "no session before the first login");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_set_credentials(engine, "user1", "pass1", 1001, 2002) ==
              ROWSYNC_RESULT_OK,
          "credentials");
    CHECK(rowsync_engine_sync(engine, &out) == ROWSYNC_RESULT_OK, "sync");
    CHECK(out != NULL && strstr(out, "\"pushed\":1") != NULL, "the customer pushed");
    CHECK(out != NULL && strstr(out, "\"productDetails\":{\"pulled\":") != NULL,
          "product details pulled");
    CHECK(out != NULL && strstr(out, "[\"people\",") != NULL, "the customer's id mapped");
    rowsync_string_free(out);
    out = NULL;

    /* The login's session: the visitor orders carry. */
    long long visitor = -1;
    CHECK(rowsync_engine_session(engine, &out) == ROWSYNC_RESULT_OK, "session");
    visitor = json_int(out, "visitor_id");
    CHECK(visitor > 0, "session names the visitor");
    CHECK(json_int(out, "database_id") == 1001, "session names the database");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_session(engine, NULL) == ROWSYNC_RESULT_NULL_ARGUMENT,
          "session(NULL out)");

    /* A picture's relative URL, made absolute against the server's origin. */
    CHECK(rowsync_engine_absolute_url(engine, "/Files/p 1.jpg", &out) == ROWSYNC_RESULT_OK,
          "absolute_url");
    CHECK(out != NULL && strncmp(out, "http://127.0.0.1:", 17) == 0 &&
              strstr(out, "/API/") == NULL && strstr(out, "/Files/p%201.jpg") != NULL,
          "absolute_url hangs the path from the origin, encoded");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_absolute_url(engine, "", &out) == ROWSYNC_RESULT_CONFIG,
          "absolute_url of nothing is refused");

    CHECK(online_seen >= 1, "status callback heard the engine go online");
    rowsync_subscription_free(status_sub);

    CHECK(rowsync_engine_status(engine, &out) == ROWSYNC_RESULT_OK, "status");
    CHECK(out != NULL && strstr(out, "\"dialect\":\"mahak\"") != NULL, "status names the dialect");
    CHECK(json_int(out, "visitor_id") == visitor, "status carries the session");
    CHECK(json_int(out, "in_doubt") == 0, "no create in doubt");
    CHECK(out != NULL && strstr(out, "\"clock_skew_seconds\":null") == NULL &&
              llabs(json_int(out, "clock_skew_seconds")) <= 5 &&
              strstr(out, "\"clock_skew_warning\":false") != NULL,
          "a server on time: the skew is about 0, no warning");
    rowsync_string_free(out);
    out = NULL;

    /* The real vocabulary, pulled: products, their details, people. */
    CHECK(rowsync_engine_list(engine, "products", 10, 0, &out) == ROWSYNC_RESULT_OK, "products");
    CHECK(json_int(out, "productId") > 0, "a product pulled, in camelCase");
    rowsync_string_free(out);
    out = NULL;
    long long detail = -1, price = -1;
    CHECK(rowsync_engine_list(engine, "productDetails", 1, 0, &out) == ROWSYNC_RESULT_OK,
          "product details");
    detail = json_int(out, "productDetailId");
    price = json_int(out, "price1");
    CHECK(detail > 0 && price >= 0, "a product detail with its price");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_list(engine, "people", 10, 0, &out) == ROWSYNC_RESULT_OK, "people");
    CHECK(out != NULL && strstr(out, "C customer") != NULL, "the customer written offline");
    rowsync_string_free(out);
    out = NULL;

    /* The picture cache: an in-memory replica has none until a directory is
     * set; then the pictures are fetched and a picture's file is there. */
    long long picture = -1;
    CHECK(rowsync_engine_list(engine, "pictures", 1, 0, &out) == ROWSYNC_RESULT_OK, "pictures");
    picture = json_int(out, "pictureId");
    CHECK(picture > 0, "a picture record pulled");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_picture_path(engine, picture, &out) == ROWSYNC_RESULT_OK && out == NULL,
          "no picture file without a cache directory");
    const char *tmpdir = getenv("TMPDIR");
    char pictures_dir[256], picture_settings[512];
    snprintf(pictures_dir, sizeof pictures_dir, "%s/rowsync-c-pictures-%ld",
             tmpdir && *tmpdir ? tmpdir : "/tmp", (long)time(NULL));
    snprintf(picture_settings, sizeof picture_settings, "{\"picture_dir\": \"%s\"}",
             pictures_dir);
    CHECK(rowsync_engine_configure(engine, picture_settings) == ROWSYNC_RESULT_OK,
          "configure a picture directory");
    CHECK(rowsync_engine_sync_pictures(engine, &out) == ROWSYNC_RESULT_OK, "sync_pictures");
    CHECK(json_int(out, "fetched") >= 1 && json_int(out, "failed") == 0, "pictures fetched");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_picture_path(engine, picture, &out) == ROWSYNC_RESULT_OK && out != NULL,
          "picture_path after the pictures were fetched");
    if (out != NULL) {
        CHECK(strncmp(out, pictures_dir, strlen(pictures_dir)) == 0, "in the cache directory");
        FILE *f = fopen(out, "rb");
        CHECK(f != NULL, "the picture's file opens");
        if (f != NULL) {
            unsigned char head[2] = {0, 0};
            CHECK(fread(head, 1, 2, f) == 2 && head[0] == 0xFF && head[1] == 0xD8,
                  "the file is the served picture");
            fclose(f);
            remove(out);
        }
    }
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_picture_path(engine, 987654321, &out) == ROWSYNC_RESULT_OK && out == NULL,
          "no file for an unknown picture");
    CHECK(rowsync_engine_picture_path(engine, picture, NULL) == ROWSYNC_RESULT_NULL_ARGUMENT,
          "picture_path(NULL out)");

    /* A sale for a walk-in customer, one group: the customer, the order
     * (type 201, the session's visitor) linked to it, two lines linked to
     * the order and to the pulled product detail. */
    char group[1024];
    snprintf(group, sizeof group,
             "[{\"op\":\"create\",\"collection\":\"people\",\"record\":{\"name\":\"C walk-in\"}},"
             " {\"op\":\"create\",\"collection\":\"orders\",\"parent_op\":0,"
             "  \"record\":{\"orderType\":201,\"visitorId\":%lld,\"description\":\"C sale\"}},"
             " {\"op\":\"create\",\"collection\":\"orderDetails\",\"parent_op\":1,"
             "  \"record\":{\"productDetailId\":%lld,\"count1\":2,\"price\":%lld}},"
             " {\"op\":\"create\",\"collection\":\"orderDetails\",\"parent_op\":1,"
             "  \"record\":{\"productDetailId\":%lld,\"count1\":1,\"price\":%lld}}]",
             visitor, detail, price, detail, price);
    long long person_cid = -1, order_cid = -1, line_cid = -1;
    CHECK(rowsync_engine_write_group(engine, group, &out) == ROWSYNC_RESULT_OK, "write_group");
    person_cid = json_int(out, "personClientId");
    order_cid = json_int(out, "orderClientId");
    line_cid = json_int(out, "orderDetailClientId");
    CHECK(person_cid > 0 && order_cid > 0 && line_cid > 0, "group returns every record");
    char needle[64];
    snprintf(needle, sizeof needle, "\"personClientId\":%lld", person_cid);
    CHECK(occurrences(out, needle) == 2, "the order linked to its customer");
    snprintf(needle, sizeof needle, "\"orderClientId\":%lld", order_cid);
    CHECK(occurrences(out, needle) == 3, "both lines linked to their order");
    rowsync_string_free(out);
    out = NULL;

    CHECK(rowsync_engine_sync(engine, &out) == ROWSYNC_RESULT_OK, "sync the sale");
    CHECK(json_int(out != NULL ? strstr(out, "\"push_requests\"") : NULL, "pushed") == 4, "the customer, the order and its two lines pushed");
    CHECK(out != NULL && strstr(out, "[\"orders\",") != NULL &&
              strstr(out, "[\"orderDetails\",") != NULL,
          "order and line ids mapped");
    CHECK(json_int(out, "dead_letters") == 0, "nothing parked");
    rowsync_string_free(out);
    out = NULL;

    long long person_id = -1, order_id = -1;
    CHECK(rowsync_engine_get(engine, "people", ROWSYNC_ID_KIND_CLIENT, person_cid, &out) ==
              ROWSYNC_RESULT_OK,
          "get the customer");
    person_id = json_int(out, "personId");
    CHECK(person_id > 0, "the customer has its server id");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_get(engine, "orders", ROWSYNC_ID_KIND_CLIENT, order_cid, &out) ==
              ROWSYNC_RESULT_OK,
          "get the order");
    order_id = json_int(out, "orderId");
    CHECK(order_id > 0, "the order has its server id");
    CHECK(json_int(out, "personClientId") == person_cid, "the order names its customer");
    CHECK(json_int(out, "visitorId") == visitor, "the order carries the visitor");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_get(engine, "orderDetails", ROWSYNC_ID_KIND_CLIENT, line_cid, &out) ==
              ROWSYNC_RESULT_OK,
          "get a line");
    CHECK(json_int(out, "orderDetailId") > 0, "the line has its server id");
    CHECK(json_int(out, "orderId") == order_id, "the line names its order's server id");
    CHECK(json_int(out, "productDetailId") == detail, "the line names the product detail");
    rowsync_string_free(out);
    out = NULL;

    /* The next sync brings the order back as the server keeps it: linked to
     * its customer by server id. */
    CHECK(rowsync_engine_sync(engine, NULL) == ROWSYNC_RESULT_OK, "sync again");
    CHECK(rowsync_engine_get(engine, "orders", ROWSYNC_ID_KIND_SERVER, order_id, &out) ==
              ROWSYNC_RESULT_OK,
          "get the order by its server id");
    CHECK(json_int(out, "orderClientId") == order_cid, "the same order");
    CHECK(json_int(out, "personId") == person_id, "the order names its customer's server id");
    rowsync_string_free(out);
    out = NULL;

    CHECK(rowsync_engine_status(engine, &out) == ROWSYNC_RESULT_OK, "status after the sale");
    CHECK(json_int(out, "pending") == 0, "nothing pending");
    rowsync_string_free(out);
    out = NULL;

    /* The device changes hands: user2's sync sends only user2's changes and
     * stops before user1's with a code of its own; an export, then a discard. */
    {
        uint64_t dropped = 0;
        CHECK(rowsync_engine_create(engine, "people", "{\"name\": \"user1's customer\"}", &out) ==
                  ROWSYNC_RESULT_OK,
              "user1's change");
        rowsync_string_free(out);
        out = NULL;
        CHECK(rowsync_engine_set_credentials(engine, "user2", "pass2", 1001, 2002) == ROWSYNC_RESULT_OK,
              "user2 signs in");
        CHECK(rowsync_engine_sync(engine, NULL) == ROWSYNC_RESULT_PENDING_CHANGES_OF_ANOTHER_USER,
              "user1's change stops user2's sync");
        CHECK(strstr(rowsync_last_error_message(), "user1") != NULL, "the message names user1");
        CHECK(strcmp(rowsync_result_name(ROWSYNC_RESULT_PENDING_CHANGES_OF_ANOTHER_USER),
                     "ROWSYNC_RESULT_PENDING_CHANGES_OF_ANOTHER_USER") == 0,
              "the new result has its name");
        CHECK(rowsync_engine_discard_pending(engine, "user1", &dropped) == ROWSYNC_RESULT_PENDING_CHANGES &&
                  dropped == 0,
              "no discard before an export");
        CHECK(rowsync_engine_export_pending(engine, "user1", &out) == ROWSYNC_RESULT_OK && out != NULL &&
                  strstr(out, "user1's customer") != NULL,
              "the export holds the change");
        rowsync_string_free(out);
        out = NULL;
        CHECK(rowsync_engine_discard_pending(engine, "user1", &dropped) == ROWSYNC_RESULT_OK && dropped == 1,
              "one change discarded");
        CHECK(rowsync_engine_sync(engine, NULL) == ROWSYNC_RESULT_OK, "user2's sync goes through");
        CHECK(rowsync_engine_set_credentials(engine, "user1", "pass1", 1001, 2002) == ROWSYNC_RESULT_OK,
              "user1 signs in again");
    }

    /* Reference data waits for its schedule; sync_all pulls it now. */
    CHECK(rowsync_engine_sync(engine, &out) == ROWSYNC_RESULT_OK && out != NULL &&
              strstr(out, "\"personGroups\"") == NULL,
          "person groups are not due again yet");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_sync_all(engine, &out) == ROWSYNC_RESULT_OK && out != NULL &&
              strstr(out, "\"personGroups\"") != NULL,
          "sync_all pulls them");
    rowsync_string_free(out);
    out = NULL;

    /* A stock check: the chosen collections with their links, nothing
     * pushed; an unknown one refused before anything is done. */
    CHECK(rowsync_engine_create(engine, "people", "{\"name\": \"waits\"}", &out) ==
              ROWSYNC_RESULT_OK,
          "a change to keep");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_sync_collections(engine, "products, visitorProducts", &out) ==
                  ROWSYNC_RESULT_OK &&
              out != NULL,
          "sync_collections");
    CHECK(out != NULL && strstr(out, "\"pulled_collections\":[\"products\",\"productDetails\","
                                     "\"productProperties\",\"visitorProducts\"]") != NULL,
          "the chosen collections with their links");
    CHECK(json_int(out, "push_requests") == 0 && json_int(out, "pending") == 1,
          "nothing pushed; the change waits");
    CHECK(json_int(out != NULL ? strstr(out, "\"metrics\"") : NULL, "requests") >= 1,
          "the report counts its requests");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_sync_collections(engine, "products,stock", &out) ==
              ROWSYNC_RESULT_INVALID_INPUT,
          "an unknown collection");
    CHECK(out == NULL, "out untouched on failure");
    CHECK(rowsync_engine_sync_collections(engine, NULL, &out) == ROWSYNC_RESULT_NULL_ARGUMENT,
          "sync_collections(NULL)");

    /* The running totals, kept in the replica. */
    CHECK(rowsync_engine_metrics(engine, NULL) == ROWSYNC_RESULT_NULL_ARGUMENT, "metrics(NULL)");
    CHECK(rowsync_engine_metrics(engine, &out) == ROWSYNC_RESULT_OK && out != NULL, "metrics");
    /* Nine syncs on this engine so far: the unconfigured one and the one
     * stopped before user1's changes failed. */
    CHECK(json_int(out, "syncs") == 9 && json_int(out, "failed_syncs") == 2,
          "every sync counted, the unconfigured one and the stopped one as failed");
    CHECK(json_int(out, "requests") > 0 && json_int(out, "bytes_received") > 0,
          "requests and bytes summed");
    CHECK(out != NULL && strstr(out, "pass1") == NULL, "no secret in the metrics");
    rowsync_string_free(out);
    out = NULL;

    /* A push hint: a forged one is refused; without a secret, a config error. */
    {
        const char *payload = "{\"id\":\"c1\",\"collections\":[\"personGroups\"]}";
        const char *forged = "00000000000000000000000000000000000000000000000000000000000000";
        CHECK(rowsync_engine_apply_hint(engine, (const unsigned char *)payload, strlen(payload), forged, &out) ==
                  ROWSYNC_RESULT_CONFIG,
              "a hint needs a secret");
        CHECK(rowsync_engine_set_hint_secret(engine, (const unsigned char *)"k", 1) == ROWSYNC_RESULT_OK,
              "hint secret");
        CHECK(rowsync_engine_apply_hint(engine, (const unsigned char *)payload, strlen(payload), forged, &out) ==
                  ROWSYNC_RESULT_INVALID_INPUT,
              "a forged hint is refused");
        CHECK(out == NULL, "no output on a refused hint");
        CHECK(rowsync_engine_set_hint_secret(engine, NULL, 0) == ROWSYNC_RESULT_OK, "secret removed");
    }

    /* An upload for a picture, sent after the picture's own save, and a
     * dispute; a file over the limit is refused and nothing is queued. */
    {
        long long pic_cid = -1;
        int64_t upload = -1;
        CHECK(rowsync_engine_create(engine, "pictures", "{\"fileName\": \"sign.jpg\"}", &out) ==
                  ROWSYNC_RESULT_OK,
              "create a picture");
        pic_cid = json_int(out, "pictureClientId");
        rowsync_string_free(out);
        out = NULL;
        const unsigned char photo[] = {0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5, 6};
        CHECK(rowsync_engine_configure(engine, "{\"max_upload_bytes\": 8}") == ROWSYNC_RESULT_OK,
              "a small upload limit");
        CHECK(rowsync_engine_queue_upload_bytes(engine, "pictures", ROWSYNC_ID_KIND_CLIENT, pic_cid, photo,
                                                sizeof photo, "sign.jpg", &upload) ==
                  ROWSYNC_RESULT_FILE_TOO_LARGE,
              "a file over the limit is refused");
        CHECK(upload == -1, "no id for a refused upload");
        CHECK(rowsync_engine_configure(engine, "{\"max_upload_bytes\": 1048576}") == ROWSYNC_RESULT_OK,
              "the limit back");
        CHECK(rowsync_engine_queue_upload_bytes(engine, "pictures", ROWSYNC_ID_KIND_CLIENT, pic_cid, photo,
                                                sizeof photo, "sign.jpg", &upload) == ROWSYNC_RESULT_OK &&
                  upload > 0,
              "upload queued");
        CHECK(rowsync_engine_queue_upload(engine, "pictures", ROWSYNC_ID_KIND_CLIENT, pic_cid,
                                          "/nonexistent/file.jpg", "x.jpg", &upload) ==
                  ROWSYNC_RESULT_INVALID_INPUT,
              "an unreadable file is refused");
        CHECK(rowsync_engine_solve_order_dispute(engine, "[{\"order_id\": 501, \"code\": 2}]", &out) ==
                  ROWSYNC_RESULT_OK && out != NULL && out[0] == '[',
              "dispute queued");
        rowsync_string_free(out);
        out = NULL;
        CHECK(rowsync_engine_solve_order_dispute(engine, "not json", &out) == ROWSYNC_RESULT_INVALID_INPUT,
              "bad dispute JSON");
        CHECK(rowsync_engine_tasks(engine, &out) == ROWSYNC_RESULT_OK && strstr(out, "waiting_for_record") != NULL,
              "the upload waits for its picture's save");
        rowsync_string_free(out);
        out = NULL;
        CHECK(rowsync_engine_sync(engine, &out) == ROWSYNC_RESULT_OK && json_int(out, "uploaded") == 1 &&
                  json_int(out, "disputes_sent") == 1,
              "the sync sends the upload and the dispute");
        rowsync_string_free(out);
        out = NULL;
        CHECK(rowsync_engine_tasks(engine, &out) == ROWSYNC_RESULT_OK && strcmp(out, "[]") == 0,
              "the queue is empty");
        rowsync_string_free(out);
        out = NULL;
        CHECK(rowsync_engine_get(engine, "pictures", ROWSYNC_ID_KIND_CLIENT, pic_cid, &out) ==
                      ROWSYNC_RESULT_OK &&
                  strstr(out, "\"url\":\"/api/v3/Content/Images/all/") != NULL &&
                  strstr(out, "\"pictureHash\":\"") != NULL,
              "the answer's FileUrl and FileHash on the picture");
        rowsync_string_free(out);
        out = NULL;
        CHECK(rowsync_engine_status(engine, &out) == ROWSYNC_RESULT_OK && json_int(out, "pending") == 0,
              "the picture's url is the server's: nothing pending");
        rowsync_string_free(out);
        out = NULL;
    }

    live_query(engine, visitor, detail, price);

    CHECK(rowsync_engine_sync_log(engine, 10, &out) == ROWSYNC_RESULT_OK, "sync log");
    CHECK(out != NULL && strstr(out, "SaveAllData") != NULL, "save call logged");
    rowsync_string_free(out);
    out = NULL;

    /* The replica holds mahak data: another dialect is refused until a wipe. */
    CHECK(rowsync_engine_configure(engine, "{\"dialect\": \"documented\"}") == ROWSYNC_RESULT_CONFIG,
          "dialect switch on a filled replica");
    CHECK(strstr(rowsync_last_error_message(), "dialect") != NULL, "message names the dialect");

    /* Wrong password: a typed auth error. */
    CHECK(rowsync_engine_set_credentials(engine, "user1", "wrong", 1001, 2002) ==
              ROWSYNC_RESULT_OK,
          "bad credentials set");
    CHECK(rowsync_engine_sync(engine, NULL) == ROWSYNC_RESULT_AUTH_FAILED, "auth failed");

    CHECK(rowsync_engine_wipe(engine, false) == ROWSYNC_RESULT_OK, "wipe");
    rowsync_subscription_free(sub);
    rowsync_engine_free(engine);

    clock_skew(argv[2]);

    const char *tmp = getenv("TMPDIR");
    encrypted_replica(tmp && *tmp ? tmp : "/tmp");

    if (failures > 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("C test: all checks passed\n");
    return 0;
}
