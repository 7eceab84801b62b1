/*
 * notify.c — tell systemd about readiness, reloads and stopping.
 *
 * The protocol (sd_notify(3), declared stable by systemd): send one
 * datagram of newline-separated VAR=value assignments to the AF_UNIX
 * socket named by $NOTIFY_SOCKET.  A name starting with '@' is in the
 * abstract namespace: the '@' becomes a NUL byte and the address length
 * covers exactly the name, with no terminator.  Written here rather
 * than linking libsystemd for one function (ecosystem.md §4.2).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"

/* Fill `sa` and `*len` from $NOTIFY_SOCKET: 0, or -EINVAL. */
static int
notify_addr(const char *name, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n = strlen(name);

	if ((name[0] != '/' && name[0] != '@') || n < 2 ||
	    n > sizeof(sa->sun_path)) {
		return -EINVAL;
	}
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, name, n);
	if (name[0] == '@') {
		sa->sun_path[0] = '\0';
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		if (n == sizeof(sa->sun_path)) {
			return -EINVAL; /* no room for the terminator */
		}
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
		    1);
	}
	return 0;
}

int
notify_send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t len;
	ssize_t w;
	int fd, rc;

	if (name == NULL || name[0] == '\0') {
		return 0;
	}
	if ((rc = notify_addr(name, &sa, &len)) != 0) {
		return rc;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -errno;
	}
	rc = 0;
	w = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (const struct sockaddr *)&sa, len);
	if (w < 0) {
		rc = -errno;
	} else if ((size_t)w != strlen(state)) {
		rc = -EPROTO; /* a datagram is never cut; be safe */
	}
	close(fd);
	return rc;
}

int
notify_reloading(void)
{
	struct timespec ts;
	char msg[64];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ull +
	        (unsigned long long)ts.tv_nsec / 1000ull);
	return notify_send(msg);
}

uint64_t
notify_watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	unsigned long long v;
	char *end;

	if (usec == NULL || usec[0] == '\0') {
		return 0;
	}
	/* WATCHDOG_PID, when set, says whom the interval is for. */
	if (pid != NULL && strtol(pid, NULL, 10) != (long)getpid()) {
		return 0;
	}
	errno = 0;
	v = strtoull(usec, &end, 10);
	if (errno != 0 || *end != '\0') {
		return 0;
	}
	return v;
}
