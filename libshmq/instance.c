/*
 * instance.c — attaching to an instance: one home directory (persistent:
 * the instance id and topic metadata) and one shm directory on tmpfs
 * (rings and group state, which a reboot wipes).
 *
 * The instance id is random and written once (temp file + link, so two
 * processes attaching for the first time at once agree on one id).  It
 * names the default shm directory and is stamped in every ring, so a
 * ring left by another instance is never mistaken for ours.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define HOME_DEFAULT "shmq-home"
#define SHM_ROOT "/dev/shm"
#define ID_FILE "instance.id"
#define RECLAIM_MS_DEFAULT 100u
#define RECLAIM_MS_MAX 1000u
#define STALL_MS_DEFAULT 10000u

/*
 * fork(): a child shares its parent's open file descriptions, and OFD
 * locks belong to those, so a child that kept its copies would keep a
 * dead parent's client slots, group memberships and gates alive.  The
 * mappings (which hold the files open too) are not inherited
 * (MADV_DONTFORK, shm_linux.c); this child handler closes the child's
 * descriptors (no unlock: the locks stay the parent's) and clears the
 * handles, so that the child can still close its inherited handles, as
 * shmq.h allows, which then frees only memory.
 */
/* Recursive: held across whole opens (which take it again, through the
 * instance lock), so that fork() never lands between taking an fd that
 * holds a lock and linking it where the child handler can find it. */
static pthread_mutex_t registry_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;
static shmq_t *registry;

static void
fork_prepare(void)
{
	pthread_mutex_lock(&registry_lock);
	for (shmq_t *q = registry; q != NULL; q = q->reg_next) {
		pthread_mutex_lock(&q->lock);
	}
}

static void
fork_parent(void)
{
	for (shmq_t *q = registry; q != NULL; q = q->reg_next) {
		pthread_mutex_unlock(&q->lock);
	}
	pthread_mutex_unlock(&registry_lock);
}

static void
forget_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* The mappings were not inherited (MADV_DONTFORK): forget them too. */
static void
forget_ring(struct ring *r)
{
	forget_fd(&r->fd);
	r->hdr = NULL;
	r->data = NULL;
	r->index = NULL;
}

static void
fork_child(void)
{
	for (shmq_t *q = registry; q != NULL; q = q->reg_next) {
		for (shmq_producer_t *p = q->producers; p; p = p->next) {
			for (uint32_t i = 0; i < p->nrings; i++) {
				forget_ring(&p->rings[i]);
			}
		}
		for (shmq_consumer_t *c = q->consumers; c; c = c->next) {
			for (uint32_t i = 0; i < c->nparts; i++) {
				forget_ring(&c->rings[i]);
			}
			forget_fd(&c->group.fd);
			c->group.hdr = NULL;
		}
		/* The child's thread is not the one that locked it in
		 * fork_prepare: start the mutexes afresh, do not unlock. */
		pthread_mutex_init(&q->lock, NULL);
	}
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&registry_lock, &a);
	pthread_mutexattr_destroy(&a);
}

void
shmqi_fork_guard_enter(void)
{
	pthread_mutex_lock(&registry_lock);
}

void
shmqi_fork_guard_exit(void)
{
	pthread_mutex_unlock(&registry_lock);
}

static void
registry_init(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void
registry_add(shmq_t *q)
{
	pthread_once(&registry_once, registry_init);
	pthread_mutex_lock(&registry_lock);
	q->reg_next = registry;
	registry = q;
	pthread_mutex_unlock(&registry_lock);
}

static void
registry_remove(shmq_t *q)
{
	pthread_mutex_lock(&registry_lock);
	for (shmq_t **pp = &registry; *pp != NULL; pp = &(*pp)->reg_next) {
		if (*pp == q) {
			*pp = q->reg_next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
}

void
shmq_options_init(shmq_options_t *o)
{
	if (o == NULL) {
		return;
	}
	memset(o, 0, sizeof *o);
	o->size = sizeof *o;
	o->mode = 0600;
	o->create = 1;
	o->reclaim_ms = RECLAIM_MS_DEFAULT;
	o->stall_ms = STALL_MS_DEFAULT;
}

bool
shmqi_name_valid(const char *name)
{
	size_t n = 0;
	if (name == NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0) {
		return false;
	}
	for (const char *p = name; *p != '\0'; p++, n++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok || n >= SHMQ_NAME_MAX) {
			return false;
		}
	}
	return n > 0;
}

bool
shmqi_is_owner(const shmq_t *q)
{
	return getpid() == q->pid;
}

uint64_t
shmqi_random64(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v || v == 0) {
		/* Never 0: 0 means "no id" in gates. */
		v ^= (uint64_t)shmqi_mono_ns() * 0x9e3779b97f4a7c15ull | 1u;
	}
	return v;
}

static int fmt_path(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fmt_path(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	return (w < 0 || (size_t)w >= cap) ? -ENAMETOOLONG : 0;
}

int
shmqi_topic_path(const shmq_t *q, const char *topic, char *buf, size_t cap)
{
	return fmt_path(buf, cap, "%s/topics/%s.topic", q->home, topic);
}

int
shmqi_ring_path(
    const shmq_t *q, const char *topic, uint32_t part, char *buf, size_t cap)
{
	return fmt_path(
	    buf, cap, "%s/%s.%u.ring", q->shm_dir, topic, (unsigned)part);
}

int
shmqi_group_path(const shmq_t *q, const char *group, const char *topic,
    char *buf, size_t cap)
{
	/* '@' cannot occur in names, so the split is unambiguous. */
	return fmt_path(buf, cap, "%s/%s@%s.group", q->shm_dir, group, topic);
}

/* mkdir that accepts an existing directory if it is ours and no wider
 * than `mode`. */
static int
ensure_dir(const char *path, unsigned mode, bool create)
{
	struct stat st;
	if (create) {
		if (mkdir(path, mode) == 0) {
			/* mkdir's mode passes through the umask. */
			if (chmod(path, mode) != 0) {
				return -errno;
			}
		} else if (errno != EEXIST) {
			return -errno;
		}
	}
	if (lstat(path, &st) != 0) {
		return -errno;
	}
	if (!S_ISDIR(st.st_mode) || !shmqi_ours(&st, mode)) {
		return -EPERM;
	}
	if ((st.st_mode & 0022 & ~mode) != 0) {
		return -EACCES; /* writable by others: not safe to use */
	}
	return 0;
}

static int
parse_id(const char *s, uint64_t *id)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 16);
	if (errno != 0 || end != s + 16 || (*end != '\n' && *end != '\0') ||
	    v == 0) {
		return SHMQ_ECORRUPT;
	}
	*id = v;
	return 0;
}

/* Publish a new id with link(): unlike rename it fails if the name
 * exists, so of two first attachers racing, both end up with the id of
 * whichever linked first. */
static int
publish_id(const shmq_t *q, const char *path)
{
	char tmp[SHMQ_PATH_MAX], buf[32];
	int rc = fmt_path(
	    tmp, sizeof tmp, "%s/.%s.%d", q->home, ID_FILE, (int)getpid());
	if (rc != 0) {
		return rc;
	}
	int len = snprintf(buf, sizeof buf, "%016llx\n",
	    (unsigned long long)shmqi_random64());
	unlink(tmp);
	int fd =
	    open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	        q->mode & 0666);
	if (fd < 0) {
		return -errno;
	}
	rc = fchmod(fd, q->mode & 0666) == 0 &&
	        write(fd, buf, (size_t)len) == len && fsync(fd) == 0
	    ? 0
	    : -EIO;
	close(fd);
	if (rc == 0 && link(tmp, path) != 0 && errno != EEXIST) {
		rc = -errno;
	}
	unlink(tmp);
	return rc;
}

static int
load_or_make_id(shmq_t *q)
{
	char path[SHMQ_PATH_MAX], buf[64];
	int rc = fmt_path(path, sizeof path, "%s/%s", q->home, ID_FILE);

	for (int attempt = 0; rc == 0 && attempt < 2; attempt++) {
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof buf - 1);
			close(fd);
			buf[n > 0 ? n : 0] = '\0';
			return parse_id(buf, &q->instance_id);
		}
		if (errno != ENOENT) {
			return -errno;
		}
		rc = publish_id(q, path);
	}
	return rc != 0 ? rc : SHMQ_ECORRUPT;
}

int
shmq_attach(const char *home, const shmq_options_t *opts, shmq_t **out)
{
	shmq_options_t o;
	char topics[SHMQ_PATH_MAX];
	int rc;

	if (out == NULL) {
		return -EINVAL;
	}
	*out = NULL;
	shmq_options_init(&o);
	if (opts != NULL) {
		if (opts->size < sizeof(size_t) || opts->size > sizeof o) {
			return -EINVAL;
		}
		memcpy(&o, opts, opts->size);
	}
	if ((o.mode != 0600 && o.mode != 0660) ||
	    o.reclaim_ms > RECLAIM_MS_MAX) {
		return -EINVAL;
	}
	if (home != NULL && home[0] == '\0') {
		return -EINVAL; /* "" is a mistake, not a request */
	}
	if (home == NULL) {
		home = getenv("SHMQ_HOME");
	}
	if (home == NULL || home[0] == '\0') {
		home = HOME_DEFAULT;
	}
	shmq_t *q = calloc(1, sizeof *q);
	if (q == NULL) {
		return -ENOMEM;
	}
	q->mode = o.mode;
	q->pid = getpid();
	q->reclaim_ms = o.reclaim_ms == 0 ? RECLAIM_MS_DEFAULT : o.reclaim_ms;
	q->stall_ms = o.stall_ms;
	pthread_mutex_init(&q->lock, NULL);
	unsigned dmode = o.mode == 0660 ? 0770 : 0700;

	if ((rc = ensure_dir(home, dmode, o.create != 0)) != 0) {
		goto fail;
	}
	char real[PATH_MAX];
	if (realpath(home, real) == NULL) {
		rc = -errno;
		goto fail;
	}
	if ((rc = fmt_path(q->home, sizeof q->home, "%s", real)) != 0) {
		goto fail;
	}
	if ((rc = fmt_path(topics, sizeof topics, "%s/topics", q->home)) !=
	        0 ||
	    (rc = ensure_dir(topics, dmode, true)) != 0 ||
	    (rc = load_or_make_id(q)) != 0) {
		goto fail;
	}
	(void)shmqi_read_boot_id(q->boot_id);
	if (o.shm_dir != NULL) {
		rc = fmt_path(q->shm_dir, sizeof q->shm_dir, "%s", o.shm_dir);
	} else {
		rc = fmt_path(q->shm_dir, sizeof q->shm_dir, "%s/shmq-%016llx",
		    SHM_ROOT, (unsigned long long)q->instance_id);
	}
	if (rc != 0 || (rc = ensure_dir(q->shm_dir, dmode, true)) != 0) {
		goto fail;
	}
	registry_add(q);
	*out = q;
	return 0;
fail:
	shmq_detach(q);
	return rc;
}

void
shmq_detach(shmq_t *q)
{
	if (q == NULL) {
		return;
	}
	registry_remove(q);
	while (q->producers != NULL) {
		shmq_producer_close(q->producers);
	}
	while (q->consumers != NULL) {
		shmq_consumer_close(q->consumers);
	}
	pthread_mutex_destroy(&q->lock);
	free(q);
}

int
shmqi_instance_lock(const shmq_t *q)
{
	char path[SHMQ_PATH_MAX];
	int rc = fmt_path(path, sizeof path, "%s/.lock", q->shm_dir);
	if (rc != 0) {
		return rc;
	}
	shmqi_fork_guard_enter();
	int fd =
	    open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, q->mode);
	if (fd < 0) {
		rc = -errno;
	} else if ((rc = shmqi_lock_byte_wait(fd, 0)) != 0) {
		close(fd);
	} else {
		(void)fchmod(fd, q->mode); /* best effort: only a lock file */
	}
	if (rc != 0) {
		shmqi_fork_guard_exit();
		return rc;
	}
	return fd;
}

void
shmqi_instance_unlock(int fd)
{
	if (fd >= 0) {
		close(fd); /* releases the OFD lock */
		shmqi_fork_guard_exit();
	}
}

const char *
shmq_home(const shmq_t *q)
{
	return q == NULL ? NULL : q->home;
}

const char *
shmq_shm_dir(const shmq_t *q)
{
	return q == NULL ? NULL : q->shm_dir;
}
