/* tests/emu_conv.cpp — the CUDA convolution (kernels/conv.cu) under the CPU
 * emulator, against the C reference (kernels/conv.c).
 *
 * For every shape below and every SGEMM version (1 naive, 2 shared-memory
 * tiles, 3 register blocking):
 *   - forward y, backward dx (accumulating onto non-zero values), dw, db match
 *     conv2d_forward_cpu / conv2d_backward_cpu within the tolerance model
 *     |got - ref| <= 1e-5 * max|ref| + 1e-5 * |ref|: the GPU sums in another
 *     order than the C loops (GEMM over im2col columns, batch folded into K),
 *     so only rounding differs; the scale max|ref| covers sums that cancel;
 *   - the results are BIT-IDENTICAL under the schedules forward, reverse,
 *     random:1, random:2 (no races, fixed-order reductions, no atomics);
 *   - other 1-D block sizes (32, 96, 1024) give results within tolerance;
 *   - a workspace cap of one image (the chunked path: dw accumulated chunk by
 *     chunk) gives the same y and dx bit for bit, and dw, db within tolerance;
 *   - nothing is written outside y, dx, dw, db (guard words after each).
 * Shapes: N=1, odd channels, H=W=1, non-square, groups > 1, depthwise,
 * stride 2, K=1 and K=5, sizes that are not multiples of 16/32/64 and GEMM
 * dimensions above one tile; dx and db NULL.
 * sgemm_cuda itself is checked against sgemm_cpu for all transposes, strides
 * (lda > columns), alpha and beta (beta = 0 must not read C: C starts as NaN).
 */
#include "dkd.h"
#include "kernels/cuda_common.h"
#include "kernels/cuda_ops.h"
#include "test.h"

/* The same file also builds against the real CUDA runtime (g++ -I$CUDA/include,
 * linked with the nvcc-compiled kernels and -lcudart) to run on a GPU: there
 * is then one schedule, the hardware's, and repeated runs must still agree. */
#ifndef DKD_CUDA_EMU
static inline int emu_set_schedule(const char *) { return 0; }
static inline const char *emu_schedule(void) { return "(a real GPU)"; }
static inline long long emu_launch_count(void) { return 0; }
static inline long long emu_thread_count(void) { return 0; }
#endif

/* The tuning knobs of kernels/conv.cu (declared there too). */
extern "C" {
void gemm_cuda_set_version(int v);
int gemm_cuda_version(void);
void conv_cuda_set_block_size(int n);
void conv_cuda_set_workspace_cap(size_t floats);
}

static const char *schedules[] = {"forward", "reverse", "random:1", "random:2"};
enum { NSCHED = 4, GUARD = 16 };

/* ---------------------------------------------------------------- helpers */

/* Device buffer of n floats + GUARD guard floats, all 0xff bytes (NaN): the
 * emulator's cudaMalloc does that anyway, a real GPU's does not. */
static float *dev_alloc(size_t n) {
    float *d = NULL;
    cudaCheck(cudaMalloc(&d, (n + GUARD) * sizeof(float)));
    cudaCheck(cudaMemset(d, 0xff, (n + GUARD) * sizeof(float)));
    return d;
}
static float *dev_from(const float *h, size_t n) {
    float *d = dev_alloc(n);
    if (n) cudaCheck(cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}
static void to_host(float *h, const float *d, size_t n) {
    if (n) cudaCheck(cudaMemcpy(h, d, n * sizeof(float), cudaMemcpyDeviceToHost));
}
/* 1 if the guard words after n floats are untouched (all 0xff bytes). */
static int guard_ok(const float *d, size_t n) {
    unsigned char g[GUARD * sizeof(float)];
    cudaCheck(cudaMemcpy(g, d + n, sizeof g, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < sizeof g; i++) if (g[i] != 0xff) return 0;
    return 1;
}
static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) if (fabs((double)x[i]) > m) m = fabs((double)x[i]);
    return m;
}
/* The tolerance model of this file: atol scales with the tensor's magnitude. */
static int close_to(const char *name, const float *got, const float *ref, size_t n) {
    double scale = max_abs(ref, n);
    return check_close(name, got, ref, n, 1e-5 * (scale > 1 ? scale : 1), 1e-5);
}

/* ------------------------------------------------------------------ shapes */
typedef struct { int N, C, H, W, OC, K, S, P, G, bias, want_dx; const char *what; } Shape;
static const Shape shapes[] = {
    {2, 3, 8, 8, 5, 3, 1, 1, 1, 1, 1, "stem-like, odd channels"},
    {1, 4, 7, 7, 6, 3, 2, 1, 1, 0, 1, "N=1, stride 2, odd size, no bias"},
    {3, 5, 1, 1, 7, 1, 1, 0, 1, 1, 1, "H=W=1, 1x1"},
    {2, 6, 6, 5, 9, 3, 1, 1, 3, 1, 1, "groups 3, non-square"},
    {2, 12, 5, 5, 24, 1, 1, 0, 4, 0, 1, "grouped 1x1 (ShuffleNetV1-like)"},
    {2, 8, 6, 6, 8, 3, 1, 1, 8, 0, 1, "depthwise stride 1"},
    {2, 6, 9, 9, 6, 3, 2, 1, 6, 1, 1, "depthwise stride 2, odd size, bias"},
    {2, 16, 9, 9, 40, 3, 1, 1, 1, 0, 1, "GEMM N=162, K=144: several tiles"},
    {1, 20, 4, 4, 70, 3, 1, 1, 1, 1, 1, "OC=70: two tile rows"},
    {1, 3, 6, 6, 2, 5, 1, 2, 1, 1, 1, "K=5, P=2"},
    {2, 7, 5, 5, 4, 3, 2, 0, 1, 1, 0, "no padding, stride 2, dx NULL"},
};
enum { NSHAPES = (int)(sizeof shapes / sizeof shapes[0]) };

/* One run of forward + backward on the device; results to host arrays. */
typedef struct { float *y, *dx, *dw, *db; int guards; } Result;

static void run_conv(const Shape *s, const float *hx, const float *hw, const float *hb, const float *hdy,
                     const float *hdx0, Result *r) {
    int OH = (s->H + 2 * s->P - s->K) / s->S + 1, OW = (s->W + 2 * s->P - s->K) / s->S + 1;
    size_t nx = (size_t)s->N * s->C * s->H * s->W, ny = (size_t)s->N * s->OC * OH * OW;
    size_t nw = (size_t)s->OC * (s->C / s->G) * s->K * s->K;
    size_t nws = conv2d_workspace_floats_cuda(s->N, s->C, s->H, s->W, s->OC, s->K, s->S, s->P, s->G);
    float *x = dev_from(hx, nx), *w = dev_from(hw, nw), *b = s->bias ? dev_from(hb, s->OC) : NULL;
    float *dy = dev_from(hdy, ny), *y = dev_alloc(ny), *ws = dev_alloc(nws ? nws : 1);
    float *dx = s->want_dx ? dev_from(hdx0, nx) : NULL, *dw = dev_alloc(nw), *db = s->bias ? dev_alloc(s->OC) : NULL;
    conv2d_forward_cuda(y, x, w, b, s->N, s->C, s->H, s->W, s->OC, s->K, s->S, s->P, s->G, ws);
    conv2d_backward_cuda(dx, dw, db, dy, x, w, s->N, s->C, s->H, s->W, s->OC, s->K, s->S, s->P, s->G, ws);
    to_host(r->y, y, ny);
    if (dx) to_host(r->dx, dx, nx);
    to_host(r->dw, dw, nw);
    if (db) to_host(r->db, db, s->OC);
    r->guards = guard_ok(y, ny) && guard_ok(dw, nw) && (!dx || guard_ok(dx, nx)) && (!db || guard_ok(db, s->OC)) &&
                guard_ok(ws, nws ? nws : 1);
    cudaCheck(cudaFree(x)); cudaCheck(cudaFree(w)); if (b) cudaCheck(cudaFree(b));
    cudaCheck(cudaFree(dy)); cudaCheck(cudaFree(y)); cudaCheck(cudaFree(ws));
    if (dx) cudaCheck(cudaFree(dx));
    cudaCheck(cudaFree(dw)); if (db) cudaCheck(cudaFree(db));
}

static void alloc_result(Result *r, size_t nx, size_t ny, size_t nw, int OC) {
    r->y = (float *)xmalloc(ny * sizeof(float)); r->dx = (float *)xmalloc(nx * sizeof(float));
    r->dw = (float *)xmalloc(nw * sizeof(float)); r->db = (float *)xmalloc((size_t)OC * sizeof(float));
}
static void free_result(Result *r) { free(r->y); free(r->dx); free(r->dw); free(r->db); }

static int same_result(const Result *a, const Result *b, const Shape *s, size_t nx, size_t ny, size_t nw) {
    return !memcmp(a->y, b->y, ny * sizeof(float)) && (!s->want_dx || !memcmp(a->dx, b->dx, nx * sizeof(float))) &&
           !memcmp(a->dw, b->dw, nw * sizeof(float)) && (!s->bias || !memcmp(a->db, b->db, (size_t)s->OC * sizeof(float)));
}

static void test_shape(int si) {
    const Shape *s = &shapes[si];
    int OH = (s->H + 2 * s->P - s->K) / s->S + 1, OW = (s->W + 2 * s->P - s->K) / s->S + 1;
    size_t nx = (size_t)s->N * s->C * s->H * s->W, ny = (size_t)s->N * s->OC * OH * OW;
    size_t nw = (size_t)s->OC * (s->C / s->G) * s->K * s->K;
    printf("shape %d: N=%d C=%d H=%d W=%d OC=%d K=%d S=%d P=%d G=%d%s (%s)\n", si, s->N, s->C, s->H, s->W, s->OC,
           s->K, s->S, s->P, s->G, s->bias ? " bias" : "", s->what);
    float *hx = (float *)xmalloc(nx * sizeof(float)), *hw = (float *)xmalloc(nw * sizeof(float));
    float *hb = (float *)xmalloc((size_t)s->OC * sizeof(float)), *hdy = (float *)xmalloc(ny * sizeof(float));
    float *hdx0 = (float *)xmalloc(nx * sizeof(float));
    test_fill(hx, nx, 100 + si, 1.0f); test_fill(hw, nw, 200 + si, 0.5f); test_fill(hb, s->OC, 300 + si, 1.0f);
    test_fill(hdy, ny, 400 + si, 1.0f); test_fill(hdx0, nx, 500 + si, 1.0f);

    /* the C reference */
    Result ref; alloc_result(&ref, nx, ny, nw, s->OC);
    size_t nws = conv2d_workspace_floats(s->N, s->C, s->H, s->W, s->OC, s->K, s->S, s->P, s->G);
    float *ws = (float *)xmalloc((nws ? nws : 1) * sizeof(float));
    conv2d_forward_cpu(ref.y, hx, hw, s->bias ? hb : NULL, s->N, s->C, s->H, s->W, s->OC, s->K, s->S, s->P, s->G, ws);
    memcpy(ref.dx, hdx0, nx * sizeof(float));
    conv2d_backward_cpu(s->want_dx ? ref.dx : NULL, ref.dw, s->bias ? ref.db : NULL, hdy, hx, hw,
                        s->N, s->C, s->H, s->W, s->OC, s->K, s->S, s->P, s->G, ws);
    free(ws);

    char name[128];
    for (int v = 1; v <= 3; v++) {
        gemm_cuda_set_version(v);
        Result r[NSCHED];
        int same = 1, guards = 1;
        conv_cuda_set_block_size(256);
        for (int k = 0; k < NSCHED; k++) {
            emu_set_schedule(schedules[k]);
            alloc_result(&r[k], nx, ny, nw, s->OC);
            run_conv(s, hx, hw, hb, hdy, hdx0, &r[k]);
            guards &= r[k].guards;
            if (k) same &= same_result(&r[0], &r[k], s, nx, ny, nw);
        }
        snprintf(name, sizeof name, "  v%d y", v); close_to(name, r[0].y, ref.y, ny);
        if (s->want_dx) { snprintf(name, sizeof name, "  v%d dx (+=)", v); close_to(name, r[0].dx, ref.dx, nx); }
        snprintf(name, sizeof name, "  v%d dw", v); close_to(name, r[0].dw, ref.dw, nw);
        if (s->bias) { snprintf(name, sizeof name, "  v%d db", v); close_to(name, r[0].db, ref.db, s->OC); }
        check(same, "  v%d: bit-identical under forward, reverse, random:1, random:2", v);
        check(guards, "  v%d: nothing written past the ends of y, dx, dw, db, workspace", v);
        for (int k = 0; k < NSCHED; k++) free_result(&r[k]);
    }
    /* other block sizes of the 1-D kernels (default GEMM version) */
    gemm_cuda_set_version(0);
    emu_set_schedule("random:3");
    int bss[] = {32, 96, 1024};
    for (int k = 0; k < 3; k++) {
        conv_cuda_set_block_size(bss[k]);
        Result r; alloc_result(&r, nx, ny, nw, s->OC);
        run_conv(s, hx, hw, hb, hdy, hdx0, &r);
        int ok = 1;
        double sy = max_abs(ref.y, ny), sx = max_abs(ref.dx, nx), sw = max_abs(ref.dw, nw), sb = max_abs(ref.db, s->OC);
        for (size_t i = 0; i < ny; i++) ok &= fabs(r.y[i] - ref.y[i]) <= 1e-5 * (sy > 1 ? sy : 1) + 1e-5 * fabs(ref.y[i]);
        for (size_t i = 0; s->want_dx && i < nx; i++) ok &= fabs(r.dx[i] - ref.dx[i]) <= 1e-5 * (sx > 1 ? sx : 1) + 1e-5 * fabs(ref.dx[i]);
        for (size_t i = 0; i < nw; i++) ok &= fabs(r.dw[i] - ref.dw[i]) <= 1e-5 * (sw > 1 ? sw : 1) + 1e-5 * fabs(ref.dw[i]);
        for (int i = 0; s->bias && i < s->OC; i++) ok &= fabs(r.db[i] - ref.db[i]) <= 1e-5 * (sb > 1 ? sb : 1) + 1e-5 * fabs(ref.db[i]);
        check(ok && r.guards, "  block size %4d (v%d, random:3): y, dx, dw, db within tolerance", bss[k], gemm_cuda_version());
        free_result(&r);
    }
    conv_cuda_set_block_size(256);
    /* the chunked path: one image per chunk (when there is more than one image) */
    if (s->N > 1 && s->G != s->C) {
        Result whole, chunked;
        alloc_result(&whole, nx, ny, nw, s->OC); alloc_result(&chunked, nx, ny, nw, s->OC);
        run_conv(s, hx, hw, hb, hdy, hdx0, &whole);
        conv_cuda_set_workspace_cap(1);
        run_conv(s, hx, hw, hb, hdy, hdx0, &chunked);
        conv_cuda_set_workspace_cap(0);
        check(!memcmp(whole.y, chunked.y, ny * sizeof(float)) &&
              (!s->want_dx || !memcmp(whole.dx, chunked.dx, nx * sizeof(float))) && chunked.guards,
              "  one image per chunk: y, dx bit-identical to the unchunked run");
        close_to("  one image per chunk: dw", chunked.dw, ref.dw, nw);
        free_result(&whole); free_result(&chunked);
    }
    free_result(&ref);
    free(hx); free(hw); free(hb); free(hdy); free(hdx0);
}

static void test_sgemm(void) {
    printf("sgemm_cuda vs sgemm_cpu:\n");
    const int M = 70, N = 45, K = 37, pad = 3;
    float *hA = (float *)xmalloc(sizeof(float) * 80 * 80), *hB = (float *)xmalloc(sizeof(float) * 80 * 80);
    float *hC = (float *)xmalloc(sizeof(float) * M * (N + pad)), *ref = (float *)xmalloc(sizeof(float) * M * (N + pad));
    float *got = (float *)xmalloc(sizeof(float) * M * (N + pad));
    test_fill(hA, 80 * 80, 11, 1.0f); test_fill(hB, 80 * 80, 12, 1.0f); test_fill(hC, (size_t)M * (N + pad), 13, 1.0f);
    float *dA = dev_from(hA, 80 * 80), *dB = dev_from(hB, 80 * 80), *dC = dev_alloc((size_t)M * (N + pad));
    for (int v = 1; v <= 3; v++) {
        gemm_cuda_set_version(v);
        for (int t = 0; t < 8; t++) {
            int tA = t & 1, tB = (t >> 1) & 1, use_beta = t >> 2;
            int lda = (tA ? M : K) + pad, ldb = (tB ? K : N) + pad, ldc = N + pad;
            float alpha = 0.75f, beta = use_beta ? 0.5f : 0.0f;
            memcpy(ref, hC, sizeof(float) * M * ldc);
            sgemm_cpu(tA, tB, M, N, K, alpha, hA, lda, hB, ldb, beta, ref, ldc);
            if (use_beta) cudaCheck(cudaMemcpy(dC, hC, sizeof(float) * M * ldc, cudaMemcpyHostToDevice));
            else cudaCheck(cudaMemset(dC, 0xff, sizeof(float) * M * ldc));   /* NaN: must not be read */
            emu_set_schedule(schedules[t % NSCHED]);
            sgemm_cuda(tA, tB, M, N, K, alpha, dA, lda, dB, ldb, beta, dC, ldc);
            to_host(got, dC, (size_t)M * ldc);
            /* compare the M x N part; the padding columns must be untouched */
            int pad_ok = 1;
            for (int i = 0; i < M; i++)
                for (int j = N; j < ldc; j++) {
                    float want = use_beta ? hC[i * ldc + j] : got[i * ldc + j];
                    pad_ok &= use_beta ? got[i * ldc + j] == want : isnan(got[i * ldc + j]);
                    got[i * ldc + j] = ref[i * ldc + j] = 0;
                }
            char name[96];
            snprintf(name, sizeof name, "  v%d tA=%d tB=%d beta=%.1f", v, tA, tB, beta);
            check_close(name, got, ref, (size_t)M * ldc, 1e-5, 1e-5);
            check(pad_ok, "  v%d tA=%d tB=%d beta=%.1f: columns beyond N untouched", v, tA, tB, beta);
        }
    }
    gemm_cuda_set_version(0);
    cudaCheck(cudaFree(dA)); cudaCheck(cudaFree(dB)); cudaCheck(cudaFree(dC));
    free(hA); free(hB); free(hC); free(ref); free(got);
}

int main(void) {
    double t0 = now_seconds();
    test_sgemm();
    for (int s = 0; s < NSHAPES; s++) test_shape(s);
    printf("emu_conv: %lld kernel launches, %lld emulated threads, %.1f s\n", emu_launch_count(), emu_thread_count(),
           now_seconds() - t0);
    return test_summary();
}
