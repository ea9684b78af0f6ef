/*
 * libtapstack: tapstack's socket calls for C programs.
 *
 * Each tapstack_X behaves as libc's X(2) on a socket of the stack started by
 * tapstack_start: it returns -1 and sets errno on failure. The constants
 * (AF_INET, SOCK_STREAM, O_NONBLOCK, FIONBIO, ...) are Linux's, from the usual
 * system headers.
 *
 *     tapstack_start("tap0", "10.0.0.2/24", NULL);
 *     int fd = tapstack_socket(AF_INET, SOCK_STREAM, 0);
 *     ...
 *     tapstack_stop();
 *
 * Link with -ltapstack (libtapstack.so, or libtapstack.a with -lpthread -ldl -lm).
 *
 * Descriptors: a socket's number is a kernel descriptor the library holds for
 * it, so it is never also the number of a file, a pipe or stdin, and
 * tapstack_poll and tapstack_select take both kinds in one set (the select
 * lecture's client waits on stdin and a socket). Use tapstack_* calls on a
 * socket, never libc's close(2) or read(2), which would see the placeholder.
 */
#ifndef TAPSTACK_H
#define TAPSTACK_H

#include <poll.h>
#include <stdarg.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Starts a stack on TAP `tap` (created if needed) with address `cidr`
 * ("10.0.0.2/24") and default gateway `gateway` (NULL for none). One per process. */
int tapstack_start(const char *tap, const char *cidr, const char *gateway);
/* Stops it; its descriptors are gone. */
int tapstack_stop(void);

int tapstack_socket(int domain, int type, int protocol);
int tapstack_bind(int fd, const struct sockaddr *addr, socklen_t len);
int tapstack_listen(int fd, int backlog);
int tapstack_accept(int fd, struct sockaddr *addr, socklen_t *len);
int tapstack_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int tapstack_connect(int fd, const struct sockaddr *addr, socklen_t len);
ssize_t tapstack_send(int fd, const void *buf, size_t len, int flags);
ssize_t tapstack_recv(int fd, void *buf, size_t len, int flags);
ssize_t tapstack_sendto(int fd, const void *buf, size_t len, int flags,
			const struct sockaddr *addr, socklen_t alen);
ssize_t tapstack_recvfrom(int fd, void *buf, size_t len, int flags,
			  struct sockaddr *addr, socklen_t *alen);
ssize_t tapstack_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t tapstack_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t tapstack_read(int fd, void *buf, size_t len);
ssize_t tapstack_write(int fd, const void *buf, size_t len);
ssize_t tapstack_readv(int fd, const struct iovec *iov, int iovcnt);
ssize_t tapstack_writev(int fd, const struct iovec *iov, int iovcnt);
int tapstack_shutdown(int fd, int how);
int tapstack_close(int fd);
int tapstack_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int tapstack_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int tapstack_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int tapstack_getpeername(int fd, struct sockaddr *addr, socklen_t *len);
/* The fixed-signature halves of tapstack_fcntl and tapstack_ioctl. */
int tapstack_fcntl_int(int fd, int cmd, int arg);
int tapstack_ioctl_ptr(int fd, unsigned long request, int *arg);
/* Sockets and ordinary descriptors (stdin, pipes, files) mixed, as libc's. */
int tapstack_poll(struct pollfd *fds, nfds_t nfds, int timeout);
int tapstack_select(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds,
		    struct timeval *timeout);

/* fcntl(2) and ioctl(2) are variadic, which the library (written in Rust)
 * cannot define: these take the one argument and call the halves above. */

/* F_GETFL, F_SETFL (O_NONBLOCK), F_GETFD, F_SETFD. */
static inline int tapstack_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	int arg;

	va_start(ap, cmd);
	arg = va_arg(ap, int); /* F_GET* pass none: the value is ignored then */
	va_end(ap);
	return tapstack_fcntl_int(fd, cmd, arg);
}

/* FIONBIO and FIONREAD, each with an int *. */
static inline int tapstack_ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	int *arg;

	va_start(ap, request);
	arg = va_arg(ap, int *);
	va_end(ap);
	return tapstack_ioctl_ptr(fd, request, arg);
}

#ifdef __cplusplus
}
#endif

#endif /* TAPSTACK_H */
