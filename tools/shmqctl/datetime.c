/*
 * datetime.c — ISO 8601 date-times for `group reset-offsets
 * --to-datetime`.
 *
 * Accepted: YYYY-MM-DDTHH:MM[:SS[.fraction]][zone], where the zone is
 * Z, ±HH, ±HHMM or ±HH:MM, and the separator may also be a space.
 * Without a zone the time is local, as in Kafka's --to-datetime.  The
 * fraction keeps nanoseconds; further digits are dropped.  Every field
 * is range-checked (no February 30th): a typo must not silently reset
 * offsets to some other time.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shmqctl.h"

#define NS_PER_SEC 1000000000LL

/* Exactly n decimal digits. */
static int
dt_digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9') {
			return -1;
		}
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int
dt_days_in_month(int year, int mon)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
		30, 31 };
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return mon == 2 && leap ? 29 : days[mon - 1];
}

static int
dt_date(const char **p, struct tm *tm)
{
	int year, mon, day;

	if (dt_digits(p, 4, &year) != 0 || *(*p)++ != '-' ||
	    dt_digits(p, 2, &mon) != 0 || *(*p)++ != '-' ||
	    dt_digits(p, 2, &day) != 0) {
		return -1;
	}
	if (mon < 1 || mon > 12 || day < 1 ||
	    day > dt_days_in_month(year, mon)) {
		return -1;
	}
	tm->tm_year = year - 1900;
	tm->tm_mon = mon - 1;
	tm->tm_mday = day;
	return 0;
}

/* HH:MM[:SS[.fraction]]; the fraction goes to *frac_ns. */
static int
dt_time(const char **p, struct tm *tm, int64_t *frac_ns)
{
	int64_t scale = NS_PER_SEC / 10;

	if (dt_digits(p, 2, &tm->tm_hour) != 0 || *(*p)++ != ':' ||
	    dt_digits(p, 2, &tm->tm_min) != 0) {
		return -1;
	}
	if (**p == ':') {
		(*p)++;
		if (dt_digits(p, 2, &tm->tm_sec) != 0) {
			return -1;
		}
		if (**p == '.' || **p == ',') {
			(*p)++;
			if (**p < '0' || **p > '9') {
				return -1;
			}
			for (; **p >= '0' && **p <= '9'; (*p)++) {
				*frac_ns += scale * (**p - '0');
				scale /= 10;
			}
		}
	}
	/* A leap second (:60) is accepted and lands on the next minute. */
	if (tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60) {
		return -1;
	}
	return 0;
}

/* Z, ±HH, ±HHMM, ±HH:MM, or nothing (*has_zone = 0). */
static int
dt_zone(const char **p, int *has_zone, long *east_sec)
{
	int sign, hh, mm = 0;

	*has_zone = 1;
	if (**p == 'Z' || **p == 'z') {
		(*p)++;
		*east_sec = 0;
		return 0;
	}
	if (**p != '+' && **p != '-') {
		*has_zone = 0;
		return 0;
	}
	sign = *(*p)++ == '-' ? -1 : 1;
	if (dt_digits(p, 2, &hh) != 0) {
		return -1;
	}
	if (**p == ':') {
		(*p)++;
		if (dt_digits(p, 2, &mm) != 0) {
			return -1;
		}
	} else if (**p != '\0' && dt_digits(p, 2, &mm) != 0) {
		return -1;
	}
	if (hh > 23 || mm > 59) {
		return -1;
	}
	*east_sec = sign * (hh * 3600L + mm * 60L);
	return 0;
}

int
ctl_parse_datetime(const char *s, int64_t *ns)
{
	struct tm tm;
	int64_t frac = 0;
	long east = 0;
	int has_zone;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (dt_date(&s, &tm) != 0 || (*s != 'T' && *s != 't' && *s != ' ')) {
		return -1;
	}
	s++;
	if (dt_time(&s, &tm, &frac) != 0 ||
	    dt_zone(&s, &has_zone, &east) != 0 || *s != '\0') {
		return -1;
	}
	if (has_zone) {
		t = timegm(&tm) - east;
	} else {
		tm.tm_isdst = -1;
		t = mktime(&tm);
	}
	/* int64 nanoseconds end in the year 2262. */
	if (t > INT64_MAX / NS_PER_SEC - 1 || t < INT64_MIN / NS_PER_SEC + 1) {
		return -1;
	}
	*ns = (int64_t)t * NS_PER_SEC + frac;
	return 0;
}
