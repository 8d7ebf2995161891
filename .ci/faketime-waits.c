// A preload for the calendar passes (.ci/calendar), loaded before libfaketime: the waits libfaketime wraps go
// straight to libc again.
//
// Why: libfaketime 0.9.10 wraps poll, epoll_wait, select, nanosleep and the like (to scale their timeouts by a
// speed factor) and marks the thread "don't fake" for the duration of the real call. A signal handler that reads
// the clock while the thread waits there gets the *real* time. PostgreSQL's SIGALRM handler does exactly that: a
// backend waiting for a lock sits in epoll_wait, deadlock_timeout's alarm comes after 1 s, the handler reads the
// real time, and with the clock set behind (the calendar passes) every armed timeout looks due — lock_timeout,
// statement_timeout and idle_in_transaction_session_timeout fire after 1 s whatever their setting (seen: a 30 s
// lock_timeout cancelling a page's wait after 1 s, an idle-in-transaction session ended early). With the clock
// ahead they fire only once the offset has passed.
//
// With a plain offset (no speed factor) libfaketime changes nothing about these calls' relative timeouts, so
// passing them through is exact. Absolute-time waits (clock_nanosleep with TIMER_ABSTIME, sem_timedwait,
// pthread_cond_timedwait) are left to libfaketime, which converts their deadlines.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static void *libc_symbol(const char *name) {
  static void *libc;
  if (!libc) libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  void *f = libc ? dlsym(libc, name) : NULL;
  if (!f) abort();
  return f;
}

#define REAL(name) static __typeof__(name) *real; if (!real) real = (__typeof__(name) *)libc_symbol(#name)

int poll(struct pollfd *fds, nfds_t nfds, int timeout) {
  REAL(poll);
  return real(fds, nfds, timeout);
}

int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout, const sigset_t *sigmask) {
  REAL(ppoll);
  return real(fds, nfds, timeout, sigmask);
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout) {
  REAL(epoll_wait);
  return real(epfd, events, maxevents, timeout);
}

int epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout, const sigset_t *sigmask) {
  REAL(epoll_pwait);
  return real(epfd, events, maxevents, timeout, sigmask);
}

int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *timeout) {
  REAL(select);
  return real(nfds, r, w, e, timeout);
}

int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *timeout, const sigset_t *sigmask) {
  REAL(pselect);
  return real(nfds, r, w, e, timeout, sigmask);
}

int nanosleep(const struct timespec *request, struct timespec *remaining) {
  REAL(nanosleep);
  return real(request, remaining);
}

int usleep(useconds_t usec) {
  REAL(usleep);
  return real(usec);
}

unsigned int sleep(unsigned int seconds) {
  REAL(sleep);
  return real(seconds);
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request, struct timespec *remaining) {
  static __typeof__(clock_nanosleep) *relative, *absolute;
  if (flags & TIMER_ABSTIME) {
    if (!absolute) absolute = (__typeof__(clock_nanosleep) *)dlsym(RTLD_NEXT, "clock_nanosleep");
    return absolute(clock, flags, request, remaining);
  }
  if (!relative) relative = (__typeof__(clock_nanosleep) *)libc_symbol("clock_nanosleep");
  return relative(clock, flags, request, remaining);
}
