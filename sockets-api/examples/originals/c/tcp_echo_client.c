/* TCP echo client on the kernel's sockets: each line of input out, its echo back. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: %s SERVER_IP [PORT]\n", argv[0]); return 2; }
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(argc > 2 ? atoi(argv[2]) : 7) };
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) { fprintf(stderr, "bad address\n"); return 2; }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("connect"); return 1; }
    FILE *in = fdopen(fd, "r+");
    char line[4096], echo[4096];
    while (fgets(line, sizeof line, stdin)) {
        fputs(line, in);
        fflush(in);
        if (!fgets(echo, sizeof echo, in)) { fprintf(stderr, "the server closed the connection\n"); break; }
        fputs(echo, stdout);
    }
    fclose(in);
    return 0;
}
