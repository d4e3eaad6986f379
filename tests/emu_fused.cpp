/* tests/emu_fused.cpp — every fused CUDA op against the separate ops it
 * replaces (its reference), under the CPU emulator (tests/cuda_emu.h).
 *
 * The fused ops (kernels/batchnorm.cu) promise the separate ops' result BIT
 * FOR BIT: they compute the same float operations in the same order, only
 * without writing and re-reading the intermediate tensors. So every comparison
 * of a fused op here is exact (memcmp), never a tolerance:
 *   batchnorm_train_relu    == batchnorm_forward_train, [add_forward,] relu_forward
 *                              (y, saved and running statistics);
 *   batchnorm_relu_backward == relu_backward into the BN output's zeroed
 *                              gradient, then batchnorm_backward;
 *   batchnorm_eval_relu     == batchnorm_forward_eval, [add_forward,] relu_forward;
 *   conv2d_bn_eval          == conv2d_forward, batchnorm_forward_eval, [add_forward,]
 *                              [relu_forward] (kernels/conv_epilogue.cuh), on both
 *                              conv paths (implicit GEMM and im2col) and the
 *                              depthwise kernel, also with y the residual's buffer.
 * The one change of arithmetic: batchnorm_forward_train's statistics come from
 * one pass of shifted moments instead of the two-pass variance. Its former
 * three-pass kernel is kept below as the reference, and the new one is held to
 * it and to the C reference (batchnorm.c, same shifted moments, another
 * summation order) within 4 ulps per rounded term (within_ulps says why), on
 * data where the textbook E[x^2] - E[x]^2 in float keeps no digit: |mean| = 1e4
 * spreads, also with the shift 1e3 spreads off. It prints how many values differ.
 * Each op runs on several shapes (one channel to many, odd plane sizes, a
 * batch of one), several block sizes of the per-channel kernels, and every
 * schedule (thread and block orders), and must give the same bits under all
 * of them; the shared-memory race detector watches every launch.
 * Then the wiring: net.c uses the fused ops where a BN's output goes only to a
 * ReLU (or through a residual add to a ReLU). A model's eval forward and a
 * train step's gradients with fusion on (DKD_CUDA_FUSED unset, cuda_fused = 1)
 * equal those with it off (cuda_fused = 0: the separate kernels) bit for bit,
 * with fewer launches (so the fused path did run). And the conv epilogue's
 * wiring: eval forwards of inference-only nets (the arena reuses buffers) of
 * five models, with every fusion, with BN fusion only (the backend's
 * conv2d_bn_eval removed, or the net's no_fuse set) and with none: the same
 * logits bit for bit, and fewer launches with the conv epilogue than without.
 * Ends with "RESULT p f s". */
#include "kernels/cuda_common.h"   // defines: cudaCheck, the CUDA runtime (or its emulator)
#include "kernels/cuda_ops.h"      // defines: the _cuda ops, cuda_fused
#include "test.h"                  // defines: check, check_same, test_summary
#include "emu_test.h"              // defines: schedules, check_race_free, emu_launch_count
#include "kernels/reduce.cuh"      // defines: block_sum (the three-pass reference kernel)

#include <math.h>
#include <string.h>
#include <cmath>
#include <vector>

extern "C" int batchnorm_cuda_threads;

/* A precondition of the test itself (not a check): stop with a message. */
#define check_or_die(cond) \
    do { if (!(cond)) { printf("  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); printf("RESULT 0 1 0\n"); exit(1); } } while (0)

static std::vector<float> rnd(size_t n, unsigned long long seed, float scale, float offset) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++)
        v[i] = offset + scale * (float)((dkd_rand32(seed, 3, 7, (uint32_t)i) >> 8) * (2.0 / 16777216.0) - 1.0);
    return v;
}
static float *dev(const std::vector<float> &h) {
    float *d;
    cudaCheck(cudaMalloc((void **)&d, h.size() * sizeof(float)));
    cudaCheck(cudaMemcpy(d, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}
static std::vector<float> host(const float *d, size_t n) {
    std::vector<float> h(n);
    cudaCheck(cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
}
static int same(const std::vector<float> &a, const std::vector<float> &b) {
    return a.size() == b.size() && !memcmp(a.data(), b.data(), a.size() * sizeof(float));
}

struct Shape { int N, C, HW; };
static const Shape shapes[] = {{1, 1, 1}, {2, 3, 5}, {3, 16, 64}, {4, 40, 49}, {2, 130, 9}, {5, 7, 1024}};
enum { NSHAPES = sizeof shapes / sizeof shapes[0] };

/* ---------------------------------------------- BN backward + ReLU backward */
/* dx (accumulated onto a non-zero start), dgamma, dbeta of relu(bn(x)). */
static std::vector<float> bn_relu_backward(int fused, const Shape &s, unsigned long long seed) {
    size_t n = (size_t)s.N * s.C * s.HW;
    std::vector<float> x = rnd(n, seed, 2.0f, 0.3f), dy = rnd(n, seed + 1, 1.0f, 0.0f);
    std::vector<float> y = rnd(n, seed + 2, 1.0f, 0.1f);   /* the ReLU's output: zeros and positives */
    for (size_t i = 0; i < n; i++) if (y[i] < 0) y[i] = (i % 3) ? 0.0f : -0.0f;
    std::vector<float> mean = rnd(s.C, seed + 3, 0.5f, 0.3f), invstd = rnd(s.C, seed + 4, 0.5f, 1.0f);
    std::vector<float> gamma = rnd(s.C, seed + 5, 1.0f, 0.0f), dx0 = rnd(n, seed + 6, 1.0f, 0.0f);
    float *d_x = dev(x), *d_dy = dev(dy), *d_y = dev(y), *d_m = dev(mean), *d_i = dev(invstd), *d_g = dev(gamma);
    float *d_dx = dev(dx0), *d_dg = dev(std::vector<float>(s.C, 7.0f)), *d_db = dev(std::vector<float>(s.C, 7.0f));
    if (fused) {
        int prev = cuda_fused;
        cuda_fused = 1;
        check_or_die(batchnorm_relu_backward_cuda(d_dx, d_dg, d_db, d_dy, d_y, d_x, d_m, d_i, d_g, s.N, s.C, s.HW) == 1);
        cuda_fused = prev;
    } else {
        float *d_dbn = dev(std::vector<float>(n, 0.0f));   /* net.c zeroes every gradient before the walk */
        relu_backward_cuda(d_dbn, d_dy, d_y, n);
        batchnorm_backward_cuda(d_dx, d_dg, d_db, d_dbn, d_x, d_m, d_i, d_g, s.N, s.C, s.HW);
        cudaCheck(cudaFree(d_dbn));
    }
    std::vector<float> r = host(d_dx, n), dg = host(d_dg, s.C), db = host(d_db, s.C);
    r.insert(r.end(), dg.begin(), dg.end());
    r.insert(r.end(), db.begin(), db.end());
    float *all[] = {d_x, d_dy, d_y, d_m, d_i, d_g, d_dx, d_dg, d_db};
    for (float *p : all) cudaCheck(cudaFree(p));
    return r;
}

static void test_bn_relu_backward(void) {
    printf("batchnorm_relu_backward == relu_backward + batchnorm_backward (exact)\n");
    static const int threads[] = {32, 96, 256, 1024};
    for (int k = 0; k < NSHAPES; k++) {
        const Shape &s = shapes[k];
        for (int t = 0; t < 4; t++) {
            batchnorm_cuda_threads = threads[t];
            std::vector<float> ref = bn_relu_backward(0, s, 100 + k);
            int ok = 1, agree = 1;
            std::vector<float> first;
            for (int sc = 0; sc < NSCHED; sc++) {
                emu_set_schedule(schedules[sc]);
                std::vector<float> got = bn_relu_backward(1, s, 100 + k);
                ok &= same(got, ref);
                if (sc == 0) first = got; else agree &= same(got, first);
            }
            emu_set_schedule("forward");
            check(ok && agree, "N=%d C=%d HW=%d, %d threads: dx, dgamma, dbeta bit-identical to the separate ops%s",
                  s.N, s.C, s.HW, threads[t], agree ? " under every schedule" : " (schedules DIFFER)");
        }
    }
    batchnorm_cuda_threads = 256;
}

/* ---------------------------------------------- train BN: one-pass statistics */
/* The train-mode kernel before the one-pass statistics, kept as the reference:
 * three passes over the channel (the mean; the two-pass variance sum (x-mean)^2;
 * then y). Same block_sum tree, same y arithmetic. */
__global__ void bn_train_three_pass_kernel(float *y, float *save_mean, float *save_invstd, float *run_mean,
                                           float *run_var, const float *x, const float *gamma, const float *beta,
                                           int N, int C, int HW, float momentum, float eps, int n_updates) {
    int c = blockIdx.x, n = N * HW;
    double s = 0.0;
    for (int e = threadIdx.x; e < n; e += blockDim.x) s += x[((size_t)(e / HW) * C + c) * HW + e % HW];
    double mean = block_sum(s) / n, ss = 0.0;
    for (int e = threadIdx.x; e < n; e += blockDim.x) {
        double d = x[((size_t)(e / HW) * C + c) * HW + e % HW] - mean;
        ss += d * d;
    }
    double var = block_sum(ss) / n;
    float meanf = (float)mean, invstd = (float)(1.0 / sqrt(var + (double)eps));
    float a = invstd * gamma[c], b = beta[c] - __fmul_rn(meanf, a);
    for (int e = threadIdx.x; e < n; e += blockDim.x) {
        size_t i = ((size_t)(e / HW) * C + c) * HW + e % HW;
        y[i] = fmaf(x[i], a, b);
    }
    if (threadIdx.x == 0) {
        save_mean[c] = meanf;
        save_invstd[c] = invstd;
        double unbiased = n > 1 ? var * n / (n - 1) : var;
        for (int u = 0; u < n_updates; u++) {
            run_mean[c] = (float)(momentum * mean + (1.0 - momentum) * run_mean[c]);
            run_var[c] = (float)(momentum * unbiased + (1.0 - momentum) * run_var[c]);
        }
    }
}

/* Train BN's inputs: x with mean `offset` and spread `scale`, its first value
 * (every channel's shift in the one-pass moments) moved `outlier` spreads away. */
struct BnIn { std::vector<float> x, res, g, b, rm, rv; };
static BnIn bn_inputs(const Shape &s, unsigned long long seed, float scale, float offset, float outlier) {
    size_t n = (size_t)s.N * s.C * s.HW;
    BnIn in = {rnd(n, seed, scale, offset), rnd(n, seed + 1, 1.0f, -0.2f), rnd(s.C, seed + 2, 1.0f, 0.2f),
               rnd(s.C, seed + 3, 0.5f, 0.0f), rnd(s.C, seed + 4, 0.5f, 0.0f), rnd(s.C, seed + 5, 0.4f, 0.6f)};
    for (int c = 0; c < s.C; c++) in.x[(size_t)c * s.HW] += outlier * scale;
    return in;
}

/* Train BN by `how` (0: the C reference, 1: batchnorm_forward_train_cuda, 2: the
 * three-pass kernel above; 3: batchnorm_train_relu_cuda, 4: the separate ops
 * forward_train [+ add] + relu): y, then save_mean, save_invstd, run_mean, run_var. */
enum { BN_C_REF, BN_ONE_PASS, BN_THREE_PASS, BN_FUSED, BN_SEPARATE };
static std::vector<float> bn_train(int how, int residual, const Shape &s, const BnIn &in, int n_updates) {
    size_t n = (size_t)s.N * s.C * s.HW;
    const float mom = 0.1f, eps = 1e-5f;
    std::vector<float> r(n + 4 * (size_t)s.C);
    float *y = r.data(), *sm = y + n, *si = sm + s.C, *rm = si + s.C, *rv = rm + s.C;
    memcpy(rm, in.rm.data(), s.C * sizeof(float));
    memcpy(rv, in.rv.data(), s.C * sizeof(float));
    if (how == BN_C_REF) {
        batchnorm_forward_train_cpu(y, sm, si, rm, rv, in.x.data(), in.g.data(), in.b.data(), s.N, s.C, s.HW, mom, eps,
                                    n_updates);
        return r;
    }
    float *d_r = dev(r), *d_x = dev(in.x), *d_res = dev(in.res), *d_g = dev(in.g), *d_b = dev(in.b);
    float *d_y = d_r, *d_sm = d_y + n, *d_si = d_sm + s.C, *d_rm = d_si + s.C, *d_rv = d_rm + s.C;
    float *d_t = dev(std::vector<float>(n, 9.0f));
    if (how == BN_ONE_PASS)
        batchnorm_forward_train_cuda(d_y, d_sm, d_si, d_rm, d_rv, d_x, d_g, d_b, s.N, s.C, s.HW, mom, eps, n_updates);
    if (how == BN_THREE_PASS)
        LAUNCH(bn_train_three_pass_kernel, s.C, batchnorm_cuda_threads, 0, d_y, d_sm, d_si, d_rm, d_rv, d_x, d_g, d_b,
               s.N, s.C, s.HW, mom, eps, n_updates);
    if (how == BN_FUSED) {
        int prev = cuda_fused;
        cuda_fused = 1;
        check_or_die(batchnorm_train_relu_cuda(d_y, d_sm, d_si, d_rm, d_rv, d_x, residual ? d_res : NULL, d_g, d_b,
                                               s.N, s.C, s.HW, mom, eps, n_updates) == 1);
        cuda_fused = prev;
    }
    if (how == BN_SEPARATE) {
        batchnorm_forward_train_cuda(d_t, d_sm, d_si, d_rm, d_rv, d_x, d_g, d_b, s.N, s.C, s.HW, mom, eps, n_updates);
        if (residual) add_forward_cuda(d_t, d_t, d_res, n);
        relu_forward_cuda(d_y, d_t, n);
    }
    r = host(d_r, r.size());
    float *all[] = {d_r, d_x, d_res, d_g, d_b, d_t};
    for (float *p : all) cudaCheck(cudaFree(p));
    return r;
}

/* got vs ref (both bn_train's layout) within a few float roundings. Both compute
 * mean and var in double to ~1e-12 relative (the header of batchnorm.cu), so after
 * rounding to float, mean and invstd differ by at most one ulp (where the double
 * values straddle a rounding boundary); a = invstd*gamma and b = beta - mean*a then
 * by a few ulps of a and of mean*a, and y = fma(x, a, b) by |x|*da + db + an ulp
 * of y. The bound below is 2^-21 (4 ulps) of each such term; a wrong statistic
 * (an error of order the channel's spread) is thousands of times larger. Counts
 * the values that differ at all into *differ. */
static int within_ulps(const std::vector<float> &got, const std::vector<float> &ref, const Shape &s, const BnIn &in,
                       size_t *differ) {
    size_t n = (size_t)s.N * s.C * s.HW, C = s.C;
    const double u = 1.0 / (1 << 21);
    int ok = 1;
    *differ = 0;
    for (size_t k = 0; k < got.size(); k++) {
        double g = got[k], r = ref[k], tol;
        if (k < n) {
            size_t c = (k / s.HW) % C;
            double a = (double)ref[n + C + c] * in.g[c], mean = ref[n + c];
            tol = u * (fabs(in.x[k] * a) + 2 * fabs(mean * a) + fabs(in.b[c]) + fabs(r));
        } else {
            tol = u * (fabs(r) + 1e-30);   /* save and running statistics: an ulp or two of each */
            if (k < n + C) tol += 1e-9 * fabs(ref[n + C + (k - n)] > 0 ? 1.0 / ref[n + C + (k - n)] : 0.0);
        }
        *differ += g != r || std::signbit(g) != std::signbit(r);
        ok &= fabs(g - r) <= tol;
    }
    return ok;
}

static void test_bn_train_stats(void) {
    printf("batchnorm_forward_train (one-pass shifted moments) vs the three-pass kernel and the C reference "
           "(within 4 ulps per rounded term), 32, 96, 256 and 1024 threads\n");
    struct Data { float scale, offset, outlier; const char *what; };
    static const Data data[] = {{2.0f, 0.3f, 0.0f, "mean ~ spread"},
                                {1.0f, 1e4f, 0.0f, "|mean| = 1e4 spreads"},
                                {1.0f, 1e4f, 1e3f, "|mean| = 1e4 spreads, the shift 1e3 spreads off"}};
    static const int threads[] = {32, 96, 256, 1024};
    for (const Data &d : data)
        for (int k = 0; k < NSHAPES; k++) {
            const Shape &s = shapes[k];
            BnIn in = bn_inputs(s, 300 + k, d.scale, d.offset, d.outlier);
            std::vector<float> cref = bn_train(BN_C_REF, 0, s, in, 1);
            int ok = 1, agree = 1;
            size_t most_old = 0, most_c = 0;
            for (int t = 0; t < 4; t++) {
                batchnorm_cuda_threads = threads[t];
                std::vector<float> old = bn_train(BN_THREE_PASS, 0, s, in, 1), first;
                for (int sc = 0; sc < NSCHED; sc++) {
                    emu_set_schedule(schedules[sc]);
                    std::vector<float> got = bn_train(BN_ONE_PASS, 0, s, in, 1);
                    if (sc == 0) first = got; else agree &= same(got, first);
                }
                emu_set_schedule("forward");
                size_t d_old, d_c;
                ok &= within_ulps(first, old, s, in, &d_old) & within_ulps(first, cref, s, in, &d_c);
                most_old = d_old > most_old ? d_old : most_old;
                most_c = d_c > most_c ? d_c : most_c;
            }
            check(ok && agree, "%s, N=%d C=%d HW=%d: at most %zu of %zu values differ from the three-pass kernel's, "
                  "%zu from the C reference's%s%s", d.what, s.N, s.C, s.HW, most_old, cref.size(), most_c,
                  ok ? ", all within the bound" : " (OUTSIDE the bound)",
                  agree ? "; bit-identical under every schedule" : " (schedules DIFFER)");
        }
    batchnorm_cuda_threads = 256;
}

/* ---------------------------------------------- train BN [+ residual] + ReLU */
static void test_bn_train_relu(void) {
    printf("batchnorm_train_relu == batchnorm_forward_train [+ add_forward] + relu_forward (exact)\n");
    static const int threads[] = {32, 96, 256, 1024};
    for (int residual = 0; residual < 2; residual++)
        for (int k = 0; k < NSHAPES; k++) {
            const Shape &s = shapes[k];
            BnIn in = bn_inputs(s, 400 + k, 2.0f, 0.1f, 0.0f);
            for (int t = 0; t < 4; t++) {
                batchnorm_cuda_threads = threads[t];
                int nu = 1 + (t == 1);   /* (the WRN double update at one block size) */
                std::vector<float> ref = bn_train(BN_SEPARATE, residual, s, in, nu), first;
                int ok = 1, agree = 1;
                for (int sc = 0; sc < NSCHED; sc++) {
                    emu_set_schedule(schedules[sc]);
                    std::vector<float> got = bn_train(BN_FUSED, residual, s, in, nu);
                    ok &= same(got, ref);
                    if (sc == 0) first = got; else agree &= same(got, first);
                }
                emu_set_schedule("forward");
                check(ok && agree, "%s N=%d C=%d HW=%d, %d threads, %d update%s: y and all statistics bit-identical "
                      "to the separate ops%s", residual ? "BN + residual + ReLU" : "BN + ReLU", s.N, s.C, s.HW,
                      threads[t], nu, nu > 1 ? "s" : "", agree ? " under every schedule" : " (schedules DIFFER)");
            }
        }
    batchnorm_cuda_threads = 256;
}

/* ---------------------------------------------- eval BN [+ residual] + ReLU */
static std::vector<float> bn_eval_relu(int fused, int residual, const Shape &s, unsigned long long seed) {
    size_t n = (size_t)s.N * s.C * s.HW;
    std::vector<float> x = rnd(n, seed, 2.0f, 0.1f), res = rnd(n, seed + 1, 1.0f, -0.2f);
    std::vector<float> g = rnd(s.C, seed + 2, 1.0f, 0.2f), b = rnd(s.C, seed + 3, 0.5f, 0.0f);
    std::vector<float> rm = rnd(s.C, seed + 4, 0.5f, 0.0f), rv = rnd(s.C, seed + 5, 0.4f, 0.6f);
    float *d_x = dev(x), *d_res = dev(res), *d_g = dev(g), *d_b = dev(b), *d_rm = dev(rm), *d_rv = dev(rv);
    float *d_y = dev(std::vector<float>(n, 9.0f)), *d_t = dev(std::vector<float>(n, 9.0f));
    const float eps = 1e-5f;
    if (fused) {
        int prev = cuda_fused;
        cuda_fused = 1;
        check_or_die(batchnorm_eval_relu_cuda(d_y, d_x, residual ? d_res : NULL, d_g, d_b, d_rm, d_rv, s.N, s.C, s.HW,
                                              eps) == 1);
        cuda_fused = prev;
    } else {
        batchnorm_forward_eval_cuda(d_t, d_x, d_g, d_b, d_rm, d_rv, s.N, s.C, s.HW, eps);
        if (residual) add_forward_cuda(d_t, d_t, d_res, n);
        relu_forward_cuda(d_y, d_t, n);
    }
    std::vector<float> r = host(d_y, n);
    float *all[] = {d_x, d_res, d_g, d_b, d_rm, d_rv, d_y, d_t};
    for (float *p : all) cudaCheck(cudaFree(p));
    return r;
}

static void test_bn_eval_relu(void) {
    printf("batchnorm_eval_relu == batchnorm_forward_eval [+ add_forward] + relu_forward (exact)\n");
    for (int residual = 0; residual < 2; residual++)
        for (int k = 0; k < NSHAPES; k++) {
            const Shape &s = shapes[k];
            std::vector<float> ref = bn_eval_relu(0, residual, s, 200 + k), first;
            int ok = 1, agree = 1;
            for (int sc = 0; sc < NSCHED; sc++) {
                emu_set_schedule(schedules[sc]);
                std::vector<float> got = bn_eval_relu(1, residual, s, 200 + k);
                ok &= same(got, ref);
                if (sc == 0) first = got; else agree &= same(got, first);
            }
            emu_set_schedule("forward");
            check(ok && agree, "%s N=%d C=%d HW=%d: bit-identical to the separate ops%s",
                  residual ? "BN + residual + ReLU" : "BN + ReLU", s.N, s.C, s.HW,
                  agree ? " under every schedule" : " (schedules DIFFER)");
        }
}

/* ---------------------------------------------- conv + eval BN [+ residual] [+ ReLU] */
extern "C" void conv_cuda_set_implicit(int on);   /* kernels/conv.cu: 1 implicit GEMM, 0 im2col */

struct ConvShape { int N, C, H, W, OC, K, S, P, G, bias; const char *what; };
static const ConvShape conv_shapes[] = {
    {2, 3, 8, 8, 5, 3, 1, 1, 1, 1, "odd channels, bias"},
    {1, 4, 7, 7, 6, 3, 2, 1, 1, 0, "N=1, stride 2, odd size"},
    {2, 6, 6, 5, 9, 3, 1, 1, 3, 0, "groups 3, non-square"},
    {2, 12, 5, 5, 24, 1, 1, 0, 4, 0, "grouped 1x1"},
    {2, 6, 9, 9, 6, 3, 2, 1, 6, 0, "depthwise stride 2"},
    {1, 20, 4, 4, 70, 3, 1, 1, 1, 1, "OC=70: the 64-row tile, ragged"},
    {3, 8, 6, 6, 24, 3, 1, 1, 1, 0, "OC=24: the 32-row tile"},
};
enum { NCONV = sizeof conv_shapes / sizeof conv_shapes[0] };

/* y = relu?(bn_eval(conv(x)) + res?): fused (conv2d_bn_eval; inplace: y is the
 * residual's buffer) or the separate ops, on the conv path `implicit`. */
static std::vector<float> conv_bn_eval(int fused, int residual, int relu, int inplace, const ConvShape &s,
                                       unsigned long long seed) {
    int OH = (s.H + 2 * s.P - s.K) / s.S + 1, OW = (s.W + 2 * s.P - s.K) / s.S + 1, HW = OH * OW;
    size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.OC * HW;
    size_t nw = (size_t)s.OC * (s.C / s.G) * s.K * s.K;
    size_t nws = conv2d_workspace_floats_cuda(s.N, s.C, s.H, s.W, s.OC, s.K, s.S, s.P, s.G);
    std::vector<float> x = rnd(nx, seed, 1.0f, 0.0f), w = rnd(nw, seed + 1, 0.5f, 0.0f);
    std::vector<float> cb = rnd(s.OC, seed + 2, 0.5f, 0.0f), res = rnd(ny, seed + 3, 1.0f, -0.2f);
    std::vector<float> g = rnd(s.OC, seed + 4, 1.0f, 0.2f), b = rnd(s.OC, seed + 5, 0.5f, 0.0f);
    std::vector<float> rm = rnd(s.OC, seed + 6, 0.5f, 0.0f), rv = rnd(s.OC, seed + 7, 0.4f, 0.6f);
    float *d_x = dev(x), *d_w = dev(w), *d_cb = s.bias ? dev(cb) : NULL, *d_res = dev(res), *d_g = dev(g);
    float *d_b = dev(b), *d_rm = dev(rm), *d_rv = dev(rv), *d_ws = dev(std::vector<float>(nws ? nws : 1, 9.0f));
    float *d_y = dev(std::vector<float>(ny, 9.0f)), *d_t = dev(std::vector<float>(ny, 9.0f));
    float *out = inplace ? d_res : d_y;
    const float eps = 1e-5f;
    if (fused) {
        int prev = cuda_fused;
        cuda_fused = 1;
        check_or_die(conv2d_bn_eval_cuda(out, d_x, d_w, d_cb, s.N, s.C, s.H, s.W, s.OC, s.K, s.S, s.P, s.G, d_ws,
                                         residual ? d_res : NULL, d_g, d_b, d_rm, d_rv, eps, relu) == 1);
        cuda_fused = prev;
    } else {
        conv2d_forward_cuda(d_t, d_x, d_w, d_cb, s.N, s.C, s.H, s.W, s.OC, s.K, s.S, s.P, s.G, d_ws);
        batchnorm_forward_eval_cuda(d_t, d_t, d_g, d_b, d_rm, d_rv, s.N, s.OC, HW, eps);
        if (residual) add_forward_cuda(d_t, d_t, d_res, ny);
        if (relu) relu_forward_cuda(d_t, d_t, ny);
        cudaCheck(cudaMemcpy(out, d_t, ny * sizeof(float), cudaMemcpyDeviceToDevice));
    }
    std::vector<float> r = host(out, ny);
    float *all[] = {d_x, d_w, d_res, d_g, d_b, d_rm, d_rv, d_ws, d_y, d_t};
    for (float *p : all) cudaCheck(cudaFree(p));
    if (d_cb) cudaCheck(cudaFree(d_cb));
    return r;
}

/* One shape, one epilogue: fused == separate, bit for bit, on both conv paths
 * and under every schedule. */
static void conv_bn_case(const ConvShape &s, int k, int residual, int relu, int inplace) {
    int ok = 1, agree = 1;
    for (int implicit = 0; implicit < 2; implicit++) {
        conv_cuda_set_implicit(implicit);
        std::vector<float> ref = conv_bn_eval(0, residual, relu, 0, s, 300 + k), first;
        for (int sc = 0; sc < NSCHED; sc++) {
            emu_set_schedule(schedules[sc]);
            std::vector<float> got = conv_bn_eval(1, residual, relu, inplace, s, 300 + k);
            ok &= same(got, ref);
            if (sc == 0) first = got; else agree &= same(got, first);
        }
        emu_set_schedule("forward");
    }
    conv_cuda_set_implicit(-1);
    check(ok && agree, "%s (%s)%s%s%s: bit-identical to the separate ops, DKD_CUDA_IMPLICIT on and off%s", s.what,
          s.G == s.C && s.OC == s.C ? "depthwise kernel" : "GEMM", residual ? " + residual" : "", relu ? " + ReLU" : "",
          inplace ? ", y = res" : "", agree ? ", under every schedule" : " (schedules DIFFER)");
}

static void test_conv_bn_eval(void) {
    printf("conv2d_bn_eval == conv2d_forward + batchnorm_forward_eval [+ add_forward] [+ relu_forward] (exact)\n");
    for (int k = 0; k < NCONV; k++) {
        conv_bn_case(conv_shapes[k], k, 0, 0, 0);
        conv_bn_case(conv_shapes[k], k, 0, 1, 0);
        conv_bn_case(conv_shapes[k], k, 1, 1, k % 2);
    }
    conv_bn_case(conv_shapes[0], 0, 1, 0, 0);   /* residual without a ReLU (MobileNetV2's blocks) */
}

/* ---------------------------------------------- the wiring in net.c */
enum { PH_EVAL, PH_TRAIN, PH_BACKWARD, NPHASES };
static const char *const phase_names[] = {"eval forward", "train forward", "backward"};
struct NetRun { std::vector<float> logits, train_logits, stats, grads; long long launches[NPHASES]; };

/* Fusion on or off: eval logits of a fresh model, then one train forward +
 * backward from the same weights and input: the train logits, the running
 * statistics and the parameter gradients; and the launches of each phase. */
static NetRun run_net(const char *model, int fused, int B, int no_fuse = 0) {
    NetRun r;
    cuda_fused = fused;
    Net *n = model_build(model);
    net_init_params(n, 3);
    check_or_die(net_setup(n, &backend_cuda, B, 1) == 0);
    n->no_fuse = no_fuse;
    size_t xin = (size_t)B * 3 * 32 * 32;
    std::vector<float> x = rnd(xin, 5, 1.0f, 0.0f);
    int NC = net_num_classes(n);
    backend_cuda.upload(n->x, x.data(), xin * sizeof(float));
    long long l0 = emu_launch_count();
    r.logits = host(net_forward(n, B, 0), (size_t)B * NC);
    backend_cuda.upload(n->x, x.data(), xin * sizeof(float));
    long long l1 = emu_launch_count();
    r.train_logits = host(net_forward(n, B, 1), (size_t)B * NC);
    long long l2 = emu_launch_count();
    std::vector<float> dz = rnd((size_t)B * NC, 6, 0.1f, 0.0f);
    float *d_dz = dev(dz);
    net_backward(n, d_dz, B);
    long long l3 = emu_launch_count();
    r.launches[PH_EVAL] = l1 - l0; r.launches[PH_TRAIN] = l2 - l1; r.launches[PH_BACKWARD] = l3 - l2;
    r.grads = host(n->grads, n->n_params);
    r.stats = host(n->stats, n->n_stats);
    cudaCheck(cudaFree(d_dz));
    net_free(n);
    cuda_fused = -1;
    return r;
}

static void test_net_wiring(void) {
    printf("net.c: fused ops on == off (the separate kernels), bit for bit\n");
    /* small models that hold every chain: BN -> ReLU, BN -> add -> ReLU with and
     * without a downsample branch (resnet8x4, resnet20, wrn_16_2, whose three BNs
     * applied twice update their running statistics twice), BN -> ReLU around
     * depthwise and pointwise convolutions (MobileNetV2), ShuffleV1's grouped
     * convolutions and ShuffleV2's split/concat blocks */
    static const char *models[] = {"resnet8x4", "resnet20", "wrn_16_2", "MobileNetV2", "ShuffleV1", "ShuffleV2"};
    for (const char *m : models) {
        NetRun off = run_net(m, 0, 2), on = run_net(m, 1, 2);
        check(same(on.logits, off.logits), "%s: eval logits bit-identical with and without fusion", m);
        check(same(on.train_logits, off.train_logits) && same(on.stats, off.stats),
              "%s: train-forward logits and running statistics bit-identical", m);
        check(same(on.grads, off.grads), "%s: train-step parameter gradients bit-identical", m);
        for (int p = 0; p < NPHASES; p++) {
            if (off.launches[p] == 0) { skip("%s: launch counts: only the emulator counts launches", m); break; }
            check(on.launches[p] < off.launches[p], "%s %s: fewer launches when fused (%lld vs %lld)", m,
                  phase_names[p], on.launches[p], off.launches[p]);
        }
    }
    /* Net.no_fuse turns the train forward's fusion off for one net, cuda_fused on */
    NetRun off = run_net("resnet8x4", 0, 2), nf = run_net("resnet8x4", 1, 2, 1);
    check(same(nf.train_logits, off.train_logits) && nf.launches[PH_TRAIN] == off.launches[PH_TRAIN],
          "resnet8x4 with Net.no_fuse: the train forward runs the separate kernels (%lld launches, as unfused: %lld)",
          nf.launches[PH_TRAIN], off.launches[PH_TRAIN]);
}

/* A fresh model's BN layers are the identity (gamma 1, beta 0, mean 0, var 1),
 * which would hide a wrong BN epilogue: random ones instead (and biases). */
static void randomize_bn(Net *n) {
    for (int k = 0; k < n->n_pinfo; k++) {
        const ParamInfo *p = &n->pinfo[k];
        int constant = p->kind == PK_PARAM && (p->init == INIT_ONE || p->init == INIT_ZERO);
        if (!constant && p->kind != PK_RUNMEAN && p->kind != PK_RUNVAR) continue;
        float offset = p->kind == PK_RUNVAR || p->init == INIT_ONE ? 1.0f : 0.0f;
        std::vector<float> v = rnd(p->numel, 10 + k, 0.5f, offset);
        memcpy((float *)net_host_ptr(n, p), v.data(), p->numel * sizeof(float));
    }
}

/* An inference-only net (the teacher: the arena reuses dead buffers) on
 * backend be: eval logits of a model with random BN statistics, and the
 * launches they took. */
static NetRun run_eval(const char *model, const Backend *be, int fused, int no_fuse, int B) {
    NetRun r;
    cuda_fused = fused;
    Net *n = model_build(model);
    net_init_params(n, 4);
    randomize_bn(n);
    check_or_die(net_setup(n, be, B, 0) == 0);
    n->no_fuse = no_fuse;
    size_t xin = (size_t)B * 3 * 32 * 32;
    std::vector<float> x = rnd(xin, 7, 1.0f, 0.0f);
    be->upload(n->x, x.data(), xin * sizeof(float));
    long long l0 = emu_launch_count();
    r.logits = host(net_forward(n, B, 0), (size_t)B * net_num_classes(n));
    r.launches[PH_EVAL] = emu_launch_count() - l0;
    net_free(n);
    cuda_fused = -1;
    return r;
}

static void test_conv_bn_wiring(void) {
    printf("net.c: conv + BN [+ add] [+ ReLU] fused in eval forwards == the separate kernels, bit for bit\n");
    static const char *models[] = {"resnet20", "wrn_16_2", "vgg8", "ShuffleV1", "MobileNetV2"};
    Backend bn_only = backend_cuda;   /* the fused BN ops without the conv epilogue */
    bn_only.conv2d_bn_eval = NULL;
    for (const char *m : models) {
        NetRun off = run_eval(m, &backend_cuda, 0, 0, 2), mid = run_eval(m, &bn_only, 1, 0, 2);
        NetRun on = run_eval(m, &backend_cuda, 1, 0, 2), nf = run_eval(m, &backend_cuda, 1, 1, 2);
        check(same(on.logits, off.logits) && same(mid.logits, off.logits) && same(nf.logits, off.logits),
              "%s: eval logits bit-identical: all fusion, BN fusion only, net no_fuse, none", m);
        if (off.launches[PH_EVAL] == 0) skip("%s: launch counts: only the emulator counts launches", m);
        else check(on.launches[PH_EVAL] < mid.launches[PH_EVAL] && mid.launches[PH_EVAL] <= off.launches[PH_EVAL] &&
                       nf.launches[PH_EVAL] == mid.launches[PH_EVAL],
                   "%s: the conv epilogue saves launches (%lld, vs %lld with BN fusion only or net no_fuse, %lld "
                   "unfused)", m, on.launches[PH_EVAL], mid.launches[PH_EVAL], off.launches[PH_EVAL]);
    }
}

int main(void) {
    printf("emu_fused: fused CUDA ops vs their unfused references (emulated on the CPU, schedule %s)\n", emu_schedule());
    test_bn_relu_backward();
    test_bn_train_stats();
    test_bn_train_relu();
    test_bn_eval_relu();
    test_conv_bn_eval();
    test_net_wiring();
    test_conv_bn_wiring();
    check_race_free("emu_fused");
    return test_summary();
}
