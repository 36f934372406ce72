/* Tiny assertion helpers for the C tests: print where and why, then fail. */
#ifndef XESVM_CHECK_H
#define XESVM_CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xesvm.h>

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d: CHECK failed: %s\n  last error: %s\n", __FILE__, __LINE__, #cond, svm_last_error()); \
	exit(1); } } while (0)

/* A call that must return status `want` (0 or a negative errno). */
#define CHECK_STATUS(call, want) do { int st_ = (call); if (st_ != (want)) { \
	fprintf(stderr, "%s:%d: %s returned %d (%s), wanted %d (%s)\n  last error: %s\n", __FILE__, __LINE__, #call, \
		st_, svm_strerror(st_), (int)(want), svm_strerror(want), svm_last_error()); \
	exit(1); } } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, 0)

#endif
