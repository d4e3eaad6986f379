/* tests/emu_ops.cpp — every CUDA op of kernels/{relu,elementwise,pool,linear,
 * batchnorm,loss,sgd,augment}.cu, run under the CPU emulator (tests/cuda_emu.h)
 * and compared with its C reference (kernels/NAME.c).
 *
 * For each case (an op at one shape):
 *   1. the C reference runs on host copies of the inputs -> ref;
 *   2. the CUDA op runs under each of the four schedules forward, reverse,
 *      random:1, random:2 (thread and block order between barriers), on fresh
 *      cudaMalloc buffers: inputs uploaded, "+=" outputs uploaded with their
 *      starting values, "=" outputs left as the emulator's NaN poison, so an
 *      element the kernel forgets to write fails;
 *   3. the forward schedule's result is compared with ref (tolerance below);
 *   4. the four schedules must give bit-identical results (a race or a
 *      missing barrier shows up as a difference).
 * Where a launcher has a knob (batchnorm_cuda_threads, loss_cuda_threads, the
 * GEMM version that linear uses) every case runs at several values; linear
 * and the losses must then also be bit-identical ACROSS the values (each
 * output is summed by one thread / one warp in a fixed order).
 * Shapes include N=1, odd channel counts, H=W=1 and sizes that are not
 * multiples of 32.
 *
 * Tolerances (|got - ref| <= atol + rtol*|ref|), per op:
 *   exact (bit-identical to the C reference): relu, add, concat, split,
 *     shuffle, max/avg pool (same comparisons, and each sum is formed in the
 *     same order as the C loops: window order forward, window order for the
 *     backward gather = the C scatter's order), SGD (the same fmaf / rounded
 *     multiply / rounded add), augment (the same draws and three float ops).
 *   linear: atol 1e-5, rtol 1e-5. Sums of up to 100 products of values in
 *     [-1,1]; the GPU kernel sums over k in plain order, the reference may
 *     block its loops differently: a few float roundings of sums of size <= 10
 *     (a few 1e-7 absolute).
 *   batchnorm: rtol 1e-5 plus a small atol per quantity (mean/var reductions
 *     in double on both sides, then float roundings of (x-mean)*invstd*g+b in
 *     possibly different association: a few ulps of O(1) values).
 *   losses: rows rtol 1e-5 / atol 1e-6 (logsumexp in float vs whatever the
 *     reference does: errors ~ a few ulps of |logits| ~ 1e-6); gradients
 *     atol 1e-7 / rtol 1e-4 (entries are (λ/B)·probabilities <= 1, computed
 *     from exp of float differences: relative 1e-6 where they are not tiny).
 * Also: NaNs in max pooling windows (a NaN wins, as in PyTorch) and a label
 * outside [0, NC) (NaN row terms, zero gradient row, as loss.c does).
 * And, independent of the C reference, the DKD kernel is checked against the
 * float64 values of the worked example of docs/dkd_loss.md §8 (loss terms and
 * gradient entries).
 */
#include "dkd.h"
#include "kernels/cuda_common.h"
#include "kernels/cuda_ops.h"
#include "test.h"
#include "emu_test.h"     // defines: schedules, NSCHED, max_abs, the GPU stand-ins

#include <functional>
#include <vector>

#ifndef DKD_CUDA_EMU
#define RUNS_WHAT "4 GPU runs"
#else
#define RUNS_WHAT "forward/reverse/random:1/random:2"
#endif

/* The block-size knobs of the launchers (defined in the .cu files). */
extern "C" int batchnorm_cuda_threads, loss_cuda_threads;

enum { MAXARR = 12 };

/* One array of a case. */
struct Arr {
    const char *name;
    const void *init;     /* uploaded before the op; NULL: left NaN-poisoned */
    size_t bytes;
    const float *ref;     /* output: the C reference result; NULL: an input */
    double atol, rtol;    /* output: 0, 0 = must be bit-identical to ref */
};
static Arr in(const char *name, const void *data, size_t bytes) { return Arr{name, data, bytes, NULL, 0, 0}; }
static Arr out(const char *name, const void *init, const float *ref, size_t n, double atol, double rtol) {
    return Arr{name, init, n * sizeof(float), ref, atol, rtol};
}
typedef std::function<void(void **d)> Op;   /* runs the CUDA op on the device arrays */

/* Results of the last run_case (schedule 0), for cross-knob comparisons. */
static std::vector<std::vector<float>> last_result;
/* Bit-identical (NaN == NaN when the bits agree, unlike operator==). */
static int same_bits(const std::vector<std::vector<float>> &a, const std::vector<std::vector<float>> &b) {
    if (a.size() != b.size()) return 0;
    for (size_t i = 0; i < a.size(); i++)
        if (a[i].size() != b[i].size() || memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float))) return 0;
    return 1;
}

/* Run op under every schedule; compare with the references and between schedules. */
static void run_case(const char *label, Arr *a, int na, const Op &op) {
    std::vector<std::vector<float>> got[NSCHED];
    for (int s = 0; s < NSCHED; s++) {
        if (emu_set_schedule(schedules[s]) != 0) { check(0, "%s: schedule %s", label, schedules[s]); return; }
        void *d[MAXARR];
        for (int i = 0; i < na; i++) {
            cudaCheck(cudaMalloc(&d[i], a[i].bytes));
            if (a[i].init) cudaCheck(cudaMemcpy(d[i], a[i].init, a[i].bytes, cudaMemcpyHostToDevice));
            else cudaCheck(cudaMemset(d[i], 0xff, a[i].bytes));   /* NaN (the emulator does this too) */
        }
        op(d);
        for (int i = 0; i < na; i++) {
            if (a[i].ref) {
                std::vector<float> h(a[i].bytes / sizeof(float));
                cudaCheck(cudaMemcpy(h.data(), d[i], a[i].bytes, cudaMemcpyDeviceToHost));
                got[s].push_back(h);
            }
            cudaCheck(cudaFree(d[i]));
        }
    }
    emu_set_schedule("forward");
    int k = 0;
    for (int i = 0; i < na; i++) {
        if (!a[i].ref) continue;
        char name[200];
        snprintf(name, sizeof name, "%s %s vs C reference%s", label, a[i].name,
                 a[i].atol == 0 && a[i].rtol == 0 ? " (exact)" : "");
        size_t n = a[i].bytes / sizeof(float);
        if (a[i].atol == 0 && a[i].rtol == 0) {
            if (!check_same(name, got[0][k].data(), a[i].ref, a[i].bytes))
                check_close("  (how far)", got[0][k].data(), a[i].ref, n, 0, 0);
        } else {
            /* a NaN in the reference (a bad label's row) must be a NaN here too */
            std::vector<float> g = got[0][k], r(a[i].ref, a[i].ref + n);
            for (size_t j = 0; j < n; j++)
                if (r[j] != r[j] && g[j] != g[j]) r[j] = g[j] = 0.0f;
            check_close(name, g.data(), r.data(), n, a[i].atol, a[i].rtol);
        }
        k++;
    }
    int same = 1;
    for (int s = 1; s < NSCHED; s++)
        for (size_t j = 0; j < got[0].size(); j++)
            if (memcmp(got[s][j].data(), got[0][j].data(), got[0][j].size() * sizeof(float))) same = 0;
    check(same, "%s: " RUNS_WHAT " %s", label, same ? "bit-identical" : "DIFFER (a race?)");
    last_result = got[0];
}

/* --------------------------------------------------------------- helpers */
static std::vector<float> rnd(size_t n, unsigned long long seed, float scale = 1.0f, float offset = 0.0f) {
    std::vector<float> v(n);
    test_fill(v.data(), n, seed, scale);
    for (float &x : v) x += offset;
    return v;
}
#define B_(v) (v).data(), (v).size() * sizeof((v)[0])

/* ------------------------------------------------------------------ relu */
static void test_relu(void) {
    printf("relu\n");
    size_t sizes[] = {1, 31, 1000, 4099};
    for (size_t n : sizes) {
        std::vector<float> x = rnd(n, 1 + n), dy = rnd(n, 2 + n), dx0 = rnd(n, 3 + n);
        for (size_t i = 0; i < n; i += 7) x[i] = (i / 7) % 2 ? 0.0f : -0.0f;   /* exact zeros: relu'(0) = 0 */
        for (size_t i = 3; i < n; i += 11) x[i] = NAN;                          /* relu(NaN) = NaN, as in PyTorch */
        std::vector<float> y(n), dx = dx0;
        relu_forward_cpu(y.data(), x.data(), n);
        relu_backward_cpu(dx.data(), dy.data(), y.data(), n);
        int nan_kept = 1;
        for (size_t i = 3; i < n; i += 11) nan_kept &= y[i] != y[i];
        if (n > 3) check(nan_kept, "relu n=%zu: the C reference keeps NaN inputs NaN (the kernel must match it bit for bit)", n);
        char l[64];
        snprintf(l, sizeof l, "relu fwd n=%zu", n);
        Arr f[] = {in("x", B_(x)), out("y", NULL, y.data(), n, 0, 0)};
        run_case(l, f, 2, [&](void **d) { relu_forward_cuda((float *)d[1], (float *)d[0], n); });
        snprintf(l, sizeof l, "relu bwd n=%zu", n);
        Arr b[] = {in("dy", B_(dy)), in("y", B_(y)), out("dx", dx0.data(), dx.data(), n, 0, 0)};
        run_case(l, b, 3, [&](void **d) { relu_backward_cuda((float *)d[2], (float *)d[0], (float *)d[1], n); });
    }
    long long launches = emu_launch_count();
    relu_backward_cuda(NULL, NULL, NULL, 10);   /* dx NULL: no gradient wanted */
    check(emu_launch_count() == launches, "relu bwd with dx NULL launches nothing");
}

/* ------------------------------------------------------ add/concat/split/shuffle */
static void test_elementwise(void) {
    printf("add\n");
    size_t sizes[] = {1, 33, 1025};
    for (size_t n : sizes) {
        std::vector<float> a = rnd(n, 10 + n), b = rnd(n, 11 + n), dy = rnd(n, 12 + n);
        std::vector<float> da0 = rnd(n, 13 + n), db0 = rnd(n, 14 + n), y(n);
        add_forward_cpu(y.data(), a.data(), b.data(), n);
        std::vector<float> da = da0, db = db0, dd = da0;
        add_backward_cpu(da.data(), db.data(), dy.data(), n);
        add_backward_cpu(dd.data(), dd.data(), dy.data(), n);   /* y = a + a: both gradients into one buffer */
        std::vector<float> da_only = da0;
        add_backward_cpu(da_only.data(), NULL, dy.data(), n);
        char l[80];
        snprintf(l, sizeof l, "add fwd n=%zu", n);
        Arr f[] = {in("a", B_(a)), in("b", B_(b)), out("y", NULL, y.data(), n, 0, 0)};
        run_case(l, f, 3, [&](void **d) { add_forward_cuda((float *)d[2], (float *)d[0], (float *)d[1], n); });
        snprintf(l, sizeof l, "add bwd n=%zu", n);
        Arr g[] = {in("dy", B_(dy)), out("da", da0.data(), da.data(), n, 0, 0), out("db", db0.data(), db.data(), n, 0, 0)};
        run_case(l, g, 3, [&](void **d) { add_backward_cuda((float *)d[1], (float *)d[2], (float *)d[0], n); });
        snprintf(l, sizeof l, "add bwd da==db n=%zu", n);
        Arr h[] = {in("dy", B_(dy)), out("da", da0.data(), dd.data(), n, 0, 0)};
        run_case(l, h, 2, [&](void **d) { add_backward_cuda((float *)d[1], (float *)d[1], (float *)d[0], n); });
        snprintf(l, sizeof l, "add bwd db=NULL n=%zu", n);
        Arr k[] = {in("dy", B_(dy)), out("da", da0.data(), da_only.data(), n, 0, 0)};
        run_case(l, k, 2, [&](void **d) { add_backward_cuda((float *)d[1], NULL, (float *)d[0], n); });
    }

    printf("concat\n");
    int cshapes[][4] = {{1, 1, 1, 1}, {2, 3, 5, 7}, {3, 16, 8, 9}, {1, 5, 2, 33}};
    for (auto &s : cshapes) {
        int N = s[0], Ca = s[1], Cb = s[2], HW = s[3];
        size_t na = (size_t)N * Ca * HW, nb = (size_t)N * Cb * HW, ny = na + nb;
        std::vector<float> a = rnd(na, 20), b = rnd(nb, 21), dy = rnd(ny, 22), da0 = rnd(na, 23), db0 = rnd(nb, 24);
        std::vector<float> y(ny), da = da0, db = db0, da_only = da0;
        concat_forward_cpu(y.data(), a.data(), b.data(), N, Ca, Cb, HW);
        concat_backward_cpu(da.data(), db.data(), dy.data(), N, Ca, Cb, HW);
        concat_backward_cpu(da_only.data(), NULL, dy.data(), N, Ca, Cb, HW);
        char l[96];
        snprintf(l, sizeof l, "concat fwd N=%d Ca=%d Cb=%d HW=%d", N, Ca, Cb, HW);
        Arr f[] = {in("a", B_(a)), in("b", B_(b)), out("y", NULL, y.data(), ny, 0, 0)};
        run_case(l, f, 3, [&](void **d) { concat_forward_cuda((float *)d[2], (float *)d[0], (float *)d[1], N, Ca, Cb, HW); });
        snprintf(l, sizeof l, "concat bwd N=%d Ca=%d Cb=%d HW=%d", N, Ca, Cb, HW);
        Arr g[] = {in("dy", B_(dy)), out("da", da0.data(), da.data(), na, 0, 0), out("db", db0.data(), db.data(), nb, 0, 0)};
        run_case(l, g, 3, [&](void **d) { concat_backward_cuda((float *)d[1], (float *)d[2], (float *)d[0], N, Ca, Cb, HW); });
        snprintf(l, sizeof l, "concat bwd db=NULL N=%d Ca=%d Cb=%d HW=%d", N, Ca, Cb, HW);
        Arr h[] = {in("dy", B_(dy)), out("da", da0.data(), da_only.data(), na, 0, 0)};
        run_case(l, h, 2, [&](void **d) { concat_backward_cuda((float *)d[1], NULL, (float *)d[0], N, Ca, Cb, HW); });
    }

    printf("split\n");
    int sshapes[][5] = {{1, 1, 1, 0, 1}, {2, 7, 5, 2, 3}, {3, 12, 9, 6, 6}, {1, 9, 1, 0, 4}};
    for (auto &s : sshapes) {
        int N = s[0], C = s[1], HW = s[2], c0 = s[3], Cs = s[4];
        size_t nx = (size_t)N * C * HW, ny = (size_t)N * Cs * HW;
        std::vector<float> x = rnd(nx, 30), dy = rnd(ny, 31), dx0 = rnd(nx, 32), y(ny), dx = dx0;
        split_forward_cpu(y.data(), x.data(), N, C, HW, c0, Cs);
        split_backward_cpu(dx.data(), dy.data(), N, C, HW, c0, Cs);
        char l[96];
        snprintf(l, sizeof l, "split fwd N=%d C=%d HW=%d c0=%d Cs=%d", N, C, HW, c0, Cs);
        Arr f[] = {in("x", B_(x)), out("y", NULL, y.data(), ny, 0, 0)};
        run_case(l, f, 2, [&](void **d) { split_forward_cuda((float *)d[1], (float *)d[0], N, C, HW, c0, Cs); });
        snprintf(l, sizeof l, "split bwd N=%d C=%d HW=%d c0=%d Cs=%d", N, C, HW, c0, Cs);
        Arr g[] = {in("dy", B_(dy)), out("dx", dx0.data(), dx.data(), nx, 0, 0)};
        run_case(l, g, 2, [&](void **d) { split_backward_cuda((float *)d[1], (float *)d[0], N, C, HW, c0, Cs); });
    }

    printf("shuffle\n");
    int hshapes[][4] = {{1, 3, 1, 3}, {2, 12, 5, 3}, {2, 8, 7, 2}, {1, 6, 4, 1}, {1, 15, 35, 3}};
    for (auto &s : hshapes) {
        int N = s[0], C = s[1], HW = s[2], G = s[3];
        size_t n = (size_t)N * C * HW;
        std::vector<float> x = rnd(n, 40), dy = rnd(n, 41), dx0 = rnd(n, 42), y(n), dx = dx0;
        shuffle_forward_cpu(y.data(), x.data(), N, C, HW, G);
        shuffle_backward_cpu(dx.data(), dy.data(), N, C, HW, G);
        char l[96];
        snprintf(l, sizeof l, "shuffle fwd N=%d C=%d HW=%d G=%d", N, C, HW, G);
        Arr f[] = {in("x", B_(x)), out("y", NULL, y.data(), n, 0, 0)};
        run_case(l, f, 2, [&](void **d) { shuffle_forward_cuda((float *)d[1], (float *)d[0], N, C, HW, G); });
        snprintf(l, sizeof l, "shuffle bwd N=%d C=%d HW=%d G=%d", N, C, HW, G);
        Arr g[] = {in("dy", B_(dy)), out("dx", dx0.data(), dx.data(), n, 0, 0)};
        run_case(l, g, 2, [&](void **d) { shuffle_backward_cuda((float *)d[1], (float *)d[0], N, C, HW, G); });
    }
}

/* ------------------------------------------------------------------ pools */
static void test_pool(void) {
    printf("maxpool\n");
    /* N, C, H, W, K, S: 1x1, the usual 2x2/2, overlapping 3x3/2 and 3x3/1, odd sizes */
    int mshapes[][6] = {{1, 1, 1, 1, 1, 1}, {2, 3, 4, 4, 2, 2}, {1, 5, 7, 9, 3, 2}, {2, 3, 6, 5, 3, 1}, {1, 2, 5, 5, 2, 3}};
    for (auto &s : mshapes) {
        int N = s[0], C = s[1], H = s[2], W = s[3], K = s[4], S = s[5];
        int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
        size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * OH * OW;
        std::vector<float> x = rnd(nx, 50), dy = rnd(ny, 51), dx0 = rnd(nx, 52), y(ny), dx = dx0;
        for (float &v : x) v = (float)(int)(v * 3.0f);   /* few distinct values: many ties (first wins) */
        if (nx > 10) { x[3] = NAN; x[nx - 2] = NAN; }     /* a NaN wins its windows (as in PyTorch) */
        maxpool_forward_cpu(y.data(), x.data(), N, C, H, W, K, S);
        maxpool_backward_cpu(dx.data(), dy.data(), x.data(), N, C, H, W, K, S);
        char l[96];
        snprintf(l, sizeof l, "maxpool fwd N=%d C=%d %dx%d K=%d S=%d", N, C, H, W, K, S);
        Arr f[] = {in("x", B_(x)), out("y", NULL, y.data(), ny, 0, 0)};
        run_case(l, f, 2, [&](void **d) { maxpool_forward_cuda((float *)d[1], (float *)d[0], N, C, H, W, K, S); });
        snprintf(l, sizeof l, "maxpool bwd N=%d C=%d %dx%d K=%d S=%d", N, C, H, W, K, S);
        Arr g[] = {in("dy", B_(dy)), in("x", B_(x)), out("dx", dx0.data(), dx.data(), nx, 0, 0)};
        run_case(l, g, 3, [&](void **d) {
            maxpool_backward_cuda((float *)d[2], (float *)d[0], (float *)d[1], N, C, H, W, K, S);
        });
    }

    printf("avgpool\n");
    /* N, C, H, W, K, S, P: 1x1, global (K=H=W), padded overlapping, padded stride 1, 2x2/2 */
    int ashapes[][7] = {{1, 1, 1, 1, 1, 1, 0}, {2, 3, 4, 4, 4, 4, 0}, {1, 5, 7, 9, 3, 2, 1},
                        {2, 3, 6, 5, 3, 1, 1}, {1, 2, 8, 8, 2, 2, 0}, {3, 7, 8, 8, 8, 8, 0}};
    for (auto &s : ashapes) {
        int N = s[0], C = s[1], H = s[2], W = s[3], K = s[4], S = s[5], P = s[6];
        int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
        size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * OH * OW;
        std::vector<float> x = rnd(nx, 60), dy = rnd(ny, 61), dx0 = rnd(nx, 62), y(ny), dx = dx0;
        avgpool_forward_cpu(y.data(), x.data(), N, C, H, W, K, S, P);
        avgpool_backward_cpu(dx.data(), dy.data(), N, C, H, W, K, S, P);
        char l[96];
        snprintf(l, sizeof l, "avgpool fwd N=%d C=%d %dx%d K=%d S=%d P=%d", N, C, H, W, K, S, P);
        Arr f[] = {in("x", B_(x)), out("y", NULL, y.data(), ny, 0, 0)};
        run_case(l, f, 2, [&](void **d) { avgpool_forward_cuda((float *)d[1], (float *)d[0], N, C, H, W, K, S, P); });
        snprintf(l, sizeof l, "avgpool bwd N=%d C=%d %dx%d K=%d S=%d P=%d", N, C, H, W, K, S, P);
        Arr g[] = {in("dy", B_(dy)), out("dx", dx0.data(), dx.data(), nx, 0, 0)};
        run_case(l, g, 2, [&](void **d) { avgpool_backward_cuda((float *)d[1], (float *)d[0], N, C, H, W, K, S, P); });
    }
}

/* ----------------------------------------------------------------- linear */
static void test_linear(void) {
    printf("linear (every GEMM version of kernels/gemm.cu)\n");
    int shapes[][3] = {{1, 1, 1}, {1, 7, 3}, {5, 33, 17}, {16, 64, 100}, {3, 100, 40}};
    const double AT = 1e-5, RT = 1e-5;
    for (auto &s : shapes) {
        int N = s[0], IN = s[1], OUT = s[2];
        std::vector<float> x = rnd((size_t)N * IN, 70), w = rnd((size_t)OUT * IN, 71), b = rnd(OUT, 72);
        std::vector<float> dy = rnd((size_t)N * OUT, 73), dx0 = rnd((size_t)N * IN, 74);
        std::vector<float> y((size_t)N * OUT), dx = dx0, dw((size_t)OUT * IN), db(OUT);
        linear_forward_cpu(y.data(), x.data(), w.data(), b.data(), N, IN, OUT);
        linear_backward_cpu(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), N, IN, OUT);
        std::vector<std::vector<float>> fwd0, bwd0;
        int same_f = 1, same_b = 1;
        for (int ti = 0; ti < gemm_cuda_versions(); ti++) {
            gemm_cuda_set_version(ti + 1);
            char l[96];
            snprintf(l, sizeof l, "linear fwd N=%d IN=%d OUT=%d gemm v%d", N, IN, OUT, ti + 1);
            Arr f[] = {in("x", B_(x)), in("w", B_(w)), in("b", B_(b)), out("y", NULL, y.data(), y.size(), AT, RT)};
            run_case(l, f, 4, [&](void **d) {
                linear_forward_cuda((float *)d[3], (float *)d[0], (float *)d[1], (float *)d[2], N, IN, OUT);
            });
            if (ti == 0) fwd0 = last_result; else same_f &= same_bits(fwd0, last_result);
            snprintf(l, sizeof l, "linear bwd N=%d IN=%d OUT=%d gemm v%d", N, IN, OUT, ti + 1);
            Arr g[] = {in("dy", B_(dy)), in("x", B_(x)), in("w", B_(w)), out("dx", dx0.data(), dx.data(), dx.size(), AT, RT),
                       out("dw", NULL, dw.data(), dw.size(), AT, RT), out("db", NULL, db.data(), db.size(), AT, RT)};
            run_case(l, g, 6, [&](void **d) {
                linear_backward_cuda((float *)d[3], (float *)d[4], (float *)d[5], (float *)d[0], (float *)d[1], (float *)d[2],
                                     N, IN, OUT);
            });
            if (ti == 0) bwd0 = last_result; else same_b &= same_bits(bwd0, last_result);
        }
        check(same_f && same_b, "linear N=%d IN=%d OUT=%d: every GEMM version gives bit-identical y, dx, dw, db", N, IN, OUT);
        /* dx NULL: only dw, db */
        gemm_cuda_set_version(0);
        char l[96];
        snprintf(l, sizeof l, "linear bwd dx=NULL N=%d IN=%d OUT=%d", N, IN, OUT);
        Arr g[] = {in("dy", B_(dy)), in("x", B_(x)), out("dw", NULL, dw.data(), dw.size(), AT, RT),
                   out("db", NULL, db.data(), db.size(), AT, RT)};
        run_case(l, g, 4, [&](void **d) {
            linear_backward_cuda(NULL, (float *)d[2], (float *)d[3], (float *)d[0], (float *)d[1], NULL, N, IN, OUT);
        });
    }
    gemm_cuda_set_version(0);
}

/* -------------------------------------------------------------- batchnorm */
static void test_batchnorm(void) {
    printf("batchnorm (threads 32, 96, 256, 1024)\n");
    /* N, C, HW: N=1, H=W=1, odd C, a channel longer than any block (2*1000) */
    int shapes[][3] = {{1, 3, 5}, {2, 5, 1}, {3, 7, 9}, {4, 16, 64}, {2, 3, 1000}};
    int threads[] = {32, 96, 256, 1024};
    const float mom = 0.1f, eps = 1e-5f;
    for (auto &s : shapes) {
        int N = s[0], C = s[1], HW = s[2];
        size_t n = (size_t)N * C * HW;
        /* an offset mean (3) with unit spread: a one-pass float variance would lose digits */
        std::vector<float> x = rnd(n, 80, 1.0f, 3.0f), g = rnd(C, 81, 0.5f, 1.0f), b = rnd(C, 82, 0.5f);
        std::vector<float> rm0 = rnd(C, 83, 0.5f), rv0 = rnd(C, 84, 0.25f, 1.0f), dy = rnd(n, 85), dx0 = rnd(n, 86);
        for (int nu = 1; nu <= 2; nu++) {
            std::vector<float> y(n), sm(C), si(C), rm = rm0, rv = rv0;
            batchnorm_forward_train_cpu(y.data(), sm.data(), si.data(), rm.data(), rv.data(), x.data(), g.data(), b.data(),
                                        N, C, HW, mom, eps, nu);
            std::vector<float> dx = dx0, dg(C), db(C);
            batchnorm_backward_cpu(dx.data(), dg.data(), db.data(), dy.data(), x.data(), sm.data(), si.data(), g.data(), N, C, HW);
            for (int t : threads) {
                if (nu == 2 && t != 256) continue;   /* the WRN double update: once is enough */
                batchnorm_cuda_threads = t;
                char l[112];
                snprintf(l, sizeof l, "bn train N=%d C=%d HW=%d updates=%d threads=%d", N, C, HW, nu, t);
                Arr f[] = {in("x", B_(x)), in("gamma", B_(g)), in("beta", B_(b)),
                           out("y", NULL, y.data(), n, 1e-5, 1e-5), out("save_mean", NULL, sm.data(), C, 1e-6, 1e-6),
                           out("save_invstd", NULL, si.data(), C, 0, 1e-5), out("run_mean", rm0.data(), rm.data(), C, 1e-6, 1e-5),
                           out("run_var", rv0.data(), rv.data(), C, 1e-6, 1e-5)};
                run_case(l, f, 8, [&](void **d) {
                    batchnorm_forward_train_cuda((float *)d[3], (float *)d[4], (float *)d[5], (float *)d[6], (float *)d[7],
                                                 (float *)d[0], (float *)d[1], (float *)d[2], N, C, HW, mom, eps, nu);
                });
                if (nu == 2) continue;
                snprintf(l, sizeof l, "bn bwd N=%d C=%d HW=%d threads=%d", N, C, HW, t);
                /* dgamma, dbeta are sums of N*HW terms of size ~1: atol scales with sqrt(count) ulps */
                double sat = 1e-6 * (1.0 + sqrt((double)N * HW));
                Arr k[] = {in("dy", B_(dy)), in("x", B_(x)), in("save_mean", B_(sm)), in("save_invstd", B_(si)),
                           in("gamma", B_(g)), out("dx", dx0.data(), dx.data(), n, 1e-5, 1e-5),
                           out("dgamma", NULL, dg.data(), C, sat, 1e-5), out("dbeta", NULL, db.data(), C, sat, 1e-5)};
                run_case(l, k, 8, [&](void **d) {
                    batchnorm_backward_cuda((float *)d[5], (float *)d[6], (float *)d[7], (float *)d[0], (float *)d[1],
                                            (float *)d[2], (float *)d[3], (float *)d[4], N, C, HW);
                });
                if (t == 256) {
                    snprintf(l, sizeof l, "bn bwd dx=NULL N=%d C=%d HW=%d", N, C, HW);
                    Arr k2[] = {in("dy", B_(dy)), in("x", B_(x)), in("save_mean", B_(sm)), in("save_invstd", B_(si)),
                                in("gamma", B_(g)), out("dgamma", NULL, dg.data(), C, sat, 1e-5),
                                out("dbeta", NULL, db.data(), C, sat, 1e-5)};
                    run_case(l, k2, 7, [&](void **d) {
                        batchnorm_backward_cuda(NULL, (float *)d[5], (float *)d[6], (float *)d[0], (float *)d[1],
                                                (float *)d[2], (float *)d[3], (float *)d[4], N, C, HW);
                    });
                }
            }
        }
        /* eval */
        std::vector<float> ye(n);
        batchnorm_forward_eval_cpu(ye.data(), x.data(), g.data(), b.data(), rm0.data(), rv0.data(), N, C, HW, eps);
        char l[96];
        snprintf(l, sizeof l, "bn eval N=%d C=%d HW=%d", N, C, HW);
        Arr e[] = {in("x", B_(x)), in("gamma", B_(g)), in("beta", B_(b)), in("run_mean", B_(rm0)), in("run_var", B_(rv0)),
                   out("y", NULL, ye.data(), n, 1e-5, 1e-5)};
        run_case(l, e, 6, [&](void **d) {
            batchnorm_forward_eval_cuda((float *)d[5], (float *)d[0], (float *)d[1], (float *)d[2], (float *)d[3], (float *)d[4],
                                        N, C, HW, eps);
        });
    }
    batchnorm_cuda_threads = 256;
}

/* ----------------------------------------------------------------- losses */
enum { L_CE, L_KD, L_DKD };
static void loss_cpu(int kind, float *dz, float *rows, const float *z, const float *v, const int *y, int B, int NC, LossParams p) {
    if (kind == L_CE) ce_loss_cpu(dz, rows, z, y, B, NC, p);
    else if (kind == L_KD) kd_loss_cpu(dz, rows, z, v, y, B, NC, p);
    else dkd_loss_cpu(dz, rows, z, v, y, B, NC, p);
}
static void loss_cuda(int kind, float *dz, float *rows, const float *z, const float *v, const int *y, int B, int NC, LossParams p) {
    if (kind == L_CE) ce_loss_cuda(dz, rows, z, y, B, NC, p);
    else if (kind == L_KD) kd_loss_cuda(dz, rows, z, v, y, B, NC, p);
    else dkd_loss_cuda(dz, rows, z, v, y, B, NC, p);
}

static void test_losses(void) {
    printf("losses (threads 32, 64, 128, 1024)\n");
    const char *names[] = {"ce", "kd", "dkd"};
    int shapes[][2] = {{1, 100}, {3, 7}, {5, 100}, {9, 37}, {2, 2}};
    int threads[] = {32, 64, 128, 1024};
    for (int kind = 0; kind < 3; kind++)
        for (auto &s : shapes) {
            int B = s[0], NC = s[1];
            LossParams p = {};   /* (warm_at NULL: the factor by value) */
            p.ce_weight = kind == L_KD ? 0.1f : 1.0f;
            p.kd_weight = 0.9f;
            p.alpha = 1.0f;
            p.beta = 8.0f;
            p.T = 4.0f;
            p.warm = 0.25f;
            std::vector<float> z = rnd((size_t)B * NC, 90 + B, 5.0f), v = rnd((size_t)B * NC, 91 + B, 6.0f);
            std::vector<int> y(B);
            for (int b = 0; b < B; b++) y[b] = (b * 37 + 11) % NC;
            if (B >= 5) y[B - 1] = B == 5 ? -1 : NC;   /* a bad label: NaN row terms, zero gradient */
            if (B >= 3) {   /* a confident row: student target margin 300 (75 tempered): p_nt ~ 1e-33 */
                z[(size_t)1 * NC + y[1]] += 300.0f;
                v[(size_t)2 * NC + y[2]] += 200.0f;   /* and a confident teacher */
            }
            std::vector<float> dz((size_t)B * NC), rows((size_t)B * 3);
            loss_cpu(kind, dz.data(), rows.data(), z.data(), v.data(), y.data(), B, NC, p);
            std::vector<std::vector<float>> r0;
            int same = 1;
            for (int ti = 0; ti < 4; ti++) {
                loss_cuda_threads = threads[ti];
                char l[96];
                snprintf(l, sizeof l, "%s loss B=%d NC=%d threads=%d", names[kind], B, NC, threads[ti]);
                Arr a[] = {in("z", B_(z)), in("v", B_(v)), in("y", B_(y)), out("dz", NULL, dz.data(), dz.size(), 1e-7, 1e-4),
                           out("rows", NULL, rows.data(), rows.size(), 1e-6, 1e-5)};
                run_case(l, a, 5, [&](void **d) {
                    loss_cuda(kind, (float *)d[3], (float *)d[4], (float *)d[0], (float *)d[1], (int *)d[2], B, NC, p);
                });
                if (ti == 0) r0 = last_result; else same &= same_bits(r0, last_result);
            }
            check(same, "%s loss B=%d NC=%d: threads 32/64/128/1024 give bit-identical dz, rows", names[kind], B, NC);
            loss_cuda_threads = 128;
            if (kind == L_CE) {   /* evaluation: dz NULL */
                char l[96];
                snprintf(l, sizeof l, "ce loss dz=NULL B=%d NC=%d", B, NC);
                Arr a[] = {in("z", B_(z)), in("y", B_(y)), out("rows", NULL, rows.data(), rows.size(), 1e-6, 1e-5)};
                run_case(l, a, 3, [&](void **d) { ce_loss_cuda(NULL, (float *)d[2], (float *)d[0], (int *)d[1], B, NC, p); });
            }
        }
}

/* docs/dkd_loss.md §8: the float64 values mdistiller + autograd give on a fixed input. */
static void test_dkd_spec_vector(void) {
    printf("dkd loss: the worked example of docs/dkd_loss.md\n");
    const int B = 2, NC = 100;
    std::vector<float> z(B * NC), v(B * NC);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < NC; j++) {
            z[b * NC + j] = (float)(3.0 * sin(0.37 * (j + 1) + 1.1 * (b + 1)));
            v[b * NC + j] = (float)(5.0 * sin(0.23 * (j + 1) + 0.7 * (b + 1)));
        }
    int y[2] = {7, 42};
    LossParams p = {};
    p.ce_weight = 1.0f; p.kd_weight = 0.0f; p.alpha = 1.0f; p.beta = 8.0f; p.T = 4.0f; p.warm = 0.25f;
    float *dz, *dr, *dzv, *dvv;
    int *dy;
    cudaCheck(cudaMalloc(&dz, sizeof(float) * B * NC));
    cudaCheck(cudaMalloc(&dr, sizeof(float) * B * 3));
    cudaCheck(cudaMalloc(&dzv, sizeof(float) * B * NC));
    cudaCheck(cudaMalloc(&dvv, sizeof(float) * B * NC));
    cudaCheck(cudaMalloc(&dy, sizeof(int) * B));
    cudaCheck(cudaMemcpy(dzv, z.data(), sizeof(float) * B * NC, cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(dvv, v.data(), sizeof(float) * B * NC, cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(dy, y, sizeof y, cudaMemcpyHostToDevice));
    dkd_loss_cuda(dz, dr, dzv, dvv, dy, B, NC, p);
    float g[B * NC], rows[B * 3];
    cudaCheck(cudaMemcpy(g, dz, sizeof g, cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(rows, dr, sizeof rows, cudaMemcpyDeviceToHost));
    double ce = 0, tckd = 0, nckd = 0, sabs = 0;
    for (int b = 0; b < B; b++) { ce += rows[3 * b]; tckd += rows[3 * b + 1]; nckd += rows[3 * b + 2]; }
    ce /= B; tckd *= 16.0 / B; nckd *= 16.0 / B;
    for (int i = 0; i < B * NC; i++) sabs += fabs(g[i]);
    /* float32 noise (docs/dkd_loss.md §7): TCKD ~1e-4 relative, the rest ~1e-6 */
    check(fabs(ce - 8.361971974) < 1e-6 * 8.4, "worked example: CE mean %.9f (float64 8.361971974)", ce);
    check(fabs(tckd - 0.05339142518) < 1e-4 * 0.0534, "worked example: TCKD term %.9f (float64 0.05339142518)", tckd);
    check(fabs(nckd - 6.62185435) < 1e-6 * 6.7, "worked example: NCKD term %.9f (float64 6.62185435)", nckd);
    double tot = ce + 0.25 * (tckd + 8.0 * nckd);
    check(fabs(tot - 21.61902853) < 2e-6 * 21.7, "worked example: total %.9f (float64 21.61902853)", tot);
    const struct { int i; double v; } gv[] = {{0, 0.02073083803},   {1, 0.005562510549}, {2, -0.01760183872},
                                              {3, -0.0377608821},   {7, -0.5043541917},  {100 + 42, -0.4982786685},
                                              {100 + 99, 0.08384495424}};
    int ok = 1;
    for (auto &e : gv)
        if (fabs(g[e.i] - e.v) > 1e-7) { ok = 0; printf("    g[%d] = %.10f, float64 %.10f\n", e.i, g[e.i], e.v); }
    check(ok, "worked example: gradient entries within 1e-7 of float64");
    check(fabs(sabs - 7.464520533) < 1e-5, "worked example: sum |g| %.9f (float64 7.464520533)", sabs);
    cudaFree(dz); cudaFree(dr); cudaFree(dzv); cudaFree(dvv); cudaFree(dy);
}

/* -------------------------------------------------------------------- sgd */
static void test_sgd(void) {
    printf("sgd\n");
    size_t sizes[] = {1, 37, 1000};
    for (size_t n : sizes) {
        std::vector<float> p0 = rnd(n, 100), g = rnd(n, 101, 0.1f), b0 = rnd(n, 102, 0.05f), z(n, 0.0f);
        for (int first = 0; first < 2; first++) {   /* first step (buf = 0) and a later one */
            const std::vector<float> &bi = first ? z : b0;
            std::vector<float> p = p0, buf = bi;
            float lr = 0.05f;
            std::vector<float> lrv = {lr};   /* the learning rate in device memory */
            sgd_step_cpu(p.data(), g.data(), buf.data(), n, &lr, 0.9f, 5e-4f);
            char l[64];
            snprintf(l, sizeof l, "sgd n=%zu%s", n, first ? " (first step, buf=0)" : "");
            Arr a[] = {in("g", B_(g)), out("p", p0.data(), p.data(), n, 0, 0), out("buf", bi.data(), buf.data(), n, 0, 0),
                       in("lr", B_(lrv))};
            run_case(l, a, 4, [&](void **d) {
                sgd_step_cuda((float *)d[1], (float *)d[0], (float *)d[2], n, (const float *)d[3], 0.9f, 5e-4f);
            });
        }
    }
}

/* ---------------------------------------------------------------- augment */
static void test_augment(void) {
    printf("augment\n");
    const int Nall = 6;
    std::vector<uint8_t> data((size_t)Nall * 3072);
    unsigned long long s = 12345;
    for (auto &c : data) { s = s * 6364136223846793005ULL + 1442695040888963407ULL; c = (uint8_t)(s >> 56); }
    int idx_sets[][4] = {{2, 0, 0, 0}, {5, 1, 3, 1}};
    int Bs[] = {1, 4};
    int flips_seen[2] = {0, 0};
    for (int k = 0; k < 2; k++)
        for (int augment = 0; augment <= 1; augment++)
            for (int epoch = 0; epoch < (augment ? 3 : 1); epoch++) {
                int B = Bs[k];
                std::vector<int> idx(idx_sets[k], idx_sets[k] + B);
                uint64_t seed = 7 + k;
                std::vector<float> x((size_t)B * 3072);
                std::vector<int> ev = {epoch};   /* the epoch in device memory */
                augment_batch_cpu(x.data(), data.data(), idx.data(), B, seed, &epoch, augment);
                for (int b = 0; b < B && augment; b++) {
                    int ci, cj, fl;
                    augment_draw(seed, epoch, idx[b], &ci, &cj, &fl);
                    flips_seen[fl] = 1;
                }
                char l[96];
                snprintf(l, sizeof l, "augment B=%d augment=%d epoch=%d", B, augment, epoch);
                Arr a[] = {in("data", B_(data)), in("idx", B_(idx)), out("x", NULL, x.data(), x.size(), 0, 0),
                           in("epoch", B_(ev))};
                run_case(l, a, 4, [&](void **d) {
                    augment_batch_cuda((float *)d[2], (uint8_t *)d[0], (int *)d[1], B, seed, (const int *)d[3], augment);
                });
            }
    check(flips_seen[0] && flips_seen[1], "augment cases include flipped and unflipped images");
}

int main(void) {
    (void)skip; (void)fixtures_dir;   /* test.h helpers this program does not need */
    double t0 = now_seconds();
    test_relu();
    test_elementwise();
    test_pool();
    test_linear();
    test_batchnorm();
    test_losses();
    test_dkd_spec_vector();
    test_sgd();
    test_augment();
    printf("%lld kernel launches, %lld emulated threads, %.1f s\n", emu_launch_count(), emu_thread_count(),
           now_seconds() - t0);
    check_race_free("emu_ops");
    return test_summary();
}
