/* svm_version(): a static, non-empty "MAJOR.MINOR.PATCH" string, the one
 * the header's XESVM_VERSION_* macros describe. */
#include "check.h"

int main(void)
{
	const char *v = svm_version();
	unsigned major, minor, patch;
	CHECK(v != NULL);
	CHECK(sscanf(v, "%u.%u.%u", &major, &minor, &patch) == 3);
	CHECK(svm_version() == v); /* static: same pointer every time */
	CHECK(strcmp(v, XESVM_VERSION_STRING) == 0);
	CHECK(major == XESVM_VERSION_MAJOR && minor == XESVM_VERSION_MINOR && patch == XESVM_VERSION_PATCH);
	CHECK(XESVM_VERSION_NUMBER == XESVM_VERSION_MAJOR * 10000 + XESVM_VERSION_MINOR * 100 + XESVM_VERSION_PATCH);
#if XESVM_VERSION_NUMBER < 100
#error "the version macros must be usable in #if"
#endif
	/* A range query reports every device a context can hold. */
	CHECK(sizeof(((svm_range_info *)0)->devices) / sizeof(svm_range_device) == SVM_RANGE_MAX_DEVICES);
	CHECK(SVM_RANGE_MAX_DEVICES == 64);
	printf("xesvm %s\n", v);
	return 0;
}
