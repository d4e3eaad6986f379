/* kernels/isa.h — which instruction set the CPU kernels run on, chosen at run time.
 *
 * On x86-64, build.sh compiles the heavy kernels (gemm.c, conv.c, winograd.c) three
 * times, once per instruction set, into one binary:
 *   avx512   AVX-512F/VL/BW/DQ + FMA, 512-bit vectors (GEMM tile 6 x 32: 12 zmm accumulators)
 *   avx2     AVX2 + FMA, 256-bit vectors               (GEMM tile 6 x 16: 12 ymm accumulators)
 *   scalar   plain C, the x86-64 baseline (SSE2, no FMA)
 * and kernels/isa.c sends sgemm_cpu and conv2d_* to the best one the CPU supports
 * (`__builtin_cpu_supports`), so a portable build (DKD_NATIVE=0) is as fast as a native
 * one, and a binary built on one machine runs well on another.
 * The environment variable DKD_ISA=avx512|avx2|scalar|auto forces a path (a path the CPU
 * lacks is an error). On other architectures there is one path, "generic" (the build's
 * own flags).
 *
 * Results differ between paths only by rounding: with FMA every multiply-add rounds once,
 * without it twice, and the AVX-512 tile is wider (the sums over k keep their order, but
 * the weight-gradient kernel splits k into GEMM_NR/2 lanes). tests/test_isa.c bounds the
 * difference of every path against a double-precision reference. */
#ifndef DKD_ISA_H
#define DKD_ISA_H

enum { DKD_ISA_SCALAR, DKD_ISA_AVX2, DKD_ISA_AVX512, DKD_ISA_COUNT };

/* The path in use (decided on first call: DKD_ISA, else the best available). */
int dkd_isa(void);
/* Name of a path: "avx512", "avx2", "scalar" ("generic" on other architectures). */
const char *dkd_isa_name(int isa);
/* 1 if this binary has the path and the CPU can run it. */
int dkd_isa_available(int isa);
/* Switch path (tests, benchmarks): 0 on success, -1 (with dkd_errbuf set) if not available.
 * Call between operations, never while one runs. Workspaces are sized for every path. */
int dkd_set_isa(int isa);
/* A path by name ("auto": the best available); -1 if unknown. */
int dkd_isa_parse(const char *name);

/* Peak single-precision FMA throughput of the calling thread on a path, GFLOP/s (2 flops
 * per multiply-add): a loop of independent register-only FMA chains, `seconds` long.
 * 0 if the path is not available. */
double dkd_isa_peak_gflops(int isa, double seconds);

#endif
