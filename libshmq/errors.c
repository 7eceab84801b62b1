/*
 * errors.c — shmq_strerror: one static string for 0, every -errno and
 * every SHMQ_E* code; never NULL (LMDB's superset-of-strerror idea).
 */
#include <string.h>

#include "internal.h"

static const struct {
	int code;
	const char *text;
} shmq_errors[] = {
	{ SHMQ_ECORRUPT, "shared memory or file is corrupt" },
	{ SHMQ_EVERSION, "incompatible shmq layout version" },
	{ SHMQ_EFAILED, "partition failed; close and reopen" },
	{ SHMQ_ENOREPLICATOR,
	    "no shmq-replicator is running for this instance (start one "
	    "with: shmq-replicator --home HOME); acks all also needs "
	    "replication, which does not exist yet" },
	{ SHMQ_ELAPPED, "consumer was lapped: records were overwritten" },
	{ SHMQ_EOUTOFRANGE, "offset out of range and reset policy is error" },
	{ SHMQ_ERECLAIMED, "reservation was reclaimed after a stall" },
	{ SHMQ_EDELETED, "topic was deleted" },
	{ SHMQ_ENOTOWNER, "partition not owned by this group member" },
	{ SHMQ_ESTALE, "borrowed record was overwritten" },
	{ SHMQ_EFENCED,
	    "idempotent producer fenced: a newer instance opened with the "
	    "same producer name" },
	{ SHMQ_ESEQUENCE,
	    "sequence out of order: beyond the next one expected for the "
	    "partition" },
	{ SHMQ_EDUPLICATE,
	    "sequence already appended (too old to report its offset); "
	    "nothing appended" },
};

const char *
shmq_strerror(int err)
{
	if (err == 0) {
		return "success";
	}
	for (size_t i = 0; i < sizeof shmq_errors / sizeof shmq_errors[0];
	     i++) {
		if (shmq_errors[i].code == err) {
			return shmq_errors[i].text;
		}
	}
	if (err < 0 && err > SHMQ_ERRBASE) {
		/* strerrordesc_np returns static text and is thread-safe
		 * (glibc >= 2.32), unlike strerror. */
		const char *s = strerrordesc_np(-err);
		if (s != NULL) {
			return s;
		}
	}
	return "unknown error";
}

const char *
shmq_version(void)
{
#define SHMQ_STR2(x) #x
#define SHMQ_STR(x) SHMQ_STR2(x)
	return SHMQ_STR(SHMQ_VERSION_MAJOR) "." SHMQ_STR(
	    SHMQ_VERSION_MINOR) "." SHMQ_STR(SHMQ_VERSION_PATCH);
}
