/*
 * sqlite_db.h — the SQLite set-up the two idempotent-consumer examples
 * share (sqlite_offsets.c, sqlite_dedupe.c): open a database that the
 * group's members share, in WAL mode, make the schema under the write
 * lock, prepare the statements; and run a bound statement.
 */
#ifndef SHMQ_EXAMPLE_SQLITE_DB_H
#define SHMQ_EXAMPLE_SQLITE_DB_H

#include <sqlite3.h>

#define BUSY_TIMEOUT_MS 10000
#define BUSY_RETRY_MS 10

/* Run sql, and again while SQLITE_BUSY, for up to BUSY_TIMEOUT_MS.  The
 * busy handler does not cover everything: SQLite returns SQLITE_BUSY at
 * once where waiting could deadlock, and setting the journal mode while
 * another member opens the file (or recovers the WAL of a killed one) is
 * such a place. */
static int
exec_busy(sqlite3 *db, const char *sql)
{
	int rc, waited = 0;
	while ((rc = sqlite3_exec(db, sql, NULL, NULL, NULL)) == SQLITE_BUSY &&
	    waited < BUSY_TIMEOUT_MS) {
		sqlite3_sleep(BUSY_RETRY_MS);
		waited += BUSY_RETRY_MS;
	}
	return rc;
}

/* Open path (made if missing) with `pragmas`, make `schema` under the
 * write lock (members starting together do not race), and prepare
 * sql[0..n) into st[].  SQLITE_OK, or the error, with *what saying
 * which step failed (sqlite3_errmsg(*db) says why). */
static int
sqlite_db_open(sqlite3 **db, const char *path, const char *pragmas,
    const char *schema, const char *const *sql, sqlite3_stmt **st, int n,
    const char **what)
{
	int rc = sqlite3_open_v2(
	    path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		*what = path;
		return rc;
	}
	/* Members of the group share the file and take turns writing. */
	sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS);
	if ((rc = exec_busy(*db, pragmas)) != SQLITE_OK) {
		*what = "setting WAL mode";
		return rc;
	}
	rc = sqlite3_exec(*db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_exec(*db, schema, NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK) {
		rc = sqlite3_exec(*db, "COMMIT", NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		*what = "creating the tables";
		return rc;
	}
	for (int i = 0; rc == SQLITE_OK && i < n; i++) {
		rc = sqlite3_prepare_v3(
		    *db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL);
	}
	*what = "preparing statements";
	return rc;
}

static void
sqlite_db_close(sqlite3 *db, sqlite3_stmt **st, int n)
{
	for (int i = 0; i < n; i++) {
		sqlite3_finalize(st[i]);
	}
	sqlite3_close(db);
}

/* Run a bound statement, then make it ready for the next use. */
static int
db_run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

#endif
