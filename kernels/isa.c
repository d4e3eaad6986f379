/* kernels/isa.c — run-time choice of the CPU kernels' instruction set (see isa.h).
 *
 * With DKD_ISA_DISPATCH (build.sh sets it on x86-64), gemm.c, conv.c and winograd.c are
 * compiled once per instruction set and linked into one object per set whose only
 * global symbols are the entry points below, renamed with a suffix:
 *     sgemm_cpu_avx512, conv2d_forward_cpu_avx2, conv2d_backward_cpu_scalar, ...
 * (build.sh: `ld -r` + `objcopy`; everything else of a set stays local to it, so the
 * three copies of the GEMM never clash). This file defines the unsuffixed names that
 * the rest of dkd calls, each a jump through the table of the chosen set.
 * Without DKD_ISA_DISPATCH the kernels are compiled once with the build's flags and
 * define those names themselves; this file then only reports "generic".
 *
 * The peak loops (dkd bench --peak) are here too: per set, 16 independent FMA chains on
 * vector registers (two FMA units with a 4-cycle latency need at least 8 in flight),
 * nothing read from memory: the most a core can multiply-add on that set.
 */
#include "dkd.h"
#include "isa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

static const char *const isa_names[DKD_ISA_COUNT] = {"scalar", "avx2", "avx512"};
static int isa_current = -1;

#ifdef DKD_ISA_DISPATCH
/* ---- the per-set entry points (defined by build.sh's per-set objects) --------------- */
#define ISA_DECLARE(sfx)                                                                                     \
    void sgemm_cpu_##sfx(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,           \
                         const float *B, int ldb, float beta, float *C, int ldc);                            \
    size_t conv2d_workspace_floats_##sfx(int N, int C, int H, int W, int OC, int K, int S, int P, int G);    \
    void conv2d_forward_cpu_##sfx(float *y, const float *x, const float *w, const float *b, int N, int C,     \
                                  int H, int W, int OC, int K, int S, int P, int G, float *ws);               \
    void conv2d_forward_eval_cpu_##sfx(float *y, const float *x, const float *w, const float *b, int N,      \
                                       int C, int H, int W, int OC, int K, int S, int P, int G, float *ws,    \
                                       float *cache, int cached, const float *res, int relu);                 \
    size_t conv2d_eval_cache_floats_##sfx(int C, int H, int W, int OC, int K, int S, int P, int G);           \
    void conv2d_backward_cpu_##sfx(float *dx, float *dw, float *db, const float *dy, const float *x,          \
                                   const float *w, int N, int C, int H, int W, int OC, int K, int S, int P,  \
                                   int G, float *ws);                                                         \
    void conv2d_backward_set_cpu_##sfx(float *dx, float *dw, float *db, const float *dy, const float *x,      \
                                       const float *w, int N, int C, int H, int W, int OC, int K, int S,     \
                                       int P, int G, float *ws);
ISA_DECLARE(scalar)
ISA_DECLARE(avx2)
ISA_DECLARE(avx512)

typedef struct {
    void (*sgemm)(int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
    size_t (*conv_ws)(int, int, int, int, int, int, int, int, int);
    void (*conv_fwd)(float *, const float *, const float *, const float *, int, int, int, int, int, int, int, int,
                     int, float *);
    void (*conv_fwd_eval)(float *, const float *, const float *, const float *, int, int, int, int, int, int, int,
                          int, int, float *, float *, int, const float *, int);
    void (*conv_bwd)(float *, float *, float *, const float *, const float *, const float *, int, int, int, int,
                     int, int, int, int, int, float *);
    size_t (*conv_cache)(int, int, int, int, int, int, int, int);
    void (*conv_bwd_set)(float *, float *, float *, const float *, const float *, const float *, int, int, int, int,
                         int, int, int, int, int, float *);
} IsaKernels;

static const IsaKernels isa_table[DKD_ISA_COUNT] = {
    {sgemm_cpu_scalar, conv2d_workspace_floats_scalar, conv2d_forward_cpu_scalar, conv2d_forward_eval_cpu_scalar,
     conv2d_backward_cpu_scalar, conv2d_eval_cache_floats_scalar, conv2d_backward_set_cpu_scalar},
    {sgemm_cpu_avx2, conv2d_workspace_floats_avx2, conv2d_forward_cpu_avx2, conv2d_forward_eval_cpu_avx2,
     conv2d_backward_cpu_avx2, conv2d_eval_cache_floats_avx2, conv2d_backward_set_cpu_avx2},
    {sgemm_cpu_avx512, conv2d_workspace_floats_avx512, conv2d_forward_cpu_avx512, conv2d_forward_eval_cpu_avx512,
     conv2d_backward_cpu_avx512, conv2d_eval_cache_floats_avx512, conv2d_backward_set_cpu_avx512},
};

int dkd_isa_available(int isa) {
    switch (isa) {
    case DKD_ISA_SCALAR: return 1;
    case DKD_ISA_AVX2:   return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case DKD_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("fma");
    default: return 0;
    }
}
const char *dkd_isa_name(int isa) { return isa >= 0 && isa < DKD_ISA_COUNT ? isa_names[isa] : "?"; }
#else
int dkd_isa_available(int isa) { return isa == DKD_ISA_SCALAR; }
const char *dkd_isa_name(int isa) { return isa == DKD_ISA_SCALAR ? "generic" : "?"; }
#endif

static int isa_best(void) {
    for (int i = DKD_ISA_COUNT - 1; i > 0; i--)
        if (dkd_isa_available(i)) return i;
    return DKD_ISA_SCALAR;
}

int dkd_isa_parse(const char *name) {
    if (!strcmp(name, "auto")) return isa_best();
    for (int i = 0; i < DKD_ISA_COUNT; i++)
        if (!strcmp(name, isa_names[i])) return i;
    if (!strcmp(name, "generic")) return DKD_ISA_SCALAR;
    return -1;
}

int dkd_set_isa(int isa) {
    if (isa < 0 || isa >= DKD_ISA_COUNT || !dkd_isa_available(isa)) {
        dkd_fail("instruction set '%s' is not available on this CPU or in this build (best here: %s)",
                 isa >= 0 && isa < DKD_ISA_COUNT ? isa_names[isa] : "?", dkd_isa_name(isa_best()));
        return -1;
    }
    isa_current = isa;
    return 0;
}

int dkd_isa(void) {
    if (isa_current < 0) {
        const char *e = getenv("DKD_ISA");
        if (e && *e) {
            int i = dkd_isa_parse(e);
            if (i < 0) dkd_die("DKD_ISA=%s: unknown instruction set (expected avx512, avx2, scalar or auto)", e);
            if (dkd_set_isa(i)) dkd_die("DKD_ISA=%s: %s", e, dkd_errbuf);
        } else {
            isa_current = isa_best();
        }
    }
    return isa_current;
}

#ifdef DKD_ISA_DISPATCH
/* ---- the entry points the rest of dkd calls ----------------------------------------- */
void sgemm_cpu(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc) {
    isa_table[dkd_isa()].sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
/* The largest need of any available set: a workspace stays valid after dkd_set_isa. */
size_t conv2d_workspace_floats(int N, int C, int H, int W, int OC, int K, int S, int P, int G) {
    size_t most = 0;
    for (int i = 0; i < DKD_ISA_COUNT; i++)
        if (dkd_isa_available(i)) {
            size_t f = isa_table[i].conv_ws(N, C, H, W, OC, K, S, P, G);
            if (f > most) most = f;
        }
    return most;
}
void conv2d_forward_cpu(float *y, const float *x, const float *w, const float *b, int N, int C, int H, int W, int OC,
                        int K, int S, int P, int G, float *ws) {
    isa_table[dkd_isa()].conv_fwd(y, x, w, b, N, C, H, W, OC, K, S, P, G, ws);
}
void conv2d_forward_eval_cpu(float *y, const float *x, const float *w, const float *b, int N, int C, int H, int W,
                             int OC, int K, int S, int P, int G, float *ws, float *cache, int cached, const float *res,
                             int relu) {
    isa_table[dkd_isa()].conv_fwd_eval(y, x, w, b, N, C, H, W, OC, K, S, P, G, ws, cache, cached, res, relu);
}
/* (like the workspace: the largest need, so the cache stays big enough after dkd_set_isa) */
size_t conv2d_eval_cache_floats(int C, int H, int W, int OC, int K, int S, int P, int G) {
    size_t most = 0;
    for (int i = 0; i < DKD_ISA_COUNT; i++)
        if (dkd_isa_available(i)) {
            size_t f = isa_table[i].conv_cache(C, H, W, OC, K, S, P, G);
            if (f > most) most = f;
        }
    return most;
}
void conv2d_backward_cpu(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N,
                         int C, int H, int W, int OC, int K, int S, int P, int G, float *ws) {
    isa_table[dkd_isa()].conv_bwd(dx, dw, db, dy, x, w, N, C, H, W, OC, K, S, P, G, ws);
}
void conv2d_backward_set_cpu(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N,
                             int C, int H, int W, int OC, int K, int S, int P, int G, float *ws) {
    isa_table[dkd_isa()].conv_bwd_set(dx, dw, db, dy, x, w, N, C, H, W, OC, K, S, P, G, ws);
}
#endif

/* ---- peak FMA loops ------------------------------------------------------------------ */

enum { PEAK_CHAINS = 16, PEAK_ITERS = 1 << 20 };
static volatile float peak_sink;

#ifdef DKD_ISA_DISPATCH
__attribute__((target("avx512f"))) static double peak_avx512(long rounds) {
    __m512 acc[PEAK_CHAINS], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long r = 0; r < rounds; r++)
        for (int it = 0; it < PEAK_ITERS; it++)
            for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    __m512 s = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    peak_sink = _mm512_reduce_add_ps(s);
    return 16.0;
}
__attribute__((target("avx2,fma"))) static double peak_avx2(long rounds) {
    __m256 acc[PEAK_CHAINS], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long r = 0; r < rounds; r++)
        for (int it = 0; it < PEAK_ITERS; it++)
            for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    float l[8];
    __m256 s = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) s = _mm256_add_ps(s, acc[i]);
    _mm256_storeu_ps(l, s);
    peak_sink = l[0] + l[7];
    return 8.0;
}
/* the baseline: SSE2, a multiply and an add per multiply-add (no FMA) */
static double peak_scalar(long rounds) {
    __m128 acc[PEAK_CHAINS], m = _mm_set1_ps(0.999999f), a = _mm_set1_ps(1e-7f);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm_set1_ps((float)i);
    for (long r = 0; r < rounds; r++)
        for (int it = 0; it < PEAK_ITERS; it++)
            for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], m), a);
    float l[4];
    __m128 s = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) s = _mm_add_ps(s, acc[i]);
    _mm_storeu_ps(l, s);
    peak_sink = l[0] + l[3];
    return 4.0;
}
#else
static double peak_scalar(long rounds) {   /* plain C: whatever the compiler makes of it */
    float acc[PEAK_CHAINS][8], m = 0.999999f, a = 1e-7f;
    for (int i = 0; i < PEAK_CHAINS; i++)
        for (int v = 0; v < 8; v++) acc[i][v] = (float)(i + v);
    for (long r = 0; r < rounds; r++)
        for (int it = 0; it < PEAK_ITERS; it++)
            for (int i = 0; i < PEAK_CHAINS; i++)
                for (int v = 0; v < 8; v++) acc[i][v] = acc[i][v] * m + a;
    float s = 0;
    for (int i = 0; i < PEAK_CHAINS; i++) s += acc[i][0];
    peak_sink = s;
    return 8.0;
}
#endif

static double peak_run(int isa, long rounds) {
#ifdef DKD_ISA_DISPATCH
    if (isa == DKD_ISA_AVX512) return peak_avx512(rounds);
    if (isa == DKD_ISA_AVX2) return peak_avx2(rounds);
#endif
    return peak_scalar(rounds);
}

double dkd_isa_peak_gflops(int isa, double seconds) {
    if (!dkd_isa_available(isa)) return 0.0;
    /* grow the number of rounds until one run lasts long enough, then keep the best of 3 */
    long rounds = 1;
    double t0 = now_seconds(), lanes = peak_run(isa, rounds), dt = now_seconds() - t0;
    while (dt < seconds / 3 && rounds < (1L << 20)) {
        rounds *= 2;
        t0 = now_seconds(); peak_run(isa, rounds); dt = now_seconds() - t0;
    }
    double best = dt;
    for (int k = 0; k < 2; k++) {
        t0 = now_seconds(); peak_run(isa, rounds); dt = now_seconds() - t0;
        if (dt < best) best = dt;
    }
    return 2.0 * lanes * PEAK_CHAINS * (double)PEAK_ITERS * (double)rounds / best * 1e-9;
}
