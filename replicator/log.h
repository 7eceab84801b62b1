/*
 * log.h — the replicator's logger: one line per message on stderr.
 */
#ifndef REPL_LOG_H
#define REPL_LOG_H

#include "shmq.h"

/* Levels are the library's (enum shmq_log), so the persister's
 * messages need no mapping. */

/* Look at stderr once: is it the journal ($JOURNAL_STREAM)? */
void log_init(void);

/* Messages above `level` are dropped. */
void log_set_level(int level);
int log_get_level(void);

/* "error", "warn", "info", "debug" <-> SHMQ_LOG_*; parse returns -1
 * for anything else. */
int log_level_parse(const char *s, int *level);
const char *log_level_name(int level);

/* One log line: "<time> <level>: <message>", or "<N><message>" when
 * stderr is the journal (which keeps time and level itself). */
void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A failure that ends the command, in the shape of a command-line
 * error: "shmq-replicator: <message>", never filtered. */
void log_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The persister's log callback (shmq_persister_open). */
void log_from_lib(int level, const char *msg, void *arg);

#endif
