/*
 * report.c — what shmq-perf prints.
 *
 * Humans get three lines; with --json the last line is one JSON object
 * for scripts.  It holds only numbers and fixed words, so it is written
 * with printf.  MB are 10^6 bytes of record values (keys and the
 * library's per-record header are not counted).
 */
#include <stdarg.h>
#include <stdio.h>

#include "perf.h"

static const char *const perf_acks_names[] = { "none", "leader", "durable",
	"all" };

void
perf_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("shmq-perf: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static const char *
perf_acks_name(int acks)
{
	if (acks < 0 || acks > SHMQ_ACKS_ALL) {
		return "?";
	}
	return perf_acks_names[acks];
}

static const char *
plural(unsigned n)
{
	return n == 1 ? "" : "s";
}

static double
us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static void
perf_report_human(const struct perf_opts *o, const struct perf_result *r,
    double rate, double mb)
{
	const struct hist *h = &r->lat;
	int pp = o->mode == PERF_MODE_PINGPONG;

	if (pp) {
		printf("pingpong: %llu-byte values, acks %s, idle %s, %s\n",
		    (unsigned long long)o->record_size,
		    perf_acks_name(o->acks),
		    o->idle == SHMQ_IDLE_BUSY_SPIN ? "spin" : "park",
		    o->zero_copy ? "zero-copy" : "copy");
	} else {
		printf("stream: %u producer%s, %u consumer%s, "
		       "%llu-byte values, batch %u, acks %s, idle %s, %s\n",
		    o->producers, plural(o->producers), o->consumers,
		    plural(o->consumers), (unsigned long long)o->record_size,
		    o->batch, perf_acks_name(o->acks),
		    o->idle == SHMQ_IDLE_BUSY_SPIN ? "spin" : "park",
		    o->zero_copy ? "zero-copy" : "copy");
	}
	printf("%llu %s in %.3f s: %.0f msgs/s, %.1f MB/s\n",
	    (unsigned long long)r->records, pp ? "round trips" : "records",
	    r->seconds, rate, mb);
	if (hist_count(h) == 0) {
		printf("latency: none measured (no consumers)\n");
		return;
	}
	printf("%s latency (us): p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  "
	       "mean %.2f\n",
	    pp ? "round-trip" : "end-to-end", us(hist_percentile(h, 50.0)),
	    us(hist_percentile(h, 99.0)), us(hist_percentile(h, 99.9)),
	    us(hist_max(h)), hist_mean(h) / 1000.0);
}

void
perf_report(const struct perf_opts *o, const struct perf_result *r)
{
	const struct hist *h = &r->lat;
	double rate = 0.0;
	double mb = 0.0;
	/* A round trip moves the value twice. */
	double copies = o->mode == PERF_MODE_PINGPONG ? 2.0 : 1.0;

	if (r->seconds > 0.0) {
		rate = (double)r->records / r->seconds;
		mb = rate * copies * (double)o->record_size / 1e6;
	}
	perf_report_human(o, r, rate, mb);
	if (!o->json) {
		return;
	}
	printf("{\"mode\":\"%s\",\"producers\":%u,\"consumers\":%u,"
	       "\"record_size\":%llu,\"batch\":%u,\"records\":%llu,"
	       "\"seconds\":%.6f,\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,"
	       "\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,"
	       "\"max_us\":%.3f}\n",
	    o->mode == PERF_MODE_PINGPONG ? "pingpong" : "stream",
	    o->producers, o->consumers, (unsigned long long)o->record_size,
	    o->batch, (unsigned long long)r->records, r->seconds, rate, mb,
	    us(hist_percentile(h, 50.0)), us(hist_percentile(h, 99.0)),
	    us(hist_percentile(h, 99.9)), us(hist_max(h)));
}
