/*
 * run.c — the CUnit runner.  Suites are listed below; each test file
 * defines its table.  `shmq-tests [SUITE...]` runs some of them.
 *
 * CU_basic_run_tests() returns success even when tests fail, so the exit
 * code comes from the failure count, read before the registry is freed.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"

extern const struct th_suite suite_codec, suite_ring, suite_api,
    suite_consumer, suite_group, suite_crash, suite_corrupt, suite_fault,
    suite_contract, suite_persist;
extern const struct th_suite suite_segindex;
extern const struct th_suite suite_diskfault;
extern const struct th_suite suite_fsync_policy;
extern const struct th_suite suite_deadwriter;
extern const struct th_suite suite_pipeline;
extern const struct th_suite suite_keyed;
extern const struct th_suite suite_keyed_edges;
extern const struct th_suite suite_idempotent;
extern const struct th_suite suite_segfiles;
extern const struct th_suite suite_addparts;
extern const struct th_suite suite_idem_edges;
extern const struct th_suite suite_grow_crash;

static const struct th_suite *const suites[] = {
	&suite_codec,
	&suite_ring,
	&suite_api,
	&suite_consumer,
	&suite_group,
	&suite_crash,
	&suite_corrupt,
	&suite_fault,
	&suite_contract,
	&suite_persist,
	&suite_segindex,
	&suite_diskfault,
	&suite_fsync_policy,
	&suite_deadwriter,
	&suite_pipeline,
	&suite_keyed,
	&suite_keyed_edges,
	&suite_idempotent,
	&suite_segfiles,
	&suite_addparts,
	&suite_idem_edges,
	&suite_grow_crash,
};

/* A test that fails on purpose, run only when named (`shmq-tests
 * selfcheck`): tools/run-tests.sh runs it first and requires a non-zero
 * exit, because CU_basic_run_tests returns 0 even when tests fail and
 * the exit code below is all that stands between a failure and a green
 * run. */
static void
the_runner_fails_when_a_test_fails(void)
{
	CU_FAIL("this failure is expected: the runner must exit 1");
}

static CU_TestInfo selfcheck_tests[] = {
	{ "the_runner_fails_when_a_test_fails",
	    the_runner_fails_when_a_test_fails },
	CU_TEST_INFO_NULL,
};

static const struct th_suite suite_selfcheck = { "selfcheck",
	selfcheck_tests };

static int
wanted(const char *name, int argc, char **argv)
{
	if (argc < 2) {
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], name) == 0) {
			return 1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (CU_initialize_registry() != CUE_SUCCESS) {
		return 2;
	}
	for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
		const struct th_suite *s = suites[i];
		if (!wanted(s->name, argc, argv)) {
			continue;
		}
		CU_pSuite cs = CU_add_suite(s->name, NULL, NULL);
		for (CU_TestInfo *t = s->tests; cs && t->pName; t++) {
			CU_add_test(cs, t->pName, t->pTestFunc);
		}
	}
	if (argc >= 2 && wanted(suite_selfcheck.name, argc, argv)) {
		CU_pSuite cs = CU_add_suite(suite_selfcheck.name, NULL, NULL);
		for (CU_TestInfo *t = suite_selfcheck.tests; cs && t->pName;
		     t++) {
			CU_add_test(cs, t->pName, t->pTestFunc);
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_tests_failed();
	unsigned run = CU_get_number_of_tests_run();
	CU_cleanup_registry();
	if (run == 0) {
		fprintf(stderr, "no test ran\n");
		return 1;
	}
	return failed == 0 ? 0 : 1;
}
