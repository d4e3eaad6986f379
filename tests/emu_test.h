/* tests/emu_test.h — what the CUDA tests (tests/emu_*.cpp) share: the
 * schedules they run under, stand-ins for the emulator's test hooks when a
 * file is built against the real CUDA runtime, and small host helpers.
 * Include after kernels/cuda_common.h and tests/test.h. */
#ifndef DKD_EMU_TEST_H
#define DKD_EMU_TEST_H

#include <math.h>
#include <stddef.h>

/* The files also build against the real CUDA runtime (g++ -I$CUDA/include,
 * linked with the nvcc-compiled kernels and -lcudart) to run on a GPU: there
 * is then one schedule, the hardware's, and repeated runs must still agree. */
#ifndef DKD_CUDA_EMU
static inline int emu_set_schedule(const char *) { return 0; }
static inline const char *emu_schedule(void) { return "(a real GPU)"; }
static inline long long emu_launch_count(void) { return 0; }
static inline long long emu_thread_count(void) { return 0; }
static inline int emu_racecheck(void) { return 0; }
static inline long long emu_race_count(void) { return 0; }
#endif

/* Thread and block orders every kernel test runs under (see tests/cuda_emu.h). */
static const char *const schedules[] = {"forward", "reverse", "random:1", "random:2"};
enum { NSCHED = 4 };

/* max |x[i]|: the scale that tolerances are relative to. */
static inline double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) if (fabs((double)x[i]) > m) m = fabs((double)x[i]);
    return m;
}

/* The last check of an emulation test: every kernel it ran was watched by the
 * emulator's shared-memory race detector, which found nothing (in its default
 * mode the first race would have stopped the test already). */
static inline void check_race_free(const char *what) {
    if (emu_racecheck() == 0) {
        printf("  (%s: the shared-memory race detector is off: DKD_EMU_RACECHECK=0 or a real GPU)\n", what);
        return;
    }
    check(emu_race_count() == 0, "%s: every kernel ran under the shared-memory race detector, %lld races", what,
          emu_race_count());
}

#endif /* DKD_EMU_TEST_H */
