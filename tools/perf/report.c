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
static const char *const perf_mode_names[] = { "stream", "pingpong",
	"backlog" };

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

/* ", persistent, fsync always" for a persistent topic perf creates. */
static void
perf_print_durability(const struct perf_opts *o)
{
	if (o->durability != SHMQ_DURABILITY_PERSISTENT) {
		printf("\n");
		return;
	}
	if (o->fsync == SHMQ_FSYNC_INTERVAL) {
		printf(
		    ", persistent, fsync every %u ms\n", o->fsync_interval_ms);
		return;
	}
	printf(", persistent, fsync %s\n",
	    o->fsync == SHMQ_FSYNC_NEVER ? "never" : "always");
}

static void
perf_print_ack(const struct perf_result *r, const char *what)
{
	if (hist_count(&r->ack) == 0) {
		return;
	}
	printf("%s (us): p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  "
	       "mean %.2f\n",
	    what, us(hist_percentile(&r->ack, 50.0)),
	    us(hist_percentile(&r->ack, 99.0)),
	    us(hist_percentile(&r->ack, 99.9)), us(hist_max(&r->ack)),
	    hist_mean(&r->ack) / 1000.0);
}

static void
perf_report_backlog(const struct perf_opts *o, const struct perf_result *r)
{
	double fill_rate = r->fill_seconds > 0.0
	    ? (double)r->fill_records / r->fill_seconds
	    : 0.0;

	printf("fill: %llu records in %.3f s: %.0f msgs/s, %.1f MB/s; "
	       "all durable %.3f s after\n",
	    (unsigned long long)r->fill_records, r->fill_seconds, fill_rate,
	    fill_rate * (double)o->record_size / 1e6, r->durable_wait);
	perf_print_ack(r, "fill ack latency");
	printf("backlog: %.1f MB in the log, %.1f%% of it only in segments; "
	       "first read %.3f s\n",
	    (double)r->backlog_bytes / 1e6,
	    r->backlog_bytes > r->ring_bytes
	        ? 100.0 * (double)(r->backlog_bytes - r->ring_bytes) /
	            (double)r->backlog_bytes
	        : 0.0,
	    r->warm_seconds);
}

static void
perf_report_human(const struct perf_opts *o, const struct perf_result *r,
    double rate, double mb)
{
	const struct hist *h = &r->lat;
	int pp = o->mode == PERF_MODE_PINGPONG;

	if (pp) {
		printf("pingpong: %llu-byte values, acks %s, idle %s, %s",
		    (unsigned long long)o->record_size,
		    perf_acks_name(o->acks),
		    o->idle == SHMQ_IDLE_BUSY_SPIN ? "spin" : "park",
		    o->zero_copy ? "zero-copy" : "copy");
	} else {
		printf("%s: %u producer%s, %u consumer%s, "
		       "%llu-byte values, batch %u, acks %s, idle %s, %s",
		    perf_mode_names[o->mode], o->producers,
		    plural(o->producers), o->consumers, plural(o->consumers),
		    (unsigned long long)o->record_size, o->batch,
		    perf_acks_name(o->acks),
		    o->idle == SHMQ_IDLE_BUSY_SPIN ? "spin" : "park",
		    o->zero_copy ? "zero-copy" : "copy");
	}
	perf_print_durability(o);
	if (o->mode == PERF_MODE_BACKLOG) {
		perf_report_backlog(o, r);
	}
	printf("%llu %s in %.3f s: %.0f msgs/s, %.1f MB/s\n",
	    (unsigned long long)r->records,
	    pp                                 ? "round trips"
	        : o->mode == PERF_MODE_BACKLOG ? "records read (timed)"
	                                       : "records",
	    r->seconds, rate, mb);
	if (o->mode == PERF_MODE_BACKLOG) {
		return; /* old records: their age is not a latency */
	}
	perf_print_ack(r, "ack latency");
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
	       "\"max_us\":%.3f",
	    perf_mode_names[o->mode], o->producers, o->consumers,
	    (unsigned long long)o->record_size, o->batch,
	    (unsigned long long)r->records, r->seconds, rate, mb,
	    us(hist_percentile(h, 50.0)), us(hist_percentile(h, 99.0)),
	    us(hist_percentile(h, 99.9)), us(hist_max(h)));
	if (hist_count(&r->ack) != 0) {
		printf(",\"ack_p50_us\":%.3f,\"ack_p99_us\":%.3f,"
		       "\"ack_p999_us\":%.3f,\"ack_max_us\":%.3f",
		    us(hist_percentile(&r->ack, 50.0)),
		    us(hist_percentile(&r->ack, 99.0)),
		    us(hist_percentile(&r->ack, 99.9)), us(hist_max(&r->ack)));
	}
	if (o->mode == PERF_MODE_BACKLOG) {
		printf(",\"fill_records\":%llu,\"fill_s\":%.6f,"
		       "\"durable_wait_s\":%.6f,\"backlog_bytes\":%llu,"
		       "\"ring_bytes\":%llu,\"first_read_s\":%.6f",
		    (unsigned long long)r->fill_records, r->fill_seconds,
		    r->durable_wait, (unsigned long long)r->backlog_bytes,
		    (unsigned long long)r->ring_bytes, r->warm_seconds);
	}
	printf("}\n");
}
