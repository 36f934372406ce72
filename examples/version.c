/* The smallest xesvm client: cc version.c $(pkg-config --cflags --libs xesvm) */
#include <stdio.h>
#include <xesvm.h>

int main(void)
{
	printf("xesvm %s\n", svm_version());
	return 0;
}
