/* UDP echo server on the kernel's sockets. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 7;
    int sockfd = socket(AF_INET, SOCK_DGRAM, 0);
    if (sockfd < 0) { perror("socket"); return 1; }
    struct sockaddr_in servaddr = { .sin_family = AF_INET, .sin_port = htons(port),
                                    .sin_addr.s_addr = htonl(INADDR_ANY) };
    if (bind(sockfd, (struct sockaddr *)&servaddr, sizeof servaddr) < 0) { perror("bind"); return 1; }
    printf("echoing UDP on port %d\n", port);
    fflush(stdout);
    static char buf[65536];
    for (;;) {
        struct sockaddr_in cliaddr;
        socklen_t len = sizeof cliaddr;
        ssize_t n = recvfrom(sockfd, buf, sizeof buf, 0, (struct sockaddr *)&cliaddr, &len);
        if (n < 0) { perror("recvfrom"); return 1; }
        printf("%zd bytes from %s:%d\n", n, inet_ntoa(cliaddr.sin_addr), ntohs(cliaddr.sin_port));
        fflush(stdout);
        if (sendto(sockfd, buf, n, 0, (struct sockaddr *)&cliaddr, len) < 0)
            perror("sendto");
    }
}
