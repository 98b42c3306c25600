#include <linux/if_tun.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* glibc declares accept4 and setns only under _GNU_SOURCE, which Swift's Glibc module is built without. */
extern int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
extern int setns(int fd, int nstype);

/* TUNSETIFF is a function-like macro, which Swift cannot import. */
static const unsigned long clinux_TUNSETIFF = TUNSETIFF;
