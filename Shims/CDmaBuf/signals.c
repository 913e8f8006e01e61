// SIGINT and SIGTERM as a request to stop: the first is recorded for the run to notice at its
// next boundary (poll and blocking ioctls return EINTR: no SA_RESTART); a second one ends the
// process at once with 128 + its number, as a shell would report it.
#include "cdmabuf.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) {
    if (stop_signal != 0) _exit(128 + sig);
    stop_signal = sig;
}

int cdmabuf_stop_signals_install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGINT, &action, NULL) != 0 || sigaction(SIGTERM, &action, NULL) != 0) return -1;
    // A parent may have left them blocked (a test runner's spawn does): then they would only
    // ever be pending. Threads started from here on inherit the unblocked mask.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    return -pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
}

int cdmabuf_stop_signal(void) { return stop_signal; }

void cdmabuf_stop_signal_clear(void) { stop_signal = 0; }
