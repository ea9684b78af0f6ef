/* TCP echo server on the kernel's sockets: one thread, poll(2) over every client. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CLIENTS 64

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 7;
    int listenfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(listenfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in servaddr = { .sin_family = AF_INET, .sin_port = htons(port),
                                    .sin_addr.s_addr = htonl(INADDR_ANY) };
    if (bind(listenfd, (struct sockaddr *)&servaddr, sizeof servaddr) < 0 || listen(listenfd, 16) < 0) {
        perror("bind/listen");
        return 1;
    }
    struct pollfd fds[1 + MAX_CLIENTS] = { { .fd = listenfd, .events = POLLIN } };
    nfds_t nfds = 1;
    char buf[4096];
    for (;;) {
        if (poll(fds, nfds, -1) < 0) { perror("poll"); return 1; }
        if ((fds[0].revents & POLLIN) && nfds <= MAX_CLIENTS) {
            struct sockaddr_in peer;
            socklen_t len = sizeof peer;
            int connfd = accept(listenfd, (struct sockaddr *)&peer, &len);
            if (connfd < 0) { perror("accept"); return 1; }
            printf("connection from %s:%d\n", inet_ntoa(peer.sin_addr), ntohs(peer.sin_port));
            fflush(stdout);
            fds[nfds++] = (struct pollfd){ .fd = connfd, .events = POLLIN };
        }
        for (nfds_t i = 1; i < nfds;) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) { i++; continue; }
            ssize_t n = recv(fds[i].fd, buf, sizeof buf, 0);
            if (n <= 0 || send(fds[i].fd, buf, n, 0) < 0) {
                close(fds[i].fd);
                fds[i] = fds[--nfds];
            } else {
                i++;
            }
        }
    }
}
