/* The pod sandbox's process: holds the pod's namespaces open until the runtime stops it.
 * Registries are out of reach here, so the stack builds this instead of pulling a pause image.
 * As PID 1 it gets no default signal actions: it exits on SIGINT/SIGTERM itself and reaps any
 * child that is re-parented to it. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) { (void)sig; _exit(0); }

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction stop = {.sa_handler = on_stop};
  struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &stop, NULL) || sigaction(SIGTERM, &stop, NULL) ||
      sigaction(SIGCHLD, &child, NULL))
    return 1;
  for (;;)
    pause();
}
