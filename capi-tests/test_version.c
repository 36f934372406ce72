/* svm_version(): a static, non-empty "MAJOR.MINOR.PATCH" string. */
#include "check.h"

int main(void)
{
	const char *v = svm_version();
	unsigned major, minor, patch;
	CHECK(v != NULL);
	CHECK(sscanf(v, "%u.%u.%u", &major, &minor, &patch) == 3);
	CHECK(svm_version() == v); /* static: same pointer every time */
	printf("xesvm %s\n", v);
	return 0;
}
