/*
 * progress.h — a one-line progress display on a terminal, for
 * shmqctl commands that work through a known (or growing) amount of
 * records: done, rate, remaining and ETA, redrawn in place with "\r".
 *
 * The display is for people: it is drawn only when its stream is a
 * terminal (or when forced), at most PROGRESS_HZ times a second, and
 * cleared at the end so that what follows starts on a clean line.
 * Nothing here decides what the command does; it only shows it.
 */
#ifndef SHMQCTL_PROGRESS_H
#define SHMQCTL_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

/* Redraws per second ("about five times a second"). */
#define PROGRESS_HZ 5
/* The rate is measured over the last this many draws (two seconds at
 * PROGRESS_HZ), so that it follows changes without jittering. */
#define PROGRESS_WINDOW 10

struct progress {
	FILE *f;
	int on; /* drawing at all */
	int64_t start_ns; /* CLOCK_MONOTONIC at init */
	int64_t last_ns; /* of the last draw (0: none yet) */
	size_t drawn; /* length of the line on screen, to blank it */
	/* Samples of (time, done) for the rate: a ring of n entries. */
	int64_t t[PROGRESS_WINDOW];
	uint64_t d[PROGRESS_WINDOW];
	unsigned head, n;
};

/* Monotonic clock in ns. */
int64_t progress_now_ns(void);

/* Start a display on f: on > 0 forces it, on == 0 turns it off, on < 0
 * draws only if f is a terminal. */
void progress_init(struct progress *pg, FILE *f, int on);

/* Is a redraw due (1/PROGRESS_HZ s since the last)?  Always 0 when
 * off. */
int progress_due(const struct progress *pg);

/* Redraw: "LABEL [bar] PCT  DONE done  RATE records/s  N left  ETA T"
 * when has_total (remaining is what is left of a known amount), else
 * "LABEL  DONE done  RATE records/s  lag N" (remaining is a current
 * lag).
 * The line is cut to the terminal's width. */
void progress_draw(struct progress *pg, const char *label, uint64_t done,
    int has_total, uint64_t remaining);

/* Blank the line (if one was drawn) and put the cursor at its start. */
void progress_end(struct progress *pg);

#endif /* SHMQCTL_PROGRESS_H */
