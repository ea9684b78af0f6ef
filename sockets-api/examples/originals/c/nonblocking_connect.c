/* A nonblocking connect on the kernel's sockets: EINPROGRESS, poll for POLLOUT, SO_ERROR. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: %s SERVER_IP PORT [TIMEOUT_MS]\n", argv[0]); return 2; }
    int timeout_ms = argc > 3 ? atoi(argv[3]) : 3000;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) { fprintf(stderr, "bad address\n"); return 2; }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
        printf("connected at once\n");
    } else if (errno != EINPROGRESS) {
        printf("connect: %s\n", strerror(errno));
        return 1;
    } else {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        if (poll(&p, 1, timeout_ms) == 0) {
            printf("no answer within %d ms\n", timeout_ms);
            return 1;
        }
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            printf("connect: %s\n", strerror(err));
            return 1;
        }
        printf("connected to %s:%s\n", argv[1], argv[2]);
    }
    close(fd);
    return 0;
}
