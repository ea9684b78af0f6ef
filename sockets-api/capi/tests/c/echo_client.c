/*
 * A TCP client as in a networking course: connect, send what stdin holds,
 * shut down the sending side, and print everything the server sends until it
 * closes. On tapstack: the calls are tapstack_*, after tapstack_start.
 *
 * usage: echo_client TAP ADDR/PREFIX SERVER PORT < input
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tapstack.h"

static void die(const char *call)
{
	perror(call);
	exit(1);
}

int main(int argc, char **argv)
{
	struct sockaddr_in servaddr;
	char buf[4096];
	ssize_t n;
	int fd;

	if (argc != 5) {
		fprintf(stderr, "usage: %s TAP ADDR/PREFIX SERVER PORT\n", argv[0]);
		return 2;
	}
	if (tapstack_start(argv[1], argv[2], NULL) < 0)
		die("tapstack_start");
	if ((fd = tapstack_socket(AF_INET, SOCK_STREAM, 0)) < 0)
		die("socket");
	memset(&servaddr, 0, sizeof servaddr);
	servaddr.sin_family = AF_INET;
	servaddr.sin_port = htons(atoi(argv[4]));
	if (inet_pton(AF_INET, argv[3], &servaddr.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[3]);
		return 2;
	}
	if (tapstack_connect(fd, (struct sockaddr *)&servaddr, sizeof servaddr) < 0)
		die("connect");

	while ((n = read(0, buf, sizeof buf)) > 0)
		if (tapstack_write(fd, buf, n) != n)
			die("write");
	if (tapstack_shutdown(fd, SHUT_WR) < 0)
		die("shutdown");
	while ((n = tapstack_read(fd, buf, sizeof buf)) > 0)
		fwrite(buf, 1, n, stdout);
	if (n < 0)
		die("read");
	tapstack_close(fd);
	tapstack_stop();
	return 0;
}
