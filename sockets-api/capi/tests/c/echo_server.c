/*
 * A TCP echo server as in a networking course: socket, setsockopt, bind,
 * listen, then accept and a thread per client that reads and writes back
 * until the client closes. On tapstack: the calls are tapstack_*, and
 * tapstack_start puts the stack on a TAP first.
 *
 * usage: echo_server TAP ADDR/PREFIX PORT
 * build: cc -I sockets-api/capi/include echo_server.c -Ltarget/debug -ltapstack -lpthread
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapstack.h"

static void die(const char *call)
{
	perror(call);
	exit(1);
}

static void *serve(void *arg)
{
	int connfd = (int)(intptr_t)arg;
	char buf[4096];
	ssize_t n;

	while ((n = tapstack_read(connfd, buf, sizeof buf)) > 0) {
		ssize_t off = 0;
		while (off < n) {
			ssize_t w = tapstack_write(connfd, buf + off, n - off);
			if (w < 0) {
				perror("write");
				goto out;
			}
			off += w;
		}
	}
	if (n < 0)
		perror("read");
out:
	tapstack_close(connfd);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in servaddr, cliaddr;
	socklen_t len;
	int listenfd, connfd, one = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: %s TAP ADDR/PREFIX PORT\n", argv[0]);
		return 2;
	}
	if (tapstack_start(argv[1], argv[2], NULL) < 0)
		die("tapstack_start");

	if ((listenfd = tapstack_socket(AF_INET, SOCK_STREAM, 0)) < 0)
		die("socket");
	if (tapstack_setsockopt(listenfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		die("setsockopt");
	memset(&servaddr, 0, sizeof servaddr);
	servaddr.sin_family = AF_INET;
	servaddr.sin_addr.s_addr = htonl(INADDR_ANY);
	servaddr.sin_port = htons(atoi(argv[3]));
	if (tapstack_bind(listenfd, (struct sockaddr *)&servaddr, sizeof servaddr) < 0)
		die("bind");
	if (tapstack_listen(listenfd, 16) < 0)
		die("listen");
	printf("listening on port %s\n", argv[3]);
	fflush(stdout);

	for (;;) {
		pthread_t t;

		len = sizeof cliaddr;
		if ((connfd = tapstack_accept(listenfd, (struct sockaddr *)&cliaddr, &len)) < 0)
			die("accept");
		if (pthread_create(&t, NULL, serve, (void *)(intptr_t)connfd) != 0)
			die("pthread_create");
		pthread_detach(t);
	}
}
