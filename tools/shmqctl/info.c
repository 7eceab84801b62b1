/*
 * info.c — `shmqctl info`: where an instance lives.
 *
 * Operators need to know which directory under /dev/shm holds an
 * instance's rings (to check space, or to clean up after a test); the
 * name is derived from an id stored in the home, so only the library
 * can say.
 */
#include "../common/json.h"
#include "shmqctl.h"

int
info_run(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	struct json j;
	int rc;

	if ((rc = ctl_common_only(ctl, cmd, argc, argv)) >= 0) {
		return rc;
	}
	if ((rc = ctl_no_args(cmd, argc, argv)) != 0 ||
	    (rc = ctl_attach(ctl, 0)) != 0) {
		return rc;
	}
	if (!ctl->json) {
		printf("HOME     %s\nSHM-DIR  %s\nVERSION  %s\n",
		    shmq_home(ctl->q), shmq_shm_dir(ctl->q), shmq_version());
		return CTL_EXIT_OK;
	}
	json_init(&j, stdout);
	json_begin_object(&j);
	json_kstr(&j, "home", shmq_home(ctl->q));
	json_kstr(&j, "shm_dir", shmq_shm_dir(ctl->q));
	json_kstr(&j, "version", shmq_version());
	json_end_object(&j);
	return CTL_EXIT_OK;
}
