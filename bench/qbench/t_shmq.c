/*
 * t_shmq.c — shmq itself, the subject of the comparison.
 *
 * Each channel is a topic of its own with one partition, named from the
 * run's tag, created in prepare() and deleted in cleanup().  Producers
 * use the copy API (shmq_send / shmq_send_batch), as the other
 * transports' senders copy too; the consumer is the only member of a
 * group and reads with shmq_recv into the harness's buffer.
 *
 * Why a group and not a standalone consumer: on a `block` topic the
 * ring keeps records only for groups with a live member (up to their
 * committed offset), so a standalone reader could be overrun.  The
 * consumer therefore commits as it goes (see sq_commit_every).
 *
 * Variants:
 *   shmq-spin     volatile, acks LEADER, consumer busy-spins when idle
 *   shmq-park     volatile, acks LEADER, library default idle (the
 *                 reference row: spin 50 us, then sleep on a futex)
 *   shmq-batch64  as shmq-park, send() collects 64 messages and hands
 *                 them to shmq_send_batch (flush sends the rest)
 *   shmq-never    persistent, fsync never, acks LEADER
 *   shmq-always   persistent, fsync always; acks LEADER in STREAM,
 *                 DURABLE in the DURABLE workload
 *
 * Persistent topics need a persister.  With --home the caller runs
 * shmq-replicator for that instance and prepare() checks that one runs.
 * Without --home each channel gets a private instance under cfg->dir,
 * and for persistent variants prepare() starts a persister child of its
 * own (as shmq-perf does), which cleanup() stops by its pid.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmq.h>

#include "qbench.h"

/* shmq-batch64: messages per shmq_send_batch call. */
#define SQ_BATCH 64u
/* The group every qbench consumer joins (one member per topic). */
#define SQ_GROUP "qbench"
/* At most 1/8 of the ring is left uncommitted, so producers are never
 * held back by the commit cadence; past 1024 records between commits
 * nothing measurable is gained (the same rule as shmq-perf). */
#define SQ_COMMIT_RING_SHARE 8u
#define SQ_COMMIT_MAX 1024u

/* qb_transport.variant of each variant. */
struct sq_variant {
	int durability; /* enum shmq_durability */
	int fsync; /* enum shmq_fsync, persistent only */
	int idle; /* enum shmq_idle of the consumer */
	unsigned batch; /* messages per send call in STREAM */
};

/* Made in the parent by prepare(), inherited by the children. */
struct sq_state {
	const struct sq_variant *v;
	char home[PATH_MAX];
	char shm_dir[PATH_MAX]; /* private instance: removed at cleanup */
	char topic[SHMQ_NAME_MAX + 1];
	int private_home;
	int created; /* the topic is ours to delete */
	pid_t persister; /* a persister child we started, or 0 */
	uint64_t first; /* the offset of the run's first message */
};

struct qb_chan {
	shmq_t *q;
	shmq_producer_t *p;
	shmq_consumer_t *c;
	/* Sender: messages per shmq_send_batch call (1 = shmq_send), the
	 * collected ones, and their copies (slot bytes each). */
	unsigned batch;
	size_t n;
	size_t slot;
	unsigned char *buf;
	shmq_msg_t msgs[SQ_BATCH];
	/* Receiver. */
	uint64_t commit_every;
	uint64_t uncommitted;
};

/* Library codes are not errnos: say what they mean here, and hand the
 * harness an errno it can print. */
static int
sq_err(const char *what, int rc)
{
	fprintf(stderr, "qbench: %s: %s\n", what, shmq_strerror(rc));
	return rc < 0 && rc > -4096 ? rc : -EIO;
}

static int
sq_rm(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

/* FTW_PHYS: never follow a link out of the directory being removed. */
static void
sq_rmtree(const char *dir)
{
	if (dir[0] != '\0' && strcmp(dir, "/") != 0) {
		nftw(dir, sq_rm, 16, FTW_DEPTH | FTW_PHYS);
	}
}

/* The persister child of a private instance: it reports on `fd` once
 * it holds the instance's persister lock, then polls until killed. */
static void
sq_persister_child(const char *home, int fd)
{
	shmq_persister_t *ps = NULL;
	shmq_t *q = NULL;
	char ok = 1;
	int rc;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	rc = shmq_attach(home, NULL, &q);
	if (rc == 0) {
		rc = shmq_persister_open(q, NULL, NULL, NULL, &ps);
	}
	if (rc != 0) {
		sq_err("persister", rc);
		_exit(1);
	}
	if (write(fd, &ok, 1) != 1) {
		_exit(1);
	}
	close(fd);
	for (;;) {
		if (shmq_persister_poll(ps, 100) < 0) {
			_exit(1);
		}
	}
}

static int
sq_start_persister(struct sq_state *st)
{
	int fds[2];
	char ok = 0;
	pid_t pid;

	if (pipe(fds) != 0) {
		return qb_fail("pipe", -errno);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return qb_fail("fork", -errno);
	}
	if (pid == 0) {
		close(fds[0]);
		sq_persister_child(st->home, fds[1]);
	}
	close(fds[1]);
	st->persister = pid;
	/* EOF without the byte: the child failed and said why. */
	if (qb_read_full(fds[0], &ok, 1) != 0 || ok != 1) {
		close(fds[0]);
		fprintf(stderr, "qbench: %s: the persister did not start\n",
		    st->topic);
		return -EIO;
	}
	close(fds[0]);
	return 0;
}

/* A persistent topic without a persister fails at its first full ring
 * (SHMQ_ENOREPLICATOR) and never acknowledges DURABLE: say so now. */
static int
sq_need_persister(struct sq_state *st, shmq_t *q)
{
	int rc = shmq_persister_running(q, NULL);

	if (rc < 0) {
		return sq_err("shmq_persister_running", rc);
	}
	if (rc == 1) {
		return 0;
	}
	if (st->private_home) {
		return sq_start_persister(st);
	}
	fprintf(stderr,
	    "qbench: no shmq-replicator runs for the instance %s: persistent "
	    "shmq variants need one (shmq-replicator --home %s)\n",
	    st->home, st->home);
	return -ESRCH;
}

static void
sq_state_free(struct sq_state *st)
{
	shmq_t *q = NULL;
	int rc;

	if (st == NULL) {
		return;
	}
	if (st->created && shmq_attach(st->home, NULL, &q) == 0) {
		/* The group's state goes with the topic. */
		rc = shmq_topic_delete(q, st->topic);
		if (rc != 0 && rc != -ENOENT) {
			sq_err(st->topic, rc);
		}
	}
	if (st->persister > 0) {
		kill(st->persister, SIGKILL);
		waitpid(st->persister, NULL, 0);
	}
	shmq_detach(q);
	if (st->private_home) {
		sq_rmtree(st->home);
		sq_rmtree(st->shm_dir);
	}
	free(st);
}

/*
 * The persister looks for new topics once a second, and until it has
 * found this one a full ring waits and a DURABLE send is not answered:
 * the first second of a run would measure that.  So prepare() sends one
 * probe record with acks DURABLE and returns once the persister has
 * made it durable; the consumer starts after it (st->first).
 */
static int
sq_probe(struct sq_state *st, shmq_t *q)
{
	static const char probe[] = "qbench: persister probe";
	shmq_producer_options_t po;
	shmq_producer_t *p = NULL;
	shmq_msg_t m;
	int rc;

	shmq_producer_options_init(&po);
	po.acks = SHMQ_ACKS_DURABLE;
	po.timeout_ms = 30000;
	rc = shmq_producer_open(q, st->topic, &po, &p);
	if (rc == 0) {
		memset(&m, 0, sizeof(m));
		m.value = probe;
		m.value_len = sizeof(probe);
		m.partition = 0;
		rc = shmq_send(p, &m);
	}
	shmq_producer_close(p);
	if (rc != 0) {
		return sq_err("persister probe", rc);
	}
	st->first = m.offset + 1;
	return 0;
}

static int
sq_prepare(const struct qb_cfg *c, int id, void **state)
{
	const struct sq_variant *v = c->variant;
	shmq_topic_config_t tc;
	shmq_options_t o;
	struct sq_state *st;
	shmq_t *q = NULL;
	size_t i;
	int rc;

	*state = NULL;
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		return qb_fail("shmq state", -ENOMEM);
	}
	st->v = v;
	shmq_options_init(&o);
	if (c->home != NULL) {
		snprintf(st->home, sizeof(st->home), "%s", c->home);
		o.create = 0; /* a typo must not make a new instance */
	} else {
		snprintf(st->home, sizeof(st->home), "%s/shmq-%d", c->dir, id);
		st->private_home = 1;
	}
	/* Topic names allow [A-Za-z0-9._-] only. */
	snprintf(st->topic, sizeof(st->topic), "qbench-%s-%d", c->tag, id);
	for (i = 0; st->topic[i] != '\0'; i++) {
		char ch = st->topic[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		        (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
		        ch == '_')) {
			st->topic[i] = '_';
		}
	}
	rc = shmq_attach(st->home, &o, &q);
	if (rc != 0) {
		fprintf(stderr, "qbench: shmq instance %s: %s\n", st->home,
		    shmq_strerror(rc));
		free(st);
		return rc < 0 && rc > -4096 ? rc : -EIO;
	}
	if (st->private_home) {
		snprintf(
		    st->shm_dir, sizeof(st->shm_dir), "%s", shmq_shm_dir(q));
	}
	if (v->durability == SHMQ_DURABILITY_PERSISTENT) {
		rc = sq_need_persister(st, q);
	}
	if (rc == 0) {
		/* Every setting that matters is set here, whatever the
		 * library's defaults are. */
		shmq_topic_config_init(&tc);
		tc.partitions = 1;
		tc.ring_size = SHMQ_RING_SIZE_DEFAULT;
		tc.overflow = SHMQ_OVERFLOW_BLOCK;
		tc.durability = v->durability;
		tc.fsync = v->fsync;
		rc = shmq_topic_create(q, st->topic, &tc);
		if (rc != 0) {
			rc = sq_err(st->topic, rc);
		} else {
			st->created = 1;
		}
	}
	if (rc == 0 && v->durability == SHMQ_DURABILITY_PERSISTENT) {
		rc = sq_probe(st, q);
	}
	shmq_detach(q);
	if (rc != 0) {
		sq_state_free(st);
		return rc;
	}
	*state = st;
	return 0;
}

/* Bytes a record takes in the ring: header and value, 8-aligned. */
static uint64_t
sq_commit_every(size_t size)
{
	uint64_t rec = (SHMQ_RECORD_OVERHEAD + size + 7) & ~(uint64_t)7;
	uint64_t n = SHMQ_RING_SIZE_DEFAULT / rec / SQ_COMMIT_RING_SHARE;

	if (n > SQ_COMMIT_MAX) {
		n = SQ_COMMIT_MAX;
	}
	return n == 0 ? 1 : n;
}

static void
sq_close(struct qb_chan *ch)
{
	if (ch == NULL) {
		return;
	}
	shmq_producer_close(ch->p);
	shmq_consumer_close(ch->c);
	shmq_detach(ch->q);
	free(ch->buf);
	free(ch);
}

static int
sq_open_send(
    const struct qb_cfg *c, const struct sq_state *st, struct qb_chan *ch)
{
	shmq_producer_options_t po;
	int rc;

	shmq_producer_options_init(&po);
	po.acks = st->v->durability == SHMQ_DURABILITY_PERSISTENT &&
	        c->workload == QB_DURABLE
	    ? SHMQ_ACKS_DURABLE
	    : SHMQ_ACKS_LEADER;
	/* A partition's only writer may skip the shared lock, as a user
	 * with one producer would; writers that share it must not. */
	po.flags = c->workload == QB_PINGPONG || c->producers <= 1
	    ? SHMQ_PRODUCER_EXCLUSIVE
	    : 0;
	po.timeout_ms = -1; /* back-pressure waits; the watchdog bounds it */
	rc = shmq_producer_open(ch->q, st->topic, &po, &ch->p);
	if (rc != 0) {
		return sq_err("shmq_producer_open", rc);
	}
	/* Batching is for streams: a ping must leave at once. */
	ch->batch = c->workload == QB_STREAM ? st->v->batch : 1;
	if (ch->batch > 1) {
		ch->slot = c->size;
		ch->buf = malloc(ch->batch * ch->slot);
		if (ch->buf == NULL) {
			return qb_fail("batch buffer", -ENOMEM);
		}
	}
	return 0;
}

static int
sq_open_recv(
    const struct qb_cfg *c, const struct sq_state *st, struct qb_chan *ch)
{
	shmq_consumer_options_t co;
	uint32_t part = UINT32_MAX;
	ssize_t n;
	int rc;

	shmq_consumer_options_init(&co);
	co.group = SQ_GROUP;
	co.reset = SHMQ_RESET_EARLIEST;
	co.idle = st->v->idle;
	rc = shmq_consumer_open(ch->q, st->topic, &co, &ch->c);
	if (rc != 0) {
		return sq_err("shmq_consumer_open", rc);
	}
	/* Looking at the assignment makes the group assign partition 0
	 * to its only member now, not on the first (timed) receive. */
	n = shmq_assignment(ch->c, &part, 1);
	if (n < 0) {
		return sq_err("shmq_assignment", (int)n);
	}
	if (n != 1 || part != 0) {
		fprintf(stderr,
		    "qbench: %s: group \"%s\" has another member (%zd "
		    "partitions here)\n",
		    st->topic, SQ_GROUP, n);
		return -EBUSY;
	}
	/* Past the probe (persistent topics), and committed there, so that
	 * the group does not hold its ring space either. */
	if (st->first > 0) {
		rc = shmq_seek(ch->c, 0, st->first);
		if (rc == 0) {
			rc = shmq_consumer_commit_offset(ch->c, 0, st->first);
		}
		if (rc != 0) {
			return sq_err("shmq_seek", rc);
		}
	}
	ch->commit_every = sq_commit_every(c->size);
	return 0;
}

static int
sq_open(const struct qb_cfg *c, int id, void *state, enum qb_role role,
    unsigned who, struct qb_chan **out)
{
	const struct sq_state *st = state;
	struct qb_chan *ch;
	shmq_options_t o;
	int rc;

	(void)id;
	(void)who;
	*out = NULL;
	if (st == NULL) {
		return -EINVAL;
	}
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL) {
		return qb_fail("shmq channel", -ENOMEM);
	}
	shmq_options_init(&o);
	o.create = 0;
	rc = shmq_attach(st->home, &o, &ch->q);
	if (rc != 0) {
		rc = sq_err("shmq_attach", rc);
	} else if (role == QB_SEND) {
		rc = sq_open_send(c, st, ch);
	} else {
		rc = sq_open_recv(c, st, ch);
	}
	if (rc != 0) {
		sq_close(ch);
		return rc;
	}
	*out = ch;
	return 0;
}

/* Send the collected messages: shmq_send_batch may take fewer than
 * asked (a reclaimed reservation); it then says why for the rest. */
static int
sq_send_collected(struct qb_chan *ch)
{
	size_t done = 0;
	ssize_t k;

	while (done < ch->n) {
		k = shmq_send_batch(ch->p, ch->msgs + done, ch->n - done);
		if (k < 0) {
			return sq_err("shmq_send_batch", (int)k);
		}
		done += (size_t)k;
	}
	ch->n = 0;
	return 0;
}

static int
sq_send(struct qb_chan *ch, const void *msg, size_t len)
{
	shmq_msg_t *m;
	int rc;

	if (ch->batch <= 1 || len > ch->slot) {
		shmq_msg_t one;

		if (ch->n > 0 && (rc = sq_send_collected(ch)) != 0) {
			return rc;
		}
		memset(&one, 0, sizeof(one));
		one.value = msg;
		one.value_len = len;
		one.partition = 0;
		rc = shmq_send(ch->p, &one);
		return rc == 0 ? 0 : sq_err("shmq_send", rc);
	}
	/* The caller may reuse its buffer: keep a copy until the batch
	 * goes, as any batching client must. */
	m = &ch->msgs[ch->n];
	memcpy(ch->buf + ch->n * ch->slot, msg, len);
	memset(m, 0, sizeof(*m));
	m->value = ch->buf + ch->n * ch->slot;
	m->value_len = len;
	m->partition = 0;
	if (++ch->n == ch->batch) {
		return sq_send_collected(ch);
	}
	return 0;
}

static int
sq_flush(struct qb_chan *ch)
{
	return ch->n > 0 ? sq_send_collected(ch) : 0;
}

static ssize_t
sq_recv(struct qb_chan *ch, void *buf, size_t cap)
{
	shmq_record_t r;
	int rc;

	/* Commit before waiting, so a pong is not delayed by it. */
	if (ch->uncommitted >= ch->commit_every) {
		ch->uncommitted = 0;
		rc = shmq_consumer_commit(ch->c);
		if (rc != 0) {
			return sq_err("shmq_consumer_commit", rc);
		}
	}
	rc = shmq_recv(ch->c, buf, cap, &r, -1);
	if (rc == SHMQ_ELAPPED) {
		fprintf(stderr, "qbench: shmq_recv: %llu records lost\n",
		    (unsigned long long)r.lost);
		return -EIO;
	}
	if (rc != 0) {
		return sq_err("shmq_recv", rc);
	}
	ch->uncommitted++;
	/* No key is sent, so the value starts at buf. */
	return (ssize_t)r.value_len;
}

static void
sq_cleanup(const struct qb_cfg *c, int id, void *state)
{
	(void)c;
	(void)id;
	sq_state_free(state);
}

/* The variants share every function: prepare() reads what sets them
 * apart from cfg->variant. */
#define SQ_FUNCS                                                 \
	.prepare = sq_prepare, .open = sq_open, .send = sq_send, \
	.flush = sq_flush, .recv = sq_recv, .close = sq_close,   \
	.cleanup = sq_cleanup

const struct qb_transport qb_t_shmq_spin = {
	.name = "shmq-spin",
	.what =
	    "shmq, volatile topic, acks leader, consumer busy-spins when idle",
	.flags = QB_F_MULTI,
	.max_size = 0,
	.variant = &(const struct sq_variant) { SHMQ_DURABILITY_VOLATILE,
	    SHMQ_FSYNC_NEVER, SHMQ_IDLE_BUSY_SPIN, 1 },
	SQ_FUNCS,
};

const struct qb_transport qb_t_shmq_park = {
	.name = "shmq-park",
	.what = "shmq, volatile topic, acks leader, consumer spins 50 us then "
	        "parks",
	.flags = QB_F_MULTI,
	.max_size = 0,
	.variant = &(const struct sq_variant) { SHMQ_DURABILITY_VOLATILE,
	    SHMQ_FSYNC_NEVER, SHMQ_IDLE_SPIN_PARK, 1 },
	SQ_FUNCS,
};

const struct qb_transport qb_t_shmq_batch64 = {
	.name = "shmq-batch64",
	.what = "shmq-park, sending 64 messages per shmq_send_batch call",
	.flags = QB_F_MULTI,
	.max_size = 0,
	.variant = &(const struct sq_variant) { SHMQ_DURABILITY_VOLATILE,
	    SHMQ_FSYNC_NEVER, SHMQ_IDLE_SPIN_PARK, SQ_BATCH },
	SQ_FUNCS,
};

const struct qb_transport qb_t_shmq_never = {
	.name = "shmq-never",
	.what = "shmq, persistent topic, fsync never, acks leader",
	.flags = QB_F_MULTI,
	.max_size = 0,
	.variant = &(const struct sq_variant) { SHMQ_DURABILITY_PERSISTENT,
	    SHMQ_FSYNC_NEVER, SHMQ_IDLE_SPIN_PARK, 1 },
	SQ_FUNCS,
};

const struct qb_transport qb_t_shmq_always = {
	.name = "shmq-always",
	.what = "shmq, persistent topic, fsync always; durable: acks durable",
	.flags = QB_F_MULTI | QB_F_DURABLE,
	.max_size = 0,
	.variant = &(const struct sq_variant) { SHMQ_DURABILITY_PERSISTENT,
	    SHMQ_FSYNC_ALWAYS, SHMQ_IDLE_SPIN_PARK, 1 },
	SQ_FUNCS,
};
