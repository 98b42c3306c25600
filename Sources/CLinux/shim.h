#include <linux/if_tun.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* glibc declares accept4 and setns only under _GNU_SOURCE, which Swift's Glibc module is built without. */
extern int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
extern int setns(int fd, int nstype);

/* TUNSETIFF is a function-like macro, which Swift cannot import. */
static const unsigned long clinux_TUNSETIFF = TUNSETIFF;

/* tgkill(2): a signal to one thread of a process. syscall(2) is variadic, which Swift cannot call. */
static inline int clinux_tgkill(int process, int thread, int signal) {
    return (int)syscall(SYS_tgkill, process, thread, signal);
}
