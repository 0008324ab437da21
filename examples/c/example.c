/* Example: open a replica, write a customer offline, sync it to the server
 * given as argument (the real Mahak dialect, the default). Build against an installed library:
 *   cc example.c $(pkg-config --cflags --libs rowsync) -o example
 *   ./example http://127.0.0.1:8080/API/v3 */

#include <stdio.h>

#include "rowsync.h"

static int fail(const char *what, RowsyncResult r) {
    fprintf(stderr, "%s: %s: %s\n", what, rowsync_result_name(r), rowsync_last_error_message());
    return 1;
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
    snprintf(settings, sizeof settings, "{\"base_url\": \"%s\"}", argv[1]);
    char *record = NULL;
    char *report = NULL;
    int rc = 0;
    if ((r = rowsync_engine_configure(engine, settings)) != ROWSYNC_RESULT_OK) {
        rc = fail("configure", r);
    } else if ((r = rowsync_engine_set_credentials(engine, "user1", "pass1", 1001, 2002)) !=
               ROWSYNC_RESULT_OK) {
        rc = fail("credentials", r);
    } else if ((r = rowsync_engine_create(engine, "people",
                                          "{\"name\": \"مشتري C \", \"mobile\": \"09120000000\"}",
                                          &record)) != ROWSYNC_RESULT_OK) {
        rc = fail("create", r);
    } else if ((r = rowsync_engine_sync(engine, &report)) != ROWSYNC_RESULT_OK) {
        rc = fail("sync", r);
    } else {
        printf("created %s\nsync report %s\n", record, report);
    }
    rowsync_string_free(record);
    rowsync_string_free(report);
    rowsync_engine_free(engine);
    return rc;
}
