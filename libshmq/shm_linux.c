/*
 * shm_linux.c — the library's only door to the OS for shared memory:
 * creating, opening and mapping files, OFD locks (liveness), futexes
 * (sleeping), clocks, and atomic metadata writes.
 *
 * Every operation that can fail passes through shmqi_fault_hit(), so a test
 * can make the Nth operation fail — once or from then on — and check that the
 * caller cleans up and reports the error (SQLite's I/O-error loops).
 *
 * Files are created with O_EXCL|O_NOFOLLOW and opened with O_NOFOLLOW,
 * and an opened file must belong to us: /dev/shm is world-writable, so a
 * file someone else planted there is refused, not used.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---- fault injection ------------------------------------------------ */

static _Atomic long fault_nth; /* 0 = off */
static _Atomic long fault_counter; /* operations seen since armed */
static _Atomic int fault_err;
static _Atomic bool fault_persistent;

void
shmqi_fault_set(long nth, int err, bool persistent)
{
	atomic_store(&fault_counter, 0);
	atomic_store(&fault_err, err);
	atomic_store(&fault_persistent, persistent);
	atomic_store(&fault_nth, nth);
}

long
shmqi_fault_count(void)
{
	return atomic_load(&fault_counter);
}

/* Returns 0 or the negative errno the test asked for. */
int
shmqi_fault_hit(void)
{
	long nth = atomic_load_explicit(&fault_nth, memory_order_relaxed);
	if (nth == 0) {
		return 0;
	}
	long n = atomic_fetch_add(&fault_counter, 1) + 1;
	if (n == nth || (n > nth && atomic_load(&fault_persistent))) {
		return atomic_load(&fault_err);
	}
	return 0;
}

/* ---- clocks ------------------------------------------------------------ */

int64_t
shmqi_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
shmqi_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- files and mappings ------------------------------------------------ */

int
shmqi_file_create(const char *path, unsigned mode, uint64_t size, int *fd)
{
	int rc = shmqi_fault_hit();
	*fd = -1;
	if (rc != 0) {
		return rc;
	}
	int f = open(
	    path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (f < 0) {
		return -errno;
	}
	/* The umask must not narrow a group-shared instance (0660). */
	if (fchmod(f, mode) != 0) {
		rc = -errno;
		close(f);
		unlink(path);
		return rc;
	}
	/* Reserve the pages now: on tmpfs a full file system then fails
	 * here with ENOSPC instead of raising SIGBUS on first touch. */
	rc = posix_fallocate(f, 0, (off_t)size);
	if (rc == 0) {
		rc = shmqi_fault_hit();
	} else {
		rc = -rc;
	}
	if (rc != 0) {
		close(f);
		unlink(path);
		return rc;
	}
	*fd = f;
	return 0;
}

bool
shmqi_ours(const struct stat *st, unsigned mode)
{
	/* Ours, or — in a group-shared instance (mode 0660) — our group's:
	 * then other members of the group created it. */
	return st->st_uid == geteuid() ||
	    ((mode & 0060) != 0 && group_member(st->st_gid));
}

int
shmqi_file_open(const char *path, unsigned mode, int *fd, uint64_t *size)
{
	struct stat st;
	int rc = shmqi_fault_hit();
	*fd = -1;
	if (rc != 0) {
		return rc;
	}
	int f = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (f < 0) {
		return -errno;
	}
	if (fstat(f, &st) != 0) {
		rc = -errno;
		close(f);
		return rc;
	}
	/* Owner check: only our own files, and no wider mode than asked. */
	if (!S_ISREG(st.st_mode) || !shmqi_ours(&st, mode) ||
	    (st.st_mode & 0777 & ~mode) != 0) {
		close(f);
		return -EPERM;
	}
	*fd = f;
	*size = (uint64_t)st.st_size;
	return 0;
}

/*
 * Map a file with an inaccessible guard page after it.  Headers and
 * lengths come from shared memory; if a bounds check were ever missed,
 * a read past the end then faults at once instead of quietly reading a
 * neighbouring mapping (which is what the kernel usually puts there).
 */
#define GUARD_LEN 4096u

int
shmqi_map(int fd, size_t len, void **addr)
{
	int rc = shmqi_fault_hit();
	*addr = NULL;
	if (rc != 0) {
		return rc;
	}
	void *area = mmap(NULL, len + GUARD_LEN, PROT_NONE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (area == MAP_FAILED) {
		return -errno;
	}
	void *p = mmap(
	    area, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		munmap(area, len + GUARD_LEN);
		return rc;
	}
	/* A mapping holds its file open, and with it our OFD locks: a
	 * child that inherited it would keep a dead parent "alive".
	 * Children get no copy; they attach on their own. */
	if (madvise(area, len + GUARD_LEN, MADV_DONTFORK) != 0) {
		rc = -errno;
		munmap(area, len + GUARD_LEN);
		return rc;
	}
	*addr = p;
	return 0;
}

void
shmqi_unmap(void *addr, size_t len)
{
	if (addr != NULL) {
		munmap(addr, len + GUARD_LEN);
	}
}

/* ---- OFD locks: liveness without heartbeats ---------------------------- */

/* One byte-range OFD lock operation; *type returns what F_OFD_GETLK
 * found.  OFD locks belong to the open file, not to a thread or a pid. */
static int
ofd(int fd, int cmd, short *type, int64_t byte)
{
	struct flock fl = {
		.l_type = *type,
		.l_whence = SEEK_SET,
		.l_start = byte,
		.l_len = 1,
	};
	while (fcntl(fd, cmd, &fl) != 0) {
		if (errno != EINTR || cmd != F_OFD_SETLKW) {
			return -errno;
		}
	}
	*type = fl.l_type;
	return 0;
}

int
shmqi_lock_byte(int fd, int64_t byte, bool exclusive)
{
	short type = exclusive ? F_WRLCK : F_RDLCK;
	int rc = shmqi_fault_hit();
	if (rc == 0) {
		rc = ofd(fd, F_OFD_SETLK, &type, byte);
	}
	return rc == -EACCES ? -EAGAIN : rc;
}

int
shmqi_lock_byte_wait(int fd, int64_t byte)
{
	short type = F_WRLCK;
	int rc = shmqi_fault_hit();
	return rc != 0 ? rc : ofd(fd, F_OFD_SETLKW, &type, byte);
}

void
shmqi_unlock_byte(int fd, int64_t byte)
{
	short type = F_UNLCK;
	(void)ofd(fd, F_OFD_SETLK, &type, byte);
}

bool
shmqi_lock_held(int fd, int64_t byte)
{
	short type = F_WRLCK;
	/* An error here leaves the answer unknown: say "held", the safe
	 * side, so nothing is reclaimed from a process that may be alive. */
	return ofd(fd, F_OFD_GETLK, &type, byte) != 0 || type != F_UNLCK;
}

/* ---- futexes ------------------------------------------------------------ */

int
shmqi_futex_wait(_Atomic uint32_t *word, uint32_t seen, int ms)
{
	struct timespec ts, *tp = NULL;
	if (ms >= 0) {
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (long)(ms % 1000) * 1000000;
		tp = &ts;
	}
	/* Shared (not FUTEX_PRIVATE): the word lives in a MAP_SHARED file
	 * that other processes wait on too. */
	long rc = syscall(
	    SYS_futex, (uint32_t *)word, FUTEX_WAIT, seen, tp, NULL, 0);
	if (rc != 0) {
		return errno == ETIMEDOUT ? -ETIMEDOUT : 0;
	}
	return 0;
}

void
shmqi_futex_wake(_Atomic uint32_t *word)
{
	(void)syscall(
	    SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

struct waitv_entry { /* struct futex_waitv (Linux 5.16) */
	uint64_t val;
	uint64_t uaddr;
	uint32_t flags;
	uint32_t reserved;
};
#define WAITV_MAX 128
#define WAITV_SIZE_U32 2u /* FUTEX2_SIZE_U32 */

int
shmqi_futex_waitv(
    _Atomic uint32_t **words, const uint32_t *seen, size_t n, int ms)
{
	static _Atomic int have_waitv = 1;
	struct waitv_entry v[WAITV_MAX];
	struct timespec ts, *tp = NULL;

	if (n == 1 || n > WAITV_MAX || !atomic_load(&have_waitv)) {
		/* One word, or no futex_waitv: wait on the first word and
		 * come back soon to look at the others. */
		return shmqi_futex_wait(words[0], seen[0],
		    n == 1 ? ms : (ms < 0 || ms > 1 ? 1 : ms));
	}
	for (size_t i = 0; i < n; i++) {
		v[i].val = seen[i];
		v[i].uaddr = (uint64_t)(uintptr_t)words[i];
		v[i].flags = WAITV_SIZE_U32;
		v[i].reserved = 0;
	}
	if (ms >= 0) {
		/* futex_waitv takes an absolute CLOCK_MONOTONIC timeout. */
		int64_t dl = shmqi_mono_ns() + (int64_t)ms * 1000000;
		ts.tv_sec = dl / 1000000000;
		ts.tv_nsec = dl % 1000000000;
		tp = &ts;
	}
	long rc =
	    syscall(SYS_futex_waitv, v, (unsigned)n, 0, tp, CLOCK_MONOTONIC);
	if (rc < 0 && errno == ENOSYS) {
		atomic_store(&have_waitv, 0);
		return shmqi_futex_wait(words[0], seen[0], 1);
	}
	if (rc < 0 && errno == ETIMEDOUT) {
		return -ETIMEDOUT;
	}
	return 0;
}

/* ---- metadata files ------------------------------------------------------
 */

/*
 * Write name (in the directory dirfd) atomically: temp file, fsync,
 * rename, fsync of the directory (Redis rdbSave).  A crash leaves the
 * old file or the new one, never a mix, and a name that is there after
 * a crash stays there.  The temp name starts with a dot and holds
 * ".tmp.": owners of a directory sweep such leftovers of a crash.
 */
int
shmqi_write_atomic_at(
    int dirfd, const char *name, const void *data, size_t len, unsigned mode)
{
	char tmp[SHMQ_PATH_MAX];
	int rc, fd = -1;

	if (snprintf(tmp, sizeof tmp, ".%s.tmp.%d", name, (int)getpid()) >=
	    (int)sizeof tmp) {
		return -ENAMETOOLONG;
	}
	if ((rc = shmqi_fault_hit()) != 0) {
		return rc;
	}
	unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		return -errno;
	}
	if (fchmod(fd, mode) != 0) { /* as asked, whatever the umask */
		rc = -errno;
		goto fail;
	}
	const char *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t w = write(fd, p, left);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			rc = -errno;
			goto fail;
		}
		p += w;
		left -= (size_t)w;
	}
	/* The data must be on disk before the rename makes it visible. */
	if (fsync(fd) != 0 || (rc = shmqi_fault_hit()) != 0) {
		rc = rc != 0 ? rc : -errno;
		goto fail;
	}
	close(fd);
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) != 0) {
		rc = -errno;
		goto fail;
	}
	/* And the rename itself must survive a crash. */
	return fsync(dirfd) != 0 ? -errno : 0;
fail:
	if (fd >= 0) {
		close(fd);
	}
	unlinkat(dirfd, tmp, 0);
	return rc;
}

int
shmqi_write_file_atomic(const char *dir, const char *name, const void *data,
    size_t len, unsigned mode)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		return -errno;
	}
	int rc = shmqi_write_atomic_at(dfd, name, data, len, mode);
	close(dfd);
	return rc;
}

int
shmqi_read_boot_id(uint8_t id[16])
{
	char buf[64];
	memset(id, 0, 16);
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (f == NULL) {
		return -errno;
	}
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* 36-char UUID: keep the 32 hex digits as 16 bytes. */
	size_t k = 0;
	for (size_t i = 0; i < n && k < 32; i++) {
		char c = buf[i];
		int v = (c >= '0' && c <= '9') ? c - '0'
		    : (c >= 'a' && c <= 'f')   ? c - 'a' + 10
		                               : -1;
		if (v < 0) {
			continue;
		}
		id[k / 2] |= (uint8_t)(k % 2 == 0 ? v << 4 : v);
		k++;
	}
	return 0;
}

int
shmqi_mutex_init_shared(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int rc = pthread_mutexattr_init(&a);
	if (rc != 0) {
		return -rc;
	}
	/* Robust: if a holder dies, the next locker gets EOWNERDEAD and
	 * repairs the state instead of deadlocking. */
	if ((rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) ||
	    (rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) ||
	    (rc = pthread_mutex_init(m, &a))) {
		pthread_mutexattr_destroy(&a);
		return -rc;
	}
	pthread_mutexattr_destroy(&a);
	return 0;
}
