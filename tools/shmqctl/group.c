/*
 * group.c — `shmqctl group list|describe|delete`.
 *
 * A shmq group is per topic (its state lives with the topic), so every
 * command but `list` names both: GROUP --topic TOPIC.  Describe shows
 * the group's view (committed offset, lag, owner) rather than the
 * topic's; `topic describe` shows the latter.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json.h"
#include "shmqctl.h"

void
group_hint(int err, const char *group, const char *topic)
{
	if (err == -ENOENT) {
		ctl_note("hint: group %s has no state on topic %s: it never "
		         "consumed it",
		    group, topic);
	} else if (err == -EBUSY) {
		ctl_note("hint: the group has live members; stop its "
		         "consumers first");
	}
}

/* Parse GROUP --topic TOPIC, the arguments of describe and delete. */
static int
group_args(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv,
    const char **group, const char **topic)
{
	static const struct option longopts[] = {
		{ "topic", required_argument, NULL, 't' },
		CTL_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	*topic = NULL;
	ctl_getopt_reset();
	while ((c = getopt_long(argc, argv, ":t:h", longopts, NULL)) != -1) {
		if (c == 't') {
			*topic = optarg;
			continue;
		}
		rc = ctl_common_option(ctl, cmd, c, argv);
		if (rc >= 0) {
			return rc;
		}
	}
	if ((rc = ctl_one_arg(cmd, argc, argv, "GROUP", group)) != 0) {
		return rc;
	}
	if (*topic == NULL) {
		return ctl_usage_error(cmd, "missing --topic TOPIC");
	}
	return ctl_attach(ctl, 0);
}

static int
group_list_text(const char *group, const char *topic, void *arg)
{
	(void)arg;
	printf("%s\t%s\n", group, topic);
	return 0;
}

static int
group_list_json(const char *group, const char *topic, void *arg)
{
	struct json *j = arg;

	json_begin_object(j);
	json_kstr(j, "group", group);
	json_kstr(j, "topic", topic);
	json_end_object(j);
	return 0;
}

int
group_list(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
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
		rc = shmq_group_list(ctl->q, group_list_text, NULL);
		return rc != 0 ? ctl_fail(rc, "group list") : CTL_EXIT_OK;
	}
	json_init(&j, stdout);
	json_begin_array(&j);
	rc = shmq_group_list(ctl->q, group_list_json, &j);
	/* Close the array even on error: stdout stays valid JSON. */
	json_end_array(&j);
	return rc != 0 ? ctl_fail(rc, "group list") : CTL_EXIT_OK;
}

/* The group's partitions: *parts (malloc'd) and the count, or a
 * negative error. */
static ssize_t
group_fetch(struct ctl *ctl, const char *group, const char *topic,
    shmq_group_partition_t **parts)
{
	shmq_topic_config_t cfg;
	size_t cap;
	ssize_t n;
	int rc;

	*parts = NULL;
	shmq_topic_config_init(&cfg);
	if ((rc = shmq_topic_describe(ctl->q, topic, &cfg)) != 0) {
		return rc;
	}
	cap = cfg.partitions > 0 ? cfg.partitions : 1;
	for (;;) {
		*parts = calloc(cap, sizeof(**parts));
		if (*parts == NULL) {
			return -ENOMEM;
		}
		n = shmq_group_describe(ctl->q, group, topic, *parts, cap);
		if (n < 0 || (size_t)n <= cap) {
			break;
		}
		/* More partitions than the topic said a moment ago. */
		free(*parts);
		cap = (size_t)n;
	}
	if (n < 0) {
		free(*parts);
		*parts = NULL;
	}
	return n;
}

static void
group_describe_json(const char *group, const char *topic, uint32_t members,
    const shmq_group_partition_t *parts, size_t n, uint64_t total_lag)
{
	struct json j;
	size_t i;

	json_init(&j, stdout);
	json_begin_object(&j);
	json_kstr(&j, "group", group);
	json_kstr(&j, "topic", topic);
	json_kuint(&j, "members", members);
	json_kuint(&j, "total_lag", total_lag);
	json_key(&j, "partitions");
	json_begin_array(&j);
	for (i = 0; i < n; i++) {
		json_begin_object(&j);
		json_kuint(&j, "partition", parts[i].partition);
		json_kuint(&j, "committed", parts[i].committed);
		json_kuint(&j, "end", parts[i].end);
		json_kuint(&j, "lag", parts[i].lag);
		json_key(&j, "owner_pid");
		if (parts[i].owner_pid > 0) {
			json_int(&j, parts[i].owner_pid);
		} else {
			json_null(&j);
		}
		json_kuint(&j, "records_out", parts[i].records_out);
		json_kuint(&j, "bytes_out", parts[i].bytes_out);
		json_kuint(&j, "lost", parts[i].lost);
		json_end_object(&j);
	}
	json_end_array(&j);
	json_end_object(&j);
}

static int
group_describe_text(const char *group, const char *topic, uint32_t members,
    const shmq_group_partition_t *parts, size_t n, uint64_t total_lag)
{
	static const char *const headers[] = { "PARTITION", "COMMITTED", "END",
		"LAG", "OWNER-PID", "RECORDS-OUT", "LOST" };
	struct table *t;
	size_t i;
	int rc;

	printf("GROUP      %s\nTOPIC      %s\nMEMBERS    %u\n"
	       "TOTAL-LAG  %llu\n\n",
	    group, topic, members, (unsigned long long)total_lag);
	t = table_new(sizeof(headers) / sizeof(headers[0]), headers);
	if (t == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		const shmq_group_partition_t *gp = &parts[i];

		table_cell(t, "%u", gp->partition);
		table_cell(t, "%llu", (unsigned long long)gp->committed);
		table_cell(t, "%llu", (unsigned long long)gp->end);
		table_cell(t, "%llu", (unsigned long long)gp->lag);
		if (gp->owner_pid > 0) {
			table_cell(t, "%ld", (long)gp->owner_pid);
		} else {
			table_cell(t, "-");
		}
		table_cell(t, "%llu", (unsigned long long)gp->records_out);
		table_cell(t, "%llu", (unsigned long long)gp->lost);
	}
	rc = table_print(t, stdout);
	table_free(t);
	return rc;
}

int
group_describe(
    struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	shmq_group_partition_t *parts;
	const char *group, *topic;
	uint64_t total_lag = 0;
	uint32_t members = 0;
	ssize_t n, i;
	int rc;

	if ((rc = group_args(ctl, cmd, argc, argv, &group, &topic)) != 0) {
		return rc;
	}
	/* Tell a missing topic from a group that never read it. */
	if ((rc = ctl_check_partition(ctl, topic, UINT32_MAX, NULL)) != 0) {
		return rc;
	}
	n = group_fetch(ctl, group, topic, &parts);
	if (n < 0) {
		ctl_fail((int)n, "group %s on topic %s", group, topic);
		group_hint((int)n, group, topic);
		return CTL_EXIT_FAIL;
	}
	rc = shmq_group_members(ctl->q, group, topic, &members);
	if (rc != 0) {
		free(parts);
		return ctl_fail(
		    rc, "group %s on topic %s: members", group, topic);
	}
	for (i = 0; i < n; i++) {
		total_lag += parts[i].lag;
	}
	if (ctl->json) {
		group_describe_json(
		    group, topic, members, parts, (size_t)n, total_lag);
	} else {
		rc = group_describe_text(
		    group, topic, members, parts, (size_t)n, total_lag);
	}
	free(parts);
	if (rc != 0) {
		return ctl_fail(rc, "group describe %s", group);
	}
	return CTL_EXIT_OK;
}

int
group_delete(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	const char *group, *topic;
	int rc;

	if ((rc = group_args(ctl, cmd, argc, argv, &group, &topic)) != 0) {
		return rc;
	}
	rc = shmq_group_delete(ctl->q, group, topic);
	if (rc != 0) {
		ctl_fail(rc, "group delete %s on topic %s", group, topic);
		group_hint(rc, group, topic);
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}
