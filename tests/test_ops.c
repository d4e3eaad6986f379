/* tests/test_ops.c — the CPU reference ops (kernels/NAME.c except augment) against
 * independent double-precision references and finite differences.
 *
 * How each op is checked:
 *   forward   against a naive double-precision loop written here (direct convolution,
 *             textbook BN, ...), on small random shapes including awkward ones;
 *   backward  against central finite differences of that double forward:
 *             L = Σ_i r_i·y_i with fixed random r, so dL/dy = r is fed to the backward
 *             and dL/dθ = (L(θ+h) - L(θ-h)) / 2h is computed in double for a sample of
 *             elements θ of every input and parameter. Input gradients must ACCUMULATE
 *             (dx is pre-filled and the fill is subtracted), parameter gradients overwrite;
 *   threads   results bit-identical with 1 and 2 OpenMP threads;
 *   workspace conv's workspace is filled with NaN (reading stale data shows) and has a
 *             guard zone after it (writing past conv2d_workspace_floats shows).
 * Losses: a fixed test vector (inputs computed from a formula, values
 * compared with a float64 reference), gradients vs finite differences of a naive
 * double implementation written the way mdistiller computes it, Σ_j g_j = 0, and
 * finiteness at logits of scale 30 and a tempered margin of 100.
 * SGD: one and two steps against scalar re-implementations of torch's float32 order.
 */
#include "dkd.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------- */

static float *fnew(size_t n) { return (float *)xcalloc(n ? n : 1, sizeof(float)); }
static double *dnew(size_t n) { return (double *)xcalloc(n ? n : 1, sizeof(double)); }
static float *frand(size_t n, unsigned long long seed, float scale) { float *a = fnew(n); test_fill(a, n, seed, scale); return a; }
static double *to_double(const float *a, size_t n) { double *d = dnew(n); for (size_t i = 0; i < n; i++) d[i] = a[i]; return d; }
static float *to_float(const double *a, size_t n) { float *f = fnew(n); for (size_t i = 0; i < n; i++) f[i] = (float)a[i]; return f; }
static double dot(const double *a, const double *b, size_t n) { double s = 0; for (size_t i = 0; i < n; i++) s += a[i] * b[i]; return s; }
static double fmaxabs(const float *a, size_t n) { double m = 0; for (size_t i = 0; i < n; i++) if (fabs(a[i]) > m) m = fabs(a[i]); return m; }

/* The loss of a finite-difference check: L = Σ r·y(θ) from a double reference forward. */
typedef double (*LossFn)(void *ctx);

/* Central differences of fn w.r.t. up to `samples` elements of theta (double, n) against
 * the analytic gradient grad (float, n). Fails when |g - fd| > 1e-4·max|fd| + 2e-3·|fd|. */
static int fd_check(const char *name, LossFn fn, void *ctx, double *theta, size_t n, const float *grad, int samples) {
    const double h = 1e-4;
    size_t k = n < (size_t)samples ? n : (size_t)samples;
    float *got = fnew(k), *ref = fnew(k);
    unsigned long long s = 12345 + n;
    for (size_t j = 0; j < k; j++) {
        size_t i = n <= (size_t)samples ? j : (size_t)((test_rand(&s) * 0.5 + 0.5) * (double)n) % n;
        double save = theta[i];
        theta[i] = save + h; double lp = fn(ctx);
        theta[i] = save - h; double lm = fn(ctx);
        theta[i] = save;
        ref[j] = (float)((lp - lm) / (2 * h));
        got[j] = grad[i];
    }
    char label[300];
    snprintf(label, sizeof label, "%s vs finite differences", name);
    int ok = check_close(label, got, ref, k, 1e-4 * fmaxabs(ref, k) + 1e-7, 2e-3);
    free(got); free(ref);
    return ok;
}

/* dx after a backward that must ADD to the prefilled dx0: returns dx - dx0 (new buffer). */
static float *added(const float *dx, const float *dx0, size_t n) {
    float *d = fnew(n);
    for (size_t i = 0; i < n; i++) d[i] = dx[i] - dx0[i];
    return d;
}

/* ---- sgemm ------------------------------------------------------------------------- */

static void sgemm_naive(int tA, int tB, int M, int N, int K, double alpha, const float *A, int lda,
                        const float *B, int ldb, double beta, const float *C0, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)(tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) * (tB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            C[(size_t)i * ldc + j] = (float)(alpha * s + (beta == 0 ? 0 : beta * C0[(size_t)i * ldc + j]));
        }
}

static void test_sgemm(void) {
    printf("sgemm\n");
    /* odd sizes around the tile sizes (MR 6, NR 8/16/32, KC 256, MC 96, NC 1024) */
    static const int shapes[][3] = { {1, 1, 1}, {5, 7, 3}, {6, 16, 256}, {7, 17, 257}, {13, 33, 70},
                                     {97, 40, 300}, {20, 1030, 45}, {200, 3, 513}, {3, 200, 2} };
    for (int t = 0; t < 4; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int tA = t & 1, tB = t >> 1, M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            int lda = (tA ? M : K) + 3, ldb = (tB ? K : N) + 1, ldc = N + 2;
            size_t na = (size_t)(tA ? K : M) * lda, nb = (size_t)(tB ? N : K) * ldb, nc = (size_t)M * ldc;
            float *A = frand(na, 1 + s, 1), *B = frand(nb, 2 + s, 1), *C0 = frand(nc, 3 + s, 1);
            float *C = fnew(nc), *R = fnew(nc);
            float alpha = 0.75f, beta = t == 3 ? 0.0f : (t == 2 ? 1.0f : -0.5f);
            if (beta == 0.0f) for (size_t i = 0; i < nc; i++) C0[i] = NAN;   /* beta 0: C must not be read */
            memcpy(C, C0, nc * sizeof(float));
            memcpy(R, C0, nc * sizeof(float));
            sgemm_cpu(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            sgemm_naive(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C0, R, ldc);
            /* the padding columns of C (j >= N) must be untouched */
            int pad_ok = 1;
            for (int i = 0; i < M; i++)
                for (int j = N; j < ldc; j++) {
                    float a = C[(size_t)i * ldc + j], b = C0[(size_t)i * ldc + j];
                    if (!(a == b || (a != a && b != b))) pad_ok = 0;
                }
            char name[96];
            snprintf(name, sizeof name, "sgemm tA=%d tB=%d M=%d N=%d K=%d beta=%g", tA, tB, M, N, K, beta);
            float *cg = fnew((size_t)M * N), *cr = fnew((size_t)M * N);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) { cg[(size_t)i * N + j] = C[(size_t)i * ldc + j]; cr[(size_t)i * N + j] = R[(size_t)i * ldc + j]; }
            check_close(name, cg, cr, (size_t)M * N, 2e-6 * sqrt((double)K), 1e-5);
            if (!pad_ok) check(0, "%s: wrote outside the N columns", name);
            free(A); free(B); free(C0); free(C); free(R); free(cg); free(cr);
        }
    /* K = 0 and alpha = 0 scale C by beta */
    float c[4] = {1, 2, 3, 4}, a1[4] = {1, 1, 1, 1};
    sgemm_cpu(0, 0, 2, 2, 0, 1.0f, a1, 1, a1, 2, 2.0f, c, 2);
    check(c[0] == 2 && c[3] == 8, "sgemm K=0: C = beta*C");
    sgemm_cpu(0, 0, 2, 2, 2, 0.0f, a1, 2, a1, 2, 0.0f, c, 2);
    check(c[0] == 0 && c[3] == 0, "sgemm alpha=0, beta=0: C = 0");
}

/* ---- conv2d ---------------------------------------------------------------------------- */

typedef struct { int N, C, H, W, OC, K, S, P, G, bias; const char *what; } ConvCase;

typedef struct {
    ConvCase c; int OH, OW;
    double *x, *w, *b, *r;   /* double copies for the reference */
    double *y;               /* scratch */
} ConvCtx;

/* the definition: conv2d_forward_direct (kernels/conv.c), seven loops in double */
static void conv_ref(double *y, const double *x, const double *w, const double *b, const ConvCase *c) {
    conv2d_forward_direct(y, x, w, b, c->N, c->C, c->H, c->W, c->OC, c->K, c->S, c->P, c->G);
}

static double conv_loss(void *p) {
    ConvCtx *t = (ConvCtx *)p;
    conv_ref(t->y, t->x, t->w, t->b, &t->c);
    return dot(t->y, t->r, (size_t)t->c.N * t->c.OC * t->OH * t->OW);
}

/* A workspace with a NaN body and a guard zone behind it. */
enum { GUARD = 64 };
static float *ws_new(size_t n) {
    float *ws = fnew(n + GUARD);
    for (size_t i = 0; i < n; i++) ws[i] = NAN;
    for (size_t i = 0; i < GUARD; i++) ws[n + i] = 12345.0f;
    return ws;
}
static int ws_guard_ok(const float *ws, size_t n) {
    for (size_t i = 0; i < GUARD; i++) if (ws[n + i] != 12345.0f) return 0;
    return 1;
}

/* The eval forward's weight cache: filled (cached = 0) it gives the uncached result bit
 * for bit; then used (cached = 1) with the weights replaced by NaN it still does, so the
 * cached path reads the cache, not w. */
static void test_eval_cache(const ConvCase *c, const float *x, const float *w, const float *b, float *ws,
                            const float *ye, size_t ny, const char *name) {
    size_t nc = conv2d_eval_cache_floats(c->C, c->H, c->W, c->OC, c->K, c->S, c->P, c->G);
    if (!nc) return;   /* (this layer's path keeps nothing) */
    size_t nw = (size_t)c->OC * (c->C / c->G) * c->K * c->K;
    float *cache = ws_new(nc), *y1 = fnew(ny), *y2 = fnew(ny), *nanw = fnew(nw);
    for (size_t i = 0; i < nw; i++) nanw[i] = NAN;
    conv2d_forward_eval_cpu(y1, x, w, b, c->N, c->C, c->H, c->W, c->OC, c->K, c->S, c->P, c->G, ws, cache, 0, NULL, 0);
    check(memcmp(y1, ye, ny * sizeof(float)) == 0 && ws_guard_ok(cache, nc),
          "%s: eval forward filling its weight cache (%zu floats): same bits", name, nc);
    int filled = 0;   /* (the size is the largest of every instruction set's: this one's path may keep nothing) */
    for (size_t i = 0; i < nc && !filled; i++) filled = !isnan(cache[i]);
    if (filled) {
        conv2d_forward_eval_cpu(y2, x, nanw, b, c->N, c->C, c->H, c->W, c->OC, c->K, c->S, c->P, c->G, ws, cache, 1, NULL, 0);
        check(memcmp(y2, ye, ny * sizeof(float)) == 0, "%s: eval forward from the cache (weights NaN): same bits", name);
    }
    free(cache); free(y1); free(y2); free(nanw);
}

/* The eval forward's epilogue (kernels/epilogue.h): with a residual and/or the ReLU it
 * equals the plain eval forward followed by the separate add and ReLU, bit for bit
 * (NaN in the residual included: the ReLU keeps it). */
static void test_eval_epilogue(const ConvCase *c, const float *x, const float *w, const float *b, float *ws,
                               const float *ye, size_t ny, const char *name) {
    float *res = frand(ny, 18, 1), *y = fnew(ny), *want = fnew(ny);
    res[ny / 3] = NAN;
    for (int mode = 1; mode < 4; mode++) {   /* 1: + res, 2: ReLU, 3: + res then ReLU */
        const float *r = mode & 1 ? res : NULL;
        int relu = mode >= 2;
        for (size_t i = 0; i < ny; i++) {
            float v = r ? ye[i] + r[i] : ye[i];
            want[i] = relu && v <= 0.0f ? 0.0f : v;
        }
        conv2d_forward_eval_cpu(y, x, w, b, c->N, c->C, c->H, c->W, c->OC, c->K, c->S, c->P, c->G, ws, NULL, 0, r,
                                relu);
        check(memcmp(y, want, ny * sizeof(float)) == 0, "%s: eval forward with %s: = the separate ops, same bits", name,
              mode == 1 ? "a residual" : mode == 2 ? "the ReLU" : "a residual and the ReLU");
    }
    free(res); free(y); free(want);
}

static void test_conv_case(const ConvCase *c) {
    int OH = (c->H + 2 * c->P - c->K) / c->S + 1, OW = (c->W + 2 * c->P - c->K) / c->S + 1;
    size_t nx = (size_t)c->N * c->C * c->H * c->W, nw = (size_t)c->OC * (c->C / c->G) * c->K * c->K;
    size_t ny = (size_t)c->N * c->OC * OH * OW;
    char name[200];
    snprintf(name, sizeof name, "conv %s (N%d C%d %dx%d OC%d K%d S%d P%d G%d%s)", c->what, c->N, c->C, c->H, c->W,
             c->OC, c->K, c->S, c->P, c->G, c->bias ? " bias" : "");
    float *x = frand(nx, 11, 1), *w = frand(nw, 12, 0.5f), *b = c->bias ? frand((size_t)c->OC, 13, 0.5f) : NULL;
    float *r = frand(ny, 14, 1);
    size_t nws = conv2d_workspace_floats(c->N, c->C, c->H, c->W, c->OC, c->K, c->S, c->P, c->G);
    float *ws = ws_new(nws);

    /* forward vs direct convolution */
    float *y = fnew(ny);
    conv2d_forward_cpu(y, x, w, b, c->N, c->C, c->H, c->W, c->OC, c->K, c->S, c->P, c->G, ws);
    ConvCtx t = { *c, OH, OW, to_double(x, nx), to_double(w, nw), b ? to_double(b, (size_t)c->OC) : NULL, to_double(r, ny), dnew(ny) };
    conv_ref(t.y, t.x, t.w, t.b, c);
    float *yr = to_float(t.y, ny);
    char lab[240];
    snprintf(lab, sizeof lab, "%s forward vs direct loops", name);
    check_close(lab, y, yr, ny, 1e-5 * (1 + fmaxabs(yr, ny)), 1e-5);
    /* the eval-mode forward (Winograd F(4x4) on wide layers from 8x8: a larger rounding
     * error, held to the same tolerance) */
    float *ye = fnew(ny);
    conv2d_forward_eval_cpu(ye, x, w, b, c->N, c->C, c->H, c->W, c->OC, c->K, c->S, c->P, c->G, ws, NULL, 0, NULL, 0);
    snprintf(lab, sizeof lab, "%s eval-mode forward vs direct loops", name);
    check_close(lab, ye, yr, ny, 1e-5 * (1 + fmaxabs(yr, ny)), 1e-5);
    check(ws_guard_ok(ws, nws), "%s: eval forward: workspace of %zu floats not overrun", name, nws);
    test_eval_cache(c, x, w, b, ws, ye, ny, name);
    test_eval_epilogue(c, x, w, b, ws, ye, ny, name);
    free(ye);

    /* backward: dx accumulates onto dx0, dw and db overwrite a garbage fill */
    float *dx0 = frand(nx, 15, 1), *dx = fnew(nx), *dw = frand(nw, 16, 9), *db = b ? frand((size_t)c->OC, 17, 9) : NULL;
    memcpy(dx, dx0, nx * sizeof(float));
    for (size_t i = 0; i < nws; i++) ws[i] = NAN;
    conv2d_backward_cpu(dx, dw, db, r, x, w, c->N, c->C, c->H, c->W, c->OC, c->K, c->S, c->P, c->G, ws);
    float *gx = added(dx, dx0, nx);
    snprintf(lab, sizeof lab, "%s dx", name); fd_check(lab, conv_loss, &t, t.x, nx, gx, 40);
    snprintf(lab, sizeof lab, "%s dw", name); fd_check(lab, conv_loss, &t, t.w, nw, dw, 40);
    if (b) { snprintf(lab, sizeof lab, "%s db", name); fd_check(lab, conv_loss, &t, t.b, (size_t)c->OC, db, 40); }
    check(ws_guard_ok(ws, nws), "%s: workspace of %zu floats not overrun", name, nws);

    /* dx = NULL: the same dw */
    float *dw2 = fnew(nw);
    conv2d_backward_cpu(NULL, dw2, NULL, r, x, w, c->N, c->C, c->H, c->W, c->OC, c->K, c->S, c->P, c->G, ws);
    check(memcmp(dw, dw2, nw * sizeof(float)) == 0, "%s: dx=NULL, db=NULL give the same dw", name);

    /* dx written (conv2d_backward_set_cpu) over a NaN fill = dx added onto zeros; the same dw */
    float *dxz = fnew(nx), *dxs = fnew(nx), *dw3 = fnew(nw);
    for (size_t i = 0; i < nx; i++) { dxz[i] = 0.0f; dxs[i] = NAN; }
    conv2d_backward_cpu(dxz, dw2, NULL, r, x, w, c->N, c->C, c->H, c->W, c->OC, c->K, c->S, c->P, c->G, ws);
    conv2d_backward_set_cpu(dxs, dw3, NULL, r, x, w, c->N, c->C, c->H, c->W, c->OC, c->K, c->S, c->P, c->G, ws);
    int same = memcmp(dw, dw3, nw * sizeof(float)) == 0;
    for (size_t i = 0; i < nx; i++) same &= dxs[i] == dxz[i];   /* (-0 == +0) */
    check(same, "%s: dx written over NaN = dx added onto zeros, same dw", name);
    free(dxz); free(dxs); free(dw3);

    free(x); free(w); free(b); free(r); free(ws); free(y); free(yr); free(dx0); free(dx); free(dw); free(db); free(gx); free(dw2);
    free(t.x); free(t.w); free(t.b); free(t.r); free(t.y);
}

static void test_conv(void) {
    printf("conv2d\n");
    static const ConvCase cases[] = {
        {2, 3, 8, 8, 4, 3, 1, 1, 1, 1, "3x3 pad 1 + bias: implicit GEMM, dW by im2col (8 wide)"},
        {1, 5, 7, 5, 3, 3, 2, 1, 1, 0, "N=1 odd C, stride 2, non-square"},
        {2, 3, 4, 4, 2, 3, 1, 0, 1, 0, "pad 0"},
        {3, 6, 6, 6, 9, 3, 1, 1, 3, 0, "groups 3"},
        {2, 6, 5, 5, 6, 1, 1, 0, 3, 1, "1x1 groups 3 + bias"},
        {2, 8, 6, 6, 8, 3, 1, 1, 8, 0, "depthwise"},
        {2, 8, 7, 7, 8, 3, 2, 1, 8, 1, "depthwise stride 2 + bias"},
        {2, 4, 5, 5, 6, 1, 1, 0, 1, 0, "1x1"},
        {2, 4, 6, 6, 6, 1, 2, 0, 1, 0, "1x1 stride 2"},
        {3, 4, 1, 1, 5, 1, 1, 0, 1, 1, "H=W=1"},
        {2, 3, 1, 1, 4, 3, 1, 1, 1, 0, "H=W=1, 3x3 pad 1"},
        {1, 2, 9, 9, 3, 5, 2, 2, 1, 0, "5x5 stride 2 pad 2"},
        {20, 4, 4, 4, 6, 3, 2, 1, 2, 0, "2x2 outputs: 16-image slices, 2 dW chunks"},
        {10, 2, 8, 8, 3, 3, 1, 1, 1, 0, "8x8: 10 images in 8 dW chunks, implicit GEMM"},
        {5, 3, 3, 3, 4, 3, 1, 1, 1, 1, "3x3 maps, N=5 in one slice"},
        {2, 3, 9, 9, 4, 3, 1, 1, 1, 0, "9x9: implicit GEMM, grid of 99 padded to whole strips"},
        {1, 2, 24, 24, 3, 3, 1, 1, 1, 1, "24x24: implicit GEMM forward, dx and dW"},
        {2, 3, 23, 23, 5, 3, 1, 1, 1, 0, "23x23: implicit GEMM, odd width"},
        {2, 3, 10, 10, 5, 3, 1, 0, 1, 0, "10x10 pad 0: 8x8 output, implicit GEMM (dx with pad 2)"},
        {2, 5, 8, 8, 7, 1, 1, 0, 1, 1, "1x1 on 8x8: pointwise, no im2col"},
        {3, 6, 9, 9, 9, 1, 1, 0, 3, 0, "1x1 groups 3 on 9x9: pointwise, B packed"},
        {2, 6, 16, 16, 9, 3, 1, 1, 3, 1, "groups 3 on 16x16: implicit GEMM per group + bias"},
        {1, 3, 18, 18, 4, 3, 1, 0, 1, 0, "18x18 pad 0: 16x16 output, implicit dW"},
        {1, 2, 16, 16, 3, 5, 1, 2, 1, 0, "5x5 pad 2 on 16x16: implicit GEMM, K=5"},
        {2, 3, 8, 20, 5, 3, 1, 1, 1, 1, "8x20 non-square: implicit GEMM, implicit dW"},
        {1, 3, 48, 48, 4, 3, 2, 1, 1, 0, "48x48 stride 2: 24x24 output by im2col"},
        {1, 32, 9, 9, 32, 3, 1, 1, 1, 1, "32->32 on 9x9 + bias: Winograd, odd size"},
        {1, 32, 18, 18, 33, 3, 1, 1, 1, 0, "32->33 on 18x18: Winograd, a tile block ends mid-row"},
        {2, 40, 8, 12, 32, 3, 1, 1, 1, 0, "40->32 on 8x12: Winograd, non-square"},
        {20, 32, 4, 4, 32, 3, 1, 1, 1, 0, "32->32 on 4x4, 20 images: Winograd, several images per call"},
        {9, 32, 2, 2, 33, 3, 1, 1, 1, 1, "32->33 on 2x2 + bias: Winograd, one tile per image"},
        {3, 33, 3, 5, 32, 3, 1, 1, 1, 0, "33->32 on 3x5: Winograd, odd tiny maps"},
        {4, 32, 1, 1, 32, 3, 1, 1, 1, 0, "32->32 on 1x1: Winograd, a tile mostly padding"},
        {3, 16, 5, 5, 16, 3, 1, 1, 16, 1, "depthwise 5x5 + bias: shiftconv (AVX-512, AVX2), a partial last vector"},
        {2, 8, 16, 16, 8, 3, 1, 1, 8, 0, "depthwise 16x16: shiftconv (AVX-512, AVX2), whole vectors"},
        {3, 12, 4, 4, 20, 3, 1, 1, 1, 1, "12->20 on 4x4 + bias: shiftconv, one vector per image, 20 = 8+8+4 rows"},
        {1, 128, 4, 4, 1024, 3, 1, 1, 1, 0, "128->1024 on 4x4: dW as one GEMM over the batch (dw_whole_batch)"},
        {2, 113, 3, 3, 1100, 3, 1, 1, 1, 1, "113->1100 on 3x3 + bias: dW as one GEMM, columns not whole strips"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_conv_case(&cases[i]);
}

/* ---- batchnorm --------------------------------------------------------------------------- */

typedef struct { int N, C, HW; double *x, *g, *b, *r, *y; } BnCtx;

/* train-mode BN in double (two-pass textbook statistics) */
static void bn_ref(double *y, double *mean, double *var, const double *x, const double *g, const double *b, int N, int C, int HW, double eps) {
    double m = (double)N * HW;
    for (int c = 0; c < C; c++) {
        double s = 0, v = 0;
        for (int n = 0; n < N; n++) for (int i = 0; i < HW; i++) s += x[((size_t)n * C + c) * HW + i];
        double mu = s / m;
        for (int n = 0; n < N; n++) for (int i = 0; i < HW; i++) { double d = x[((size_t)n * C + c) * HW + i] - mu; v += d * d; }
        v /= m;
        if (mean) mean[c] = mu;
        if (var) var[c] = v;
        for (int n = 0; n < N; n++) for (int i = 0; i < HW; i++) {
            size_t k = ((size_t)n * C + c) * HW + i;
            y[k] = (x[k] - mu) / sqrt(v + eps) * g[c] + b[c];
        }
    }
}
static double bn_loss(void *p) {
    BnCtx *t = (BnCtx *)p;
    bn_ref(t->y, NULL, NULL, t->x, t->g, t->b, t->N, t->C, t->HW, 1e-5);
    return dot(t->y, t->r, (size_t)t->N * t->C * t->HW);
}

static void test_bn_case(int N, int C, int HW, float offset) {
    char name[96];
    snprintf(name, sizeof name, "batchnorm N%d C%d HW%d%s", N, C, HW, offset != 0 ? " (mean 100)" : "");
    size_t n = (size_t)N * C * HW;
    float *x = frand(n, 21, 2), *g = frand((size_t)C, 22, 1), *be = frand((size_t)C, 23, 1), *r = frand(n, 24, 1);
    for (size_t i = 0; i < n; i++) x[i] += offset;
    for (int c = 0; c < C; c++) g[c] += 1.5f;
    float *y = fnew(n), *sm = fnew((size_t)C), *si = fnew((size_t)C);
    float *rm = frand((size_t)C, 25, 1), *rv = frand((size_t)C, 26, 0.5f);
    for (int c = 0; c < C; c++) rv[c] += 1.0f;
    float *rm0 = fnew((size_t)C), *rv0 = fnew((size_t)C);
    memcpy(rm0, rm, C * sizeof(float)); memcpy(rv0, rv, C * sizeof(float));
    int updates = C % 2 ? 2 : 1;   /* exercise the WRN double update too */
    batchnorm_forward_train_cpu(y, sm, si, rm, rv, x, g, be, N, C, HW, 0.1f, 1e-5f, updates);

    BnCtx t = { N, C, HW, to_double(x, n), to_double(g, (size_t)C), to_double(be, (size_t)C), to_double(r, n), dnew(n) };
    double *mu = dnew((size_t)C), *var = dnew((size_t)C);
    bn_ref(t.y, mu, var, t.x, t.g, t.b, N, C, HW, 1e-5);
    float *yr = to_float(t.y, n);
    char lab[160];
    snprintf(lab, sizeof lab, "%s train forward", name);
    check_close(lab, y, yr, n, 1e-5 * fmaxabs(yr, n), 1e-5);
    float *erm = fnew((size_t)C), *erv = fnew((size_t)C), *esm = fnew((size_t)C), *esi = fnew((size_t)C);
    double m = (double)N * HW;
    for (int c = 0; c < C; c++) {
        double a = rm0[c], v = rv0[c], unb = m > 1 ? var[c] * m / (m - 1) : var[c];
        for (int u = 0; u < updates; u++) { a = 0.9 * a + 0.1 * mu[c]; v = 0.9 * v + 0.1 * unb; }
        erm[c] = (float)a; erv[c] = (float)v; esm[c] = (float)mu[c]; esi[c] = (float)(1 / sqrt(var[c] + 1e-5));
    }
    snprintf(lab, sizeof lab, "%s saved mean", name); check_close(lab, sm, esm, (size_t)C, 1e-6 * (1 + fabs(offset)), 1e-6);
    snprintf(lab, sizeof lab, "%s saved invstd", name); check_close(lab, si, esi, (size_t)C, 0, 1e-5);
    snprintf(lab, sizeof lab, "%s running mean (%d update%s, momentum 0.1)", name, updates, updates > 1 ? "s" : "");
    check_close(lab, rm, erm, (size_t)C, 1e-6 * (1 + fabs(offset)), 1e-6);
    snprintf(lab, sizeof lab, "%s running var (unbiased)", name); check_close(lab, rv, erv, (size_t)C, 1e-7, 1e-5);

    /* eval mode: the running statistics */
    float *ye = fnew(n), *yer = fnew(n);
    batchnorm_forward_eval_cpu(ye, x, g, be, rm, rv, N, C, HW, 1e-5f);
    for (size_t i = 0; i < n; i++) {
        int c = (int)((i / HW) % C);
        yer[i] = (float)(((double)x[i] - rm[c]) / sqrt((double)rv[c] + 1e-5) * g[c] + be[c]);
    }
    snprintf(lab, sizeof lab, "%s eval forward", name); check_close(lab, ye, yer, n, 1e-5 * fmaxabs(yer, n), 1e-5);

    /* backward */
    float *dx0 = frand(n, 27, 1), *dx = fnew(n), *dg = frand((size_t)C, 28, 5), *dbt = frand((size_t)C, 29, 5);
    memcpy(dx, dx0, n * sizeof(float));
    batchnorm_backward_cpu(dx, dg, dbt, r, x, sm, si, g, N, C, HW);
    float *gx = added(dx, dx0, n);
    snprintf(lab, sizeof lab, "%s dx", name); fd_check(lab, bn_loss, &t, t.x, n, gx, 40);
    snprintf(lab, sizeof lab, "%s dgamma", name); fd_check(lab, bn_loss, &t, t.g, (size_t)C, dg, 40);
    snprintf(lab, sizeof lab, "%s dbeta", name); fd_check(lab, bn_loss, &t, t.b, (size_t)C, dbt, 40);
    float *dg2 = fnew((size_t)C), *db2 = fnew((size_t)C);
    batchnorm_backward_cpu(NULL, dg2, db2, r, x, sm, si, g, N, C, HW);
    check(!memcmp(dg, dg2, C * sizeof(float)) && !memcmp(dbt, db2, C * sizeof(float)), "%s: dx=NULL gives the same dgamma, dbeta", name);

    free(x); free(g); free(be); free(r); free(y); free(sm); free(si); free(rm); free(rv); free(rm0); free(rv0);
    free(t.x); free(t.g); free(t.b); free(t.r); free(t.y); free(mu); free(var); free(yr);
    free(erm); free(erv); free(esm); free(esi); free(ye); free(yer); free(dx0); free(dx); free(dg); free(dbt); free(gx); free(dg2); free(db2);
}

static void test_batchnorm(void) {
    printf("batchnorm\n");
    test_bn_case(3, 5, 7, 0);
    test_bn_case(2, 4, 64, 0);
    test_bn_case(1, 3, 10, 0);     /* N = 1 */
    test_bn_case(4, 3, 1, 0);      /* HW = 1 */
    test_bn_case(2, 2, 33, 100);   /* |mean| >> std */
}

/* ---- relu, pools ---------------------------------------------------------------------- */

typedef struct { int N, C, H, W, K, S, P, kind; double *x, *r, *y; } PoolCtx;   /* kind 0 relu, 1 max, 2 avg */

static void pool_ref(double *y, const double *x, const PoolCtx *t) {
    if (t->kind == 0) {
        for (size_t i = 0; i < (size_t)t->N * t->C * t->H * t->W; i++) y[i] = x[i] > 0 ? x[i] : 0;
        return;
    }
    int P = t->kind == 1 ? 0 : t->P;
    int OH = (t->H + 2 * P - t->K) / t->S + 1, OW = (t->W + 2 * P - t->K) / t->S + 1;
    for (int nc = 0; nc < t->N * t->C; nc++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                double m = -INFINITY, s = 0;
                for (int kh = 0; kh < t->K; kh++)
                    for (int kw = 0; kw < t->K; kw++) {
                        int ih = oh * t->S - P + kh, iw = ow * t->S - P + kw;
                        if (ih < 0 || ih >= t->H || iw < 0 || iw >= t->W) continue;
                        double v = x[((size_t)nc * t->H + ih) * t->W + iw];
                        if (v > m) m = v;
                        s += v;
                    }
                y[((size_t)nc * OH + oh) * OW + ow] = t->kind == 1 ? m : s / (t->K * t->K);
            }
}
static size_t pool_out(const PoolCtx *t) {
    if (t->kind == 0) return (size_t)t->N * t->C * t->H * t->W;
    int P = t->kind == 1 ? 0 : t->P;
    return (size_t)t->N * t->C * ((t->H + 2 * P - t->K) / t->S + 1) * ((t->W + 2 * P - t->K) / t->S + 1);
}
static double pool_loss(void *p) {
    PoolCtx *t = (PoolCtx *)p;
    pool_ref(t->y, t->x, t);
    return dot(t->y, t->r, pool_out(t));
}

static void test_pool_case(int kind, int N, int C, int H, int W, int K, int S, int P) {
    static const char *kinds[] = { "relu", "maxpool", "avgpool" };
    char name[120];
    if (kind == 0) snprintf(name, sizeof name, "relu N%d C%d %dx%d", N, C, H, W);
    else snprintf(name, sizeof name, "%s N%d C%d %dx%d K%d S%d P%d", kinds[kind], N, C, H, W, K, S, kind == 1 ? 0 : P);
    PoolCtx t = { N, C, H, W, K, S, P, kind, NULL, NULL, NULL };
    size_t nx = (size_t)N * C * H * W, ny = pool_out(&t);
    float *x = frand(nx, 31, 1);
    /* keep inputs away from ReLU's kink and from max-pool ties: distinct, |x| >= 0.01 */
    for (size_t i = 0; i < nx; i++) { x[i] = (float)(i % 997) / 997.0f * 2.0f - 1.0f + 0.0005f; x[i] = fabsf(x[i]) < 0.01f ? 0.5f + (float)i * 1e-4f : x[i]; }
    for (size_t i = nx; i-- > 1;) { size_t j = (size_t)(i * 7919u) % (i + 1); float tmp = x[i]; x[i] = x[j]; x[j] = tmp; }
    float *r = frand(ny, 32, 1), *y = fnew(ny);
    if (kind == 0) relu_forward_cpu(y, x, nx);
    else if (kind == 1) maxpool_forward_cpu(y, x, N, C, H, W, K, S);
    else avgpool_forward_cpu(y, x, N, C, H, W, K, S, P);
    t.x = to_double(x, nx); t.r = to_double(r, ny); t.y = dnew(nx > ny ? nx : ny);
    pool_ref(t.y, t.x, &t);
    float *yr = to_float(t.y, ny);
    char lab[200];
    snprintf(lab, sizeof lab, "%s forward", name); check_close(lab, y, yr, ny, 1e-6, 1e-6);
    float *dx0 = frand(nx, 33, 1), *dx = fnew(nx);
    memcpy(dx, dx0, nx * sizeof(float));
    if (kind == 0) relu_backward_cpu(dx, r, y, nx);
    else if (kind == 1) maxpool_backward_cpu(dx, r, x, N, C, H, W, K, S);
    else avgpool_backward_cpu(dx, r, N, C, H, W, K, S, P);
    float *gx = added(dx, dx0, nx);
    snprintf(lab, sizeof lab, "%s dx", name); fd_check(lab, pool_loss, &t, t.x, nx, gx, 60);
    free(x); free(r); free(y); free(yr); free(dx0); free(dx); free(gx); free(t.x); free(t.r); free(t.y);
}

static void test_relu_pool(void) {
    printf("relu, maxpool, avgpool\n");
    test_pool_case(0, 2, 3, 5, 7, 0, 0, 0);
    test_pool_case(1, 2, 3, 8, 8, 2, 2, 0);
    test_pool_case(1, 1, 2, 7, 5, 3, 2, 0);    /* overlapping windows, odd sizes */
    test_pool_case(1, 2, 1, 1, 1, 1, 1, 0);    /* H=W=1 */
    test_pool_case(2, 2, 3, 8, 8, 8, 8, 0);    /* global average */
    test_pool_case(2, 1, 2, 5, 6, 3, 1, 1);    /* padding, count_include_pad */
    test_pool_case(2, 2, 2, 7, 7, 3, 2, 1);
    test_pool_case(2, 1, 3, 4, 4, 2, 2, 0);

    /* ReLU at exactly 0: no gradient (relu'(0) = 0) */
    float x0[3] = {0.0f, -1.0f, 2.0f}, y0[3], d0[3] = {0, 0, 0}, g0[3] = {1, 1, 1};
    relu_forward_cpu(y0, x0, 3);
    relu_backward_cpu(d0, g0, y0, 3);
    check(y0[0] == 0 && y0[1] == 0 && y0[2] == 2 && d0[0] == 0 && d0[1] == 0 && d0[2] == 1, "relu: y = max(0,x), no gradient at x = 0 or below");
    /* NaN and infinities as PyTorch: relu(NaN) = NaN, relu(inf) = inf, relu(-inf) = 0;
     * the gradient passes where the output is not <= 0 (torch's threshold_backward), so NaN too */
    float xn[4] = {NAN, -NAN, INFINITY, -INFINITY}, yn[4], dn[4] = {0, 0, 0, 0}, gn[4] = {1, 2, 3, 4};
    relu_forward_cpu(yn, xn, 4);
    relu_backward_cpu(dn, gn, yn, 4);
    check(isnan(yn[0]) && isnan(yn[1]) && yn[2] == INFINITY && yn[3] == 0, "relu: NaN stays NaN, inf stays inf, -inf -> 0 (got %g %g %g %g)",
          yn[0], yn[1], yn[2], yn[3]);
    check(dn[0] == 1 && dn[1] == 2 && dn[2] == 3 && dn[3] == 0, "relu backward: gradient through NaN and inf outputs, none at -inf (got %g %g %g %g)",
          dn[0], dn[1], dn[2], dn[3]);
    /* max-pool ties: the first maximum in row-major window order gets the gradient */
    float xt[4] = {1, 3, 3, 3}, yt[1], dt[4] = {0, 0, 0, 0}, gt[1] = {1};
    maxpool_forward_cpu(yt, xt, 1, 1, 2, 2, 2, 2);
    maxpool_backward_cpu(dt, gt, xt, 1, 1, 2, 2, 2, 2);
    check(yt[0] == 3 && dt[1] == 1 && dt[2] == 0 && dt[3] == 0, "maxpool: ties go to the first maximum (row-major)");
}

/* ---- linear ---------------------------------------------------------------------------- */

typedef struct { int N, IN, OUT; double *x, *w, *b, *r, *y; } LinCtx;
static double lin_loss(void *p) {
    LinCtx *t = (LinCtx *)p;
    for (int n = 0; n < t->N; n++)
        for (int o = 0; o < t->OUT; o++) {
            double s = t->b[o];
            for (int i = 0; i < t->IN; i++) s += t->x[(size_t)n * t->IN + i] * t->w[(size_t)o * t->IN + i];
            t->y[(size_t)n * t->OUT + o] = s;
        }
    return dot(t->y, t->r, (size_t)t->N * t->OUT);
}
static void test_linear_case(int N, int IN, int OUT) {
    char name[80], lab[160];
    snprintf(name, sizeof name, "linear N%d IN%d OUT%d", N, IN, OUT);
    size_t nx = (size_t)N * IN, nw = (size_t)OUT * IN, ny = (size_t)N * OUT;
    float *x = frand(nx, 41, 1), *w = frand(nw, 42, 0.3f), *b = frand((size_t)OUT, 43, 1), *r = frand(ny, 44, 1), *y = fnew(ny);
    linear_forward_cpu(y, x, w, b, N, IN, OUT);
    LinCtx t = { N, IN, OUT, to_double(x, nx), to_double(w, nw), to_double(b, (size_t)OUT), to_double(r, ny), dnew(ny) };
    lin_loss(&t);
    float *yr = to_float(t.y, ny);
    snprintf(lab, sizeof lab, "%s forward", name); check_close(lab, y, yr, ny, 1e-5, 1e-5);
    float *dx0 = frand(nx, 45, 1), *dx = fnew(nx), *dw = frand(nw, 46, 7), *db = frand((size_t)OUT, 47, 7);
    memcpy(dx, dx0, nx * sizeof(float));
    linear_backward_cpu(dx, dw, db, r, x, w, N, IN, OUT);
    float *gx = added(dx, dx0, nx);
    snprintf(lab, sizeof lab, "%s dx", name); fd_check(lab, lin_loss, &t, t.x, nx, gx, 40);
    snprintf(lab, sizeof lab, "%s dw", name); fd_check(lab, lin_loss, &t, t.w, nw, dw, 40);
    snprintf(lab, sizeof lab, "%s db", name); fd_check(lab, lin_loss, &t, t.b, (size_t)OUT, db, 40);
    free(x); free(w); free(b); free(r); free(y); free(yr); free(dx0); free(dx); free(dw); free(db); free(gx);
    free(t.x); free(t.w); free(t.b); free(t.r); free(t.y);
}
static void test_linear(void) {
    printf("linear\n");
    test_linear_case(4, 64, 100);
    test_linear_case(1, 7, 3);
    test_linear_case(9, 130, 11);
}

/* ---- add, concat, split, shuffle --------------------------------------------------------- */

static void test_plumbing(void) {
    printf("add, concat, split, shuffle\n");
    int N = 2, HW = 3;
    /* add */
    {
        size_t n = 37;
        float *a = frand(n, 51, 1), *b = frand(n, 52, 1), *y = fnew(n), *dy = frand(n, 53, 1);
        float *da = frand(n, 54, 1), *db = frand(n, 55, 1), *da0 = fnew(n), *db0 = fnew(n);
        memcpy(da0, da, n * 4); memcpy(db0, db, n * 4);
        add_forward_cpu(y, a, b, n);
        add_backward_cpu(da, db, dy, n);
        int ok = 1;
        for (size_t i = 0; i < n; i++) ok &= y[i] == a[i] + b[i] && da[i] == da0[i] + dy[i] && db[i] == db0[i] + dy[i];
        add_backward_cpu(NULL, db, dy, n);
        for (size_t i = 0; i < n; i++) ok &= db[i] == (db0[i] + dy[i]) + dy[i];
        check(ok, "add: y = a + b, da += dy, db += dy, NULL skipped");
        free(a); free(b); free(y); free(dy); free(da); free(db); free(da0); free(db0);
    }
    /* concat / split are inverse moves: check against explicit indexing */
    {
        int Ca = 3, Cb = 2, C = 5;
        size_t na = (size_t)N * Ca * HW, nb = (size_t)N * Cb * HW, ny = (size_t)N * C * HW;
        float *a = frand(na, 56, 1), *b = frand(nb, 57, 1), *y = fnew(ny), *dy = frand(ny, 58, 1);
        float *da = frand(na, 59, 1), *db = frand(nb, 60, 1), *da0 = fnew(na), *db0 = fnew(nb);
        memcpy(da0, da, na * 4); memcpy(db0, db, nb * 4);
        concat_forward_cpu(y, a, b, N, Ca, Cb, HW);
        concat_backward_cpu(da, db, dy, N, Ca, Cb, HW);
        int ok = 1;
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++)
                for (int i = 0; i < HW; i++) {
                    float yv = y[((size_t)n * C + c) * HW + i], g = dy[((size_t)n * C + c) * HW + i];
                    if (c < Ca) ok &= yv == a[((size_t)n * Ca + c) * HW + i] && da[((size_t)n * Ca + c) * HW + i] == da0[((size_t)n * Ca + c) * HW + i] + g;
                    else ok &= yv == b[((size_t)n * Cb + c - Ca) * HW + i] && db[((size_t)n * Cb + c - Ca) * HW + i] == db0[((size_t)n * Cb + c - Ca) * HW + i] + g;
                }
        check(ok, "concat: channels of a then b; gradients added back");
        /* split: x [N,5,HW] -> channels 1..3 */
        int c0 = 1, Cs = 3;
        float *ys = fnew((size_t)N * Cs * HW), *dys = frand((size_t)N * Cs * HW, 61, 1), *dx = frand(ny, 62, 1), *dx0 = fnew(ny);
        memcpy(dx0, dx, ny * 4);
        split_forward_cpu(ys, y, N, C, HW, c0, Cs);
        split_backward_cpu(dx, dys, N, C, HW, c0, Cs);
        ok = 1;
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++)
                for (int i = 0; i < HW; i++) {
                    size_t k = ((size_t)n * C + c) * HW + i;
                    if (c >= c0 && c < c0 + Cs) {
                        size_t ks = ((size_t)n * Cs + c - c0) * HW + i;
                        ok &= ys[ks] == y[k] && dx[k] == dx0[k] + dys[ks];
                    } else ok &= dx[k] == dx0[k];
                }
        check(ok, "split: channels c0..c0+Cs-1; gradient added to those channels only");
        free(a); free(b); free(y); free(dy); free(da); free(db); free(da0); free(db0); free(ys); free(dys); free(dx); free(dx0);
    }
    /* shuffle: out channel i*G + j = in channel j*(C/G) + i; the backward is its transpose */
    {
        int C = 6, G = 3, cg = 2;
        size_t n = (size_t)N * C * HW;
        float *x = frand(n, 63, 1), *y = fnew(n), *dy = frand(n, 64, 1), *dx = frand(n, 65, 1), *dx0 = fnew(n);
        memcpy(dx0, dx, n * 4);
        shuffle_forward_cpu(y, x, N, C, HW, G);
        shuffle_backward_cpu(dx, dy, N, C, HW, G);
        int ok = 1;
        for (int b = 0; b < N; b++)
            for (int i = 0; i < cg; i++)
                for (int j = 0; j < G; j++)
                    for (int k = 0; k < HW; k++) {
                        size_t o = ((size_t)b * C + i * G + j) * HW + k, in = ((size_t)b * C + j * cg + i) * HW + k;
                        ok &= y[o] == x[in] && dx[in] == dx0[in] + dy[o];
                    }
        check(ok, "shuffle (C=6, G=3): out i*G+j = in j*(C/G)+i; dx += transposed dy");
        /* <dy, shuffle(x)> == <shuffle^T(dy), x>: adjointness, a second view */
        float *z = fnew(n);
        shuffle_backward_cpu(z, dy, N, C, HW, G);
        double l = 0, r = 0;
        for (size_t i = 0; i < n; i++) { l += (double)dy[i] * y[i]; r += (double)z[i] * x[i]; }
        check(fabs(l - r) < 1e-9 * (1 + fabs(l)), "shuffle backward is the adjoint of the forward");
        free(x); free(y); free(dy); free(dx); free(dx0); free(z);
    }
}

/* ---- losses -------------------------------------------------------------------------- */

/* mdistiller's DKD in double, computed its way (full softmaxes, masks, sums), plus CE:
 * returns the batch loss L of docs/dkd_loss.md (kind DKD), KD or CE. */
typedef struct { int kind, B, NC; const int *y; double *z, *v; LossParams p; } LossCtx;
static double loss_ref(void *ctx) {
    LossCtx *t = (LossCtx *)ctx;
    int B = t->B, NC = t->NC;
    double T = t->p.T, L = 0;
    for (int b = 0; b < B; b++) {
        const double *z = t->z + (size_t)b * NC, *v = t->v + (size_t)b * NC;
        int y = t->y[b];
        double mz = -INFINITY, s = 0;
        for (int j = 0; j < NC; j++) if (z[j] > mz) mz = z[j];
        for (int j = 0; j < NC; j++) s += exp(z[j] - mz);
        double ce = mz + log(s) - z[y];
        L += t->p.ce_weight * ce / B;
        if (t->kind == LOSS_CE) continue;
        double p[512] = {0}, q[512] = {0}, sp = 0, sq = 0, ms = -INFINITY, mv = -INFINITY;
        for (int j = 0; j < NC; j++) { if (z[j] / T > ms) ms = z[j] / T; if (v[j] / T > mv) mv = v[j] / T; }
        for (int j = 0; j < NC; j++) { p[j] = exp(z[j] / T - ms); sp += p[j]; q[j] = exp(v[j] / T - mv); sq += q[j]; }
        for (int j = 0; j < NC; j++) { p[j] /= sp; q[j] /= sq; }
        if (t->kind == LOSS_KD) {
            double kl = 0;
            for (int j = 0; j < NC; j++) kl += q[j] * (log(q[j]) - log(p[j]));
            L += t->p.kd_weight * T * T * kl / B;
            continue;
        }
        double pt = p[y], qt = q[y], pnt = 0, qnt = 0;
        for (int j = 0; j < NC; j++) if (j != y) { pnt += p[j]; qnt += q[j]; }
        double tckd = qt * (log(qt) - log(pt)) + qnt * (log(qnt) - log(pnt)), nckd = 0;
        for (int j = 0; j < NC; j++) if (j != y) { double qh = q[j] / qnt, ph = p[j] / pnt; nckd += qh * (log(qh) - log(ph)); }
        L += t->p.warm * T * T / B * (t->p.alpha * tckd + t->p.beta * nckd);
    }
    return L;
}

static LossParams dkd_params(float beta, float T, float warm) {
    LossParams p; memset(&p, 0, sizeof p);
    p.ce_weight = 1.0f; p.kd_weight = 0.0f; p.alpha = 1.0f; p.beta = beta; p.T = T; p.warm = warm;
    return p;
}

static void test_loss_vector(void) {
    /* B = 2, NC = 100, z = 3 sin(0.37(j+1) + 1.1(b+1)), v = 5 sin(0.23(j+1) + 0.7(b+1)) */
    enum { B = 2, NC = 100 };
    float z[B * NC], v[B * NC], g[B * NC], rows[B * 3];
    int y[B] = {7, 42};
    for (int b = 0; b < B; b++)
        for (int j = 0; j < NC; j++) {
            z[b * NC + j] = (float)(3 * sin(0.37 * (j + 1) + 1.1 * (b + 1)));
            v[b * NC + j] = (float)(5 * sin(0.23 * (j + 1) + 0.7 * (b + 1)));
        }
    LossParams p = dkd_params(8.0f, 4.0f, 0.25f);
    dkd_loss_cpu(g, rows, z, v, y, B, NC, p);
    LossValue lv = loss_total(LOSS_DKD, rows, B, p);
    /* the inputs are rounded to float, so expect ~1e-7 relative on the losses */
    check(fabs(lv.ce - 8.361971974) < 1e-6 * 8.36, "DKD, docs/dkd_loss.md §8: CE %.9f (float64 reference 8.361971974)", lv.ce);
    check(fabs(lv.tckd - 0.05339142518) < 2e-5 * 0.0534, "DKD, docs/dkd_loss.md §8: TCKD term %.10f (reference 0.05339142518)", lv.tckd);
    check(fabs(lv.nckd - 6.62185435) < 1e-6 * 6.62, "DKD, docs/dkd_loss.md §8: NCKD term %.8f (reference 6.62185435)", lv.nckd);
    check(fabs(lv.distill / 0.25 - 53.02822623) < 1e-6 * 53.0, "DKD, docs/dkd_loss.md §8: DKD %.8f (reference 53.02822623)", lv.distill / 0.25);
    check(fabs(lv.total - 21.61902853) < 1e-6 * 21.6, "DKD, docs/dkd_loss.md §8: total %.8f (reference 21.61902853)", lv.total);
    static const int gi[] = {0, 1, 2, 3, 7, NC + 42, NC + 99};
    static const double gv[] = {0.02073083803, 0.005562510549, -0.01760183872, -0.0377608821, -0.5043541917, -0.4982786685, 0.08384495424};
    float got[7], ref[7];
    for (int i = 0; i < 7; i++) { got[i] = g[gi[i]]; ref[i] = (float)gv[i]; }
    check_close("DKD, docs/dkd_loss.md §8: g[0][0..3], g[0][7], g[1][42], g[1][99]", got, ref, 7, 2e-7, 1e-6);
    double sabs = 0;
    for (int i = 0; i < B * NC; i++) sabs += fabs(g[i]);
    check(fabs(sabs - 7.464520533) < 1e-6 * 7.46, "DKD, docs/dkd_loss.md §8: Σ|g| = %.9f (reference 7.464520533)", sabs);

    /* KD with the same inputs: 0.1 CE + 0.9 KD, T = 4 */
    LossParams pk = dkd_params(0, 4.0f, 1.0f);
    pk.ce_weight = 0.1f; pk.kd_weight = 0.9f;
    kd_loss_cpu(g, rows, z, v, y, B, NC, pk);
    LossValue lk = loss_total(LOSS_KD, rows, B, pk);
    check(fabs(lk.total - 6.79850738) < 1e-6 * 6.8, "KD on the same batch: total %.8f (reference 6.79850738)", lk.total);
    got[0] = g[7]; got[1] = g[NC]; ref[0] = (float)-0.06601405721; ref[1] = (float)-0.02065582644;
    check_close("KD on the same batch: g[0][7], g[1][0]", got, ref, 2, 2e-8, 1e-6);
}

/* gradient of every loss vs finite differences of loss_ref, Σ_j g_j = 0, rows vs loss_ref */
static void test_loss_grad(int kind, int B, int NC, float zs, float vs, LossParams p, const char *what) {
    size_t n = (size_t)B * NC;
    float *z = frand(n, 71 + B, zs), *v = frand(n, 72 + B, vs), *g = fnew(n), *rows = fnew((size_t)B * 3);
    int *y = (int *)xcalloc((size_t)B, sizeof(int));
    for (int b = 0; b < B; b++) y[b] = (b * 37 + 11) % NC;
    if (kind == LOSS_DKD) dkd_loss_cpu(g, rows, z, v, y, B, NC, p);
    else if (kind == LOSS_KD) kd_loss_cpu(g, rows, z, v, y, B, NC, p);
    else ce_loss_cpu(g, rows, z, y, B, NC, p);
    LossValue lv = loss_total(kind, rows, B, p);
    LossCtx t = { kind, B, NC, y, to_double(z, n), to_double(v, n), p };
    double Lref = loss_ref(&t);
    char lab[160];
    check(fabs(lv.total - Lref) <= 1e-6 * (1 + fabs(Lref)), "%s: loss_total %.9g vs naive double %.9g", what, lv.total, Lref);
    snprintf(lab, sizeof lab, "%s dz", what);
    fd_check(lab, loss_ref, &t, t.z, n, g, 60);
    double worst = 0;
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int j = 0; j < NC; j++) s += g[(size_t)b * NC + j];
        if (fabs(s) > worst) worst = fabs(s);
    }
    check(worst < 1e-6 * (fmaxabs(g, n) + 1e-30), "%s: every row of dz sums to 0 (worst |Σ| = %.2g)", what, worst);
    free(z); free(v); free(g); free(rows); free(y); free(t.z); free(t.v);
}

static void test_losses(void) {
    printf("losses\n");
    test_loss_vector();
    test_loss_grad(LOSS_DKD, 5, 100, 5, 5, dkd_params(8.0f, 4.0f, 0.5f), "DKD B5 T4 beta8 warm0.5");
    test_loss_grad(LOSS_DKD, 1, 10, 3, 3, dkd_params(2.0f, 1.0f, 1.0f), "DKD B1 NC10 T1");
    test_loss_grad(LOSS_DKD, 3, 7, 2, 6, dkd_params(1.0f, 2.5f, 1.0f), "DKD B3 NC7 T2.5");
    LossParams pk = dkd_params(0, 4.0f, 1.0f); pk.ce_weight = 0.1f; pk.kd_weight = 0.9f;
    test_loss_grad(LOSS_KD, 4, 100, 5, 5, pk, "KD B4 T4");
    test_loss_grad(LOSS_CE, 4, 100, 5, 0, dkd_params(0, 1.0f, 0.0f), "CE B4");

    /* CE with dz = NULL (evaluation) and the CE rows */
    {
        float z[6] = {1, 2, 3, 0, 0, 0}, rows[6];
        int y[2] = {2, 1};
        ce_loss_cpu(NULL, rows, z, y, 2, 3, dkd_params(0, 1, 0));
        double ce0 = log(exp(1.0) + exp(2.0) + exp(3.0)) - 3, ce1 = log(3.0);
        check(fabs(rows[0] - ce0) < 1e-6 && fabs(rows[3] - ce1) < 1e-6 && rows[1] == 0 && rows[2] == 0,
              "CE rows {CE_b, 0, 0} with dz = NULL");
    }

    /* large logits: student scale 30, teacher with a tempered margin of ~100 on its label */
    {
        enum { B = 8, NC = 100 };
        float *z = frand(B * NC, 81, 30), *v = frand(B * NC, 82, 30), g[B * NC], rows[B * 3];
        int y[B];
        for (int b = 0; b < B; b++) {
            y[b] = (b * 13) % NC;
            v[b * NC + y[b]] = 430.0f;                     /* (430 - 30) / T = 100 */
            if (b % 2) z[b * NC + y[b]] = 480.0f;           /* a confident student too */
        }
        LossParams p = dkd_params(8.0f, 4.0f, 1.0f);
        dkd_loss_cpu(g, rows, z, v, y, B, NC, p);
        int finite = 1;
        for (int i = 0; i < B * NC; i++) finite &= isfinite(g[i]);
        for (int i = 0; i < B * 3; i++) finite &= isfinite(rows[i]) && rows[i] >= -1e-6f;
        LossValue lv = loss_total(LOSS_DKD, rows, B, p);
        check(finite && isfinite(lv.total), "DKD at logit scale 30, tempered margin 100: finite, KL terms >= 0 (total %.6g)", lv.total);
        double worst = 0;
        for (int b = 0; b < B; b++) { double s = 0; for (int j = 0; j < NC; j++) s += g[b * NC + j]; if (fabs(s) > worst) worst = fabs(s); }
        check(worst < 1e-6 * fmaxabs(g, B * NC), "DKD large logits: rows of dz sum to 0 (worst %.2g)", worst);
        free(z); free(v);
    }

    /* loss_total assembles the parts as documented */
    {
        float rows[6] = {1.0f, 0.5f, 0.25f, 3.0f, 1.5f, 0.75f};
        LossParams p = dkd_params(8.0f, 4.0f, 0.5f); p.ce_weight = 0.7f; p.kd_weight = 0.9f; p.alpha = 2.0f;
        LossValue d = loss_total(LOSS_DKD, rows, 2, p), k = loss_total(LOSS_KD, rows, 2, p), c = loss_total(LOSS_CE, rows, 2, p);
        check(d.ce == 2.0 && d.tckd == 16.0 && d.nckd == 8.0 && d.kl == 0 && d.distill == 0.5 * (2 * 16.0 + 8 * 8.0) &&
              fabs(d.total - (0.7f * 2.0 + d.distill)) < 1e-12,
              "loss_total DKD: ce, T²/B Σ tckd, T²/B Σ nckd, no kl, distill = warm(α tckd + β nckd), total = λ ce + distill");
        check(k.kl == 16.0 && k.tckd == 0 && k.nckd == 0 && fabs(k.distill - 0.9 * 16.0) < 1e-6 &&
              fabs(k.total - (0.7 * 2 + k.distill)) < 1e-6, "loss_total KD: kl = T²/B Σ KL, no tckd/nckd, distill = kd_weight kl");
        check(c.kl == 0 && c.tckd == 0 && c.nckd == 0 && c.distill == 0 && fabs(c.total - 0.7 * 2) < 1e-6,
              "loss_total CE: no distillation parts, total = ce_weight ce");
    }
}

/* ---- SGD ------------------------------------------------------------------------------ */

static void test_sgd(void) {
    printf("sgd\n");
    enum { n = 1001 };
    float *p = frand(n, 91, 1), *g = frand(n, 92, 0.1f), *g2 = frand(n, 93, 0.1f), *buf = fnew(n);
    float *pr = fnew(n), *br = fnew(n);
    memcpy(pr, p, sizeof(float) * n);
    double *pd = to_double(p, n), *bd = dnew(n);
    float lr = 0.05f, mom = 0.9f, wd = 5e-4f;
    int first_ok = 1;
    for (int step = 0; step < 2; step++) {
        const float *gs = step ? g2 : g;
        sgd_step_cpu(p, gs, buf, n, &lr, mom, wd);
        for (int i = 0; i < n; i++) {
            /* torch 1.13 float32: d = fma(wd,p,g); buf = round(buf*m) + d; p = fma(-lr,buf,p) */
            volatile float d = fmaf(wd, pr[i], gs[i]);
            volatile float t = br[i] * mom;
            volatile float nb = t + d;
            br[i] = nb;
            pr[i] = fmaf(-lr, br[i], pr[i]);
            if (step == 0 && buf[i] != d) first_ok = 0;
            /* in double: the same step without rounding */
            double dd = gs[i] + (double)wd * pd[i];
            bd[i] = (double)mom * bd[i] + dd;
            pd[i] -= (double)lr * bd[i];
        }
        char lab[96];
        snprintf(lab, sizeof lab, "sgd step %d: p bit-exact vs torch's float32 formula", step + 1);
        check_same(lab, p, pr, sizeof(float) * n);
        snprintf(lab, sizeof lab, "sgd step %d: momentum buffer bit-exact", step + 1);
        check_same(lab, buf, br, sizeof(float) * n);
        float *pdf = to_float(pd, n);
        snprintf(lab, sizeof lab, "sgd step %d vs double", step + 1);
        check_close(lab, p, pdf, n, 1e-7, 1e-6);
        free(pdf);
    }
    check(first_ok, "sgd first step: buf = d exactly (buffer starts at 0)");
    /* the middle line must be a rounded multiply then a rounded add, not an FMA: find
     * values where the two differ and see that the step took the unfused one */
    {
        float b0 = 0, d0 = 0, tb = 0;
        unsigned long long s = 99;
        for (int k = 0; k < 100000; k++) {
            float bb = test_rand(&s), dd = test_rand(&s) * 0.1f;
            volatile float t = bb * 0.9f;
            if (fmaf(bb, 0.9f, dd) != t + dd) { b0 = bb; d0 = dd; tb = t + dd; break; }
        }
        /* g = d - wd·p with p = 0: d = g */
        float pp = 0.0f, gg = d0, bufv = b0;
        sgd_step_cpu(&pp, &gg, &bufv, 1, &lr, 0.9f, wd);
        check(tb != 0 && bufv == tb, "sgd: buf*momentum + d is NOT fused (rounded multiply, then add)");
    }
    free(p); free(g); free(g2); free(buf); free(pr); free(br); free(pd); free(bd);
}

/* ---- determinism: 1 thread vs 2 threads -------------------------------------------------- */

static void test_threads(void) {
    printf("determinism (1 vs 2 threads)\n");
    int N = 6, C = 32, H = 16, W = 16, OC = 32, K = 3;   /* conv: Winograd forward + dx, implicit dW */
    size_t nx = (size_t)N * C * H * W, ny = (size_t)N * OC * H * W, nw = (size_t)OC * C * K * K;
    float *x = frand(nx, 101, 1), *w = frand(nw, 102, 0.2f), *b = frand((size_t)OC, 103, 1), *dy = frand(ny, 104, 1);
    float *y[2], *dx[2], *dw[2], *db[2], *yb[2], *sm[2], *si[2], *rm[2], *rv[2], *dxb[2], *dg[2], *dbb[2], *gm[2], *yp[2], *dp[2];
    float *ydw[2], *dxdw[2], *dwdw[2];
    int Mg = 70, Ng = 1100, Kg = 300;
    float *A = frand((size_t)Mg * Kg, 105, 1), *Bm = frand((size_t)Kg * Ng, 106, 1);
    float *wdw = frand((size_t)C * 9, 107, 1);
    dkd_set_threads(2);   /* size the workspace while 2 threads are set */
    size_t nws = conv2d_workspace_floats(N, C, H, W, OC, K, 1, 1, 1);
    float *ws = ws_new(nws);
    for (int t = 0; t < 2; t++) {
        dkd_set_threads(t + 1);
        y[t] = fnew(ny); dx[t] = fnew(nx); dw[t] = fnew(nw); db[t] = fnew((size_t)OC);
        conv2d_forward_cpu(y[t], x, w, b, N, C, H, W, OC, K, 1, 1, 1, ws);
        conv2d_backward_cpu(dx[t], dw[t], db[t], dy, x, w, N, C, H, W, OC, K, 1, 1, 1, ws);
        ydw[t] = fnew(nx); dxdw[t] = fnew(nx); dwdw[t] = fnew((size_t)C * 9);
        conv2d_forward_cpu(ydw[t], x, wdw, NULL, N, C, H, W, C, K, 1, 1, C, ws);
        conv2d_backward_cpu(dxdw[t], dwdw[t], NULL, ydw[t], x, wdw, N, C, H, W, C, K, 1, 1, C, ws);
        yb[t] = fnew(ny); sm[t] = fnew((size_t)OC); si[t] = fnew((size_t)OC); rm[t] = fnew((size_t)OC); rv[t] = fnew((size_t)OC);
        dxb[t] = fnew(ny); dg[t] = fnew((size_t)OC); dbb[t] = fnew((size_t)OC);
        batchnorm_forward_train_cpu(yb[t], sm[t], si[t], rm[t], rv[t], y[t], b, b, N, OC, H * W, 0.1f, 1e-5f, 1);
        batchnorm_backward_cpu(dxb[t], dg[t], dbb[t], dy, y[t], sm[t], si[t], b, N, OC, H * W);
        gm[t] = fnew((size_t)Mg * Ng);
        sgemm_cpu(0, 0, Mg, Ng, Kg, 1.0f, A, Kg, Bm, Ng, 0.0f, gm[t], Ng);
        yp[t] = fnew(ny / 4); dp[t] = fnew(ny);
        maxpool_forward_cpu(yp[t], y[t], N, OC, H, W, 2, 2);
        maxpool_backward_cpu(dp[t], yp[t], y[t], N, OC, H, W, 2, 2);
    }
    check_same("conv forward", y[0], y[1], ny * 4);
    check_same("conv dx", dx[0], dx[1], nx * 4);
    check_same("conv dw", dw[0], dw[1], nw * 4);
    check_same("conv db", db[0], db[1], (size_t)OC * 4);
    check_same("depthwise conv forward", ydw[0], ydw[1], nx * 4);
    check_same("depthwise conv dx", dxdw[0], dxdw[1], nx * 4);
    check_same("depthwise conv dw", dwdw[0], dwdw[1], (size_t)C * 9 * 4);
    check_same("batchnorm forward", yb[0], yb[1], ny * 4);
    check_same("batchnorm running var", rv[0], rv[1], (size_t)OC * 4);
    check_same("batchnorm dx", dxb[0], dxb[1], ny * 4);
    check_same("batchnorm dgamma", dg[0], dg[1], (size_t)OC * 4);
    check_same("sgemm 70x1100x300", gm[0], gm[1], (size_t)Mg * Ng * 4);
    check_same("maxpool backward", dp[0], dp[1], ny * 4);
    check(ws_guard_ok(ws, nws), "conv workspace not overrun at 1 and 2 threads");
    dkd_set_threads(2);
    for (int t = 0; t < 2; t++) {
        free(y[t]); free(dx[t]); free(dw[t]); free(db[t]); free(ydw[t]); free(dxdw[t]); free(dwdw[t]);
        free(yb[t]); free(sm[t]); free(si[t]); free(rm[t]); free(rv[t]); free(dxb[t]); free(dg[t]); free(dbb[t]);
        free(gm[t]); free(yp[t]); free(dp[t]);
    }
    free(x); free(w); free(b); free(dy); free(A); free(Bm); free(wdw); free(ws);
}

int main(void) {
    double t0 = now_seconds();
    test_sgemm();
    test_conv();
    test_batchnorm();
    test_relu_pool();
    test_linear();
    test_plumbing();
    test_losses();
    test_sgd();
    test_threads();
    printf("(%.1f s)\n", now_seconds() - t0);
    return test_summary();
}
