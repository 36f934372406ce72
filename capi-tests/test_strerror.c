/* svm_strerror(): known codes of either sign, success, and unknown codes. */
#include <errno.h>
#include "check.h"

int main(void)
{
	CHECK(strcmp(svm_strerror(0), "success") == 0);
	CHECK(strstr(svm_strerror(-EBUSY), "EBUSY") != NULL);
	CHECK(strcmp(svm_strerror(-EBUSY), svm_strerror(EBUSY)) == 0);
	CHECK(strstr(svm_strerror(-ENOLINK), "ENOLINK") != NULL);
	CHECK(strstr(svm_strerror(-ENOMEM), "ENOMEM") != NULL);
	CHECK(strstr(svm_strerror(-EINVAL), "EINVAL") != NULL);
	CHECK(strcmp(svm_strerror(-99999), "unknown error") == 0);
	CHECK(strcmp(svm_strerror(-2147483647 - 1), "unknown error") == 0);
	CHECK(svm_last_error() != NULL);
	return 0;
}
