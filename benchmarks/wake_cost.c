/* The "c" kind of benchmarks/wake_cost.py: the same sleep-and-wake loop with no interpreter, so that
 * the VM's own price of a wake-up can be told from Python's and gevent's. Built by that script with
 * the system's cc. Usage: wake_cost PERIOD_S SECONDS; prints one JSON object like the Python children. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(int clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static unsigned long long sched_run_ns(void) {
    unsigned long long ns = 0;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f) {
        if (fscanf(f, "%llu", &ns) != 1) ns = 0;
        fclose(f);
    }
    return ns;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    double period = atof(argv[1]), seconds = atof(argv[2]);
    struct timespec gap = {(time_t)period, (long)((period - (time_t)period) * 1e9)};
    nanosleep(&gap, NULL);
    unsigned long long sched0 = sched_run_ns();
    double cpu0 = now_s(CLOCK_PROCESS_CPUTIME_ID), wall0 = now_s(CLOCK_MONOTONIC), wall;
    long wakes = 0;
    while ((wall = now_s(CLOCK_MONOTONIC) - wall0) < seconds) {
        nanosleep(&gap, NULL);
        wakes++;
    }
    wall = now_s(CLOCK_MONOTONIC) - wall0;
    double cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0, sched = (sched_run_ns() - sched0) / 1e9;
    printf("{\"kind\": \"c\", \"period_s\": %g, \"wakes\": %ld, \"cpu_us_per_wake\": %.3f, "
           "\"sched_us_per_wake\": %.3f, \"cpu_percent\": %.5f}\n",
           period, wakes, 1e6 * cpu / wakes, 1e6 * sched / wakes, 100.0 * cpu / wall);
    return 0;
}
