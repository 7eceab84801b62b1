/*
 * sqlite_offsets.c — exactly-once processing into SQLite: the consumed
 * offsets are kept in the database, in the transaction that applies the
 * records.
 *
 *   sqlite_offsets [-d HOME] [-g GROUP] [-b BATCH] [-i IDLE_MS] DB TOPIC
 *
 * Each record is a payment: key ACCOUNT, value "TXN AMOUNT" (AMOUNT a
 * signed integer).  Applying it adds AMOUNT to the account's balance and
 * appends a row to the ledger, so a record applied twice or lost shows in
 * both.  A value that does not parse goes to the `rejected` table; it
 * still counts as processed.  Run several with the same GROUP and DB: the
 * group spreads the partitions over them.  Each stops after IDLE_MS
 * without a record (default 2000) and prints what it did.
 *
 * The guarantee: every record is applied exactly once, whatever moment
 * this process, or any member of the group, is killed at (kill -9
 * included).  One SQLite transaction per batch applies the records AND
 * sets consumer_offsets(topic, partition).next, the offset after the last
 * record applied; SQLite commits both or neither.  The crash points:
 *
 *   - before the commit record reaches the WAL (while receiving, while
 *     applying, during COMMIT): nothing of the batch is in the database,
 *     and the next owner of each partition reads it again from the stored
 *     offset;
 *   - after COMMIT, before the group's offset is committed: the database
 *     has the batch and its offsets, the group's offset is behind; the
 *     next owner is handed the batch again, finds it below the stored
 *     offset and skips it;
 *   - after that: nothing to redo.
 *
 * This is Kafka's "storing offsets outside Kafka" (KafkaConsumer's
 * javadoc).  The database is the truth and the group's committed offset
 * only a hint: the two are written by different systems (the group file
 * in shared memory, saved to HOME/data by shmq-replicator, and the
 * database file), so no order of the two writes is atomic.  Commit the
 * group first and a crash loses records; commit it after and a crash
 * applies them twice.  And the hint may be wrong in either direction: an
 * operator may reset it, a backup of the database may be restored, a
 * power loss may cut the last transactions (see synchronous below) while
 * the saved group offsets survive.  So whenever this process is given a
 * partition, it reads the stored offset and seeks there (to the log start
 * when the database has no row: a new database).  The hint is still
 * committed: right after such a seek, and every HINT_EVERY transactions
 * (as Kafka's auto.commit.interval.ms), because on a `block` topic the
 * group's committed offset is what lets producers reuse the ring, and
 * `shmqctl group describe` reads the lag from it.
 *
 * Rebalances.  shmq moves partitions between members inside its calls
 * (shmq_recv, shmq_assignment); there is no callback.  Before each
 * receive, and every SYNC_MS while it waits, the consumer asks for its
 * assignment: it forgets the partitions it lost and seeks in those it
 * gained.  A partition can also arrive inside shmq_recv, between two
 * looks: its first record is then applied only if it is exactly at the
 * stored offset, else the consumer seeks there.  And every record is
 * checked against the stored offset inside its transaction, under
 * SQLite's write lock (BEGIN IMMEDIATE): when a partition moved while a
 * member still had a batch of it in hand, both members may try to apply
 * the same records, and whichever commits second finds them applied and
 * skips them.  Gaps in the offsets (aborted reservations) are fine: the
 * stored offset is the one after the last record applied.
 *
 * When it holds.  The database is one file on a local file system (SQLite
 * locking; not NFS), the same across restarts.  Every record from a
 * partition's stored offset on must still be in the log: a persistent
 * topic whose retention keeps what the consumer has not processed, or a
 * volatile ring that was not rebuilt (a reboot empties it).  The consumer
 * refuses to go on when records it needs are gone.  Effects outside the
 * database (mail sent, HTTP calls) happen at least once, not exactly
 * once.  PRAGMA synchronous=NORMAL in WAL mode: a process crash loses
 * nothing committed, a power loss may lose the last transactions, effects
 * and offsets together, which are then read and applied again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmq.h>
#include <sqlite3.h>

#include "sqlite_db.h"

/* Records per transaction: one commit per record would make the commit
 * (a WAL append) the cost of every record. */
#define BATCH_DEFAULT 64
#define BATCH_MAX 1024
/* Bytes of key + value one record may have in this example. */
#define RECORD_MAX 1024
/* Commit the group's offset (the hint) every so many transactions. */
#define HINT_EVERY 16
/* Look at the assignment at least this often while waiting. */
#define SYNC_MS 100
/* How long a member waits for another's write lock. */

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS accounts("
    "  id TEXT PRIMARY KEY, balance INTEGER NOT NULL);"
    /* No UNIQUE on (topic, partition, offset) on purpose: only the
     * offsets table keeps a record from being applied twice, and a
     * second row would show it (the tests look for one). */
    "CREATE TABLE IF NOT EXISTS ledger("
    "  seq INTEGER PRIMARY KEY, topic TEXT NOT NULL,"
    "  partition INTEGER NOT NULL, offset INTEGER NOT NULL,"
    "  txn TEXT NOT NULL, account TEXT NOT NULL, amount INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS rejected("
    "  topic TEXT NOT NULL, partition INTEGER NOT NULL,"
    "  offset INTEGER NOT NULL, value BLOB);"
    "CREATE TABLE IF NOT EXISTS consumer_offsets("
    "  topic TEXT NOT NULL, partition INTEGER NOT NULL,"
    "  next INTEGER NOT NULL, PRIMARY KEY (topic, partition));";

enum stmt {
	ST_GET_NEXT,
	ST_SET_NEXT,
	ST_LEDGER,
	ST_BALANCE,
	ST_REJECT,
	ST_COUNT
};

static const char *const SQL[ST_COUNT] = {
	[ST_GET_NEXT] = "SELECT next FROM consumer_offsets"
	                " WHERE topic = ?1 AND partition = ?2",
	[ST_SET_NEXT] = "INSERT INTO consumer_offsets VALUES (?1, ?2, ?3)"
	                " ON CONFLICT (topic, partition)"
	                " DO UPDATE SET next = excluded.next",
	[ST_LEDGER] = "INSERT INTO ledger (topic, partition, offset, txn,"
	              " account, amount) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_BALANCE] = "INSERT INTO accounts VALUES (?1, ?2) ON CONFLICT (id)"
	               " DO UPDATE SET balance = balance + excluded.balance",
	[ST_REJECT] = "INSERT INTO rejected VALUES (?1, ?2, ?3, ?4)",
};

/* One received record and the buffer its key and value were copied to. */
struct held {
	shmq_record_t r;
	char buf[RECORD_MAX];
};

/* Per partition of the topic. */
struct part {
	bool synced; /* our read position follows the stored offset */
	bool reseek; /* move the read position after this transaction */
	bool dirty; /* hint not committed to the group yet */
	uint64_t next; /* stored offset, as of our last look */
};

struct app {
	shmq_t *q;
	shmq_consumer_t *c;
	const char *topic;
	uint32_t nparts;
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	struct part part[SHMQ_PARTITIONS_MAX];
	long applied, skipped, rejected, transactions;
};

static int
fail(const char *what, const char *why)
{
	fprintf(stderr, "sqlite_offsets: %s: %s\n", what, why);
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
	/* WAL: a transaction is committed by one append, and readers do not
	 * block the writer. */
	const char *what;
	int rc = sqlite_db_open(&a->db, path,
	    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", SCHEMA,
	    SQL, a->st, ST_COUNT, &what);
	return rc == SQLITE_OK ? 0 : fail_db(a, what);
}

static void
db_close(struct app *a)
{
	sqlite_db_close(a->db, a->st, ST_COUNT);
}

/* The stored offset of partition p: *stored says whether there is one. */
static int
db_next(struct app *a, uint32_t p, uint64_t *next, bool *stored)
{
	sqlite3_stmt *st = a->st[ST_GET_NEXT];
	sqlite3_bind_text(st, 1, a->topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, p);
	int rc = sqlite3_step(st);
	*stored = rc == SQLITE_ROW;
	*next = *stored ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
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

/* The record's effect: a ledger row and the balance, or a rejected row. */
static int
apply_effect(struct app *a, const shmq_record_t *r)
{
	const char *txn;
	int txn_len, rc;
	long long amount;
	sqlite3_stmt *st;

	if (!parse_value(r, &txn, &txn_len, &amount)) {
		st = a->st[ST_REJECT];
		sqlite3_bind_text(st, 1, a->topic, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, r->partition);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)r->offset);
		sqlite3_bind_blob(
		    st, 4, r->value, (int)r->value_len, SQLITE_STATIC);
		a->rejected++;
		return db_run(st);
	}
	st = a->st[ST_LEDGER];
	sqlite3_bind_text(st, 1, a->topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->partition);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)r->offset);
	sqlite3_bind_text(st, 4, txn, txn_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->key, (int)r->key_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, amount);
	if ((rc = db_run(st)) != SQLITE_OK) {
		return rc;
	}
	st = a->st[ST_BALANCE];
	sqlite3_bind_text(st, 1, r->key, (int)r->key_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, amount);
	a->applied++;
	return db_run(st);
}

/*
 * Apply one record inside the open transaction, or leave it: when it is
 * below the stored offset (applied before), or when our read position of
 * its partition was not set from the stored offset (the partition came to
 * us inside shmq_recv) and the record is not exactly there.  Either way
 * the partition is repositioned after the transaction, and its other
 * records in this batch are left too.
 */
static int
apply(struct app *a, const shmq_record_t *r)
{
	struct part *pt = &a->part[r->partition];
	uint64_t next;
	bool stored;
	int rc;

	if (pt->reseek) {
		return SQLITE_OK;
	}
	if ((rc = db_next(a, r->partition, &next, &stored)) != SQLITE_OK) {
		return rc;
	}
	if (r->offset < next ||
	    (!pt->synced && (!stored || r->offset != next))) {
		a->skipped += r->offset < next;
		pt->reseek = true;
		return SQLITE_OK;
	}
	if ((rc = apply_effect(a, r)) != SQLITE_OK) {
		return rc;
	}
	/* Gaps (aborted reservations) make offsets skip: store this record's
	 * successor, not next + 1. */
	pt->next = r->offset + 1;
	pt->synced = pt->dirty = true;
	sqlite3_stmt *st = a->st[ST_SET_NEXT];
	sqlite3_bind_text(st, 1, a->topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->partition);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)pt->next);
	return db_run(st);
}

/* One transaction: the batch's effects and offsets, or nothing. */
static int
apply_batch(struct app *a, const struct held *b, int n)
{
	/* IMMEDIATE: take the write lock before reading the offsets, so no
	 * other member changes them between our check and our commit. */
	int rc = sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	for (int i = 0; rc == SQLITE_OK && i < n; i++) {
		rc = apply(a, &b[i].r);
	}
	if (rc == SQLITE_OK) {
		rc = sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		/* Nothing of the batch is stored; the process exits and the
		 * batch is read again by whoever takes the partitions. */
		fail_db(a, "transaction");
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	a->transactions++;
	return 0;
}

/* ---- positions and the group ------------------------------------------- */

/* Commit partition p's stored offset as the group's (the hint). */
static int
commit_hint(struct app *a, uint32_t p)
{
	struct part *pt = &a->part[p];
	pt->dirty = false;
	int rc = shmq_consumer_commit_offset(a->c, p, pt->next);
	if (rc != 0 && rc != SHMQ_ENOTOWNER) {
		return fail("shmq_consumer_commit_offset", shmq_strerror(rc));
	}
	return 0;
}

/*
 * Read partition p from its stored offset (from the log start when the
 * database has none).  Records that are gone stop the consumer: going on
 * would lose them silently.  The hint follows at once, so that a member
 * handed p inside shmq_recv starts no later than the truth.
 */
static int
reposition(struct app *a, uint32_t p)
{
	struct part *pt = &a->part[p];
	shmq_partition_info_t info;
	bool stored;
	int rc;

	pt->reseek = false;
	if (db_next(a, p, &pt->next, &stored) != SQLITE_OK) {
		return fail_db(a, "reading consumer_offsets");
	}
	if (!stored) {
		rc = shmq_seek_to(a->c, p, SHMQ_SEEK_BEGINNING);
	} else if ((rc = shmq_partition_info(a->q, a->topic, p, &info)) == 0 &&
	    info.log_start > pt->next) {
		fprintf(stderr,
		    "sqlite_offsets: partition %u: offsets %" PRIu64
		    "..%" PRIu64 " are no longer in the log (retention, or a "
		    "rebuilt volatile ring)\n",
		    p, pt->next, info.log_start - 1);
		return -1;
	} else if (rc == 0 && info.end < pt->next) {
		/* Reading on would take the reset policy, and every record
		 * would look applied already. */
		fprintf(stderr,
		    "sqlite_offsets: partition %u: the database's next "
		    "offset is %" PRIu64 ", past the log's end %" PRIu64
		    " (was the topic made again?)\n",
		    p, pt->next, info.end);
		return -1;
	} else if (rc == 0) {
		rc = shmq_seek(a->c, p, pt->next);
	}
	if (rc == -EINVAL) {
		pt->synced = false; /* no longer ours: checked if it returns */
		return 0;
	}
	if (rc != 0) {
		return fail("shmq_seek", shmq_strerror(rc));
	}
	pt->synced = true;
	return stored ? commit_hint(a, p) : 0;
}

/*
 * Before each receive: forget the partitions we lost (one that comes
 * back is checked again), and read each partition we were given, or that
 * a batch found out of place, from the stored offset.  Asked here, not
 * only when a record arrives: a partition whose group offset is at the
 * end delivers no record to be checked.
 */
static int
sync_assignment(struct app *a)
{
	static uint32_t mine[SHMQ_PARTITIONS_MAX];
	static bool owned[SHMQ_PARTITIONS_MAX];
	ssize_t n = shmq_assignment(a->c, mine, SHMQ_PARTITIONS_MAX);

	if (n < 0) {
		return fail("shmq_assignment", shmq_strerror((int)n));
	}
	memset(owned, 0, sizeof owned);
	for (ssize_t i = 0; i < n; i++) {
		owned[mine[i]] = true;
	}
	for (uint32_t p = 0; p < a->nparts; p++) {
		struct part *pt = &a->part[p];
		if (!owned[p]) {
			pt->synced = pt->dirty = pt->reseek = false;
		} else if ((!pt->synced || pt->reseek) &&
		    reposition(a, p) != 0) {
			return -1;
		}
	}
	return 0;
}

/* Commit the hints that moved, every HINT_EVERY transactions and at the
 * end. */
static int
commit_hints(struct app *a)
{
	for (uint32_t p = 0; p < a->nparts; p++) {
		if (a->part[p].dirty && commit_hint(a, p) != 0) {
			return -1;
		}
	}
	return 0;
}

/* ---- the loop ---------------------------------------------------------- */

/* Receive up to max records: wait up to wait_ms for the first, take only
 * what is there for the rest.  *n is how many. */
static int
recv_batch(struct app *a, struct held *b, int max, int wait_ms, int *n)
{
	for (*n = 0; *n < max; (*n)++) {
		int rc = shmq_recv(a->c, b[*n].buf, sizeof b[*n].buf, &b[*n].r,
		    *n == 0 ? wait_ms : 0);
		if (rc == -EAGAIN) {
			break;
		}
		if (rc == -EMSGSIZE) {
			return fail("shmq_recv",
			    "record larger than this example's buffer");
		}
		if (rc != 0) {
			/* SHMQ_ELAPPED included: records lost, no exactly
			 * once. */
			return fail("shmq_recv", shmq_strerror(rc));
		}
	}
	return 0;
}

static int
run(struct app *a, int batch, int idle_ms)
{
	static struct held held[BATCH_MAX];
	int n, idle = 0, wait_ms;

	while (idle < idle_ms) {
		if (sync_assignment(a) != 0) {
			return 1;
		}
		/* Waits are cut in slices so that partitions handed to us
		 * meanwhile are repositioned soon. */
		wait_ms = idle_ms - idle < SYNC_MS ? idle_ms - idle : SYNC_MS;
		if (recv_batch(a, held, batch, wait_ms, &n) != 0) {
			return 1;
		}
		if (n == 0) {
			idle += wait_ms;
			continue;
		}
		idle = 0;
		if (apply_batch(a, held, n) != 0) {
			return 1;
		}
		if (a->transactions % HINT_EVERY == 0 &&
		    commit_hints(a) != 0) {
			return 1;
		}
	}
	return commit_hints(a) != 0;
}

static int
start(struct app *a, const char *home, const char *group)
{
	shmq_consumer_options_t co;
	shmq_topic_config_t cfg;
	int rc;

	shmq_consumer_options_init(&co);
	co.group = group;
	rc = shmq_attach(home, NULL, &a->q);
	if (rc == 0) {
		rc = shmq_topic_describe(a->q, a->topic, &cfg);
	}
	if (rc == 0) {
		a->nparts = cfg.partitions;
		rc = shmq_consumer_open(a->q, a->topic, &co, &a->c);
	}
	return rc == 0 ? 0 : fail(a->topic, shmq_strerror(rc));
}

int
main(int argc, char **argv)
{
	static struct app a;
	const char *home = NULL, *group = "sqlite-offsets";
	int batch = BATCH_DEFAULT, idle_ms = 2000;
	int opt, rc = 1;

	while ((opt = getopt(argc, argv, "d:g:b:i:")) != -1) {
		if (opt == 'd') {
			home = optarg;
		} else if (opt == 'g') {
			group = optarg;
		} else if (opt == 'b') {
			batch = atoi(optarg);
		} else if (opt == 'i') {
			idle_ms = atoi(optarg);
		} else {
			goto usage;
		}
	}
	if (optind != argc - 2 || batch < 1 || batch > BATCH_MAX ||
	    idle_ms < 1) {
		goto usage;
	}
	a.topic = argv[optind + 1];
	if (db_open(&a, argv[optind]) == 0 && start(&a, home, group) == 0) {
		rc = run(&a, batch, idle_ms);
		printf("sqlite_offsets %ld: %ld applied, %ld rejected, %ld "
		       "skipped as applied before, %ld transactions\n",
		    (long)getpid(), a.applied, a.rejected, a.skipped,
		    a.transactions);
	}
	shmq_consumer_close(a.c);
	shmq_detach(a.q);
	db_close(&a);
	return rc;

usage:
	fprintf(stderr,
	    "usage: sqlite_offsets [-d HOME] [-g GROUP] [-b BATCH] "
	    "[-i IDLE_MS] DB TOPIC\n");
	return 2;
}
