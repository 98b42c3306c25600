#include "CrashExit.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static const int fatal_signals[] = {SIGQUIT, SIGABRT, SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGTRAP};
#define FATAL_COUNT (sizeof(fatal_signals) / sizeof(fatal_signals[0]))

/* The runtime's handlers, run before the process ends. Written once before any crash, read only in handlers. */
static struct sigaction previous[FATAL_COUNT];
static unsigned report_deadline_ms;
/* The signal of the first crash; 0 until one happens. Any later crash, or the deadline, ends the process with it. */
static volatile sig_atomic_t crash_signal;

/* Sets `signum`'s action to `handler` (or SIG_DFL) and unblocks it in this thread. Async-signal-safe. */
static void handle_here(int signum, void (*handler)(int)) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    sigaction(signum, &action, NULL);
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, signum);
    sigprocmask(SIG_UNBLOCK, &unblock, NULL);
}

/* Ends the process with `signum`'s default action. Only async-signal-safe calls. */
static void die_with(int signum) {
    handle_here(signum, SIG_DFL);
    /* To this thread, where the signal is unblocked: a process-directed signal could wait on a thread that blocks it. */
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), signum);
    /* Unreachable unless the signal was ignored by default (none of ours is); exit as a shell reports a signal. */
    _exit(128 + signum);
}

static void on_deadline(int signum) {
    (void)signum;
    die_with(crash_signal);
}

static void on_fatal(int signum, siginfo_t *info, void *context) {
    int expected = 0;
    if (!__atomic_compare_exchange_n(&crash_signal, &expected, signum, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        /* A second crash, or the report itself crashed: no second report. */
        die_with(crash_signal);
    }
    handle_here(SIGALRM, on_deadline);
    struct itimerval timer;
    memset(&timer, 0, sizeof timer);
    timer.it_value.tv_sec = report_deadline_ms / 1000;
    timer.it_value.tv_usec = (report_deadline_ms % 1000) * 1000;
    setitimer(ITIMER_REAL, &timer, NULL);

    size_t index = 0;
    while (index < FATAL_COUNT && fatal_signals[index] != signum) index++;
    if (index < FATAL_COUNT) {
        const struct sigaction *report = &previous[index];
        if (report->sa_flags & SA_SIGINFO) {
            if (report->sa_sigaction) report->sa_sigaction(signum, info, context);
        } else if (report->sa_handler != SIG_DFL && report->sa_handler != SIG_IGN) {
            report->sa_handler(signum);
        }
    }
    die_with(signum);
}

int crash_exit_install(unsigned deadline_ms) {
    report_deadline_ms = deadline_ms;
    for (size_t index = 0; index < FATAL_COUNT; index++) {
        if (sigaction(fatal_signals[index], NULL, &previous[index]) != 0) return errno;
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fatal;
    /* The runtime's own flags: its report runs on the alternate stack it set up, and may itself be interrupted. */
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigfillset(&action.sa_mask);
    for (size_t index = 0; index < FATAL_COUNT; index++) sigdelset(&action.sa_mask, fatal_signals[index]);
    for (size_t index = 0; index < FATAL_COUNT; index++) {
        if (sigaction(fatal_signals[index], &action, NULL) != 0) return errno;
    }
    return 0;
}
