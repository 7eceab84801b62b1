/*
 * run.c — one run: fork, pin, release together, verify, report.
 *
 * The parent prepares the channels, forks the consumer (CPU 1) and the
 * producers (CPU 0) — for PINGPONG the ponger and the pinger — and
 * waits until each has opened its ends.  Each child then blocks reading
 * the "go" pipe; the parent closes its write end, and every child sees
 * end-of-file at once: a start barrier without sleeps or polling.
 *
 * The children check what they can see themselves (the consumer: length,
 * per-producer order, the end marks; the pinger: each echo byte for
 * byte) and send the parent a report over their own pipe: message
 * count, checksum total, times, and latency samples.  The parent prints
 * figures only if every child exited 0 and the producers' totals equal
 * the consumer's.
 *
 * The parent never sleeps: one poll() loop watches the ready pipe, the
 * report pipes and a self-pipe that the signal handlers write to, with
 * the watchdog's deadline as its timeout.  Any child that fails, a
 * signal, or the deadline kills the children's process group.
 *
 * QBENCH_CORRUPT=N (a self-check of the verifier): the receiving side
 * flips the last byte of the N-th message it receives, after the
 * transport delivered it; that run must fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

enum role { R_CONSUMER, R_PRODUCER, R_PINGER, R_PONGER };

/* What each child sends the parent, followed by nlat samples (ns). */
struct report {
	uint64_t msgs; /* sent, or received */
	uint64_t csum; /* qb_msg_csum total over those messages */
	/* producer: the release; pinger: the end of the warm-up */
	uint64_t t_start;
	uint64_t t_end; /* consumer: last QB_END; pinger: last echo */
	uint64_t nlat;
};

struct child {
	pid_t pid;
	enum role role;
	unsigned idx; /* producer index */
	int rep_fd; /* parent: read end of the report pipe */
	unsigned char *rep;
	size_t rep_len, rep_cap;
	int rep_eof;
	int exited;
	int status;
};

struct run {
	struct qb_cfg *c;
	const struct qb_transport *t;
	int nchan;
	void *state[2];
	int prepared[2];
	struct child *kids;
	unsigned nkids;
	pid_t pgid;
	pid_t parent;
	int ready[2], go[2];
	uint64_t corrupt_at; /* QBENCH_CORRUPT, 0: off */
	size_t cap; /* receive buffer */
};

static const char *const role_name[] = { "consumer", "producer", "pinger",
	"ponger" };

/* ---- CPUs ------------------------------------------------------------ */

int
qb_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof set, &set) != 0) {
		return 1;
	}
	return CPU_COUNT(&set);
}

int
qb_pin(unsigned idx)
{
	cpu_set_t set, one;
	unsigned k = 0;

	if (sched_getaffinity(0, sizeof set, &set) != 0 ||
	    CPU_COUNT(&set) < 2) {
		return 0;
	}
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &set) || k++ != idx) {
			continue;
		}
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		return sched_setaffinity(0, sizeof one, &one) == 0;
	}
	return 0;
}

/* ---- the children ---------------------------------------------------- */

/* Say why a child fails, with who it is, and return -1. */
__attribute__((format(printf, 2, 3))) static int child_err(
    const struct child *me, const char *fmt, ...);

static int
child_err(const struct child *me, const char *fmt, ...)
{
	va_list ap;
	char msg[256];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (me->role == R_PRODUCER) {
		fprintf(stderr, "qbench: producer %u: %s\n", me->idx, msg);
	} else {
		fprintf(stderr, "qbench: %s: %s\n", role_name[me->role], msg);
	}
	return -1;
}

struct lat {
	uint64_t *v;
	size_t n, cap;
};

static int
lat_push(struct lat *l, uint64_t ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 65536;
		uint64_t *v = realloc(l->v, cap * sizeof *v);
		if (v == NULL) {
			return -ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = ns;
	return 0;
}

/* The receiving side's copy of message n (1-based) is corrupted when
 * QBENCH_CORRUPT=n: the last byte, which is payload unless the message
 * is a bare header. */
static void
maybe_corrupt(const struct run *r, uint64_t n, unsigned char *buf, ssize_t len)
{
	if (r->corrupt_at != 0 && n == r->corrupt_at && len > 0) {
		buf[len - 1] ^= 0x20;
	}
}

static int
do_send(const struct run *r, struct qb_chan *ch, const void *m, int flush)
{
	int rc = r->t->send(ch, m, r->c->size);

	if (rc == 0 && flush && r->t->flush != NULL) {
		rc = r->t->flush(ch);
	}
	return rc;
}

static int
run_producer(const struct run *r, const struct child *me, struct qb_chan *ch,
    struct report *rep, struct lat *lat)
{
	const struct qb_cfg *c = r->c;
	struct qb_patterns pat;
	uint64_t seq = 0, csum = 0, start, stop_at, now;
	int durable = c->workload == QB_DURABLE;
	int rc = 0, last = 0;

	if (qb_patterns_init(&pat, c->size) != 0) {
		return child_err(me, "out of memory");
	}
	start = now = qb_now_ns();
	stop_at = start + (uint64_t)(c->duration_s * 1e9);
	while (!last) {
		struct qb_hdr h;
		unsigned char *m;

		/* The clock is read once per QB_CLOCK_EVERY sends: a
		 * clock_gettime per message would be a cost of its own.
		 * DURABLE reads it around every send anyway, and its sends
		 * may take milliseconds: it looks every time. */
		if (durable) {
			last = now >= stop_at;
		} else if (seq % QB_CLOCK_EVERY == QB_CLOCK_EVERY - 1) {
			last = qb_now_ns() >= stop_at;
		}
		m = qb_msg_build(&pat, me->idx, seq, last ? QB_END : 0);
		if (durable) {
			uint64_t t0 = qb_now_ns();
			rc = r->t->send(ch, m, c->size);
			now = qb_now_ns();
			if (rc == 0 && lat_push(lat, now - t0) != 0) {
				rc = -ENOMEM;
			}
		} else {
			rc = r->t->send(ch, m, c->size);
		}
		if (rc < 0) {
			break;
		}
		qb_hdr_get(m, &h);
		csum += qb_msg_csum_parts(&h, pat.sum[seq % QB_PATTERNS]);
		seq++;
	}
	if (rc == 0 && r->t->flush != NULL) {
		rc = r->t->flush(ch);
	}
	qb_patterns_free(&pat);
	if (rc < 0) {
		return child_err(me, "send of seq %llu: %s",
		    (unsigned long long)seq, strerror(-rc));
	}
	rep->msgs = seq;
	rep->csum = csum;
	rep->t_start = start;
	rep->t_end = qb_now_ns();
	return 0;
}

static int
run_consumer(const struct run *r, const struct child *me, struct qb_chan *ch,
    struct report *rep)
{
	const struct qb_cfg *c = r->c;
	unsigned P = c->producers;
	uint64_t next[QB_PRODUCERS_MAX] = { 0 };
	unsigned char ended[QB_PRODUCERS_MAX] = { 0 };
	unsigned char *buf = malloc(r->cap);
	unsigned nended = 0;
	uint64_t n = 0, csum = 0;
	int rc = -1;

	if (buf == NULL) {
		return child_err(me, "out of memory");
	}
	while (nended < P) {
		ssize_t len = r->t->recv(ch, buf, r->cap);
		struct qb_hdr h;

		if (len < 0) {
			child_err(me, "recv after %llu messages: %s",
			    (unsigned long long)n, strerror((int)-len));
			goto out;
		}
		n++;
		maybe_corrupt(r, n, buf, len);
		if ((size_t)len != c->size) {
			child_err(me, "message %llu is %zd bytes, not %zu",
			    (unsigned long long)n, len, c->size);
			goto out;
		}
		qb_hdr_get(buf, &h);
		if (h.len != c->size || h.producer >= P ||
		    (h.flags & ~QB_END) != 0) {
			child_err(me,
			    "message %llu: bad header (len %u producer %u "
			    "flags %#x)",
			    (unsigned long long)n, h.len, h.producer, h.flags);
			goto out;
		}
		if (ended[h.producer] || h.seq != next[h.producer]) {
			child_err(me,
			    "message %llu: producer %u seq %llu, expected "
			    "%llu%s",
			    (unsigned long long)n, h.producer,
			    (unsigned long long)h.seq,
			    (unsigned long long)next[h.producer],
			    ended[h.producer] ? " (after its end)" : "");
			goto out;
		}
		next[h.producer]++;
		if (h.flags & QB_END) {
			ended[h.producer] = 1;
			nended++;
		}
		csum += qb_msg_csum(buf, (size_t)len);
	}
	rep->t_end = qb_now_ns();
	rep->msgs = n;
	rep->csum = csum;
	rc = 0;
out:
	free(buf);
	return rc;
}

static int
run_pinger(const struct run *r, const struct child *me, struct qb_chan *out,
    struct qb_chan *in, struct report *rep, struct lat *lat)
{
	const struct qb_cfg *c = r->c;
	uint64_t total = QB_WARMUP + c->count;
	struct qb_patterns pat;
	unsigned char *buf = malloc(r->cap);
	uint64_t csum = 0, start = 0;
	int rc = -1;

	lat->v = malloc(c->count * sizeof *lat->v);
	lat->cap = c->count;
	if (buf == NULL || lat->v == NULL ||
	    qb_patterns_init(&pat, c->size) != 0) {
		free(buf);
		return child_err(me, "out of memory");
	}
	for (uint64_t i = 0; i < total; i++) {
		unsigned char *m =
		    qb_msg_build(&pat, 0, i, i + 1 == total ? QB_END : 0);
		struct qb_hdr h;
		uint64_t t0, t1;
		ssize_t len;
		int s;

		if (i == QB_WARMUP) {
			start = qb_now_ns();
		}
		t0 = qb_now_ns();
		s = do_send(r, out, m, 1);
		if (s < 0) {
			child_err(me, "send of seq %llu: %s",
			    (unsigned long long)i, strerror(-s));
			goto out;
		}
		len = r->t->recv(in, buf, r->cap);
		t1 = qb_now_ns();
		if (len < 0) {
			child_err(me, "recv of echo %llu: %s",
			    (unsigned long long)i, strerror((int)-len));
			goto out;
		}
		if (i >= QB_WARMUP) {
			lat->v[lat->n++] = t1 - t0;
		}
		/* Byte for byte: the echo must be what was sent. */
		if ((size_t)len != c->size || memcmp(buf, m, c->size) != 0) {
			size_t k = 0;
			while (
			    k < c->size && k < (size_t)len && buf[k] == m[k]) {
				k++;
			}
			child_err(me,
			    "echo of seq %llu differs from what was sent "
			    "(%zd bytes, first difference at byte %zu)",
			    (unsigned long long)i, len, k);
			goto out;
		}
		qb_hdr_get(m, &h);
		csum += qb_msg_csum_parts(&h, pat.sum[i % QB_PATTERNS]);
	}
	rep->t_start = start;
	rep->t_end = qb_now_ns();
	rep->msgs = total;
	rep->csum = csum;
	rc = 0;
out:
	qb_patterns_free(&pat);
	free(buf);
	return rc;
}

static int
run_ponger(const struct run *r, const struct child *me, struct qb_chan *in,
    struct qb_chan *out, struct report *rep)
{
	const struct qb_cfg *c = r->c;
	unsigned char *buf = malloc(r->cap);
	uint64_t n = 0, csum = 0;
	int rc = -1;

	if (buf == NULL) {
		return child_err(me, "out of memory");
	}
	for (;;) {
		ssize_t len = r->t->recv(in, buf, r->cap);
		struct qb_hdr h;
		int s;

		if (len < 0) {
			child_err(me, "recv after %llu messages: %s",
			    (unsigned long long)n, strerror((int)-len));
			goto out;
		}
		n++;
		maybe_corrupt(r, n, buf, len);
		/* Back first, unchanged: checking it is off the clock. */
		s = r->t->send(out, buf, (size_t)len);
		if (s == 0 && r->t->flush != NULL) {
			s = r->t->flush(out);
		}
		if (s < 0) {
			child_err(me, "send of echo %llu: %s",
			    (unsigned long long)n, strerror(-s));
			goto out;
		}
		if ((size_t)len != c->size) {
			child_err(me, "message %llu is %zd bytes, not %zu",
			    (unsigned long long)n, len, c->size);
			goto out;
		}
		qb_hdr_get(buf, &h);
		if (h.len != c->size || h.producer != 0 || h.seq != n - 1 ||
		    (h.flags & ~QB_END) != 0) {
			child_err(me,
			    "message %llu: bad header (len %u producer %u "
			    "seq %llu flags %#x)",
			    (unsigned long long)n, h.len, h.producer,
			    (unsigned long long)h.seq, h.flags);
			goto out;
		}
		csum += qb_msg_csum(buf, (size_t)len);
		if (h.flags & QB_END) {
			break;
		}
	}
	rep->msgs = n;
	rep->csum = csum;
	rc = 0;
out:
	free(buf);
	return rc;
}

static int
open_end(const struct run *r, const struct child *me, int id,
    enum qb_role role, struct qb_chan **out)
{
	int rc = r->t->open(
	    r->c, id, r->state[id], role, role == QB_SEND ? me->idx : 0, out);

	if (rc < 0) {
		child_err(me, "%s: open of channel %d (%s): %s", r->t->name,
		    id, role == QB_SEND ? "send" : "recv", strerror(-rc));
	}
	return rc;
}

static void
child_signals(void)
{
	struct sigaction sa;
	static const int dfl[] = { SIGCHLD, SIGINT, SIGTERM, SIGHUP };

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	for (size_t i = 0; i < sizeof dfl / sizeof dfl[0]; i++) {
		sigaction(dfl[i], &sa, NULL);
	}
	/* A peer that went away is an error to report, not a silent
	 * death by SIGPIPE. */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static void
child_main(struct run *r, struct child *me, int rep_w, int selfpipe[2])
{
	struct qb_chan *ch[2] = { NULL, NULL };
	struct report rep;
	struct lat lat = { NULL, 0, 0 };
	int rc = -1;
	char b;

	child_signals();
	/* Die with the parent; it may have gone between fork and now. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != r->parent) {
		_exit(QB_EXIT_FAIL);
	}
	setpgid(0, r->pgid);
	close(r->go[1]);
	close(r->ready[0]);
	close(selfpipe[0]);
	close(selfpipe[1]);
	for (unsigned i = 0; i < r->nkids; i++) {
		if (r->kids[i].rep_fd >= 0) {
			close(r->kids[i].rep_fd);
		}
	}
	/* The receiving side on the second CPU, the sending side on the
	 * first: they never share a core's time. */
	qb_pin(me->role == R_CONSUMER || me->role == R_PONGER ? 1 : 0);
	memset(&rep, 0, sizeof rep);

	/* Send ends first: they never block, so whatever order the
	 * children run in, every receive end has its peer coming. */
	switch (me->role) {
	case R_PRODUCER:
		rc = open_end(r, me, 0, QB_SEND, &ch[0]);
		break;
	case R_CONSUMER:
		rc = open_end(r, me, 0, QB_RECV, &ch[0]);
		break;
	case R_PINGER:
		rc = open_end(r, me, 0, QB_SEND, &ch[0]);
		if (rc == 0) {
			rc = open_end(r, me, 1, QB_RECV, &ch[1]);
		}
		break;
	case R_PONGER:
		rc = open_end(r, me, 1, QB_SEND, &ch[1]);
		if (rc == 0) {
			rc = open_end(r, me, 0, QB_RECV, &ch[0]);
		}
		break;
	}
	if (rc < 0) {
		_exit(QB_EXIT_FAIL);
	}
	b = 'r';
	if (qb_write_full(r->ready[1], &b, 1) != 0) {
		_exit(QB_EXIT_FAIL);
	}
	close(r->ready[1]);
	/* The barrier: end-of-file when the parent closes its end. */
	while (read(r->go[0], &b, 1) < 0 && errno == EINTR) {
	}
	close(r->go[0]);

	switch (me->role) {
	case R_PRODUCER:
		rc = run_producer(r, me, ch[0], &rep, &lat);
		break;
	case R_CONSUMER:
		rc = run_consumer(r, me, ch[0], &rep);
		break;
	case R_PINGER:
		rc = run_pinger(r, me, ch[0], ch[1], &rep, &lat);
		break;
	case R_PONGER:
		rc = run_ponger(r, me, ch[0], ch[1], &rep);
		break;
	}
	if (rc < 0) {
		_exit(QB_EXIT_FAIL);
	}
	/* Report before closing: a transport slow to close must not
	 * hold the figures back (the watchdog still bounds it). */
	rep.nlat = lat.n;
	if (qb_write_full(rep_w, &rep, sizeof rep) != 0 ||
	    (lat.n > 0 &&
	        qb_write_full(rep_w, lat.v, lat.n * sizeof *lat.v) != 0)) {
		_exit(QB_EXIT_FAIL);
	}
	close(rep_w);
	for (int i = 0; i < 2; i++) {
		if (ch[i] != NULL) {
			r->t->close(ch[i]);
		}
	}
	_exit(QB_EXIT_OK);
}

/* ---- the parent ------------------------------------------------------ */

static int sig_fd = -1;

static void
on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;
	int saved = errno;

	/* A full pipe already holds a wake-up; losing this one is fine. */
	if (write(sig_fd, &b, 1) < 0) {
	}
	errno = saved;
}

static const int caught[] = { SIGCHLD, SIGINT, SIGTERM, SIGHUP };
#define NCAUGHT (sizeof caught / sizeof caught[0])

static void
signals_catch(struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	for (size_t i = 0; i < NCAUGHT; i++) {
		sigaction(caught[i], &sa, &old[i]);
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static void
signals_restore(const struct sigaction *old)
{
	for (size_t i = 0; i < NCAUGHT; i++) {
		sigaction(caught[i], &old[i], NULL);
	}
}

static void
kill_all(struct run *r)
{
	if (r->pgid > 0) {
		kill(-r->pgid, SIGKILL);
	}
	/* Also one by one: a child may not have joined the group yet.  An
	 * unreaped child's pid cannot have been reused. */
	for (unsigned i = 0; i < r->nkids; i++) {
		if (r->kids[i].pid > 0 && !r->kids[i].exited) {
			kill(r->kids[i].pid, SIGKILL);
		}
	}
}

static void
kid_name(const struct child *k, char *buf, size_t cap)
{
	if (k->role == R_PRODUCER) {
		snprintf(buf, cap, "producer %u", k->idx);
	} else {
		snprintf(buf, cap, "%s", role_name[k->role]);
	}
}

/* Reap what exited; returns 0, or -1 if one of them failed. */
static int
reap(struct run *r, int quiet)
{
	int bad = 0;

	for (unsigned i = 0; i < r->nkids; i++) {
		struct child *k = &r->kids[i];
		int st;
		pid_t p;

		if (k->pid <= 0 || k->exited) {
			continue;
		}
		p = waitpid(k->pid, &st, WNOHANG);
		if (p != k->pid) {
			continue;
		}
		k->exited = 1;
		k->status = st;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			continue;
		}
		bad = 1;
		if (!quiet) {
			char name[32];
			kid_name(k, name, sizeof name);
			if (WIFEXITED(st)) {
				fprintf(stderr,
				    "qbench: %s exited with status %d\n", name,
				    WEXITSTATUS(st));
			} else {
				fprintf(stderr, "qbench: %s killed by %s\n",
				    name, strsignal(WTERMSIG(st)));
			}
		}
	}
	return bad ? -1 : 0;
}

static int
read_report(struct child *k)
{
	for (;;) {
		ssize_t n;

		if (k->rep_cap - k->rep_len < 65536) {
			size_t cap = k->rep_cap ? 2 * k->rep_cap : 131072;
			unsigned char *p = realloc(k->rep, cap);
			if (p == NULL) {
				return -ENOMEM;
			}
			k->rep = p;
			k->rep_cap = cap;
		}
		n = read(
		    k->rep_fd, k->rep + k->rep_len, k->rep_cap - k->rep_len);
		if (n > 0) {
			k->rep_len += (size_t)n;
			continue;
		}
		if (n == 0) {
			k->rep_eof = 1;
			close(k->rep_fd);
			k->rep_fd = -1;
			return 0;
		}
		if (errno == EINTR) {
			continue;
		}
		return errno == EAGAIN ? 0 : -errno;
	}
}

/*
 * Everything between the forks and the last exit.  Returns 0 if every
 * child exited 0 and reported, else -1 with the reason on stderr.
 */
static int
supervise(struct run *r, int selfpipe[2], uint64_t deadline)
{
	unsigned nready = 0;
	int released = 0, failed = 0, ready_open = 1;

	for (;;) {
		struct pollfd pfd[2 + QB_PRODUCERS_MAX + 2];
		struct child *who[2 + QB_PRODUCERS_MAX + 2];
		nfds_t n = 0;
		int done = 1, timeout = -1, rc;

		for (unsigned i = 0; i < r->nkids; i++) {
			if (!r->kids[i].exited || !r->kids[i].rep_eof) {
				done = 0;
			}
		}
		if (done) {
			break;
		}
		pfd[n].fd = selfpipe[0];
		pfd[n].events = POLLIN;
		who[n++] = NULL;
		if (ready_open) {
			pfd[n].fd = r->ready[0];
			pfd[n].events = POLLIN;
			who[n++] = NULL;
		}
		for (unsigned i = 0; i < r->nkids; i++) {
			if (r->kids[i].rep_fd >= 0) {
				pfd[n].fd = r->kids[i].rep_fd;
				pfd[n].events = POLLIN;
				who[n++] = &r->kids[i];
			}
		}
		if (!failed) {
			uint64_t now = qb_now_ns();
			uint64_t left = deadline > now ? deadline - now : 0;
			uint64_t ms = (left + 999999) / 1000000;
			timeout = ms > INT_MAX ? INT_MAX : (int)ms;
		}
		rc = poll(pfd, n, timeout);
		if (rc < 0 && errno != EINTR) {
			qb_fail("poll", -errno);
			kill_all(r);
			failed = 1;
			continue;
		}
		if (rc == 0 && !failed) {
			fprintf(stderr,
			    "qbench: %s: timed out (watchdog), killing the "
			    "run\n",
			    r->t->name);
			kill_all(r);
			failed = 1;
			continue;
		}
		if (rc <= 0) {
			continue;
		}
		if (pfd[0].revents) {
			unsigned char sigs[64];
			ssize_t k = read(selfpipe[0], sigs, sizeof sigs);
			for (ssize_t i = 0; i < k; i++) {
				if (sigs[i] != SIGCHLD && !failed) {
					fprintf(stderr,
					    "qbench: interrupted by %s\n",
					    strsignal(sigs[i]));
					kill_all(r);
					failed = 1;
				}
			}
			if (reap(r, failed) < 0 && !failed) {
				kill_all(r);
				failed = 1;
			}
		}
		for (nfds_t i = 1; i < n; i++) {
			if (pfd[i].revents == 0) {
				continue;
			}
			if (who[i] == NULL) {
				char buf[64];
				ssize_t k = read(r->ready[0], buf, sizeof buf);
				if (k > 0) {
					nready += (unsigned)k;
				} else if (k == 0 ||
				    (errno != EINTR && errno != EAGAIN)) {
					/* Every child closed its end: the
					 * ones missing died (SIGCHLD says
					 * which). */
					ready_open = 0;
				}
				if (nready == r->nkids && !released) {
					/* Go: every child sees end-of-file
					 * on the go pipe at once. */
					close(r->go[1]);
					r->go[1] = -1;
					released = 1;
					ready_open = 0;
				}
			} else if (read_report(who[i]) < 0 && !failed) {
				qb_fail("reading a report", -ENOMEM);
				kill_all(r);
				failed = 1;
			}
		}
	}
	return failed ? -1 : 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP) {
		rmdir(path);
	} else {
		unlink(path);
	}
	return 0;
}

static int
make_dir_tag(struct qb_cfg *c, char *dir, size_t cap)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || tmp[0] == '\0') {
		tmp = "/tmp";
	}
	if ((size_t)snprintf(dir, cap, "%s/qbench.XXXXXX", tmp) >= cap) {
		fprintf(stderr, "qbench: TMPDIR is too long\n");
		return -1;
	}
	if (mkdtemp(dir) == NULL) {
		fprintf(
		    stderr, "qbench: mkdtemp %s: %s\n", dir, strerror(errno));
		return -1;
	}
	c->dir = dir;
	/* Names of queues, topics and streams: letters, digits and '-'
	 * only, unique per pid and per moment. */
	snprintf(c->tag, sizeof c->tag, "qb%ld-%llx", (long)getpid(),
	    (unsigned long long)(qb_now_ns() & 0xffffffffffull));
	return 0;
}

/* p50, p99, p99.9 and max of the sorted samples lat[0..n), in
 * microseconds: as JSON fields, or as text. */
static void
print_lat(const uint64_t *lat, size_t n, int json)
{
	double p50 = qb_pct(lat, n, 0.5) / 1e3;
	double p99 = qb_pct(lat, n, 0.99) / 1e3;
	double p999 = qb_pct(lat, n, 0.999) / 1e3;
	double max = qb_pct(lat, n, 1.0) / 1e3;

	if (json) {
		printf("\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,"
		       "\"max_us\":%.3f",
		    p50, p99, p999, max);
	} else {
		printf("p50 %.2f p99 %.2f p99.9 %.2f max %.2f", p50, p99, p999,
		    max);
	}
}

/* Parse the reports and print figures, or say why not. */
static int
report_figures(struct run *r, int json)
{
	struct qb_cfg *c = r->c;
	struct report *rp[2 + QB_PRODUCERS_MAX];
	uint64_t sent = 0, sent_csum = 0, start = UINT64_MAX;
	uint64_t nlat = 0;
	uint64_t *lat = NULL;
	const struct report *recv = NULL, *ping = NULL;
	double secs, rate;

	for (unsigned i = 0; i < r->nkids; i++) {
		struct child *k = &r->kids[i];
		char name[32];

		kid_name(k, name, sizeof name);
		if (k->rep_len < sizeof(struct report)) {
			fprintf(stderr, "qbench: %s sent no report\n", name);
			return -1;
		}
		rp[i] = (struct report *)(void *)k->rep;
		if (k->rep_len !=
		    sizeof(struct report) + rp[i]->nlat * sizeof(uint64_t)) {
			fprintf(stderr, "qbench: %s: report is %zu bytes\n",
			    name, k->rep_len);
			return -1;
		}
		nlat += rp[i]->nlat;
		if (k->role == R_CONSUMER || k->role == R_PONGER) {
			recv = rp[i];
		} else {
			sent += rp[i]->msgs;
			sent_csum += rp[i]->csum;
			start =
			    rp[i]->t_start < start ? rp[i]->t_start : start;
			if (k->role == R_PINGER) {
				ping = rp[i];
			}
		}
	}
	if (recv == NULL) {
		return -1;
	}
	if (recv->msgs != sent || recv->csum != sent_csum) {
		fprintf(stderr,
		    "qbench: %s: NOT VERIFIED: sent %llu messages (checksum "
		    "%016llx), received %llu (checksum %016llx)\n",
		    r->t->name, (unsigned long long)sent,
		    (unsigned long long)sent_csum,
		    (unsigned long long)recv->msgs,
		    (unsigned long long)recv->csum);
		return -1;
	}
	if (nlat > 0) {
		size_t at = 0;
		lat = malloc(nlat * sizeof *lat);
		if (lat == NULL) {
			qb_fail("latency samples", -ENOMEM);
			return -1;
		}
		for (unsigned i = 0; i < r->nkids; i++) {
			memcpy(lat + at,
			    r->kids[i].rep + sizeof(struct report),
			    rp[i]->nlat * sizeof *lat);
			at += rp[i]->nlat;
		}
		qb_sort_u64(lat, nlat);
	}

	if (c->workload == QB_PINGPONG) {
		/* As text too, so that 1.0 prints as 1.0, not 1. */
		static const char *const qname[] = { "0.01", "0.05", "0.1",
			"0.25", "0.5", "0.75", "0.9", "0.95", "0.99", "0.995",
			"0.999", "0.9999", "1.0" };
		static const double qs[] = { 0.01, 0.05, 0.1, 0.25, 0.5, 0.75,
			0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 1.0 };
		secs = (double)(ping->t_end - ping->t_start) / 1e9;
		rate = (double)c->count / secs;
		if (json) {
			printf(
			    "{\"transport\":\"%s\",\"workload\":\"pingpong\","
			    "\"size\":%zu,\"producers\":1,\"msgs\":%llu,"
			    "\"seconds\":%.6f,\"msgs_per_s\":%.1f,",
			    r->t->name, c->size, (unsigned long long)c->count,
			    secs, rate);
			print_lat(lat, nlat, json);
			printf(",\"quantiles\":[");
			for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
				printf("%s[%s,%.3f]", i ? "," : "", qname[i],
				    qb_pct(lat, nlat, qs[i]) / 1e3);
			}
			printf("],\"verified\":true}\n");
		} else {
			printf("%s pingpong %zu B: %llu round trips in %.3f s "
			       "= %.0f/s; round trip us: ",
			    r->t->name, c->size, (unsigned long long)c->count,
			    secs, rate);
			print_lat(lat, nlat, json);
			printf(" (verified)\n");
		}
	} else {
		const char *wl =
		    c->workload == QB_DURABLE ? "durable" : "stream";
		double mbs;

		secs = (double)(recv->t_end - start) / 1e9;
		rate = (double)recv->msgs / secs;
		mbs = (double)recv->msgs * (double)c->size / secs / 1e6;
		if (json) {
			printf("{\"transport\":\"%s\",\"workload\":\"%s\","
			       "\"size\":%zu,\"producers\":%u,\"msgs\":%llu,"
			       "\"seconds\":%.6f,\"msgs_per_s\":%.1f,"
			       "\"mb_per_s\":%.3f",
			    r->t->name, wl, c->size, c->producers,
			    (unsigned long long)recv->msgs, secs, rate, mbs);
			if (c->workload == QB_DURABLE) {
				printf(",");
				print_lat(lat, nlat, json);
			}
			printf(",\"verified\":true}\n");
		} else {
			printf("%s %s %zu B x%u: %llu msgs in %.3f s = %.0f "
			       "msgs/s, %.1f MB/s",
			    r->t->name, wl, c->size, c->producers,
			    (unsigned long long)recv->msgs, secs, rate, mbs);
			if (c->workload == QB_DURABLE) {
				printf("; ack us: ");
				print_lat(lat, nlat, json);
			}
			printf(" (verified)\n");
		}
	}
	free(lat);
	fflush(stdout);
	return 0;
}

static int
spawn(struct run *r, struct child *k, int selfpipe[2])
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) != 0) {
		return qb_fail("pipe", -errno);
	}
	k->pid = fork();
	if (k->pid < 0) {
		int e = -errno;
		close(p[0]);
		close(p[1]);
		return qb_fail("fork", e);
	}
	if (k->pid == 0) {
		close(p[0]);
		child_main(r, k, p[1], selfpipe);
	}
	close(p[1]);
	k->rep_fd = p[0];
	fcntl(k->rep_fd, F_SETFL, O_NONBLOCK);
	/* The first child leads the group the watchdog kills; both sides
	 * set it, so that it holds whichever runs first. */
	if (r->pgid == 0) {
		r->pgid = k->pid;
	}
	setpgid(k->pid, r->pgid);
	return 0;
}

int
qb_run(struct qb_cfg *c, const struct qb_transport *t, int json)
{
	struct run r;
	struct child kids[2 + QB_PRODUCERS_MAX];
	struct sigaction old[NCAUGHT];
	char dir[PATH_MAX];
	int selfpipe[2] = { -1, -1 };
	const char *corrupt = getenv("QBENCH_CORRUPT");
	uint64_t deadline;
	int rc = -1;

	memset(&r, 0, sizeof r);
	memset(kids, 0, sizeof kids);
	r.c = c;
	r.t = t;
	c->variant = t->variant;
	r.kids = kids;
	r.parent = getpid();
	r.ready[0] = r.ready[1] = r.go[0] = r.go[1] = -1;
	r.nchan = c->workload == QB_PINGPONG ? 2 : 1;
	r.cap = qb_max_size(t) > c->size ? qb_max_size(t) : c->size;
	if (corrupt != NULL && corrupt[0] != '\0') {
		char *end;
		errno = 0;
		r.corrupt_at = strtoull(corrupt, &end, 10);
		if (errno != 0 || *end != '\0' || corrupt[0] == '-') {
			fprintf(stderr,
			    "qbench: QBENCH_CORRUPT=%s: want a message number "
			    "(1 = the first)\n",
			    corrupt);
			return QB_EXIT_USAGE;
		}
	}
	if (make_dir_tag(c, dir, sizeof dir) != 0) {
		return QB_EXIT_FAIL;
	}
	for (int id = 0; id < r.nchan; id++) {
		if (t->prepare == NULL) {
			r.prepared[id] = 1;
			continue;
		}
		int e = t->prepare(c, id, &r.state[id]);
		if (e < 0) {
			char what[64];
			snprintf(what, sizeof what, "%s: prepare channel %d",
			    t->name, id);
			qb_fail(what, e);
			goto cleanup;
		}
		r.prepared[id] = 1;
	}

	/* Handlers only now: whatever prepare() forked (a persister) keeps
	 * the default dispositions. */
	if (pipe2(selfpipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    pipe2(r.ready, O_CLOEXEC) != 0 || pipe2(r.go, O_CLOEXEC) != 0) {
		qb_fail("pipe", -errno);
		goto cleanup;
	}
	fcntl(r.ready[0], F_SETFL, O_NONBLOCK);
	sig_fd = selfpipe[1];
	signals_catch(old);
	fflush(stdout);
	fflush(stderr);

	if (c->workload == QB_PINGPONG) {
		kids[0].role = R_PONGER;
		kids[1].role = R_PINGER;
		r.nkids = 2;
	} else {
		kids[0].role = R_CONSUMER;
		for (unsigned i = 0; i < c->producers; i++) {
			kids[1 + i].role = R_PRODUCER;
			kids[1 + i].idx = i;
		}
		r.nkids = 1 + c->producers;
	}
	for (unsigned i = 0; i < r.nkids; i++) {
		kids[i].rep_fd = -1;
	}
	deadline = qb_now_ns() +
	    (uint64_t)(1e9 *
	        (c->workload == QB_PINGPONG
	                ? QB_WATCHDOG_PINGPONG_S
	                : c->duration_s + QB_WATCHDOG_STREAM_S));
	rc = 0;
	for (unsigned i = 0; i < r.nkids; i++) {
		rc = spawn(&r, &kids[i], selfpipe);
		if (rc != 0) {
			/* Supervise only the ones that exist. */
			r.nkids = i;
			break;
		}
	}
	close(r.ready[1]);
	r.ready[1] = -1;
	close(r.go[0]);
	r.go[0] = -1;
	if (rc != 0) {
		kill_all(&r);
	}
	if (supervise(&r, selfpipe, deadline) != 0) {
		rc = -1;
	}
	signals_restore(old);

cleanup:
	for (int id = 0; id < r.nchan; id++) {
		if (r.prepared[id] && t->cleanup != NULL) {
			t->cleanup(c, id, r.state[id]);
		}
	}
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	for (int i = 0; i < 2; i++) {
		if (r.ready[i] >= 0) {
			close(r.ready[i]);
		}
		if (r.go[i] >= 0) {
			close(r.go[i]);
		}
		if (selfpipe[i] >= 0) {
			close(selfpipe[i]);
		}
	}
	sig_fd = -1;
	if (rc == 0) {
		rc = report_figures(&r, json);
	}
	for (unsigned i = 0; i < r.nkids; i++) {
		free(kids[i].rep);
		if (kids[i].rep_fd >= 0) {
			close(kids[i].rep_fd);
		}
	}
	if (rc != 0) {
		fprintf(stderr, "qbench: %s %s: run failed, no figures\n",
		    t->name,
		    c->workload == QB_PINGPONG
		        ? "pingpong"
		        : (c->workload == QB_DURABLE ? "durable" : "stream"));
		return QB_EXIT_FAIL;
	}
	return QB_EXIT_OK;
}
