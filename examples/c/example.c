/* Example: a shop's sale from C, in the real Mahak dialect (the default).
 * Opens a replica, syncs with the server given as argument (pulling
 * products, their details, people...), writes a sale (an order of type 201
 * for the session's visitor, with one line on a product detail) as one
 * group, and syncs it. Build against an installed library:
 *   cc example.c $(pkg-config --cflags --libs rowsync) -o example
 *   ./example http://127.0.0.1:8080/API/v3 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rowsync.h"

static int fail(const char *what, RowsyncResult r) {
    fprintf(stderr, "%s: %s: %s\n", what, rowsync_result_name(r), rowsync_last_error_message());
    return 1;
}

/* The integer after the first `"key":` in `json`, or -1. An app would use
 * its JSON library. */
static long long json_int(const char *json, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = json != NULL ? strstr(json, pattern) : NULL;
    return at != NULL ? strtoll(at + strlen(pattern), NULL, 10) : -1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL\n", argv[0]);
        return 2;
    }
    RowsyncEngine *engine = NULL;
    RowsyncResult r = rowsync_engine_open("example.db", &engine);
    if (r != ROWSYNC_RESULT_OK) return fail("open", r);

    char settings[512];
    snprintf(settings, sizeof settings, "{\"base_url\": \"%s\", \"dialect\": \"mahak\"}", argv[1]);
    char *session = NULL;
    char *details = NULL;
    char *stored = NULL;
    char *report = NULL;
    int rc = 0;
    if ((r = rowsync_engine_configure(engine, settings)) != ROWSYNC_RESULT_OK) {
        rc = fail("configure", r);
    } else if ((r = rowsync_engine_set_credentials(engine, "user1", "pass1", 1001, 2002)) !=
               ROWSYNC_RESULT_OK) {
        rc = fail("credentials", r);
    } else if ((r = rowsync_engine_sync(engine, NULL)) != ROWSYNC_RESULT_OK) {
        rc = fail("first sync", r);
    } else if ((r = rowsync_engine_session(engine, &session)) != ROWSYNC_RESULT_OK) {
        rc = fail("session", r);
    } else if ((r = rowsync_engine_list(engine, "productDetails", 1, 0, &details)) !=
               ROWSYNC_RESULT_OK) {
        rc = fail("product details", r);
    } else if (json_int(details, "productDetailId") <= 0) {
        fprintf(stderr, "the server sent no product detail to sell\n");
        rc = 1;
    } else {
        /* The line names its order by `parent_op`: the group fills in the
         * order's client id. */
        char sale[512];
        snprintf(sale, sizeof sale,
                 "[{\"op\":\"create\",\"collection\":\"orders\","
                 "  \"record\":{\"orderType\":201,\"visitorId\":%lld,\"description\":\"C sale\"}},"
                 " {\"op\":\"create\",\"collection\":\"orderDetails\",\"parent_op\":0,"
                 "  \"record\":{\"productDetailId\":%lld,\"count1\":2,\"price\":%lld}}]",
                 json_int(session, "visitor_id"), json_int(details, "productDetailId"),
                 json_int(details, "price1"));
        if ((r = rowsync_engine_write_group(engine, sale, &stored)) != ROWSYNC_RESULT_OK) {
            rc = fail("write the sale", r);
        } else if ((r = rowsync_engine_sync(engine, &report)) != ROWSYNC_RESULT_OK) {
            rc = fail("sync", r);
        } else {
            printf("session %s\nsale %s\nsync report %s\n", session, stored, report);
        }
    }
    rowsync_string_free(session);
    rowsync_string_free(details);
    rowsync_string_free(stored);
    rowsync_string_free(report);
    rowsync_engine_free(engine);
    return rc;
}
