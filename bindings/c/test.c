/* C binding test: an offline write, a sync against the reference server, a
 * change callback, the error paths (NULL and invalid arguments, unknown
 * collection, not found), and every handed-out value freed. Run by
 * bindings/scripts/test-c.sh under ASan and under valgrind. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL\n", argv[0]);
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

    /* An order and its line, one group; a failing group stores nothing. */
    CHECK(rowsync_engine_write_group(
              engine,
              "[{\"op\":\"create\",\"collection\":\"orders\",\"record\":{\"orderType\":201}},"
              " {\"op\":\"create\",\"collection\":\"orderDetails\","
              "  \"record\":{\"productDetailId\":1,\"count1\":2,\"price\":1200},\"parent_op\":0}]",
              &out) == ROWSYNC_RESULT_OK,
          "write_group");
    CHECK(out != NULL && strstr(out, "orderDetailClientId") != NULL &&
              strstr(out, "orderClientId") != NULL,
          "group returns both records, the line linked to its order");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_write_group(
              engine,
              "[{\"op\":\"create\",\"collection\":\"orders\",\"record\":{\"orderType\":201}},"
              " {\"op\":\"create\",\"collection\":\"orderDetails\",\"record\":{\"count1\":2}}]",
              &out) == ROWSYNC_RESULT_INVALID_INPUT,
          "group with an orphan line fails");
    CHECK(out == NULL, "out untouched on a failed group");
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
    snprintf(settings, sizeof settings, "{\"base_url\": \"%s\", \"max_attempts\": 2}", url);
    CHECK(rowsync_engine_configure(engine, settings) == ROWSYNC_RESULT_OK, "configure");
    CHECK(rowsync_engine_configure(engine, "[1]") == ROWSYNC_RESULT_INVALID_INPUT,
          "configure(non-object)");
    CHECK(rowsync_engine_set_credentials(engine, "user1", "pass1", 1001, 2002) ==
              ROWSYNC_RESULT_OK,
          "credentials");
    CHECK(rowsync_engine_sync(engine, &out) == ROWSYNC_RESULT_OK, "sync");
    CHECK(out != NULL && strstr(out, "\"pushed\":3") != NULL,
          "three changes pushed (a customer, an order, its line)");
    rowsync_string_free(out);
    out = NULL;

    /* The login's session: the visitor orders carry. */
    CHECK(rowsync_engine_session(engine, &out) == ROWSYNC_RESULT_OK, "session");
    CHECK(out != NULL && strstr(out, "\"visitor_id\":") != NULL, "session names the visitor");
    rowsync_string_free(out);
    out = NULL;
    CHECK(rowsync_engine_session(engine, NULL) == ROWSYNC_RESULT_NULL_ARGUMENT,
          "session(NULL out)");

    CHECK(online_seen >= 1, "status callback heard the engine go online");
    rowsync_subscription_free(status_sub);

    CHECK(rowsync_engine_status(engine, &out) == ROWSYNC_RESULT_OK, "status");
    CHECK(out != NULL && strstr(out, "\"pending\":0") != NULL, "nothing pending");
    rowsync_string_free(out);
    out = NULL;

    CHECK(rowsync_engine_list(engine, "people", 10, 0, &out) == ROWSYNC_RESULT_OK, "list");
    CHECK(out != NULL && strstr(out, "C customer") != NULL, "listed record");
    rowsync_string_free(out);
    out = NULL;

    CHECK(rowsync_engine_sync_log(engine, 10, &out) == ROWSYNC_RESULT_OK, "sync log");
    CHECK(out != NULL && strstr(out, "SaveAllData") != NULL, "save call logged");
    rowsync_string_free(out);
    out = NULL;

    /* Wrong password: a typed auth error. */
    CHECK(rowsync_engine_set_credentials(engine, "user1", "wrong", 1001, 2002) ==
              ROWSYNC_RESULT_OK,
          "bad credentials set");
    CHECK(rowsync_engine_sync(engine, NULL) == ROWSYNC_RESULT_AUTH_FAILED, "auth failed");

    CHECK(rowsync_engine_wipe(engine, false) == ROWSYNC_RESULT_OK, "wipe");
    rowsync_subscription_free(sub);
    rowsync_engine_free(engine);

    if (failures > 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("C test: all checks passed\n");
    return 0;
}
