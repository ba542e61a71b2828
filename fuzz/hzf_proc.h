/* What the kernel says about a process or thread (/proc): its CPU time and whether it
 * runs, waits to run, or sleeps. A hang is judged by these, not by the clock alone: on a
 * loaded machine a healthy op can wait seconds for a CPU, while a deadlocked one sleeps
 * and a spinning one burns CPU time. */
#ifndef HZF_PROC_H
#define HZF_PROC_H

#include <stdbool.h>
#include <sys/types.h>

/* Thread `tid` of process `pid` (tid 0: the process as a whole, its first thread's state):
 * its scheduler state ('R' running or runnable, 'D' waiting for I/O, 'S' asleep, ...)
 * and CPU time in ms. False when /proc cannot say. */
bool hzf_proc_stat(pid_t pid, pid_t tid, char *state, unsigned long *cpu_ms);
/* Does some thread of this process other than `except` (a kernel thread id) run, wait to
 * run, or wait for I/O? False when none does, or when /proc cannot say. */
bool hzf_proc_self_busy(pid_t except);

#endif /* HZF_PROC_H */
