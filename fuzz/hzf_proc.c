/* /proc readings for the watchdog and the fork op (hzf_proc.h). */
#include "fuzz/hzf_proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz/hzf_exec.h"

HZF_NO_COVERAGE static bool hzf__read_stat(const char *path, char *state, unsigned long *cpu_ms) {
  char buf[512];
  int fd = open(path, O_RDONLY);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  const char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
  unsigned long ut, st;
  if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", state, &ut,
                   &st) != 3)
    return false;
  long hz = sysconf(_SC_CLK_TCK);
  *cpu_ms = (ut + st) * 1000ul / (unsigned long)(hz > 0 ? hz : 100);
  return true;
}

HZF_NO_COVERAGE bool hzf_proc_stat(pid_t pid, pid_t tid, char *state, unsigned long *cpu_ms) {
  char path[64];
  if (tid) snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
  else snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  return hzf__read_stat(path, state, cpu_ms);
}

HZF_NO_COVERAGE bool hzf_proc_self_busy(pid_t except) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return false;
  bool busy = false;
  pid_t self = getpid();
  for (struct dirent *e; !busy && (e = readdir(d));) {
    pid_t tid = (pid_t)atoi(e->d_name);
    char state;
    unsigned long ms;
    if (tid > 0 && tid != except && hzf_proc_stat(self, tid, &state, &ms))
      busy = state == 'R' || state == 'D';
  }
  closedir(d);
  return busy;
}
