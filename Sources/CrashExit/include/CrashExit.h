#ifndef CRASH_EXIT_H
#define CRASH_EXIT_H

/* Makes every crash end the process, with the crash's own signal, within `deadline_ms` milliseconds.
 *
 * Swift's runtime catches the fatal signals (SIGQUIT, SIGABRT, SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGTRAP) to print
 * a crash report, then returns from its handler expecting the faulting instruction to fault again. A signal sent
 * with kill(2) does not fault again, so the process would go on running with a crashed thread; and a report that
 * stalls would keep a dead agent holding its ports. The handler installed here runs the runtime's (the report
 * still prints) under a deadline, then restores the default action and raises the signal, so the exit status is
 * the crash's own. Call once, early, after the runtime has installed its handlers (any time in `main`). Returns 0,
 * or an errno value if a handler could not be installed. */
int crash_exit_install(unsigned deadline_ms);

#endif
