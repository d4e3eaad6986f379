/* tests/emu_conv.cpp — the CUDA convolution (kernels/conv.cu) under the CPU
 * emulator, against the C reference (kernels/conv.c).
 *
 * For every shape below and every GEMM version of kernels/gemm.cu (1 naive,
 * 2 shared-memory tiles, 3 register blocking, 4 float4 loads + double
 * buffering):
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
 * The forward on the implicit GEMM (kernels/conv_implicit.cu; the rest of the
 * file runs the im2col path, DKD_CUDA_IMPLICIT=0's) matches the reference
 * within the same tolerance and the im2col path value for value, bit-identical
 * under every schedule, guard words intact; two more shapes reach its 32-row
 * tile and a second 256-column tile (its 64-row tile: OC=70).
 * The GEMM itself (gemm_cuda_batched, every version) is checked against
 * sgemm_cpu for all transposes, alpha and beta (beta = 0 must not read C: C
 * starts as NaN), batches, ragged shapes (no dimension a multiple of a tile)
 * and leading dimensions that allow float4 loads or forbid them.
 * Every kernel also runs under the emulator's shared-memory race detector
 * (tests/cuda_emu.h), which stops the test at the first race.
 */
#include "dkd.h"
#include "kernels/cuda_common.h"
#include "kernels/cuda_ops.h"
#include "test.h"
#include "emu_test.h"     // defines: schedules, NSCHED, max_abs, the GPU stand-ins


/* The tuning knobs of kernels/conv.cu (declared there too); the GEMM's are in kernels/cuda_ops.h. */
extern "C" {
void conv_cuda_set_block_size(int n);
void conv_cuda_set_workspace_cap(size_t floats);
void conv_cuda_set_implicit(int on);
}

enum { GUARD = 16 };

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
    {3, 8, 6, 6, 24, 3, 1, 1, 1, 0, 1, "OC=24: the implicit GEMM's 32-row tile"},
    {3, 4, 10, 10, 12, 3, 1, 1, 1, 1, 1, "300 columns: two 256-column tiles"},
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

/* run_conv under every schedule, into r[k]: *same = 1 if all gave the same
 * bits, *guards = 1 if no run wrote past an end. */
static void run_schedules(const Shape *s, const float *hx, const float *hw, const float *hb, const float *hdy,
                          const float *hdx0, size_t nx, size_t ny, size_t nw, Result r[NSCHED], int *same, int *guards) {
    *same = *guards = 1;
    for (int k = 0; k < NSCHED; k++) {
        emu_set_schedule(schedules[k]);
        alloc_result(&r[k], nx, ny, nw, s->OC);
        run_conv(s, hx, hw, hb, hdy, hdx0, &r[k]);
        *guards &= r[k].guards;
        if (k) *same &= same_result(&r[0], &r[k], s, nx, ny, nw);
    }
}

/* The forward on the implicit GEMM (kernels/conv_implicit.cu; the backward
 * stays im2col): y within tolerance of the C reference and the same values as
 * the im2col path (each output one thread's sum over k in order, in both),
 * bit-identical under every schedule, nothing written past the ends. */
static void test_implicit(const Shape *s, const Result *ref, const float *hx, const float *hw, const float *hb,
                          const float *hdy, const float *hdx0, size_t nx, size_t ny, size_t nw) {
    if (s->G == s->C && s->OC == s->C) return;   /* depthwise: conv.cu's direct kernel on either path */
    Result im2col, r[NSCHED];
    int same, guards, equal = 1;
    alloc_result(&im2col, nx, ny, nw, s->OC);
    run_conv(s, hx, hw, hb, hdy, hdx0, &im2col);   /* (im2col: the file's default) */
    conv_cuda_set_implicit(1);
    run_schedules(s, hx, hw, hb, hdy, hdx0, nx, ny, nw, r, &same, &guards);
    conv_cuda_set_implicit(0);
    emu_set_schedule("forward");
    for (size_t i = 0; i < ny; i++) equal &= r[0].y[i] == im2col.y[i];
    close_to("  implicit GEMM y", r[0].y, ref->y, ny);
    check(equal, "  implicit GEMM y: the same values as the im2col path");
    check(same, "  implicit GEMM: bit-identical under forward, reverse, random:1, random:2");
    check(guards, "  implicit GEMM: nothing written past the ends of y, dx, dw, db, workspace");
    for (int k = 0; k < NSCHED; k++) free_result(&r[k]);
    free_result(&im2col);
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
    for (int v = 1; v <= gemm_cuda_versions(); v++) {
        gemm_cuda_set_version(v);
        Result r[NSCHED];
        int same, guards;
        conv_cuda_set_block_size(256);
        run_schedules(s, hx, hw, hb, hdy, hdx0, nx, ny, nw, r, &same, &guards);
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
    test_implicit(s, &ref, hx, hw, hb, hdy, hdx0, nx, ny, nw);
    free_result(&ref);
    free(hx); free(hw); free(hb); free(hdy); free(hdx0);
}

/* A leading dimension for a stored matrix with `cols` columns: a multiple of
 * 4 floats (version 4 may use float4 loads) or not (it must fall back). */
static int lead_dim(int cols, int vec_friendly) {
    if (vec_friendly) return (cols + 3) / 4 * 4 + 4;
    int ld = cols + 1;
    return ld % 4 ? ld : ld + 1;
}

/* One GEMM case: `batch` products of op(A)[M,K] op(B)[K,N] at strides that
 * keep (or break) 16-byte alignment, under every version and transpose flag,
 * against sgemm_cpu matrix by matrix. Checks, per version: within tolerance
 * of the C GEMM, padding columns of C untouched, beta = 0 never reads C (it
 * starts as NaN); across versions: the same values (each element is one
 * thread's sum over k in order, in every version). */
static void sgemm_case(int M, int N, int K, int batch, int vec_friendly) {
    printf("  M=%d N=%d K=%d batch=%d, leading dimensions %s\n", M, N, K, batch,
           vec_friendly ? "multiples of 4 (float4 loads where inside)" : "not multiples of 4 (scalar loads)");
    for (int t = 0; t < 8; t++) {
        int tA = t & 1, tB = (t >> 1) & 1, use_beta = t >> 2;
        int lda = lead_dim(tA ? M : K, vec_friendly), ldb = lead_dim(tB ? K : N, vec_friendly);
        int ldc = lead_dim(N, vec_friendly);
        long long sA = (long long)lda * (tA ? K : M), sB = (long long)ldb * (tB ? N : K), sC = (long long)ldc * M;
        size_t na = (size_t)sA * batch, nb = (size_t)sB * batch, nc = (size_t)sC * batch;
        float *hA = (float *)xmalloc(na * sizeof(float)), *hB = (float *)xmalloc(nb * sizeof(float));
        float *hC = (float *)xmalloc(nc * sizeof(float)), *ref = (float *)xmalloc(nc * sizeof(float));
        float *got = (float *)xmalloc(nc * sizeof(float)), *first = (float *)xmalloc(nc * sizeof(float));
        test_fill(hA, na, 11 + t, 1.0f); test_fill(hB, nb, 12 + t, 1.0f); test_fill(hC, nc, 13 + t, 1.0f);
        float alpha = 0.75f, beta = use_beta ? 0.5f : 0.0f;
        memcpy(ref, hC, nc * sizeof(float));
        for (int z = 0; z < batch; z++)
            sgemm_cpu(tA, tB, M, N, K, alpha, hA + z * sA, lda, hB + z * sB, ldb, beta, ref + z * sC, ldc);
        float *dA = dev_from(hA, na), *dB = dev_from(hB, nb), *dC = dev_alloc(nc);
        int same = 1;
        for (int v = 1; v <= gemm_cuda_versions(); v++) {
            gemm_cuda_set_version(v);
            if (use_beta) cudaCheck(cudaMemcpy(dC, hC, nc * sizeof(float), cudaMemcpyHostToDevice));
            else cudaCheck(cudaMemset(dC, 0xff, nc * sizeof(float)));   /* NaN: must not be read */
            emu_set_schedule(schedules[(t + v) % NSCHED]);
            gemm_cuda_batched(tA, tB, M, N, K, alpha, dA, lda, sA, dB, ldb, sB, beta, dC, ldc, sC, batch);
            to_host(got, dC, nc);
            /* the padding columns j >= N of every row: untouched (NaN or the old C) */
            int pad_ok = guard_ok(dC, nc);
            for (size_t r = 0; r < (size_t)batch * M; r++)
                for (int j = N; j < ldc; j++) {
                    size_t i = r * ldc + j;
                    pad_ok &= use_beta ? got[i] == hC[i] : isnan(got[i]);
                    got[i] = ref[i] = 0;
                }
            char name[128];
            snprintf(name, sizeof name, "    v%d tA=%d tB=%d beta=%.1f", v, tA, tB, beta);
            check_close(name, got, ref, nc, 1e-5, 1e-5);
            check(pad_ok, "    v%d tA=%d tB=%d beta=%.1f: nothing written outside C's M x N parts", v, tA, tB, beta);
            if (v == 1) memcpy(first, got, nc * sizeof(float));
            else for (size_t i = 0; i < nc; i++) same &= got[i] == first[i];
        }
        check(same, "    tA=%d tB=%d beta=%.1f: versions 1..%d give the same values", tA, tB, beta, gemm_cuda_versions());
        cudaCheck(cudaFree(dA)); cudaCheck(cudaFree(dB)); cudaCheck(cudaFree(dC));
        free(hA); free(hB); free(hC); free(ref); free(got); free(first);
    }
    gemm_cuda_set_version(0);
}

static void test_sgemm(void) {
    printf("gemm_cuda_batched (kernels/gemm.cu, every version) vs sgemm_cpu:\n");
    sgemm_case(1, 1, 1, 1, 1);          /* the smallest */
    sgemm_case(70, 45, 37, 1, 0);       /* ragged in every dimension, scalar loads */
    sgemm_case(64, 64, 16, 1, 1);       /* exactly one tile of versions 3 and 4 */
    sgemm_case(67, 130, 45, 2, 1);      /* float4 where inside, scalar at the ragged edges; batched */
    sgemm_case(5, 33, 130, 3, 0);       /* small M (a conv's output channels), long K; batched */
}

int main(void) {
    double t0 = now_seconds();
    conv_cuda_set_implicit(0);   /* the im2col path, except in test_implicit */
    test_sgemm();
    for (int s = 0; s < NSHAPES; s++) test_shape(s);
    printf("emu_conv: %lld kernel launches, %lld emulated threads, %.1f s\n", emu_launch_count(), emu_thread_count(),
           now_seconds() - t0);
    check_race_free("emu_conv");
    return test_summary();
}
