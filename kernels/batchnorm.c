/* kernels/batchnorm.c — BatchNorm2d on the CPU, with PyTorch's semantics (docs/batchnorm.md).
 *
 *   x, y [N,C,HW]   gamma, beta, running mean/var, save_mean, save_invstd [C]
 *   per channel c, over its m = N·HW values:
 *     train:  mean = (1/m) Σ x          var = (1/m) Σ (x - mean)²      (biased)
 *             invstd = 1/sqrt(var + eps)
 *             y = (x - mean)·invstd·gamma + beta
 *             running_mean = (1-mom)·running_mean + mom·mean
 *             running_var  = (1-mom)·running_var  + mom·var·m/(m-1)    (UNbiased)
 *             (n_updates times: WRN applies three of its BNs twice per forward)
 *     eval:   the same y with running_mean / running_var in place of mean / var.
 *   y is computed as PyTorch does it: y = x·a + b with a = invstd·gamma, b = beta - mean·a
 *   (one fused multiply-add per element where the hardware has FMA, see affine_channel).
 *
 * Backward (train mode). With xh = (x - mean)·invstd (the normalised input) and
 * dy = dL/dy:
 *     dbeta  = Σ dy                    dgamma = Σ dy·xh
 *     dx     = gamma·invstd · ( dy - (1/m)Σ dy - xh·(1/m)Σ dy·xh )
 * Derivation: y = gamma·xh + beta, and xh depends on x directly and through mean and
 * var: dxh/dx_j = invstd·(δ_ij - 1/m - xh_i·xh_j/m). Summing dy_i·gamma·dxh_i/dx_j
 * over i gives the line above: the gradient of a normalised vector is the incoming
 * gradient with its mean and its component along xh removed.
 * Computed as PyTorch does: k = (Σ dy·(x-mean))·invstd²/m, dx = (dy - Σdy/m - (x-mean)·k)·invstd·gamma.
 *
 * Sums are accumulated in double (as PyTorch's CPU kernel does) in a fixed order:
 * 8 interleaved partial sums per channel (element i of a plane's whole blocks of 8 goes
 * to sum i mod 8; the last HW mod 8 elements of each plane to a ninth, added to the
 * first at the end), added at the end. That order does not depend on the thread count, lets the
 * compiler vectorise, and keeps every channel in one thread. Statistics come from one
 * pass over x: Σ(x-s) and Σ(x-s)² with the shift s = the channel's first value, so that
 * E[(x-s)²] - E[x-s]² does not cancel even when |mean| >> std (and it is in double).
 */
#include "dkd.h"

#include <math.h>
#include <string.h>

enum { LANES = 8 };

/* Over channel c of every image: *s1 = Σ u, *s2 = Σ u·v with u = a - a_shift and v = a - a_shift
 * (moments, g == NULL) or u = g, v = a - a_shift (gradient sums). The 8 lanes stay in local
 * arrays for the whole channel (a struct reached through a pointer kept gcc from using
 * vector registers: the sums ran one element at a time), and the omp simd pragma asks for
 * one vector of 8 doubles per lane set. */
/* Over channel c of every image: *s1 = Σ u, *s2 = Σ u·v with v = a - a_shift and
 * u = v (mode 0: the moments), u = g (mode 1: the gradient sums) or u = g only where
 * relu > 0, else 0 (mode 2: the gradient through a ReLU whose output is relu, with
 * kernels/relu.c's rule). The 8 lanes are one vector of 8 doubles (GCC's vector
 * extension: plain C on any target, one AVX-512 register or two AVX ones here): the
 * same sums as 8 scalar lanes, but gcc vectorised the scalar-lane form only in some of
 * the three modes, and the others ran one element at a time. */
/* (baseline x86-64 builds: gcc warns a 32-byte vector return changes the ABI; harmless, load8 is static) */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef double lanes8 __attribute__((vector_size(LANES * sizeof(double))));
typedef float floats8 __attribute__((vector_size(LANES * sizeof(float))));
typedef int ints8 __attribute__((vector_size(LANES * sizeof(int))));
static inline floats8 load8(const float *p) { floats8 v; memcpy(&v, p, sizeof v); return v; }
static inline void sums_mode(int mode, const float *g, const float *relu, const float *a, int N, int C, int HW, int c,
                             double a_shift, double *s1, double *s2) {
    lanes8 l1 = {0}, l2 = {0};
    double t1 = 0.0, t2 = 0.0;   /* (the elements after the last whole 8, lane 0) */
    for (int n = 0; n < N; n++) {
        size_t o = ((size_t)n * C + c) * HW;
        const float *ap = a + o, *gp = mode ? g + o : ap, *rp = mode == 2 ? relu + o : ap;
        int i = 0;
        for (; i + LANES <= HW; i += LANES) {
            lanes8 v = __builtin_convertvector(load8(ap + i), lanes8) - a_shift, u = v;
            if (mode) {
                floats8 gv = load8(gp + i);
                if (mode == 2) gv = (floats8)((ints8)gv & ~(load8(rp + i) <= 0.0f));   /* 0 where relu <= 0 */
                u = __builtin_convertvector(gv, lanes8);
            }
            l1 += u;
            l2 += u * v;
        }
        for (; i < HW; i++) {
            double v = (double)ap[i] - a_shift, u = mode == 0 ? v : (double)(mode == 2 && rp[i] <= 0.0f ? 0.0f : gp[i]);
            t1 += u;
            t2 += u * v;
        }
    }
    l1[0] += t1; l2[0] += t2;
    *s1 = *s2 = 0.0;
    for (int l = 0; l < LANES; l++) { *s1 += l1[l]; *s2 += l2[l]; }
}
static void channel_sums(const float *g, const float *relu, const float *a, int N, int C, int HW, int c,
                         double a_shift, double *s1, double *s2) {
    if (!g)         sums_mode(0, NULL, NULL, a, N, C, HW, c, a_shift, s1, s2);
    else if (!relu) sums_mode(1, g, NULL, a, N, C, HW, c, a_shift, s1, s2);
    else            sums_mode(2, g, relu, a, N, C, HW, c, a_shift, s1, s2);
}

/* y = x·a + b over channel c of every image, with one rounding where the hardware has
 * FMA: PyTorch's vectorised CPU kernel compiles to a fused multiply-add there, and
 * matching it keeps near-zero BN outputs on the same side of the following ReLU. */
#ifdef FP_FAST_FMAF
#define AFFINE(x, a, b) fmaf((x), (a), (b))
#else
#define AFFINE(x, a, b) ((x) * (a) + (b))
#endif
/* (relu: then y = relu(y) in the same pass, NaN kept as in kernels/relu.c) */
static void affine_channel(float *y, const float *x, int N, int C, int HW, int c, float a, float b, int relu) {
    for (int n = 0; n < N; n++) {
        const float *xp = x + ((size_t)n * C + c) * HW;
        float *yp = y + ((size_t)n * C + c) * HW;
        if (relu) {
            for (int i = 0; i < HW; i++) { float v = AFFINE(xp[i], a, b); yp[i] = v <= 0.0f ? 0.0f : v; }
        } else {
            for (int i = 0; i < HW; i++) yp[i] = AFFINE(xp[i], a, b);
        }
    }
}

static void bn_train(float *y, float *save_mean, float *save_invstd, float *run_mean, float *run_var, const float *x,
                     const float *gamma, const float *beta, int N, int C, int HW, float momentum, float eps,
                     int n_updates, int relu) {
    double m = (double)N * HW;
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double shift = m > 0 ? x[(size_t)c * HW] : 0.0, d1, d2;
        channel_sums(NULL, NULL, x, N, C, HW, c, shift, &d1, &d2);   /* Σ (x - shift), Σ (x - shift)² */
        d1 /= m; d2 /= m;
        double mean = shift + d1;
        double var = d2 - d1 * d1;                     /* biased: divide by m */
        if (var < 0.0) var = 0.0;
        float invstd = (float)(1.0 / sqrt(var + (double)eps));
        save_mean[c] = (float)mean;
        save_invstd[c] = invstd;
        float a = invstd * gamma[c];
        float b = beta[c] - save_mean[c] * a;
        affine_channel(y, x, N, C, HW, c, a, b, relu);
        double unbiased = m > 1 ? var * m / (m - 1) : var;
        for (int u = 0; u < n_updates; u++) {
            run_mean[c] = (float)((double)momentum * mean + (1.0 - (double)momentum) * run_mean[c]);
            run_var[c] = (float)((double)momentum * unbiased + (1.0 - (double)momentum) * run_var[c]);
        }
    }
}

void batchnorm_forward_train_cpu(float *y, float *save_mean, float *save_invstd,
                                 float *run_mean, float *run_var, const float *x,
                                 const float *gamma, const float *beta,
                                 int N, int C, int HW, float momentum, float eps, int n_updates) {
    bn_train(y, save_mean, save_invstd, run_mean, run_var, x, gamma, beta, N, C, HW, momentum, eps, n_updates, 0);
}

void batchnorm_relu_forward_train_cpu(float *y, float *save_mean, float *save_invstd, float *run_mean, float *run_var,
                                      const float *x, const float *gamma, const float *beta, int N, int C, int HW,
                                      float momentum, float eps, int n_updates) {
    bn_train(y, save_mean, save_invstd, run_mean, run_var, x, gamma, beta, N, C, HW, momentum, eps, n_updates, 1);
}

/* Eval mode needs no statistics, so the planes are visited in memory order (image by
 * image), each thread a contiguous range, with every channel's a and b computed once
 * beforehand: on small maps (MobileNetV2's 4x4 and 2x2) a walk channel by channel
 * jumped between images every few elements. Same a, b and the same y per element. */
enum { BN_EVAL_MAX_C = 4096 };
/* y = BN_eval(x), then y = relu(y) when relu is set (in the same pass over each plane;
 * NaN kept, as kernels/relu.c). */
static void bn_eval(float *y, const float *x, const float *gamma, const float *beta, const float *run_mean,
                    const float *run_var, int N, int C, int HW, float eps, int relu) {
    if (C > BN_EVAL_MAX_C) {   /* (no model has that many channels) */
        #pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            float invstd = 1.0f / sqrtf(run_var[c] + eps);
            float a = invstd * gamma[c];
            affine_channel(y, x, N, C, HW, c, a, beta[c] - run_mean[c] * a, relu);
        }
        return;
    }
    float a[BN_EVAL_MAX_C], b[BN_EVAL_MAX_C];
    for (int c = 0; c < C; c++) {
        float invstd = 1.0f / sqrtf(run_var[c] + eps);
        a[c] = invstd * gamma[c];
        b[c] = beta[c] - run_mean[c] * a[c];
    }
    #pragma omp parallel for schedule(static)
    for (long nc = 0; nc < (long)N * C; nc++) {
        int c = (int)(nc % C);
        const float *xp = x + (size_t)nc * HW;
        float *yp = y + (size_t)nc * HW, ac = a[c], bc = b[c];
        if (relu) {
            for (int i = 0; i < HW; i++) { float v = AFFINE(xp[i], ac, bc); yp[i] = v <= 0.0f ? 0.0f : v; }
        } else {
            for (int i = 0; i < HW; i++) yp[i] = AFFINE(xp[i], ac, bc);
        }
    }
}

void batchnorm_forward_eval_cpu(float *y, const float *x, const float *gamma, const float *beta,
                                const float *run_mean, const float *run_var,
                                int N, int C, int HW, float eps) {
    bn_eval(y, x, gamma, beta, run_mean, run_var, N, C, HW, eps, 0);
}

void batchnorm_relu_forward_eval_cpu(float *y, const float *x, const float *gamma, const float *beta,
                                     const float *run_mean, const float *run_var,
                                     int N, int C, int HW, float eps) {
    bn_eval(y, x, gamma, beta, run_mean, run_var, N, C, HW, eps, 1);
}

/* The backward of BN, or of relu(BN(x)) when relu (the ReLU's output) is given: then dy
 * is the ReLU's output gradient and is masked on the fly, in both passes, so the BN's
 * own output gradient is never stored. dx is added to, or with assign written: where the
 * BN is the one reader of x, net.c skips zeroing dx before the backward and this pass
 * skips reading it (two passes over the tensor fewer). */
static void bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *relu, const float *x,
                        const float *save_mean, const float *save_invstd, const float *gamma, int N, int C, int HW,
                        int assign) {
    double m = (double)N * HW;
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float mean = save_mean[c], invstd = save_invstd[c];
        double sum_dy, dotp;
        channel_sums(dy, relu, x, N, C, HW, c, mean, &sum_dy, &dotp);   /* Σ dy, Σ dy·(x - mean) */
        dgamma[c] = (float)(dotp * invstd);
        dbeta[c] = (float)sum_dy;
        if (!dx) continue;
        float k = (float)dotp * invstd * invstd / (float)m;   /* in float, as PyTorch */
        float grad_mean = (float)(sum_dy / m), gc = gamma[c];
        for (int n = 0; n < N; n++) {
            size_t o = ((size_t)n * C + c) * HW;
            const float *xp = x + o, *g = dy + o;
            float *d = dx + o;
            if (relu) {
                const float *r = relu + o;
                for (int i = 0; i < HW; i++) {
                    float gi = r[i] <= 0.0f ? 0.0f : g[i];
                    float v = (gi - grad_mean - (xp[i] - mean) * k) * invstd * gc;
                    d[i] = assign ? v : d[i] + v;
                }
            } else {
                for (int i = 0; i < HW; i++) {
                    float v = (g[i] - grad_mean - (xp[i] - mean) * k) * invstd * gc;
                    d[i] = assign ? v : d[i] + v;
                }
            }
        }
    }
}

void batchnorm_backward_cpu(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                            const float *save_mean, const float *save_invstd, const float *gamma,
                            int N, int C, int HW) {
    bn_backward(dx, dgamma, dbeta, dy, NULL, x, save_mean, save_invstd, gamma, N, C, HW, 0);
}

int batchnorm_relu_backward_cpu(float *dx, float *dgamma, float *dbeta, const float *dy, const float *relu_y,
                                const float *x, const float *save_mean, const float *save_invstd, const float *gamma,
                                int N, int C, int HW) {
    bn_backward(dx, dgamma, dbeta, dy, relu_y, x, save_mean, save_invstd, gamma, N, C, HW, 0);
    return 1;
}

void batchnorm_backward_assign_cpu(float *dx, float *dgamma, float *dbeta, const float *dy, const float *relu_y,
                                   const float *x, const float *save_mean, const float *save_invstd,
                                   const float *gamma, int N, int C, int HW) {
    bn_backward(dx, dgamma, dbeta, dy, relu_y, x, save_mean, save_invstd, gamma, N, C, HW, 1);
}
