/*
 * config.c — parse the configuration file.
 *
 * The format is "key = value" lines; '#' starts a comment, blank lines
 * are skipped, blanks around key and value are ignored, and a key given
 * twice keeps its last value.  An unknown key or a bad value is an
 * error naming the file and line, so a typo never passes silently.
 * There are two keys (log_level, poll_ms), too few to take on a
 * dependency such as inih for them.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

void
config_init(struct config *cfg)
{
	cfg->log_level = -1;
	cfg->poll_ms = -1;
}

int
config_parse_poll_ms(const char *s, int *ms)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < CONFIG_POLL_MS_MIN ||
	    v > CONFIG_POLL_MS_MAX) {
		return -1;
	}
	*ms = (int)v;
	return 0;
}

/* Cut leading and trailing blanks in place. */
static char *
config_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s)) {
		s++;
	}
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1])) {
		e--;
	}
	*e = '\0';
	return s;
}

/* One line: 0, or -1 with the reason (no location) in err. */
static int
config_line(char *line, struct config *cfg, char *err, size_t errlen)
{
	char *hash = strchr(line, '#'), *eq, *key, *val;

	if (hash != NULL) {
		*hash = '\0';
	}
	line = config_trim(line);
	if (line[0] == '\0') {
		return 0;
	}
	eq = strchr(line, '=');
	if (eq == NULL) {
		snprintf(err, errlen, "expected 'key = value'");
		return -1;
	}
	*eq = '\0';
	key = config_trim(line);
	val = config_trim(eq + 1);
	if (strcmp(key, "log_level") == 0) {
		if (log_level_parse(val, &cfg->log_level) != 0) {
			snprintf(err, errlen,
			    "log_level must be error, warn, info or debug, "
			    "not '%s'",
			    val);
			return -1;
		}
	} else if (strcmp(key, "poll_ms") == 0) {
		if (config_parse_poll_ms(val, &cfg->poll_ms) != 0) {
			snprintf(err, errlen,
			    "poll_ms must be a number of ms from %d to %d, "
			    "not '%s'",
			    CONFIG_POLL_MS_MIN, CONFIG_POLL_MS_MAX, val);
			return -1;
		}
	} else {
		snprintf(err, errlen, "unknown key '%s'", key);
		return -1;
	}
	return 0;
}

int
config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	struct config tmp;
	char *line = NULL, why[256];
	size_t cap = 0, lineno = 0;
	FILE *f;
	int rc = 0;

	f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* A key left out goes back to its default. */
	config_init(&tmp);
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		if (config_line(line, &tmp, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
			rc = -1;
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	free(line);
	fclose(f);
	if (rc == 0) {
		*cfg = tmp;
	}
	return rc;
}
