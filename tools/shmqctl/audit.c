/*
 * audit.c — the audit log HOME/audit/skipped.log: where it is, how an
 * entry is appended, how the log is read back.
 *
 * The log lives in the home, next to topics/ and data/, so it outlives
 * the rings in /dev/shm and a reboot.  It is created like the
 * instance's other files: not through a symlink, mode 0600, or 0660
 * when the home is shared with a group (home mode 0770), and an
 * existing log must be a regular file no wider than that.
 *
 * Appending: O_APPEND, an exclusive flock (two resets at once get two
 * ids and whole lines), the highest id read back, one write of every
 * line, fsync; and fsync of the directory that got a new name.  A last
 * line without its newline (a crash in the middle of a write) is ended
 * first, so a new entry is never glued to a torn one.  Readers take a
 * shared flock, so they never see half an append.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"

#define AUDIT_DIR "audit"
#define AUDIT_FILE "skipped.log"

const char *
audit_kind_name(int kind)
{
	switch (kind) {
	case AUDIT_SKIP:
		return "skip";
	case AUDIT_REPLAY:
		return "replay";
	case AUDIT_VOID:
		return "void";
	case AUDIT_REPLAYED:
		return "replayed";
	default:
		return "unknown";
	}
}

const char *
audit_fmt_time(char *buf, size_t cap, int64_t ns)
{
	int64_t sec = ns / 1000000000, frac = ns % 1000000000;
	time_t t;
	struct tm tm;
	size_t n;

	if (frac < 0) {
		frac += 1000000000;
		sec--;
	}
	t = (time_t)sec;
	if (gmtime_r(&t, &tm) == NULL ||
	    (n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
		snprintf(buf, cap, "%lld", (long long)ns);
		return buf;
	}
	snprintf(buf + n, cap - n, ".%03dZ", (int)(frac / 1000000));
	return buf;
}

/* HOME/audit and HOME/audit/skipped.log; the modes for them. */
static int
audit_where(struct ctl *ctl, char *dir, char *path, size_t cap, mode_t *dmode,
    mode_t *fmode)
{
	const char *home = shmq_home(ctl->q);
	struct stat st;

	if (stat(home, &st) != 0) {
		return -errno;
	}
	/* A group-shared instance (home 0770) makes its files 0660. */
	*dmode = (st.st_mode & 0070) != 0 ? 0770 : 0700;
	*fmode = (st.st_mode & 0070) != 0 ? 0660 : 0600;
	if ((size_t)snprintf(dir, cap, "%s/%s", home, AUDIT_DIR) >= cap ||
	    (size_t)snprintf(path, cap, "%s/%s", dir, AUDIT_FILE) >= cap) {
		return -ENAMETOOLONG;
	}
	return 0;
}

static int
audit_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0) {
		return -errno;
	}
	if (fsync(fd) != 0) {
		rc = -errno;
	}
	close(fd);
	return rc;
}

/* Make HOME/audit if missing (then its name is flushed in HOME). */
static int
audit_mkdir(const char *dir, mode_t mode)
{
	struct stat st;

	if (mkdir(dir, mode) == 0) {
		char *home = strdup(dir);
		int rc;

		/* mkdir's mode passes through the umask. */
		if (home == NULL || chmod(dir, mode) != 0) {
			free(home);
			return home == NULL ? -ENOMEM : -errno;
		}
		*strrchr(home, '/') = '\0';
		rc = audit_fsync_dir(home);
		free(home);
		return rc;
	}
	if (errno != EEXIST) {
		return -errno;
	}
	if (lstat(dir, &st) != 0) {
		return -errno;
	}
	if (!S_ISDIR(st.st_mode) || (st.st_mode & 0002) != 0) {
		return -EPERM;
	}
	return 0;
}

/* The whole file, NUL-terminated (*buf is malloc'd). */
static int
audit_slurp(int fd, char **buf, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap), *nb;
	ssize_t got;

	while (b != NULL) {
		if (n + 1 == cap) {
			if ((nb = realloc(b, 2 * cap)) == NULL) {
				break;
			}
			b = nb;
			cap *= 2;
		}
		got = pread(fd, b + n, cap - n - 1, (off_t)n);
		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got < 0) {
			int rc = -errno;

			free(b);
			return rc;
		}
		if (got == 0) {
			b[n] = '\0';
			*buf = b;
			*len = n;
			return 0;
		}
		n += (size_t)got;
	}
	free(b);
	return -ENOMEM;
}

/* Call fn for every line of buf (without its newline), numbered from
 * 1; stops at fn's nonzero result. */
typedef int audit_line_fn(const char *s, size_t n, unsigned no, void *arg);

static int
audit_lines(const char *buf, size_t len, audit_line_fn *fn, void *arg)
{
	const char *s = buf, *end = buf + len, *nl;
	unsigned no = 0;
	int rc;

	while (s < end) {
		nl = memchr(s, '\n', (size_t)(end - s));
		if (nl == NULL) {
			nl = end;
		}
		if ((rc = fn(s, (size_t)(nl - s), ++no, arg)) != 0) {
			return rc;
		}
		s = nl + 1;
	}
	return 0;
}

static int
audit_max_id(const char *s, size_t n, unsigned no, void *arg)
{
	struct audit_entry e;
	const char *why;

	(void)no;
	/* A bad line cannot be trusted for its id either; the reader
	 * reports it. */
	if (audit_parse(s, n, &e, &why) == 0 && e.id > *(uint64_t *)arg) {
		*(uint64_t *)arg = e.id;
	}
	return 0;
}

static int
audit_write_all(int fd, const char *s, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, s, n);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w < 0) {
			return -errno;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The text to append: a newline ending a torn last line, if any, then
 * one line per entry. */
static int
audit_render(
    struct audit_entry *e, size_t n, int torn, char **out, size_t *outlen)
{
	FILE *f;
	char *line;
	size_t len, i;
	int rc = 0;

	if ((f = open_memstream(out, outlen)) == NULL) {
		return -errno;
	}
	if (torn) {
		fputc('\n', f);
	}
	for (i = 0; rc == 0 && i < n; i++) {
		if ((rc = audit_format(&e[i], &line, &len)) == 0) {
			fwrite(line, 1, len, f);
			free(line);
		}
	}
	if (fclose(f) != 0 && rc == 0) {
		rc = -ENOMEM;
	}
	if (rc != 0) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

static int
audit_open_append(const char *path, mode_t mode, int *created)
{
	const int flags = O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC;
	struct stat st;
	int fd;

	*created = 0;
	fd = open(path, flags | O_CREAT | O_EXCL, mode);
	if (fd >= 0) {
		*created = 1;
		/* open's mode passes through the umask. */
		if (fchmod(fd, mode) != 0) {
			int rc = -errno;

			close(fd);
			return rc;
		}
		return fd;
	}
	if (errno != EEXIST || (fd = open(path, flags)) < 0) {
		return -errno;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 0777 & ~mode) != 0) {
		close(fd);
		return -EPERM; /* not ours to write, or readable by others */
	}
	return fd;
}

/* Under the lock: number the entries, append them, flush. */
static int
audit_append_locked(int fd, struct audit_entry *e, size_t n, uint64_t *id)
{
	char *buf = NULL, *out = NULL;
	size_t len = 0, outlen = 0, i;
	uint64_t max = 0;
	int rc;

	if ((rc = audit_slurp(fd, &buf, &len)) != 0) {
		return rc;
	}
	if (*id == 0) {
		audit_lines(buf, len, audit_max_id, &max);
		*id = max + 1;
	}
	for (i = 0; i < n; i++) {
		e[i].id = *id;
	}
	rc =
	    audit_render(e, n, len > 0 && buf[len - 1] != '\n', &out, &outlen);
	if (rc == 0) {
		rc = audit_write_all(fd, out, outlen);
	}
	/* The entry is the record of a skip: it must survive a crash
	 * that the skip itself survives. */
	if (rc == 0 && fsync(fd) != 0) {
		rc = -errno;
	}
	free(out);
	free(buf);
	return rc;
}

int
audit_append(struct ctl *ctl, struct audit_entry *e, size_t n, uint64_t *id,
    char *path, size_t cap)
{
	char dir[PATH_MAX];
	mode_t dmode, fmode;
	int fd, created, rc;

	rc = audit_where(ctl, dir, path, cap < sizeof(dir) ? cap : sizeof(dir),
	    &dmode, &fmode);
	if (rc != 0 || (rc = audit_mkdir(dir, dmode)) != 0) {
		return rc;
	}
	if ((fd = audit_open_append(path, fmode, &created)) < 0) {
		return fd;
	}
	if (flock(fd, LOCK_EX) != 0) {
		rc = -errno;
	} else {
		rc = audit_append_locked(fd, e, n, id);
	}
	if (rc == 0 && created) {
		rc = audit_fsync_dir(dir); /* the new name, too */
	}
	close(fd);
	return rc;
}

/* ---- reading ------------------------------------------------------------ */

struct audit_reader {
	struct audit_log *log;
	struct audit_entry *voids;
	size_t nvoids;
};

static int
audit_push(struct audit_entry **v, size_t *n, const struct audit_entry *e)
{
	struct audit_entry *nv;

	/* Grow at powers of two. */
	if ((*n & (*n - 1)) == 0) {
		nv = realloc(*v, (*n ? 2 * *n : 1) * sizeof(**v));
		if (nv == NULL) {
			return -ENOMEM;
		}
		*v = nv;
	}
	(*v)[(*n)++] = *e;
	return 0;
}

static int
audit_take(const char *s, size_t n, unsigned no, void *arg)
{
	struct audit_reader *rd = arg;
	struct audit_entry e;
	const char *why;

	if (n == 0) {
		return 0; /* an empty line holds nothing to lose */
	}
	if (audit_parse(s, n, &e, &why) != 0) {
		ctl_note("%s:%u: bad entry (%s); line skipped", rd->log->path,
		    no, why);
		rd->log->bad++;
		return 0;
	}
	e.line = no;
	e.applied = 1;
	if (e.kind == AUDIT_VOID) {
		return audit_push(&rd->voids, &rd->nvoids, &e);
	}
	return audit_push(&rd->log->e, &rd->log->n, &e);
}

/* Entries named by a void line did not happen. */
static void
audit_fold_voids(struct audit_log *log, const struct audit_entry *v, size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		for (k = 0; k < log->n; k++) {
			if (log->e[k].kind != AUDIT_REPLAYED &&
			    log->e[k].id == v[i].id &&
			    log->e[k].partition == v[i].partition) {
				log->e[k].applied = 0;
			}
		}
	}
}

int
audit_read(struct ctl *ctl, struct audit_log *log)
{
	struct audit_reader rd = { log, NULL, 0 };
	char dir[PATH_MAX], *buf = NULL;
	mode_t dmode, fmode;
	size_t len = 0;
	int fd, rc;

	memset(log, 0, sizeof(*log));
	rc = audit_where(
	    ctl, dir, log->path, sizeof(log->path), &dmode, &fmode);
	if (rc != 0) {
		return ctl_fail(rc, "audit log of %s", shmq_home(ctl->q));
	}
	fd = open(log->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		return 0; /* nothing was ever reset */
	}
	if (fd < 0) {
		return ctl_fail(-errno, "%s", log->path);
	}
	if (flock(fd, LOCK_SH) != 0 ||
	    (rc = audit_slurp(fd, &buf, &len)) != 0) {
		rc = rc != 0 ? rc : -errno;
		close(fd);
		return ctl_fail(rc, "%s", log->path);
	}
	close(fd);
	rc = audit_lines(buf, len, audit_take, &rd);
	free(buf);
	audit_fold_voids(log, rd.voids, rd.nvoids);
	free(rd.voids);
	if (rc != 0) {
		audit_log_fini(log);
		return ctl_fail(rc, "%s", log->path);
	}
	return 0;
}

int
audit_topic_id(struct ctl *ctl, const char *topic, uint64_t *id)
{
	char path[PATH_MAX], buf[1024], *s, *end;
	ssize_t n;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/topics/%s.topic",
	        shmq_home(ctl->q), topic) >= sizeof(path)) {
		return -ENAMETOOLONG;
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		return -errno;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		return -errno;
	}
	buf[n] = '\0';
	/* "version=1\nid=<16 hex digits>\n...": the library writes the
	 * file whole (temp file, rename), so it is never half there. */
	s = strstr(buf, "\nid=");
	if (s == NULL) {
		return -EINVAL;
	}
	*id = strtoull(s + 4, &end, 16);
	return end != s + 4 + 16 || *end != '\n' || *id == 0 ? -EINVAL : 0;
}

void
audit_log_fini(struct audit_log *log)
{
	free(log->e);
	log->e = NULL;
	log->n = 0;
}
