/*
 * config.h — the replicator's configuration file.
 */
#ifndef REPL_CONFIG_H
#define REPL_CONFIG_H

#include <stddef.h>

/* --poll-ms and poll_ms: 1 ms .. 10 s. */
#define CONFIG_POLL_MS_MIN 1
#define CONFIG_POLL_MS_MAX 10000
/* 50 ms: a stop or reload is seen within a blink, and an idle daemon
 * wakes 20 times a second. */
#define CONFIG_POLL_MS_DEFAULT 50

struct config {
	int log_level; /* SHMQ_LOG_*, or -1: not set */
	int poll_ms; /* or -1: not set */
};

/* Both fields unset. */
void config_init(struct config *cfg);

/* Parse the poll interval in ms: 0 or -1 (not a number, out of range). */
int config_parse_poll_ms(const char *s, int *ms);

/*
 * Read `path` into *cfg (which is changed only on success).  On failure
 * returns -1 and puts "path:line: why" (or "path: why") into err.
 */
int config_load(
    const char *path, struct config *cfg, char *err, size_t errlen);

#endif
