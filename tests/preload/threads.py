"""Allocates heavily from several threads, forks while they run, and prints a digest
that depends only on the work done, so output is identical with and without hz."""
import hashlib
import os
import sys
import threading

THREADS = 4
ROUNDS = 30000


def work(idx, out):
    """Builds and drops strings, lists and dicts of many sizes; hands some to others."""
    h = hashlib.sha256()
    keep = []
    for i in range(ROUNDS):
        n = (i * 7919 + idx * 104729) % 3000
        s = ("%d-%d-" % (idx, i)) * (n // 8 + 1)
        d = {k: s[k:k + 16] for k in range(0, min(len(s), 256), 16)}
        keep.append((s, d, list(range(n % 50))))
        if len(keep) > 500:
            old = keep.pop(i % 500)
            h.update(old[0][:64].encode())
        if i % 5000 == 0:
            shared.append(bytearray(n + 1))  # freed later by another thread
            if len(shared) > 8:
                shared.pop(0)
    h.update(str(len(keep)).encode())
    out[idx] = h.hexdigest()


shared = []
results = [None] * THREADS
threads = [threading.Thread(target=work, args=(t, results)) for t in range(THREADS)]
for t in threads:
    t.start()

# fork() in a multithreaded parent: the child must be able to allocate.
children = []
for k in range(3):
    pid = os.fork()
    if pid == 0:
        junk = [bytes(i % 5000) for i in range(20000)]
        os._exit(0 if len(junk) == 20000 else 1)
    children.append(pid)
for pid in children:
    _, status = os.waitpid(pid, 0)
    if status != 0:
        print("forked child failed with status", status)
        sys.exit(1)

for t in threads:
    t.join()
for t in range(THREADS):
    print(t, results[t])
