/*
 * The select(2) client of a networking course (Stevens' str_cli with select):
 * one thread waits on stdin and the socket at once, sends each line it reads
 * and prints whatever the server sends, as it comes. At the end of stdin it
 * shuts down the sending side and prints until the server closes. On tapstack:
 * the socket calls are tapstack_*, and tapstack_select takes the kernel's
 * stdin beside the stack's socket.
 *
 * usage: select_client TAP ADDR/PREFIX SERVER PORT
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
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
	int fd, maxfdp1, stdineof = 0;
	char buf[4096];
	fd_set rset;
	ssize_t n;

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

	FD_ZERO(&rset);
	for (;;) {
		if (!stdineof)
			FD_SET(STDIN_FILENO, &rset);
		FD_SET(fd, &rset);
		maxfdp1 = (fd > STDIN_FILENO ? fd : STDIN_FILENO) + 1;
		if (tapstack_select(maxfdp1, &rset, NULL, NULL, NULL) < 0)
			die("select");

		if (FD_ISSET(fd, &rset)) { /* the socket is readable */
			if ((n = tapstack_read(fd, buf, sizeof buf)) < 0)
				die("read");
			if (n == 0) {
				if (stdineof)
					break; /* a normal end */
				fprintf(stderr, "the server closed the connection early\n");
				return 1;
			}
			fwrite(buf, 1, n, stdout);
			fflush(stdout);
		}

		if (FD_ISSET(STDIN_FILENO, &rset)) { /* input is readable */
			if ((n = read(STDIN_FILENO, buf, sizeof buf)) < 0)
				die("read stdin");
			if (n == 0) {
				stdineof = 1;
				if (tapstack_shutdown(fd, SHUT_WR) < 0)
					die("shutdown");
				FD_CLR(STDIN_FILENO, &rset);
				continue;
			}
			if (tapstack_write(fd, buf, n) != n)
				die("write");
		}
	}
	tapstack_close(fd);
	tapstack_stop();
	return 0;
}
