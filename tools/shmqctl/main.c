/*
 * main.c — shmqctl: global options, help, and dispatch.
 *
 * The command line is `shmqctl [global options] NOUN [VERB] [ARGS]`,
 * git/ip style (ecosystem.md §3.2).  Global options end at the first
 * word; the command then parses the rest itself, so options may come
 * before or after its positional arguments, and the global options are
 * accepted there too (`shmqctl topic list --json`).
 *
 * The help text here is the reference for each command's options and
 * is kept in step with libshmq/man/shmqctl.1.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "shmqctl.h"

#define COMMON_HELP \
	"Every command also takes --home DIR, --json and -h/--help.\n"

static const char usage_topic_create[] =
    "Usage: shmqctl topic create NAME --partitions N [--ring-size BYTES]\n"
    "                            [--overflow block|drop]\n"
    "                            [--durability persistent|volatile]\n"
    "                            [--fsync always|never|interval=MS]\n"
    "                            [--segment-bytes BYTES]\n"
    "                            [--retention-bytes BYTES] [--retention-ms "
    "MS]\n"
    "\n"
    "Create topic NAME with N partitions (1..1024).\n"
    "\n"
    "  -p, --partitions N    number of partitions (required)\n"
    "  -s, --ring-size BYTES bytes per partition ring: a power of two from\n"
    "                        64K to 64G; suffixes K, M, G (default 16M)\n"
    "  -o, --overflow POLICY what a full ring does: block (producers wait\n"
    "                        for the slowest live group; default) or drop\n"
    "                        (overwrite the oldest records; on a\n"
    "                        persistent topic only those on disk)\n"
    "      --durability D    persistent (default: segment files, written\n"
    "                        by shmq-replicator; ring space is reused\n"
    "                        only once on disk, so producers need the\n"
    "                        replicator after one ring) or volatile\n"
    "                        (shared memory only; no replicator)\n"
    "      --fsync POLICY    persistent topics: always (default), never, or\n"
    "                        interval=MS\n"
    "      --segment-bytes N segment file size (default 64M)\n"
    "      --retention-bytes N  delete whole old segments beyond N bytes\n"
    "      --retention-ms MS    ... or last written more than MS "
    "ago\n" COMMON_HELP;

static const char usage_topic_list[] =
    "Usage: shmqctl topic list\n"
    "\n"
    "Print the topics, one name per line.  With --json: an array of\n"
    "objects with name, partitions, ring_size and overflow.\n" COMMON_HELP;

static const char usage_topic_describe[] =
    "Usage: shmqctl topic describe NAME\n"
    "\n"
    "Print the topic's configuration and, per partition, the log start,\n"
    "the committed (fully written) offset, the end offset, ring use,\n"
    "records appended and live producers and consumers.\n" COMMON_HELP;

static const char usage_topic_delete[] =
    "Usage: shmqctl topic delete NAME\n"
    "\n"
    "Delete topic NAME with its rings and group state.  Open producers\n"
    "and consumers get an error from then on.\n" COMMON_HELP;

static const char usage_topic_add_partitions[] =
    "Usage: shmqctl topic add-partitions NAME --total N\n"
    "\n"
    "Grow topic NAME to N partitions (more than it has, at most 1024).\n"
    "Open producers and group members take the new partitions without\n"
    "restarting.  Keyed records hash over N from then on: a key may go to\n"
    "another partition than before, so per-key order holds only among\n"
    "records written after the change (a WARNING on stderr says so).\n"
    "\n"
    "  -n, --total N         the new partition count\n" COMMON_HELP;

static const char usage_produce[] =
    "Usage: shmqctl produce TOPIC [--partition P] [--key-separator SEP]\n"
    "                       [--acks none|leader|durable|all] "
    "[--report-acks]\n"
    "                       [--idempotent NAME [--retries N|max]]\n"
    "\n"
    "Append one record per line of standard input (without the newline).\n"
    "\n"
    "  -p, --partition P         write to partition P (default: by key, or\n"
    "                            the sticky partitioner without a key)\n"
    "  -K, --key-separator SEP   the part of a line before the first SEP "
    "is\n"
    "                            the key, the rest the value (a line "
    "without\n"
    "                            SEP has no key)\n"
    "  -a, --acks LEVEL          wait for none, leader (default), durable "
    "or\n"
    "                            all; durable and all need shmq-replicator\n"
    "  -r, --report-acks         print a JSON line per acknowledged record:\n"
    "                            topic, partition, offset, key, value (and\n"
    "                            sequence, duplicate with --idempotent)\n"
    "  -I, --idempotent NAME     an idempotent producer resuming identity\n"
    "                            NAME: its records carry producer id and\n"
    "                            sequence, and an older instance of NAME is\n"
    "                            fenced\n"
    "  -R, --retries N|max       retry a line that failed with a retriable\n"
    "                            error (no room, no replicator, a DURABLE\n"
    "                            wait) N times or without limit; never\n"
    "                            appends it twice (needs --idempotent)\n"
    "\n"
    "Stops at the first record that fails, with exit status 1.\n" COMMON_HELP;

static const char usage_consume[] =
    "Usage: shmqctl consume TOPIC [--group G | --partition P] [--from POS]\n"
    "                       [--count N] [--timeout-ms MS] [--format "
    "text|json]\n"
    "                       [--print-key]\n"
    "\n"
    "Print records of TOPIC: standalone from every partition (or P), or as\n"
    "a member of consumer group G, which commits what it has printed.\n"
    "\n"
    "  -g, --group G         join consumer group G\n"
    "  -p, --partition P     read only partition P (not with --group)\n"
    "  -o, --from POS        earliest, latest, an offset, or -N (N before\n"
    "                        the end), for each partition read (default:\n"
    "                        the group's committed offset, else earliest)\n"
    "  -c, --count N         stop after N records\n"
    "  -t, --timeout-ms MS   stop when no record came for MS ms (default\n"
    "                        1000; -1 waits forever)\n"
    "  -f, --format FORMAT   text: the value per line (default); json: one\n"
    "                        object per line with topic, partition, "
    "offset,\n"
    "                        key, value and timestamp (ns)\n"
    "  -k, --print-key       text: print key TAB value\n" COMMON_HELP;

static const char usage_group_list[] =
    "Usage: shmqctl group list\n"
    "\n"
    "Print the consumer groups as GROUP<TAB>TOPIC lines.  With --json:\n"
    "an array of objects with group and topic.\n" COMMON_HELP;

static const char usage_group_describe[] =
    "Usage: shmqctl group describe GROUP --topic TOPIC [--sample MS]\n"
    "                       [--scan N]\n"
    "\n"
    "Print the group's members and, per partition and in total, the\n"
    "committed offset, the end and the lag: in records, in bytes (keys\n"
    "and values) and in seconds (the age of the oldest unconsumed\n"
    "record); the consumption and production rates and the time to\n"
    "drain (lag / (consume - produce), or never); the owner's pid,\n"
    "records read and records lost to overruns.\n"
    "\n"
    "  -t, --topic TOPIC     the topic the group reads (required)\n"
    "      --sample MS       measure the rates over MS ms: look twice,\n"
    "                        MS apart (default 1000; 0: one look, no\n"
    "                        rates and no drain time)\n"
    "      --scan N          read at most N records per partition to\n"
    "                        count the lag's bytes; past that, estimate\n"
    "                        them from the average size (default "
    "1000000)\n" COMMON_HELP;

static const char usage_group_reset[] =
    "Usage: shmqctl group reset-offsets GROUP --topic TOPIC SPEC\n"
    "                       [--partition P] [--execute]\n"
    "\n"
    "Plan, and with --execute apply, new committed offsets for GROUP.\n"
    "The group must have no live members to execute.  SPEC is one of:\n"
    "\n"
    "      --to-earliest         the log start\n"
    "      --to-latest           the log end\n"
    "      --to-offset N         offset N\n"
    "      --shift-by N          the committed offset plus N (may be < 0)\n"
    "      --to-datetime TIME    the first record at or after TIME, ISO "
    "8601:\n"
    "                            2026-11-21T10:00:00Z, "
    "...T10:00:00.5+02:00\n"
    "                            (no zone: local time)\n"
    "\n"
    "New offsets are clamped to the log.  The plan shows, for each\n"
    "partition that moves, the records it skips (moving forwards) or\n"
    "reads again (backwards) and the times of the first and last.\n"
    "--execute first appends that to the audit log (HOME/audit/\n"
    "skipped.log; see 'group skipped'), then moves the offsets.\n"
    "\n"
    "  -t, --topic TOPIC     the topic (required)\n"
    "  -p, --partition P     only partition P (default: all)\n"
    "  -x, --execute         apply the plan (default: dry run)\n" COMMON_HELP;

static const char usage_group_skipped[] =
    "Usage: shmqctl group skipped GROUP [--topic TOPIC]\n"
    "\n"
    "List the audit log entries of GROUP, oldest first: per partition\n"
    "that an executed reset-offsets moved, the entry's ID, when, the\n"
    "kind (skip: moved forwards; replay: moved backwards; void: the\n"
    "reset failed before moving it), the offset range [FROM, TO), the\n"
    "records in it, those already lost then, the times of the first and\n"
    "last record, and who ran it (uid, pid).  Each replay-skipped of an\n"
    "entry is listed with it (kind replayed: the records brought back\n"
    "and the DESTINATION).  An entry of a topic deleted since is marked\n"
    "TOPIC(deleted), or TOPIC(old) if a new topic has that name now.\n"
    "A bad line of the log is named and skipped (exit status 1).\n"
    "\n"
    "  -t, --topic TOPIC     only entries of TOPIC\n" COMMON_HELP;

static const char usage_group_replay[] =
    "Usage: shmqctl group replay-skipped ID [--to-topic TOPIC]\n"
    "                       [--to-group GROUP] [--partition P] "
    "[--partial]\n"
    "\n"
    "Bring back the records that audit entry ID skipped (see 'group\n"
    "skipped'), and log that.  Give --to-topic, --to-group, or both.\n"
    "An entry of a topic deleted since (even if one of the same name\n"
    "exists now) is refused.\n"
    "\n"
    "      --to-topic TOPIC  copy the records, in order, with their "
    "keys,\n"
    "                        values and timestamps, into TOPIC (which\n"
    "                        must exist), by key\n"
    "      --to-group GROUP  set GROUP's committed offsets: with\n"
    "                        --to-topic, at the copies (GROUP reads\n"
    "                        exactly them); alone, at the start of each\n"
    "                        skipped range of the source topic (GROUP\n"
    "                        reads on past the range's end)\n"
    "  -p, --partition P     only the range of partition P\n"
    "      --partial         if some records are no longer in the log\n"
    "                        (volatile ring overwritten, segments\n"
    "                        deleted), replay the rest instead of\n"
    "                        refusing\n" COMMON_HELP;

static const char usage_group_delete[] =
    "Usage: shmqctl group delete GROUP --topic TOPIC\n"
    "\n"
    "Delete the group's state (committed offsets).  The group must have\n"
    "no live members.\n"
    "\n"
    "  -t, --topic TOPIC     the topic (required)\n" COMMON_HELP;

static const char usage_info[] =
    "Usage: shmqctl info\n"
    "\n"
    "Print the instance's home directory, the directory of its rings and\n"
    "group state (under /dev/shm), and the library version.\n" COMMON_HELP;

static const char usage_status[] =
    "Usage: shmqctl status\n"
    "\n"
    "Whether the instance's shmq-replicator runs (and its pid), and for\n"
    "every partition of a persistent topic its end offset, its durable\n"
    "offset (on disk), how far behind the disk is, and any sticky write\n"
    "error.\n" COMMON_HELP;

static const char usage_relay[] =
    "Usage: shmqctl relay --from TOPIC --to TOPIC2 [--group G] [--follow]\n"
    "                     [--acks leader|durable] [--batch N] [--max N]\n"
    "                     [--no-progress]\n"
    "\n"
    "Copy TOPIC's records into TOPIC2 (which must exist, typically with\n"
    "more partitions), as consumer group G of TOPIC.  A keyed record goes\n"
    "to TOPIC2's partition for its key (murmur2, as any producer); a\n"
    "keyless one to its source partition modulo TOPIC2's count.  So\n"
    "per-key order holds, and keyless records keep their source\n"
    "partition's order.  Keys, values and timestamps are copied.\n"
    "\n"
    "Source offsets are committed after each batch, once TOPIC2 has\n"
    "acknowledged it at the --acks level: at-least-once.  A crash (or\n"
    "kill -9) between the ack and the commit sends that batch again on\n"
    "the next run: duplicates, at most one batch per interrupted run,\n"
    "never a loss.\n"
    "\n"
    "  -g, --group G         the source group (default relay.TOPIC2): a\n"
    "                        second run resumes where the first stopped\n"
    "      --follow          keep relaying new records until SIGINT or\n"
    "                        SIGTERM (default: stop once the backlog as\n"
    "                        it was at the start is relayed)\n"
    "  -a, --acks LEVEL      leader or durable (default: durable if "
    "TOPIC2\n"
    "                        is persistent, which needs shmq-replicator;\n"
    "                        leader if it is volatile)\n"
    "  -b, --batch N         records per send and commit, 1..65536\n"
    "                        (default 1000)\n"
    "      --max N           stop after N records\n"
    "      --no-progress     no progress line (it is drawn on stderr only\n"
    "                        when that is a terminal)\n"
    "\n"
    "On SIGINT/SIGTERM the batch in flight is finished (if TOPIC2 has no\n"
    "room for it: what was acknowledged of it) and committed, the summary\n"
    "printed, and the exit status is 0; a second signal stops at once.\n"
    "The summary (stdout; --json: one object) gives records, bytes,\n"
    "time, rate and the records per TOPIC2 partition.\n" COMMON_HELP;

static const char usage_main[] =
    "Usage: shmqctl [--home DIR] [--json] COMMAND [ARGS...]\n"
    "\n"
    "Administer and use a shmq instance: Kafka-style topics, partitions\n"
    "and consumer groups in shared memory.\n"
    "\n"
    "Commands:\n"
    "  topic create NAME --partitions N [--ring-size BYTES]\n"
    "               [--overflow block|drop] [--durability D] [--fsync F]\n"
    "  topic list\n"
    "  topic describe NAME\n"
    "  topic delete NAME\n"
    "  topic add-partitions NAME --total N\n"
    "  produce TOPIC [--partition P] [--key-separator SEP] [--acks LEVEL]\n"
    "                [--report-acks] [--idempotent NAME [--retries N|max]]\n"
    "  consume TOPIC [--group G | --partition P] [--from POS] [--count N]\n"
    "                [--timeout-ms MS] [--format text|json] [--print-key]\n"
    "  group list\n"
    "  group describe GROUP --topic TOPIC [--sample MS] [--scan N]\n"
    "  group reset-offsets GROUP --topic TOPIC SPEC [--partition P] "
    "[--execute]\n"
    "  group skipped GROUP [--topic TOPIC]\n"
    "  group replay-skipped ID [--to-topic T] [--to-group G] [--partition "
    "P]\n"
    "                       [--partial]\n"
    "  group delete GROUP --topic TOPIC\n"
    "  relay --from TOPIC --to TOPIC2 [--group G] [--follow] [--acks A]\n"
    "        [--batch N] [--max N] [--no-progress] [--json]\n"
    "  info\n"
    "  status\n"
    "\n"
    "Options:\n"
    "  --home DIR     the instance (default: $SHMQ_HOME, else ./shmq-home)\n"
    "  --json         machine-readable output\n"
    "  -h, --help     this help; 'shmqctl COMMAND --help' for one command\n"
    "  -V, --version  print the version\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

static const struct ctl_cmd cmds[] = {
	{ "topic create", usage_topic_create, topic_create },
	{ "topic list", usage_topic_list, topic_list },
	{ "topic describe", usage_topic_describe, topic_describe },
	{ "topic delete", usage_topic_delete, topic_delete },
	{ "topic add-partitions", usage_topic_add_partitions,
	    topic_add_partitions },
	{ "produce", usage_produce, produce_run },
	{ "consume", usage_consume, consume_run },
	{ "group list", usage_group_list, group_list },
	{ "group describe", usage_group_describe, group_describe },
	{ "group reset-offsets", usage_group_reset, reset_offsets },
	{ "group skipped", usage_group_skipped, group_skipped },
	{ "group replay-skipped", usage_group_replay, group_replay_skipped },
	{ "group delete", usage_group_delete, group_delete },
	{ "info", usage_info, info_run },
	{ "status", usage_status, status_run },
	{ "relay", usage_relay, relay_run },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static int
main_usage_error(const char *fmt, const char *arg)
{
	fputs("shmqctl: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\nTry 'shmqctl --help' for more information.\n", stderr);
	return CTL_EXIT_USAGE;
}

/* Is `noun` the first word of some command with a verb? */
static int
main_is_noun(const char *noun)
{
	size_t i, n = strlen(noun);

	for (i = 0; i < NCMDS; i++) {
		if (strncmp(cmds[i].name, noun, n) == 0 &&
		    cmds[i].name[n] == ' ') {
			return 1;
		}
	}
	return 0;
}

static const struct ctl_cmd *
main_find(const char *noun, const char *verb)
{
	size_t i, n = strlen(noun);

	for (i = 0; i < NCMDS; i++) {
		const char *name = cmds[i].name;

		if (strncmp(name, noun, n) != 0) {
			continue;
		}
		if (verb == NULL && name[n] == '\0') {
			return &cmds[i];
		}
		if (verb != NULL && name[n] == ' ' &&
		    strcmp(name + n + 1, verb) == 0) {
			return &cmds[i];
		}
	}
	return NULL;
}

/* Parse the options before the command word; returns -1 to go on. */
static int
main_options(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "json", no_argument, NULL, CTL_OPT_JSON },
		{ "home", required_argument, NULL, CTL_OPT_HOME },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	ctl_getopt_reset();
	/* "+": stop at the command word; the rest belongs to it. */
	while ((c = getopt_long(argc, argv, "+:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_main, stdout);
			return ctl_flush_stdout();
		case 'V':
			printf("shmqctl %d.%d.%d (libshmq %s)\n",
			    SHMQ_VERSION_MAJOR, SHMQ_VERSION_MINOR,
			    SHMQ_VERSION_PATCH, shmq_version());
			return ctl_flush_stdout();
		case CTL_OPT_JSON:
			ctl->json = 1;
			break;
		case CTL_OPT_HOME:
			ctl->home = optarg;
			break;
		case ':':
			return main_usage_error(
			    "option '%s' needs an argument", argv[optind - 1]);
		default:
			return main_usage_error(
			    "unknown option '%s'", argv[optind - 1]);
		}
	}
	return -1;
}

static int
main_dispatch(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd;
	const char *noun, *verb;

	if (argc < 1) {
		return main_usage_error("missing command%s", "");
	}
	noun = argv[0];
	if (strcmp(noun, "help") == 0) {
		fputs(usage_main, stdout);
		return ctl_flush_stdout();
	}
	if (!main_is_noun(noun)) {
		cmd = main_find(noun, NULL);
		if (cmd == NULL) {
			return main_usage_error("unknown command '%s'", noun);
		}
		return cmd->run(ctl, cmd, argc, argv);
	}
	if (argc < 2) {
		return main_usage_error("%s: missing subcommand", noun);
	}
	verb = argv[1];
	if (strcmp(verb, "-h") == 0 || strcmp(verb, "--help") == 0) {
		fputs(usage_main, stdout);
		return ctl_flush_stdout();
	}
	cmd = main_find(noun, verb);
	if (cmd == NULL) {
		fprintf(stderr, "shmqctl: %s: unknown subcommand '%s'\n", noun,
		    verb);
		fputs("Try 'shmqctl --help' for more information.\n", stderr);
		return CTL_EXIT_USAGE;
	}
	return cmd->run(ctl, cmd, argc - 1, argv + 1);
}

int
main(int argc, char **argv)
{
	struct ctl ctl = { NULL, 0, NULL };
	int rc;

	rc = main_options(&ctl, argc, argv);
	if (rc >= 0) {
		return rc;
	}
	rc = main_dispatch(&ctl, argc - optind, argv + optind);
	shmq_detach(ctl.q);
	if (rc == CTL_EXIT_OK) {
		rc = ctl_flush_stdout();
	}
	return rc;
}
