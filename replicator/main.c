/*
 * main.c — shmq-replicator: options, signals, run loop (kept thin).
 *
 * The daemon attaches to one instance and becomes its persister
 * (shmq_persister_open): it writes the persistent topics to segment
 * files and acknowledges DURABLE producers.  The work is the library's;
 * this file only starts it, turns it in a loop, and stops it:
 *
 *  - Startup errors reach the caller: in the foreground as the exit
 *    status; daemonized, the parent waits on a pipe until the child
 *    says it is ready (status 0) or why not, and exits with that.
 *  - Signal handlers only set flags, which the loop reads between
 *    shmq_persister_poll calls (each waits at most poll_ms): SIGTERM
 *    and SIGINT stop (close flushes), SIGHUP reloads --config.
 *  - Under systemd (Type=notify) $NOTIFY_SOCKET hears READY=1,
 *    RELOADING=1 and STOPPING=1, and WATCHDOG=1 if asked for.
 *
 * Exit status: 0 stopped by a signal, 1 failure, 2 usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "notify.h"
#include "shmq.h"

#define REPL_EXIT_OK 0
#define REPL_EXIT_FAIL 1
#define REPL_EXIT_USAGE 2

static const char usage[] =
    "Usage: shmq-replicator --home DIR [--config FILE] [--foreground]\n"
    "                       [--log-level LEVEL] [--poll-ms MS]\n"
    "\n"
    "Write the persistent topics of a shmq instance to disk and\n"
    "acknowledge producers that wait for durable acks.  One replicator\n"
    "runs per instance.\n"
    "\n"
    "  --home DIR           the instance (default: $SHMQ_HOME)\n"
    "  -c, --config FILE    read log_level and poll_ms from FILE\n"
    "                       (key = value lines); SIGHUP reloads it\n"
    "  -f, --foreground     do not daemonize (as under systemd)\n"
    "  -l, --log-level LEVEL  error, warn, info (default) or debug\n"
    "  -p, --poll-ms MS     longest wait for new records, 1..10000\n"
    "                       (default 50)\n"
    "  -h, --help           this help\n"
    "  -V, --version        print the version\n"
    "\n"
    "Options given here override the file.  Logs go to stderr, also\n"
    "when daemonized.  SIGTERM or SIGINT stop, SIGHUP reloads.\n"
    "\n"
    "Exit status: 0 stopped by a signal, 1 failure, 2 usage error.\n";

enum { REPL_OPT_HOME = 0x100 };

struct repl {
	char *home; /* absolute */
	char *config; /* absolute, or NULL */
	int foreground;
	struct config cli; /* given on the command line */
	struct config file; /* read from --config */
	int poll_ms; /* in effect */
	int ready_fd; /* daemonized: the pipe to the parent, else -1 */
	shmq_t *q;
	shmq_persister_t *ps;
};

static volatile sig_atomic_t repl_stop_sig;
static volatile sig_atomic_t repl_hup;

static int
repl_usage_error(const char *fmt, const char *arg)
{
	fputs("shmq-replicator: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs(
	    "\nTry 'shmq-replicator --help' for more information.\n", stderr);
	return REPL_EXIT_USAGE;
}

/* A relative path, made absolute against the current directory: the
 * daemon moves to / and reloads the config file from there. */
static char *
repl_absolute(const char *path)
{
	char *cwd, *abs = NULL;

	if (path[0] == '/') {
		return strdup(path);
	}
	cwd = getcwd(NULL, 0);
	if (cwd != NULL && asprintf(&abs, "%s/%s", cwd, path) < 0) {
		abs = NULL;
	}
	free(cwd);
	return abs;
}

/* Parse argv; returns -1 to go on, else the exit status. */
static int
repl_options(struct repl *r, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "home", required_argument, NULL, REPL_OPT_HOME },
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "poll-ms", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *home = getenv("SHMQ_HOME"), *config = NULL;
	int c;

	while ((c = getopt_long(argc, argv, ":c:fl:p:hV", longopts, NULL)) !=
	    -1) {
		switch (c) {
		case REPL_OPT_HOME:
			home = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'f':
			r->foreground = 1;
			break;
		case 'l':
			if (log_level_parse(optarg, &r->cli.log_level) != 0) {
				return repl_usage_error("--log-level must be "
				                        "error, warn, info or "
				                        "debug, not '%s'",
				    optarg);
			}
			break;
		case 'p':
			if (config_parse_poll_ms(optarg, &r->cli.poll_ms) !=
			    0) {
				return repl_usage_error("--poll-ms must be a "
				                        "number of ms from 1 "
				                        "to 10000, not '%s'",
				    optarg);
			}
			break;
		case 'h':
			fputs(usage, stdout);
			return fflush(stdout) == 0 ? REPL_EXIT_OK
			                           : REPL_EXIT_FAIL;
		case 'V':
			printf("shmq-replicator %d.%d.%d (libshmq %s)\n",
			    SHMQ_VERSION_MAJOR, SHMQ_VERSION_MINOR,
			    SHMQ_VERSION_PATCH, shmq_version());
			return fflush(stdout) == 0 ? REPL_EXIT_OK
			                           : REPL_EXIT_FAIL;
		case ':':
			return repl_usage_error(
			    "option '%s' needs an argument", argv[optind - 1]);
		default:
			return repl_usage_error(
			    "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		return repl_usage_error(
		    "unexpected argument '%s'", argv[optind]);
	}
	if (home == NULL || home[0] == '\0') {
		return repl_usage_error(
		    "no instance: give --home DIR or set SHMQ_HOME%s", "");
	}
	r->home = repl_absolute(home);
	r->config = config != NULL ? repl_absolute(config) : NULL;
	if (r->home == NULL || (config != NULL && r->config == NULL)) {
		log_fail("%s", strerror(errno));
		return REPL_EXIT_FAIL;
	}
	return -1;
}

/* Put the command line over the file over the defaults. */
static void
repl_apply(struct repl *r)
{
	int level = SHMQ_LOG_INFO, poll_ms = CONFIG_POLL_MS_DEFAULT;

	if (r->file.log_level >= 0) {
		level = r->file.log_level;
	}
	if (r->cli.log_level >= 0) {
		level = r->cli.log_level;
	}
	if (r->file.poll_ms >= 0) {
		poll_ms = r->file.poll_ms;
	}
	if (r->cli.poll_ms >= 0) {
		poll_ms = r->cli.poll_ms;
	}
	log_set_level(level);
	r->poll_ms = poll_ms;
}

static void
repl_on_signal(int sig)
{
	if (sig == SIGHUP) {
		repl_hup = 1;
	} else {
		repl_stop_sig = sig;
	}
}

static int
repl_signals(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a wait in the library may end early, which only
	 * makes the loop look at the flags sooner. */
	sa.sa_handler = repl_on_signal;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (sigaction(sigs[i], &sa, NULL) != 0) {
			return -errno;
		}
	}
	/* A closed stderr pipe must not kill the daemon mid-flush. */
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL) != 0 ? -errno : 0;
}

/*
 * Fork; the parent waits for the child's one status byte and exits with
 * it (returns the status), or with the child's own status if it died
 * first.  The child returns -1 and goes on in a new session.
 */
static int
repl_daemonize(struct repl *r)
{
	int fds[2], status, nul;
	unsigned char st;
	ssize_t n;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) != 0) {
		log_fail("pipe: %s", strerror(errno));
		return REPL_EXIT_FAIL;
	}
	pid = fork();
	if (pid < 0) {
		log_fail("fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return REPL_EXIT_FAIL;
	}
	if (pid == 0) {
		close(fds[0]);
		r->ready_fd = fds[1];
		setsid();
		if (chdir("/") != 0) {
			/* Paths are absolute; the cwd only pins a mount. */
		}
		nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nul >= 0) {
			dup2(nul, STDIN_FILENO);
			dup2(nul, STDOUT_FILENO);
			close(nul);
		}
		return -1;
	}
	close(fds[1]);
	do {
		n = read(fds[0], &st, 1);
	} while (n < 0 && errno == EINTR);
	if (n == 1) {
		return st;
	}
	/* The child died without a word: pass its status on. */
	if (waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
		return WEXITSTATUS(status);
	}
	return REPL_EXIT_FAIL;
}

/* Daemonized: tell the waiting parent how startup went, once. */
static void
repl_report(struct repl *r, int status)
{
	unsigned char st = (unsigned char)status;

	if (r->ready_fd < 0) {
		return;
	}
	if (write(r->ready_fd, &st, 1) != 1) {
		/* The parent is gone; nobody is left to tell. */
	}
	close(r->ready_fd);
	r->ready_fd = -1;
}

static int
repl_start(struct repl *r)
{
	pid_t holder = 0;
	int rc;

	if ((rc = repl_signals()) != 0) {
		log_fail("sigaction: %s", shmq_strerror(rc));
		return REPL_EXIT_FAIL;
	}
	rc = shmq_attach(r->home, NULL, &r->q);
	if (rc != 0) {
		log_fail("attach %s: %s", r->home, shmq_strerror(rc));
		return REPL_EXIT_FAIL;
	}
	rc = shmq_persister_open(r->q, log_from_lib, NULL, &holder, &r->ps);
	if (rc == -EBUSY && holder > 0) {
		log_fail("another shmq-replicator (pid %ld) is running for %s",
		    (long)holder, shmq_home(r->q));
		return REPL_EXIT_FAIL;
	}
	if (rc == -EBUSY) {
		log_fail("another shmq-replicator is running for %s",
		    shmq_home(r->q));
		return REPL_EXIT_FAIL;
	}
	if (rc != 0) {
		/* The library has logged the details (such as io_uring
		 * being unavailable). */
		log_fail("cannot persist %s: %s", shmq_home(r->q),
		    shmq_strerror(rc));
		return REPL_EXIT_FAIL;
	}
	log_msg(SHMQ_LOG_INFO, "ready: persisting %s (pid %ld, poll %d ms)",
	    shmq_home(r->q), (long)getpid(), r->poll_ms);
	notify_send("READY=1");
	return REPL_EXIT_OK;
}

static void
repl_reload(struct repl *r)
{
	char err[512];

	notify_reloading();
	if (r->config == NULL) {
		log_msg(SHMQ_LOG_INFO, "SIGHUP: no --config to reload");
	} else if (config_load(r->config, &r->file, err, sizeof(err)) != 0) {
		log_msg(SHMQ_LOG_ERROR,
		    "reload: %s; keeping the old "
		    "configuration",
		    err);
	} else {
		repl_apply(r);
		log_msg(SHMQ_LOG_INFO, "reloaded %s: log_level %s, poll_ms %d",
		    r->config, log_level_name(log_get_level()), r->poll_ms);
	}
	notify_send("READY=1");
}

static uint64_t
repl_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Turn the persister until a stop signal (0) or a failure (1). */
static int
repl_run(struct repl *r)
{
	uint64_t wd_usec = notify_watchdog_usec(), wd_last = 0, now;
	ssize_t n;

	while (!repl_stop_sig) {
		if (repl_hup) {
			repl_hup = 0;
			repl_reload(r);
		}
		n = shmq_persister_poll(r->ps, r->poll_ms);
		if (n < 0 && n != -EINTR) {
			log_msg(SHMQ_LOG_ERROR, "persister failed: %s",
			    shmq_strerror((int)n));
			return REPL_EXIT_FAIL;
		}
		if (n > 0) {
			log_msg(SHMQ_LOG_DEBUG, "%zd record%s made durable", n,
			    n == 1 ? "" : "s");
		}
		/* Ping at half the interval, as sd_watchdog_enabled(3)
		 * advises. */
		if (wd_usec > 0 &&
		    (now = repl_now_us()) - wd_last >= wd_usec / 2) {
			notify_send("WATCHDOG=1");
			wd_last = now;
		}
	}
	log_msg(SHMQ_LOG_INFO, "stopping on %s",
	    repl_stop_sig == SIGINT ? "SIGINT" : "SIGTERM");
	return REPL_EXIT_OK;
}

int
main(int argc, char **argv)
{
	struct repl r;
	char err[512];
	int rc;

	memset(&r, 0, sizeof(r));
	r.ready_fd = -1;
	config_init(&r.cli);
	config_init(&r.file);
	log_init();
	if ((rc = repl_options(&r, argc, argv)) >= 0) {
		goto out;
	}
	if (r.config != NULL &&
	    config_load(r.config, &r.file, err, sizeof(err)) != 0) {
		fprintf(stderr, "shmq-replicator: %s\n", err);
		rc = REPL_EXIT_USAGE;
		goto out;
	}
	repl_apply(&r);
	if (!r.foreground && (rc = repl_daemonize(&r)) >= 0) {
		goto out; /* the parent, with the child's startup status */
	}
	rc = repl_start(&r);
	repl_report(&r, rc);
	if (rc == REPL_EXIT_OK) {
		rc = repl_run(&r);
		notify_send("STOPPING=1");
	}
	shmq_persister_close(r.ps);
	shmq_detach(r.q);
	if (r.ps != NULL && rc == REPL_EXIT_OK) {
		log_msg(SHMQ_LOG_INFO, "stopped");
	}
out:
	free(r.home);
	free(r.config);
	return rc;
}
