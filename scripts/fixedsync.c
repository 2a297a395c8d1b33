/* LD_PRELOAD shim for benchmarks: fsync and fdatasync take a steady
 * FIXEDSYNC_US microseconds (default 2000) and write nothing to the disk.
 * On a VM whose disk is shared with other jobs an fsync takes 0.5-8 ms;
 * with this every one costs the same, so A/B runs compare how many fsyncs
 * sit on the commit path instead of the disk's noise. Not durable: for
 * measuring only.
 *
 *   gcc -O2 -shared -fPIC -o /tmp/fixedsync.so scripts/fixedsync.c
 *   LD_PRELOAD=/tmp/fixedsync.so target/release/raftian bench clicks \
 *       --exe OLD_OR_NEW --modes static,election --storage disk --rates 100 \
 *       --rate-secs 3 --latency-secs 5 --idle-secs 1
 */
#include <stdlib.h>
#include <time.h>

static int nap(void) {
    const char *s = getenv("FIXEDSYNC_US");
    long us = s ? atol(s) : 2000;
    struct timespec t = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&t, &t) != 0) {
    }
    return 0;
}

int fdatasync(int fd) { (void)fd; return nap(); }
int fsync(int fd) { (void)fd; return nap(); }
