/*
 * sqlite_dedupe.c — effectively-once processing into SQLite by a unique
 * business id: duplicates are recognised by the database, whatever
 * offset they come at.
 *
 *   sqlite_dedupe [-d HOME] [-g GROUP] [-b BATCH] [-i IDLE_MS] DB TOPIC
 *
 * Each record is a payment: key ACCOUNT, value "TXN AMOUNT" (AMOUNT a
 * signed integer), where TXN is the payment's id, unique in the business
 * sense: the same payment sent twice carries the same TXN.  Applying it
 * inserts a row into `payments`, whose primary key is TXN, and adds
 * AMOUNT to the account's balance, only when that insert made a row (an
 * upsert that does nothing on conflict).  A value that does not parse
 * goes to the `rejected` table, once per record of the log.  Run several with
 * the same GROUP and DB; each stops after IDLE_MS without a record (default
 * 2000).
 *
 * The guarantee: every payment is applied once, however often its record
 * was sent or read — a producer's retry after an unknown outcome, a
 * replay of old records, a batch read again after this process was
 * killed — and none is lost, whatever moment a member is killed at.  The
 * consumer reads a batch, applies it in one SQLite transaction, and only
 * then commits the group's offsets (at least once, made exactly once by
 * the key).  The crash points:
 *
 *   - before COMMIT is durable: nothing of the batch is in the database,
 *     and the group's offset is still before it, so the batch is read and
 *     applied again;
 *   - after COMMIT, before the group commit: the batch is read again, and
 *     every one of its payments finds its id taken: a duplicate, skipped;
 *   - after the group commit: nothing to redo.
 *
 * Unlike sqlite_offsets, the position lives in the group: the database
 * need not know offsets at all, so the same table deduplicates records
 * from several topics, or a topic the producer re-sent after
 * re-partitioning, or a replay by `shmqctl group reset-offsets`.  The
 * price is the order of the two commits: the group's offset must never
 * pass a transaction that is not durable, so the database commits first
 * and with PRAGMA synchronous=FULL (a power loss must not take back a
 * transaction whose records the group already committed).
 *
 * When it holds.  Duplicates must carry the same TXN (a retry resends the
 * same payment; it does not make a new id), and the payments table must
 * keep every id for as long as a duplicate may arrive: this example never
 * deletes them.  Records the group has not committed must still be in the
 * log when they are read again (a persistent topic's retention, or a ring
 * that was not rebuilt).  Two records with the same TXN but another
 * account or amount are not told apart: the first wins.  The database is
 * one file on a local file system (SQLite locking; not NFS).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmq.h>
#include <sqlite3.h>

#include "sqlite_db.h"

/* Records per transaction: with synchronous=FULL each commit waits for
 * the disk, so the batch is what amortises the flush. */
#define BATCH_DEFAULT 64
#define BATCH_MAX 1024
/* Bytes of key + value one record may have in this example. */
#define RECORD_MAX 1024
/* How long a member waits for another's write lock. */

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS accounts("
    "  id TEXT PRIMARY KEY, balance INTEGER NOT NULL);"
    /* The unique key that makes duplicates harmless.  Where a payment
     * was read from is kept only to be looked at. */
    "CREATE TABLE IF NOT EXISTS payments("
    "  txn TEXT PRIMARY KEY, account TEXT NOT NULL,"
    "  amount INTEGER NOT NULL, topic TEXT NOT NULL,"
    "  partition INTEGER NOT NULL, offset INTEGER NOT NULL);"
    /* A bad record has no id to deduplicate by: its place in the log is
     * its key, so reading it again after a crash adds no second row. */
    "CREATE TABLE IF NOT EXISTS rejected("
    "  topic TEXT NOT NULL, partition INTEGER NOT NULL,"
    "  offset INTEGER NOT NULL, value BLOB,"
    "  PRIMARY KEY (topic, partition, offset));";

enum stmt { ST_PAYMENT, ST_BALANCE, ST_REJECT, ST_COUNT };

static const char *const SQL[ST_COUNT] = {
	[ST_PAYMENT] = "INSERT INTO payments VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	               " ON CONFLICT (txn) DO NOTHING",
	[ST_BALANCE] = "INSERT INTO accounts VALUES (?1, ?2) ON CONFLICT (id)"
	               " DO UPDATE SET balance = balance + excluded.balance",
	[ST_REJECT] = "INSERT INTO rejected VALUES (?1, ?2, ?3, ?4)"
	              " ON CONFLICT DO NOTHING",
};

/* One received record and the buffer its key and value were copied to. */
struct held {
	shmq_record_t r;
	char buf[RECORD_MAX];
};

struct app {
	shmq_t *q;
	shmq_consumer_t *c;
	const char *topic;
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	long applied, duplicates, rejected, transactions;
};

static int
fail(const char *what, const char *why)
{
	fprintf(stderr, "sqlite_dedupe: %s: %s\n", what, why);
	return 1;
}

static int
fail_db(struct app *a, const char *what)
{
	return fail(what, sqlite3_errmsg(a->db));
}

/* ---- the database ------------------------------------------------------ */

static int
db_open(struct app *a, const char *path)
{
	/* FULL: COMMIT returns once the transaction is on stable storage,
	 * so the group commit that follows never passes a transaction a
	 * power loss could take back. */
	const char *what;
	int rc = sqlite_db_open(&a->db, path,
	    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", SCHEMA,
	    SQL, a->st, ST_COUNT, &what);
	return rc == SQLITE_OK ? 0 : fail_db(a, what);
}

static void
db_close(struct app *a)
{
	sqlite_db_close(a->db, a->st, ST_COUNT);
}

/* ---- applying records -------------------------------------------------- */

/* Split "TXN AMOUNT" into txn[0..*txn_len) and *amount; false if the
 * value is not of that form. */
static bool
parse_value(
    const shmq_record_t *r, const char **txn, int *txn_len, long long *amount)
{
	char num[32];
	const char *v = r->value;
	const char *sp = memchr(v, ' ', r->value_len);
	char *end;

	if (r->key_len == 0 || sp == NULL || sp == v) {
		return false;
	}
	size_t n = r->value_len - (size_t)(sp + 1 - v);
	if (n == 0 || n >= sizeof num) {
		return false;
	}
	memcpy(num, sp + 1, n);
	num[n] = '\0';
	errno = 0;
	*amount = strtoll(num, &end, 10);
	*txn = v;
	*txn_len = (int)(sp - v);
	return errno == 0 && *end == '\0';
}

static int
reject(struct app *a, const shmq_record_t *r)
{
	sqlite3_stmt *st = a->st[ST_REJECT];
	sqlite3_bind_text(st, 1, a->topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->partition);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)r->offset);
	sqlite3_bind_blob(st, 4, r->value, (int)r->value_len, SQLITE_STATIC);
	int rc = db_run(st);
	a->rejected += rc == SQLITE_OK && sqlite3_changes(a->db) == 1;
	return rc;
}

/* Apply one payment inside the open transaction, unless its id is
 * known: then it is a duplicate and changes nothing. */
static int
apply(struct app *a, const shmq_record_t *r)
{
	const char *txn;
	int txn_len, rc;
	long long amount;
	sqlite3_stmt *st;

	if (!parse_value(r, &txn, &txn_len, &amount)) {
		return reject(a, r);
	}
	st = a->st[ST_PAYMENT];
	sqlite3_bind_text(st, 1, txn, txn_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->key, (int)r->key_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, amount);
	sqlite3_bind_text(st, 4, a->topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, r->partition);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)r->offset);
	if ((rc = db_run(st)) != SQLITE_OK) {
		return rc;
	}
	/* The insert and this check are in one transaction under the write
	 * lock, so two members holding the same payment cannot both see
	 * "new". */
	if (sqlite3_changes(a->db) == 0) {
		a->duplicates++;
		return SQLITE_OK;
	}
	st = a->st[ST_BALANCE];
	sqlite3_bind_text(st, 1, r->key, (int)r->key_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, amount);
	a->applied++;
	return db_run(st);
}

/* One transaction for the batch, then the group's offsets: never the
 * other way round (see the crash points above). */
static int
apply_batch(struct app *a, const struct held *b, int n)
{
	int rc = sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	for (int i = 0; rc == SQLITE_OK && i < n; i++) {
		rc = apply(a, &b[i].r);
	}
	if (rc == SQLITE_OK) {
		rc = sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		/* Nothing stored and nothing committed to the group: the
		 * batch is read again by whoever takes the partitions. */
		fail_db(a, "transaction");
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	a->transactions++;
	/* Commits the offset after the last record returned, per partition:
	 * every record returned is in the transaction just committed.  A
	 * partition rebalanced away meanwhile gives SHMQ_ENOTOWNER: its new
	 * owner reads those records again and finds them applied. */
	rc = shmq_consumer_commit(a->c);
	if (rc != 0 && rc != SHMQ_ENOTOWNER) {
		return fail("shmq_consumer_commit", shmq_strerror(rc));
	}
	return 0;
}

/* ---- the loop ---------------------------------------------------------- */

/* Receive up to max records: wait idle_ms for the first, take only what
 * is there for the rest.  *n is how many. */
static int
recv_batch(struct app *a, struct held *b, int max, int idle_ms, int *n)
{
	for (*n = 0; *n < max; (*n)++) {
		int rc = shmq_recv(a->c, b[*n].buf, sizeof b[*n].buf, &b[*n].r,
		    *n == 0 ? idle_ms : 0);
		if (rc == -EAGAIN) {
			break;
		}
		if (rc == -EMSGSIZE) {
			return fail("shmq_recv",
			    "record larger than this example's buffer");
		}
		if (rc != 0) {
			/* SHMQ_ELAPPED included: records lost. */
			return fail("shmq_recv", shmq_strerror(rc));
		}
	}
	return 0;
}

static int
run(struct app *a, int batch, int idle_ms)
{
	static struct held held[BATCH_MAX];
	int n;

	for (;;) {
		if (recv_batch(a, held, batch, idle_ms, &n) != 0) {
			return 1;
		}
		if (n == 0) {
			return 0; /* idle */
		}
		if (apply_batch(a, held, n) != 0) {
			return 1;
		}
	}
}

int
main(int argc, char **argv)
{
	static struct app a;
	shmq_consumer_options_t co;
	const char *home = NULL;
	int batch = BATCH_DEFAULT, idle_ms = 2000;
	int opt, rc = 1;

	shmq_consumer_options_init(&co);
	co.group = "sqlite-dedupe";
	while ((opt = getopt(argc, argv, "d:g:b:i:")) != -1) {
		if (opt == 'd') {
			home = optarg;
		} else if (opt == 'g') {
			co.group = optarg;
		} else if (opt == 'b') {
			batch = atoi(optarg);
		} else if (opt == 'i') {
			idle_ms = atoi(optarg);
		} else {
			goto usage;
		}
	}
	if (optind != argc - 2 || batch < 1 || batch > BATCH_MAX ||
	    idle_ms < 0) {
		goto usage;
	}
	a.topic = argv[optind + 1];
	if (db_open(&a, argv[optind]) != 0) {
		goto out;
	}
	rc = shmq_attach(home, NULL, &a.q);
	if (rc == 0) {
		rc = shmq_consumer_open(a.q, a.topic, &co, &a.c);
	}
	if (rc != 0) {
		rc = fail(a.topic, shmq_strerror(rc));
		goto out;
	}
	rc = run(&a, batch, idle_ms);
	printf("sqlite_dedupe %ld: %ld applied, %ld duplicates, %ld rejected, "
	       "%ld transactions\n",
	    (long)getpid(), a.applied, a.duplicates, a.rejected,
	    a.transactions);
out:
	shmq_consumer_close(a.c);
	shmq_detach(a.q);
	db_close(&a);
	return rc;

usage:
	fprintf(stderr,
	    "usage: sqlite_dedupe [-d HOME] [-g GROUP] [-b BATCH] "
	    "[-i IDLE_MS] DB TOPIC\n");
	return 2;
}
