/* What both fuzz targets share: a reader over the fuzzer's bytes, and the
 * checks every call's status must pass. */
#ifndef XESVM_FUZZ_H
#define XESVM_FUZZ_H
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xesvm.h>

typedef struct bytes {
	const uint8_t *p;
	size_t n;
} bytes;

static inline uint64_t take(bytes *b, unsigned width)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < width && b->n; i++, b->p++, b->n--)
		v |= (uint64_t)*b->p << (8 * i);
	return v;
}
#define take8(b) ((uint8_t)take((b), 1))
#define take16(b) ((uint16_t)take((b), 2))
#define take32(b) ((uint32_t)take((b), 4))
#define take64(b) take((b), 8)

/* A failure of the library, not of the input: report and abort, so that
 * libFuzzer saves the input as a crash. */
#define FUZZ_FAIL(...) do { fprintf(stderr, "fuzz: " __VA_ARGS__); fprintf(stderr, "\n  last error: %s\n", svm_last_error()); abort(); } while (0)

/* Every status is 0 or a negative errno the library can name; a panic
 * caught at the boundary (-ENOTRECOVERABLE) is a bug whatever the input;
 * a failure leaves a message. */
static inline int checked(int st, const char *call)
{
	/* XESVM_FUZZ_VERBOSE=1: every call and its status, to see what an
	 * input does (run the target on that one file). */
	static int verbose = -1;
	if (verbose < 0)
		verbose = getenv("XESVM_FUZZ_VERBOSE") != NULL;
	if (verbose)
		fprintf(stderr, "%4d %s  [%s]\n", st, call, st ? svm_last_error() : "");
	if (st > 0)
		FUZZ_FAIL("%s returned %d, a positive status", call, st);
	if (st == -ENOTRECOVERABLE)
		FUZZ_FAIL("%s panicked inside the library", call);
	if (st < 0) {
		if (strcmp(svm_strerror(st), "unknown error") == 0)
			FUZZ_FAIL("%s returned %d, which svm_strerror does not know", call, st);
		if (svm_last_error()[0] == '\0')
			FUZZ_FAIL("%s failed with %d but left no message", call, st);
	}
	return st;
}
#define CALL(expr) checked((expr), #expr)
#define MUST(expr) do { int st_ = CALL(expr); if (st_) FUZZ_FAIL("%s: %d (%s)", #expr, st_, svm_strerror(st_)); } while (0)

#endif
