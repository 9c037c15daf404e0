/* librevati_clock.so: the coordinator's side of the clock page (loaded with ctypes). */
#include <time.h>

#include "clock_page.h"

int64_t revati_real_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int revati_protocol_version(void) { return REVATI_PROTOCOL_VERSION; }
