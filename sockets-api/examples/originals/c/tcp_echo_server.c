/* TCP echo server on the kernel's sockets: a thread per client. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void *serve(void *arg)
{
    int connfd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = recv(connfd, buf, sizeof buf, 0)) > 0)
        if (send(connfd, buf, n, 0) < 0) {
            perror("send");
            break;
        }
    close(connfd);
    return NULL;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 7;
    int listenfd = socket(AF_INET, SOCK_STREAM, 0);
    if (listenfd < 0) { perror("socket"); return 1; }
    int one = 1;
    setsockopt(listenfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in servaddr = { .sin_family = AF_INET, .sin_port = htons(port),
                                    .sin_addr.s_addr = htonl(INADDR_ANY) };
    if (bind(listenfd, (struct sockaddr *)&servaddr, sizeof servaddr) < 0) { perror("bind"); return 1; }
    if (listen(listenfd, 16) < 0) { perror("listen"); return 1; }
    printf("echoing TCP on port %d\n", port);
    fflush(stdout);
    for (;;) {
        struct sockaddr_in cliaddr;
        socklen_t len = sizeof cliaddr;
        int connfd = accept(listenfd, (struct sockaddr *)&cliaddr, &len);
        if (connfd < 0) { perror("accept"); return 1; }
        printf("connection from %s:%d\n", inet_ntoa(cliaddr.sin_addr), ntohs(cliaddr.sin_port));
        fflush(stdout);
        pthread_t t;
        pthread_create(&t, NULL, serve, (void *)(intptr_t)connfd);
        pthread_detach(t);
    }
}
