/*
 * Checks tapstack.h compiles cleanly and the library keeps libc's conventions
 * without a TAP: -1 and errno, before a stack is started and for bad arguments.
 * Prints "ok" and exits 0, or names the first check that failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>

#include "tapstack.h"

#define CHECK(expr, want_errno)                                                   \
	do {                                                                      \
		errno = 0;                                                        \
		if ((expr) != -1 || errno != (want_errno)) {                      \
			printf("FAIL: %s: errno %d, want %d\n", #expr, errno,     \
			       want_errno);                                       \
			return 1;                                                 \
		}                                                                 \
	} while (0)

int main(void)
{
	int one = 1;

	CHECK(tapstack_socket(AF_INET, SOCK_STREAM, 0), ENETDOWN);
	CHECK(tapstack_fcntl(3, F_SETFL, O_NONBLOCK), ENETDOWN);
	CHECK(tapstack_ioctl(3, FIONBIO, &one), ENETDOWN);
	CHECK(tapstack_close(3), ENETDOWN);
	CHECK(tapstack_start("tap0", "not-an-address", NULL), EINVAL);
	CHECK(tapstack_start("tap0", "10.0.0.2/24", "bad gateway"), EINVAL);
	CHECK(tapstack_stop(), ENETDOWN);
	printf("ok\n");
	return 0;
}
