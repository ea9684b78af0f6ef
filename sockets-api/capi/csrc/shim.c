/*
 * The C part of libtapstack: what stable Rust cannot define.
 *
 packetdrill's struct of function pointers holds two variadic ones, fcntl and
 * ioctl: pd_fcntl and pd_ioctl take their one argument and call the Rust
 * functions with a fixed signature. tapstack_pd_fill fills the struct with them
 * and the Rust tapstack_pd_* functions; the Rust packetdrill_interface_init
 * (exported from libtapstack.so) calls it. The struct's layout is packetdrill's
 * ABI (gtests/net/packetdrill/packetdrill.h), declared here field by field in
 * the same order.
 *
 * (tapstack_fcntl and tapstack_ioctl, the variadic calls for C programs, are
 * static inline functions in tapstack.h: a cdylib exports only Rust's symbols.)
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <unistd.h>

#include "tapstack.h"

/* packetdrill's interface, in its ABI's field order. */
struct packetdrill_interface {
	void *userdata;
	void (*free)(void *);
	int (*socket)(void *, int, int, int);
	int (*bind)(void *, int, const struct sockaddr *, socklen_t);
	int (*listen)(void *, int, int);
	int (*accept)(void *, int, struct sockaddr *, socklen_t *);
	int (*connect)(void *, int, const struct sockaddr *, socklen_t);
	ssize_t (*read)(void *, int, void *, size_t);
	ssize_t (*readv)(void *, int, const struct iovec *, int);
	ssize_t (*recv)(void *, int, void *, size_t, int);
	ssize_t (*recvfrom)(void *, int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*recvmsg)(void *, int, struct msghdr *, int);
	ssize_t (*write)(void *, int, const void *, size_t);
	ssize_t (*writev)(void *, int, const struct iovec *, int);
	ssize_t (*send)(void *, int, const void *, size_t, int);
	ssize_t (*sendto)(void *, int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*sendmsg)(void *, int, const struct msghdr *, int);
	int (*fcntl)(void *, int, int, ...);
	int (*ioctl)(void *, int, unsigned long, ...);
	int (*close)(void *, int);
	int (*shutdown)(void *, int, int);
	int (*getsockopt)(void *, int, int, int, void *, socklen_t *);
	int (*setsockopt)(void *, int, int, int, const void *, socklen_t);
	int (*poll)(void *, struct pollfd *, nfds_t, int);
	int (*netdev_send)(void *, const void *, size_t);
	int (*netdev_receive)(void *, void *, size_t *, long long *);
	int (*usleep)(void *, useconds_t);
	int (*gettimeofday)(void *, struct timeval *, struct timezone *);
	int (*epoll_create)(void *, int);
	int (*epoll_ctl)(void *, int, int, int, struct epoll_event *);
	int (*epoll_wait)(void *, int, struct epoll_event *, int, int);
	int (*pipe)(void *, int[2]);
	int (*splice)(void *, int, loff_t *, int, loff_t *, size_t, unsigned int);
};

void tapstack_pd_free(void *);
int tapstack_pd_socket(void *, int, int, int);
int tapstack_pd_bind(void *, int, const struct sockaddr *, socklen_t);
int tapstack_pd_listen(void *, int, int);
int tapstack_pd_accept(void *, int, struct sockaddr *, socklen_t *);
int tapstack_pd_connect(void *, int, const struct sockaddr *, socklen_t);
ssize_t tapstack_pd_read(void *, int, void *, size_t);
ssize_t tapstack_pd_readv(void *, int, const struct iovec *, int);
ssize_t tapstack_pd_recv(void *, int, void *, size_t, int);
ssize_t tapstack_pd_recvfrom(void *, int, void *, size_t, int, struct sockaddr *, socklen_t *);
ssize_t tapstack_pd_recvmsg(void *, int, struct msghdr *, int);
ssize_t tapstack_pd_write(void *, int, const void *, size_t);
ssize_t tapstack_pd_writev(void *, int, const struct iovec *, int);
ssize_t tapstack_pd_send(void *, int, const void *, size_t, int);
ssize_t tapstack_pd_sendto(void *, int, const void *, size_t, int, const struct sockaddr *, socklen_t);
ssize_t tapstack_pd_sendmsg(void *, int, const struct msghdr *, int);
int tapstack_pd_fcntl_int(void *, int, int, int);
int tapstack_pd_ioctl_ptr(void *, int, unsigned long, int *);
int tapstack_pd_close(void *, int);
int tapstack_pd_shutdown(void *, int, int);
int tapstack_pd_getsockopt(void *, int, int, int, void *, socklen_t *);
int tapstack_pd_setsockopt(void *, int, int, int, const void *, socklen_t);
int tapstack_pd_poll(void *, struct pollfd *, nfds_t, int);
int tapstack_pd_netdev_send(void *, const void *, size_t);
int tapstack_pd_netdev_receive(void *, void *, size_t *, long long *);
int tapstack_pd_usleep(void *, useconds_t);
int tapstack_pd_gettimeofday(void *, struct timeval *, struct timezone *);

static int pd_fcntl(void *ud, int fd, int cmd, ...)
{
	va_list ap;
	int arg;

	va_start(ap, cmd);
	arg = va_arg(ap, int);
	va_end(ap);
	return tapstack_pd_fcntl_int(ud, fd, cmd, arg);
}

static int pd_ioctl(void *ud, int fd, unsigned long request, ...)
{
	va_list ap;
	int *arg;

	va_start(ap, request);
	arg = va_arg(ap, int *);
	va_end(ap);
	return tapstack_pd_ioctl_ptr(ud, fd, request, arg);
}

void tapstack_pd_fill(void *userdata, struct packetdrill_interface *ifc)
{
	ifc->userdata = userdata;
	ifc->free = tapstack_pd_free;
	ifc->socket = tapstack_pd_socket;
	ifc->bind = tapstack_pd_bind;
	ifc->listen = tapstack_pd_listen;
	ifc->accept = tapstack_pd_accept;
	ifc->connect = tapstack_pd_connect;
	ifc->read = tapstack_pd_read;
	ifc->readv = tapstack_pd_readv;
	ifc->recv = tapstack_pd_recv;
	ifc->recvfrom = tapstack_pd_recvfrom;
	ifc->recvmsg = tapstack_pd_recvmsg;
	ifc->write = tapstack_pd_write;
	ifc->writev = tapstack_pd_writev;
	ifc->send = tapstack_pd_send;
	ifc->sendto = tapstack_pd_sendto;
	ifc->sendmsg = tapstack_pd_sendmsg;
	ifc->fcntl = pd_fcntl;
	ifc->ioctl = pd_ioctl;
	ifc->close = tapstack_pd_close;
	ifc->shutdown = tapstack_pd_shutdown;
	ifc->getsockopt = tapstack_pd_getsockopt;
	ifc->setsockopt = tapstack_pd_setsockopt;
	ifc->poll = tapstack_pd_poll;
	ifc->netdev_send = tapstack_pd_netdev_send;
	ifc->netdev_receive = tapstack_pd_netdev_receive;
	ifc->usleep = tapstack_pd_usleep;
	ifc->gettimeofday = tapstack_pd_gettimeofday;
	/* No epoll, pipes or splice: scripts using them fail at that call. */
	ifc->epoll_create = NULL;
	ifc->epoll_ctl = NULL;
	ifc->epoll_wait = NULL;
	ifc->pipe = NULL;
	ifc->splice = NULL;
}
