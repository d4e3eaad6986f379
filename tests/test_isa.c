/* tests/test_isa.c — every instruction-set path of the CPU kernels (kernels/isa.h).
 *
 * For each path this binary has (avx512, avx2, scalar on x86-64; "generic" elsewhere):
 * if the CPU runs it, switch to it (dkd_set_isa) and check sgemm_cpu and the convolution
 * (forward, dx, dw, db) against a double-precision direct formula, on shapes that take
 * each of conv.c's routes: Winograd (3x3, >= 32 channels), implicit GEMM (16 channels),
 * small maps (several images per GEMM), stride 2, 1x1, grouped and depthwise, and
 * shiftconv.c's stride-1 "same" layers (the avx512 and avx2 paths) on maps that end in a
 * partial vector.
 * Each convolution runs three times: its tensors (x, y, dy, dx) from malloc, then each
 * starting right after an inaccessible page, then each ending right before one: a masked
 * load that reads a masked lane's memory past a tensor's edge faults there (AVX2's
 * vmaskmovps may: qemu 7.2 reads all 32 bytes, AMD leaves it implementation dependent; see
 * kernels/shiftconv.c; scripts/qemu_isa_check.sh runs this under an emulated AVX2 CPU).
 * A path the CPU lacks is a SKIP that names it. The tolerances are those of float32 sums
 * of a few hundred terms; tests/test_golden.c runs under DKD_ISA in ./build.sh test too.
 */
#include "dkd.h"
#include "kernels/isa.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void fill(float *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = (float)((dkd_rand32(seed, 7, 3, (uint32_t)i) >> 8) * (2.0 / 16777216.0) - 1.0);
}

static void gemm_ref(int tA, int tB, int M, int N, int K, const float *A, const float *B, float *C) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)(tA ? A[(size_t)k * M + i] : A[(size_t)i * K + k]) * (tB ? B[(size_t)j * K + k] : B[(size_t)k * N + j]);
            C[(size_t)i * N + j] = (float)s;
        }
}

static void check_gemm(const char *isa) {
    static const int shapes[][3] = {{16, 1024, 144}, {64, 64, 576}, {7, 33, 300}, {100, 64, 256}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int tA = 0; tA < 2; tA++)
            for (int tB = 0; tB < 2; tB++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
                float *C = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
                fill(A, (size_t)M * K, 1); fill(B, (size_t)K * N, 2);
                sgemm_cpu(tA, tB, M, N, K, 1.0f, A, tA ? M : K, B, tB ? K : N, 0.0f, C, N);
                gemm_ref(tA, tB, M, N, K, A, B, R);
                char name[128];
                snprintf(name, sizeof name, "%s sgemm %dx%dx%d tA=%d tB=%d", isa, M, N, K, tA, tB);
                check_close(name, C, R, (size_t)M * N, 1e-4, 1e-4);
                free(A); free(B); free(C); free(R);
            }
}

/* the direct formulas, in double */
typedef struct { int N, C, H, W, OC, K, S, P, G; } Shape;
static int out_size(int H, int K, int S, int P) { return (H + 2 * P - K) / S + 1; }

static void conv_ref(const Shape *d, const float *x, const float *w, const float *b, const float *dy, float *y, float *dx,
                     float *dw, float *db) {
    int OH = out_size(d->H, d->K, d->S, d->P), OW = out_size(d->W, d->K, d->S, d->P);
    int Cg = d->C / d->G, OCg = d->OC / d->G;
    size_t nw = (size_t)d->OC * Cg * d->K * d->K, nx = (size_t)d->N * d->C * d->H * d->W;
    double *gx = calloc(nx, sizeof(double)), *gw = calloc(nw, sizeof(double));
    for (int o = 0; o < d->OC; o++) {
        double gb = 0;
        int g = o / OCg;
        for (int n = 0; n < d->N; n++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double s = b[o], gy = dy[(((size_t)n * d->OC + o) * OH + oh) * OW + ow];
                    gb += gy;
                    for (int c = 0; c < Cg; c++)
                        for (int kh = 0; kh < d->K; kh++)
                            for (int kw = 0; kw < d->K; kw++) {
                                int ih = oh * d->S - d->P + kh, iw = ow * d->S - d->P + kw;
                                if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W) continue;
                                size_t xi = (((size_t)n * d->C + g * Cg + c) * d->H + ih) * d->W + iw;
                                size_t wi = (((size_t)o * Cg + c) * d->K + kh) * d->K + kw;
                                s += (double)w[wi] * x[xi];
                                gx[xi] += (double)w[wi] * gy;
                                gw[wi] += (double)x[xi] * gy;
                            }
                    y[(((size_t)n * d->OC + o) * OH + oh) * OW + ow] = (float)s;
                }
        db[o] = (float)gb;
    }
    for (size_t i = 0; i < nx; i++) dx[i] = (float)gx[i];
    for (size_t i = 0; i < nw; i++) dw[i] = (float)gw[i];
    free(gx); free(gw);
}

/* A tensor of n floats: guard 0 from malloc, 1 starting right after an inaccessible page, 2
 * ending right before one (its own mapping, unmapped by tensor_free). */
static const char *const guard_names[3] = {"", " [after a guard page]", " [before a guard page]"};
static float *tensor_new(size_t n, int guard) {
    if (!guard) return malloc(n * 4);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), data = (n * 4 + pg - 1) / pg * pg;
    char *m = mmap(NULL, data + 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m, pg, PROT_NONE) || mprotect(m + pg + data, pg, PROT_NONE)) {
        perror("test_isa: mmap");
        exit(1);
    }
    return guard == 1 ? (float *)(m + pg) : (float *)(m + pg + data) - n;
}
static void tensor_free(float *p, size_t n, int guard) {
    if (!guard) { free(p); return; }
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), data = (n * 4 + pg - 1) / pg * pg;
    char *m = guard == 1 ? (char *)p - pg : (char *)(p + n) - data - pg;
    munmap(m, data + 2 * pg);
}

static void check_conv(const char *isa, const Shape *d, int guard) {
    int OH = out_size(d->H, d->K, d->S, d->P), OW = out_size(d->W, d->K, d->S, d->P);
    size_t nx = (size_t)d->N * d->C * d->H * d->W, ny = (size_t)d->N * d->OC * OH * OW;
    size_t nw = (size_t)d->OC * (d->C / d->G) * d->K * d->K;
    float *x = tensor_new(nx, guard), *w = malloc(nw * 4), *b = malloc(d->OC * 4), *dy = tensor_new(ny, guard);
    float *y = tensor_new(ny, guard), *dx = tensor_new(nx, guard), *dw = malloc(nw * 4), *db = malloc(d->OC * 4);
    float *ry = malloc(ny * 4), *rdx = malloc(nx * 4), *rdw = malloc(nw * 4), *rdb = malloc(d->OC * 4);
    fill(x, nx, 3); fill(w, nw, 4); fill(b, d->OC, 5); fill(dy, ny, 6);
    size_t wsf = conv2d_workspace_floats(d->N, d->C, d->H, d->W, d->OC, d->K, d->S, d->P, d->G);
    float *ws = malloc((wsf + 1) * 4);
    conv2d_forward_cpu(y, x, w, b, d->N, d->C, d->H, d->W, d->OC, d->K, d->S, d->P, d->G, ws);
    memset(dx, 0, nx * 4);   /* the backward adds into dx */
    conv2d_backward_cpu(dx, dw, db, dy, x, w, d->N, d->C, d->H, d->W, d->OC, d->K, d->S, d->P, d->G, ws);
    conv_ref(d, x, w, b, dy, ry, rdx, rdw, rdb);
    char name[160];
    snprintf(name, sizeof name, "%s conv %d->%d %dx%d @%dx%d s%d g%d batch %d%s", isa, d->C, d->OC, d->K, d->K, d->H,
             d->W, d->S, d->G, d->N, guard_names[guard]);
    int ok = 1;
    char part[200];
    snprintf(part, sizeof part, "%s: y", name);   ok &= check_close(part, y, ry, ny, 1e-4, 1e-4);
    snprintf(part, sizeof part, "%s: dx", name);  ok &= check_close(part, dx, rdx, nx, 1e-4, 1e-4);
    snprintf(part, sizeof part, "%s: dw", name);  ok &= check_close(part, dw, rdw, nw, 2e-4, 1e-4);
    snprintf(part, sizeof part, "%s: db", name);  ok &= check_close(part, db, rdb, d->OC, 1e-4, 1e-4);
    (void)ok;
    tensor_free(x, nx, guard); tensor_free(dy, ny, guard); tensor_free(y, ny, guard); tensor_free(dx, nx, guard);
    free(w); free(b); free(dw); free(db);
    free(ry); free(rdx); free(rdw); free(rdb); free(ws);
}

/* The 2x2 stride-2 max pool has its own loops (kernels/pool.c): against the window
 * formula (first maximum in row-major order wins, a NaN wins), ties and NaNs included. */
static void check_maxpool2(void) {
    enum { N = 2, C = 3, H = 8, W = 9 };   /* odd width: the last column is not pooled */
    int OH = 4, OW = 4;
    float x[N * C * H * W], y[N * C * 16], g[N * C * 16], dx[N * C * H * W], ry[N * C * 16], rdx[N * C * H * W];
    fill(x, sizeof x / 4, 8); fill(g, sizeof g / 4, 9);
    for (size_t i = 0; i < sizeof x / 4; i += 7) x[i] = x[i + 1 < sizeof x / 4 ? i + 1 : i];   /* ties */
    x[10] = NAN; x[W * 3 + 4] = NAN;
    memset(rdx, 0, sizeof rdx);
    for (int p = 0; p < N * C; p++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int best = (2 * oh) * W + 2 * ow;
                for (int kh = 0; kh < 2; kh++)
                    for (int kw = 0; kw < 2; kw++) {
                        int i = (2 * oh + kh) * W + 2 * ow + kw;
                        float v = x[p * H * W + i], m = x[p * H * W + best];
                        if (v > m || v != v) best = i;   /* (a later NaN replaces an earlier one) */
                    }
                ry[p * 16 + oh * OW + ow] = x[p * H * W + best];
                rdx[p * H * W + best] += g[p * 16 + oh * OW + ow];
            }
    maxpool_forward_cpu(y, x, N, C, H, W, 2, 2);
    memset(dx, 0, sizeof dx);
    maxpool_backward_cpu(dx, g, x, N, C, H, W, 2, 2);
    int same = 1;
    for (int i = 0; i < N * C * 16; i++) same &= (y[i] == ry[i]) || (y[i] != y[i] && ry[i] != ry[i]);
    check(same, "maxpool 2x2/2 forward: the window formula's values (ties, NaN)");
    check(memcmp(dx, rdx, sizeof dx) == 0, "maxpool 2x2/2 backward: dy at the first maximum (ties, NaN)");
}

int main(void) {
    check_maxpool2();
    static const Shape shapes[] = {
        {4, 32, 16, 16, 32, 3, 1, 1, 1},   /* Winograd */
        {3, 16, 32, 32, 16, 3, 1, 1, 1},   /* implicit GEMM, implicit dW */
        {5, 24, 4, 4, 40, 3, 1, 1, 1},     /* small maps: several images per product */
        {2, 16, 16, 16, 32, 3, 2, 1, 1},   /* stride 2 */
        {2, 32, 8, 8, 64, 1, 1, 0, 1},     /* pointwise */
        {2, 24, 8, 8, 48, 1, 1, 0, 3},     /* grouped 1x1 (ShuffleNet) */
        {2, 32, 8, 8, 32, 3, 1, 1, 32},    /* depthwise */
        {2, 32, 8, 8, 32, 3, 2, 1, 32},    /* depthwise, stride 2 (to a 4x4 map: the tap table) */
        {3, 16, 4, 4, 16, 3, 1, 1, 16},    /* depthwise on tiny maps: the tap table */
        {3, 16, 2, 2, 16, 3, 1, 1, 16},
        {2, 8, 12, 12, 8, 8, 1, 3, 8},     /* depthwise 8x8: CONV_MAX_TAPS taps, the padded path's largest */
        {2, 8, 12, 12, 8, 9, 1, 4, 8},     /* depthwise 9x9: more taps than CONV_MAX_TAPS, the plain loops */
        /* shiftconv.c (avx512: 16-lane vectors, avx2: 8), maps that end in a partial vector */
        {2, 12, 5, 5, 18, 3, 1, 1, 1},     /* 3x3 on 25 positions, 18 rows: partial tiles of rows (fwd, dx, dW) */
        {2, 6, 6, 6, 10, 5, 1, 2, 1},      /* 5x5 pad 2 on 36 positions (fwd, dx) */
        {2, 7, 9, 9, 10, 1, 1, 0, 1},      /* 1x1 dW on 81 positions: 7 = 3+3+1 columns, 10 rows */
        {3, 16, 5, 5, 16, 3, 1, 1, 16},    /* depthwise 3x3 on 25 positions (fwd, dx, dW) */
    };
    int start = dkd_isa();
    printf("default path: %s\n", dkd_isa_name(start));
    for (int isa = DKD_ISA_COUNT - 1; isa >= 0; isa--) {
        if (!dkd_isa_available(isa)) {
            skip("path %s: this CPU (or this build) cannot run it", dkd_isa_name(isa));
            continue;
        }
        check(dkd_set_isa(isa) == 0 && dkd_isa() == isa, "switch to path %s", dkd_isa_name(isa));
        check_gemm(dkd_isa_name(isa));
        for (int guard = 0; guard < 3; guard++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                check_conv(dkd_isa_name(isa), &shapes[s], guard);
    }
    /* an unknown name is refused; a path the CPU lacks is refused with a message */
    check(dkd_isa_parse("sse9") == -1, "unknown instruction-set name refused");
    check(dkd_isa_parse("auto") == start || getenv("DKD_ISA"), "auto picks the default path");
    return test_summary();
}
