/*
 * notify.h — the sd_notify(3) protocol, without libsystemd.
 */
#ifndef REPL_NOTIFY_H
#define REPL_NOTIFY_H

#include <stdint.h>

/* Send `state` ("READY=1", ...) to $NOTIFY_SOCKET.  0 when sent or
 * when the variable is not set (not run by systemd), else -errno. */
int notify_send(const char *state);

/* "RELOADING=1" with MONOTONIC_USEC, as systemd >= 253 wants it (older
 * ones ignore the extra field). */
int notify_reloading(void);

/* The watchdog interval systemd asked for ($WATCHDOG_USEC, for this
 * pid), or 0 when there is none. */
uint64_t notify_watchdog_usec(void);

#endif
