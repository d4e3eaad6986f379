/* kernels/batchnorm.cu — 2-D batch normalisation on the GPU (reference:
 * kernels/batchnorm.c; PyTorch semantics, derived step by step in docs/batchnorm.md).
 *
 * What it computes, per channel c over its n = N*HW values (x, y [N,C,HW]):
 *   train     mean = sum x / n,  var = sum (x-mean)^2 / n   (biased: used to normalise)
 *               computed in one pass as shifted moments (below)
 *             invstd = 1/sqrt(var + eps)
 *             y = (x - mean) * invstd * gamma[c] + beta[c]
 *               computed as PyTorch (and batchnorm.c) do: y = fma(x, a, b) with
 *               a = invstd*gamma, b = beta - mean*a (one rounding per element)
 *             save_mean[c] = mean, save_invstd[c] = invstd     (for the backward)
 *             running stats, n_updates times (1; 2 for the WRN quirk), in double:
 *               run_mean = (1-momentum) run_mean + momentum mean
 *               run_var  = (1-momentum) run_var  + momentum var*n/(n-1)   (UNbiased)
 *   eval      the same y with run_mean, run_var in place of mean, var
 *   backward  xhat = (x - mean) * invstd
 *             dbeta[c]  = sum dy                    (=)
 *             dgamma[c] = sum dy*xhat = invstd * sum dy*(x-mean)   (=)
 *             dx += gamma*invstd * (dy - dbeta/n - xhat*dgamma/n)
 *               computed as PyTorch does: k = invstd^2 * sum dy*(x-mean) / n,
 *               dx += (dy - dbeta/n - (x-mean)*k) * invstd * gamma
 *
 * The statistics in one pass (channel_moments). With s = the channel's first
 * value, each thread sums d = x - s and d^2 in double; then
 *     d1 = E[x-s],  d2 = E[(x-s)^2],  mean = s + d1,  var = d2 - d1^2.
 * The textbook one-pass E[x^2] - E[x]^2 cancels when |mean| >> std: both terms
 * are ~mean^2 and their difference ~std^2, so their rounding errors grow by a
 * factor (mean/std)^2 relative to var. Around s the terms are d2 = var +
 * (mean-s)^2 and d1^2 = (mean-s)^2: the factor is 1 + (mean-s)^2/var, and s is a
 * value of the channel, typically about one std from the mean (a factor ~2:
 * nothing lost). In double it survives even
 * a bad shift: the terms are exact or nearly (x - s of two floats is exact in
 * double when their exponents are within 29 of each other), the sums of up to
 * 65536 terms keep ~1e-12 relative, so a shift 1000 stds off (a factor 1e6)
 * still leaves var good to ~1e-10, far inside float's 6e-8: after the rounding
 * to float, mean and invstd are the two-pass values, or one ulp off where the
 * double values straddle a float rounding boundary. batchnorm.c (the C
 * reference) uses the same shifted moments; tests/emu_fused.cpp holds this
 * kernel to the former three-pass kernel (kept there) and to batchnorm.c within
 * a few ulps, on data with |mean| = 1e4 std and a shift 1e3 std off.
 *
 * How work maps to blocks and threads:
 *   train and backward: ONE BLOCK PER CHANNEL. A channel's values are N runs
 *   of HW contiguous floats (x[n, c, :]); thread t of the block takes the
 *   flat positions e = t, t+T, t+2T... of the channel (e -> n = e/HW,
 *   hw = e%HW), so a warp reads 32 neighbouring floats of a run: coalesced.
 *   Each thread keeps DOUBLE partial sums (float partials over 65536 values
 *   lose digits); the block combines them with block_sum (kernels/reduce.cuh:
 *   a fixed-shape tree of warp butterflies, the total in every thread). Same
 *   block size, same tree, same rounding: the result never depends on thread
 *   timing, and no atomics are needed because one block owns the channel.
 *   The forward makes two passes over the channel (the shifted moments, then
 *   y; it made three with the two-pass variance: mean, sum (x-mean)^2, y), the
 *   backward two (the two sums, then dx). The second pass mostly hits the L2
 *   cache.
 *   Block size: the knob batchnorm_cuda_threads (a multiple of 32 up to 1024,
 *   default 256; tests run several). With C channels there are only C blocks,
 *   which under-fills a large GPU for narrow layers: the price of the
 *   simplest deterministic reduction.
 *   eval: one thread per element, 256 per block (no reduction).
 *
 * Fused ops (fewer passes over memory; DKD_CUDA_FUSED=0 or the knob cuda_fused
 * = 0 turns them off, and net.c then runs the separate ops, the reference the
 * tests compare them with, bit for bit):
 *   batchnorm_train_relu     relu(bn_train(x) [+ res]) in one launch: the
 *             student's BN -> ReLU and a residual block's BN -> add -> ReLU
 *             in training. The statistics, then y with the add and the ReLU
 *             applied before it is stored: the BN's (and the add's) output
 *             tensor and the ReLU's (and the add's) pass over it disappear;
 *   batchnorm_relu_backward  the backward of relu(bn(x)): the ReLU's mask is
 *             applied as BN's backward reads dy, so the ReLU backward's pass
 *             and the BN output's gradient tensor disappear;
 *   batchnorm_eval_relu      relu(bn_eval(x) [+ res]) in one elementwise pass
 *             (teacher forwards and evaluation: BN -> ReLU, and a residual
 *             block's BN -> add -> ReLU), instead of two or three passes.
 * All three end in the same epilogue (bn_epilogue), the separate ops' float
 * operations in their order.
 */
#include "kernels/cuda_common.h"   // defines: LAUNCH, SHARED, ceil_div_sz
#include "kernels/cuda_ops.h"      // defines: the _cuda declarations
#include "kernels/reduce.cuh"      // defines: block_sum (double, the total in every thread)

#include <stdlib.h>
#include <string.h>

/* Tuning knob: threads per block of the per-channel kernels (multiple of 32, <= 1024). */
extern "C" { int batchnorm_cuda_threads = 256; }

enum { BN_EVAL_THREADS = 256 };

/* Flat position e of channel c -> index into x [N,C,HW]. */
__device__ static inline size_t chan_index(int e, int c, int C, int HW) {
    return ((size_t)(e / HW) * C + c) * HW + e % HW;
}

/* What a fused op lets follow BN's y = fma(x, a, b) in the same pass (EPI):
 * nothing (BN_ONLY), a ReLU (BN_RELU), or + res and then a ReLU (BN_ADD_RELU).
 * The ReLU is relu.cu's select (-0 -> +0, NaN kept) and the add elementwise.cu's
 * one rounding, so a fused form is bit for bit the separate ops' result. */
enum { BN_ONLY, BN_RELU, BN_ADD_RELU };
template <int EPI>
__device__ static inline float bn_epilogue(float x, float a, float b, const float *res, size_t i) {
    float v = fmaf(x, a, b);
    if (EPI == BN_ADD_RELU) v = v + res[i];
    return EPI == BN_ONLY ? v : (v <= 0.0f ? 0.0f : v);
}

/* Batch mean and biased variance of channel c, in ONE pass, in double: the
 * moments d1 = E[x-s], d2 = E[(x-s)^2] around the shift s = the channel's first
 * value, then mean = s + d1, var = d2 - d1^2 (see the header: why no digits
 * are lost). Every thread gets both. */
__device__ static void channel_moments(const float *__restrict__ x, int c, int C, int HW, int n,
                                       double *mean, double *var) {
    double shift = x[chan_index(0, c, C, HW)], s1 = 0.0, s2 = 0.0;
    for (int e = threadIdx.x; e < n; e += blockDim.x) {
        double d = x[chan_index(e, c, C, HW)] - shift;
        s1 += d;
        s2 += d * d;
    }
    double d1 = block_sum(s1) / n, d2 = block_sum(s2) / n;
    *mean = shift + d1;
    *var = d2 - d1 * d1 > 0.0 ? d2 - d1 * d1 : 0.0;   /* (rounding may leave a tiny negative where var ~ 0) */
}

/* Train-mode BN of one channel per block: the statistics (one pass), then
 * y = epilogue(fma(x, a, b)) (the second pass), then thread 0 saves the
 * statistics and moves the running ones. res is read only by BN_ADD_RELU.
 * In training every node has its own buffer: y is never x or res. */
template <int EPI>
__global__ void batchnorm_train_kernel(float *__restrict__ y, float *__restrict__ save_mean,
                                       float *__restrict__ save_invstd, float *__restrict__ run_mean,
                                       float *__restrict__ run_var, const float *__restrict__ x,
                                       const float *__restrict__ res, const float *__restrict__ gamma,
                                       const float *__restrict__ beta, int N, int C, int HW, float momentum, float eps,
                                       int n_updates) {
    int c = blockIdx.x, n = N * HW;
    double mean, var;
    channel_moments(x, c, C, HW, n, &mean, &var);
    float meanf = (float)mean;
    float invstd = (float)(1.0 / sqrt(var + (double)eps));
    /* y = x*a + b, one fused multiply-add. The product mean*a is rounded on its
     * own (__fmul_rn: nvcc may not fuse it into the subtraction), as in the C
     * reference. */
    float a = invstd * gamma[c];
    float b = beta[c] - __fmul_rn(meanf, a);
    for (int e = threadIdx.x; e < n; e += blockDim.x) {
        size_t i = chan_index(e, c, C, HW);
        y[i] = bn_epilogue<EPI>(x[i], a, b, res, i);
    }
    if (threadIdx.x == 0) {
        save_mean[c] = meanf;
        save_invstd[c] = invstd;
        double unbiased = n > 1 ? var * n / (n - 1) : var;
        double mom = momentum;
        for (int u = 0; u < n_updates; u++) {
            run_mean[c] = (float)(mom * mean + (1.0 - mom) * run_mean[c]);
            run_var[c] = (float)(mom * unbiased + (1.0 - mom) * run_var[c]);
        }
    }
}

/* Eval-mode BN of channel c as y = a*x + b: a = gamma/sqrt(var+eps), b = beta - mean*a
 * (the rounding every eval kernel here shares, so fused and unfused agree bit for bit). */
static __device__ __forceinline__ void bn_eval_affine(int c, const float *__restrict__ gamma, const float *__restrict__ beta,
                                               const float *__restrict__ run_mean, const float *__restrict__ run_var,
                                               float eps, float *a, float *b) {
    float invstd = 1.0f / sqrtf(run_var[c] + eps);
    *a = invstd * gamma[c];
    *b = beta[c] - __fmul_rn(run_mean[c], *a);
}

/* The gradient reaching the BN output at i. Plain: dy[i]. Fused with the ReLU
 * that follows it (RELU_MASK): dy is the ReLU output's gradient and relu_y the
 * ReLU's output, and the value is exactly what relu_backward would have left in
 * the BN output's zeroed gradient buffer: 0 + dy[i] where relu_y[i] > 0, else 0. */
template <bool RELU_MASK>
__device__ static inline float grad_at(const float *__restrict__ dy, const float *__restrict__ relu_y, size_t i) {
    if (!RELU_MASK) return dy[i];
    return relu_y[i] > 0.0f ? 0.0f + dy[i] : 0.0f;
}

/* dx may be NULL (only the parameter gradients are wanted); relu_y is read
 * only when RELU_MASK (BN backward + ReLU backward in one kernel). */
template <bool RELU_MASK>
__global__ void batchnorm_backward_kernel(float *__restrict__ dx, float *__restrict__ dgamma, float *__restrict__ dbeta,
                                          const float *__restrict__ dy, const float *__restrict__ relu_y,
                                          const float *__restrict__ x,
                                          const float *__restrict__ save_mean, const float *__restrict__ save_invstd,
                                          const float *__restrict__ gamma, int N, int C, int HW) {
    int c = blockIdx.x, n = N * HW;
    float mean = save_mean[c], invstd = save_invstd[c];
    /* pass 1: the two sums, sum dy and dot = sum dy*(x-mean), in double */
    double sdy = 0.0, dot = 0.0;
    for (int e = threadIdx.x; e < n; e += blockDim.x) {
        size_t i = chan_index(e, c, C, HW);
        double g = grad_at<RELU_MASK>(dy, relu_y, i);
        sdy += g;
        dot += g * ((double)x[i] - (double)mean);
    }
    sdy = block_sum(sdy);
    dot = block_sum(dot);
    if (threadIdx.x == 0) {
        if (dbeta) dbeta[c] = (float)sdy;
        if (dgamma) dgamma[c] = (float)(dot * invstd);
    }
    if (!dx) return;   /* the same for every thread of the block: no barrier follows */
    /* pass 2: dx += (dy - mean(dy) - (x-mean)*k) * invstd * gamma, k = dot*invstd^2/n */
    float k = (float)dot * invstd * invstd / (float)n;
    float grad_mean = (float)(sdy / n), gc = gamma[c];
    for (int e = threadIdx.x; e < n; e += blockDim.x) {
        size_t i = chan_index(e, c, C, HW);
        dx[i] += (grad_at<RELU_MASK>(dy, relu_y, i) - grad_mean - (x[i] - mean) * k) * invstd * gc;
    }
}

/* Eval-mode BN, one thread per element, with the epilogue EPI (bn_epilogue).
 * y may be x or res (the arena of an inference-only net reuses dead buffers;
 * each thread reads its element before writing it): no __restrict__ on them. */
template <int EPI>
__global__ void batchnorm_eval_kernel(float *y, const float *x, const float *res,
                                      const float *__restrict__ gamma, const float *__restrict__ beta,
                                      const float *__restrict__ run_mean, const float *__restrict__ run_var,
                                      int N, int C, int HW, float eps) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C * HW) return;
    float a, b;
    bn_eval_affine((int)((i / HW) % C), gamma, beta, run_mean, run_var, eps, &a, &b);
    y[i] = bn_epilogue<EPI>(x[i], a, b, res, i);
}

static int bn_threads(void) {
    int t = batchnorm_cuda_threads;
    return (t >= 32 && t <= 1024 && t % 32 == 0) ? t : 256;
}

extern "C" void batchnorm_forward_train_cuda(float *y, float *save_mean, float *save_invstd,
                                             float *run_mean, float *run_var, const float *x,
                                             const float *gamma, const float *beta,
                                             int N, int C, int HW, float momentum, float eps, int n_updates) {
    if (N <= 0 || C <= 0 || HW <= 0) return;
    LAUNCH(batchnorm_train_kernel<BN_ONLY>, C, bn_threads(), 0, y, save_mean, save_invstd, run_mean, run_var, x,
           (const float *)NULL, gamma, beta, N, C, HW, momentum, eps, n_updates);
}

extern "C" void batchnorm_forward_eval_cuda(float *y, const float *x, const float *gamma, const float *beta,
                                            const float *run_mean, const float *run_var,
                                            int N, int C, int HW, float eps) {
    size_t count = (size_t)N * C * HW;
    if (N <= 0 || C <= 0 || HW <= 0) return;
    LAUNCH(batchnorm_eval_kernel<BN_ONLY>, ceil_div_sz(count, BN_EVAL_THREADS), BN_EVAL_THREADS, 0, y, x,
           (const float *)NULL, gamma, beta, run_mean, run_var, N, C, HW, eps);
}

extern "C" void batchnorm_backward_cuda(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                                        const float *save_mean, const float *save_invstd, const float *gamma,
                                        int N, int C, int HW) {
    if (N <= 0 || C <= 0 || HW <= 0) return;
    LAUNCH(batchnorm_backward_kernel<false>, C, bn_threads(), 0, dx, dgamma, dbeta, dy, (const float *)NULL, x,
           save_mean, save_invstd, gamma, N, C, HW);
}

/* The fused ops (kernels/cuda_ops.h): 1 = done, 0 = declined (fusion off),
 * then the caller runs the separate ops. */
extern "C" {
int cuda_fused = -1;
int cuda_fused_on(void) {   /* (conv.cu's fused op asks too) */
    if (cuda_fused < 0) {
        const char *e = getenv("DKD_CUDA_FUSED");
        cuda_fused = (e && !strcmp(e, "0")) ? 0 : 1;
    }
    return cuda_fused;
}
}

extern "C" int batchnorm_relu_backward_cuda(float *dx, float *dgamma, float *dbeta, const float *dy, const float *relu_y,
                                            const float *x, const float *save_mean, const float *save_invstd,
                                            const float *gamma, int N, int C, int HW) {
    if (!cuda_fused_on()) return 0;
    if (N <= 0 || C <= 0 || HW <= 0) return 1;
    LAUNCH(batchnorm_backward_kernel<true>, C, bn_threads(), 0, dx, dgamma, dbeta, dy, relu_y, x, save_mean,
           save_invstd, gamma, N, C, HW);
    return 1;
}

extern "C" int batchnorm_eval_relu_cuda(float *y, const float *x, const float *res, const float *gamma,
                                        const float *beta, const float *run_mean, const float *run_var,
                                        int N, int C, int HW, float eps) {
    if (!cuda_fused_on()) return 0;
    size_t count = (size_t)N * C * HW;
    if (N <= 0 || C <= 0 || HW <= 0) return 1;
    if (res)
        LAUNCH(batchnorm_eval_kernel<BN_ADD_RELU>, ceil_div_sz(count, BN_EVAL_THREADS), BN_EVAL_THREADS, 0, y, x, res,
               gamma, beta, run_mean, run_var, N, C, HW, eps);
    else
        LAUNCH(batchnorm_eval_kernel<BN_RELU>, ceil_div_sz(count, BN_EVAL_THREADS), BN_EVAL_THREADS, 0, y, x,
               (const float *)NULL, gamma, beta, run_mean, run_var, N, C, HW, eps);
    return 1;
}

extern "C" int batchnorm_train_relu_cuda(float *y, float *save_mean, float *save_invstd, float *run_mean,
                                         float *run_var, const float *x, const float *res, const float *gamma,
                                         const float *beta, int N, int C, int HW, float momentum, float eps,
                                         int n_updates) {
    if (!cuda_fused_on()) return 0;
    if (N <= 0 || C <= 0 || HW <= 0) return 1;
    if (res)
        LAUNCH(batchnorm_train_kernel<BN_ADD_RELU>, C, bn_threads(), 0, y, save_mean, save_invstd, run_mean, run_var,
               x, res, gamma, beta, N, C, HW, momentum, eps, n_updates);
    else
        LAUNCH(batchnorm_train_kernel<BN_RELU>, C, bn_threads(), 0, y, save_mean, save_invstd, run_mean, run_var, x,
               (const float *)NULL, gamma, beta, N, C, HW, momentum, eps, n_updates);
    return 1;
}
