/* kernels/batchnorm.c — BatchNorm2d, PyTorch semantics (SPEC §2.8).
 * train: mean and biased variance over (N,H,W) per channel (accumulated in double),
 *   y = (x - mean) * invstd * gamma + beta, running stats updated with the unbiased variance.
 * backward: with xh = (x-mean)*invstd, dgamma = sum dy*xh, dbeta = sum dy,
 *   dx = gamma*invstd*(dy - mean(dy) - xh*mean(dy*xh)). */
#include "dkd.h"

#include <math.h>
#include <string.h>

void batchnorm_forward_train_cpu(float *y, float *save_mean, float *save_invstd, float *run_mean, float *run_var, const float *x,
                                 const float *gamma, const float *beta, int N, int C, int HW, float momentum, float eps, int n_updates) {
    double cnt = (double)N * HW;
    #pragma omp parallel for
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int n = 0; n < N; n++) { const float *p = x + ((size_t)n * C + c) * HW; for (int i = 0; i < HW; i++) s += p[i]; }
        double mean = s / cnt, v = 0;
        for (int n = 0; n < N; n++) { const float *p = x + ((size_t)n * C + c) * HW; for (int i = 0; i < HW; i++) { double d = p[i] - mean; v += d * d; } }
        double var = v / cnt;
        float invstd = (float)(1.0 / sqrt(var + eps));
        save_mean[c] = (float)mean; save_invstd[c] = invstd;
        float m = (float)mean;
        float a = gamma[c] * invstd;
        for (int n = 0; n < N; n++) { const float *p = x + ((size_t)n * C + c) * HW; float *q = y + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) q[i] = (p[i] - m) * a + beta[c]; }
        double unb = cnt > 1 ? v / (cnt - 1) : var;
        for (int u = 0; u < n_updates; u++) {
            run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * (float)mean;
            run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (float)unb;
        }
    }
}

void batchnorm_forward_eval_cpu(float *y, const float *x, const float *gamma, const float *beta, const float *run_mean,
                                const float *run_var, int N, int C, int HW, float eps) {
    #pragma omp parallel for
    for (int c = 0; c < C; c++) {
        float invstd = 1.0f / sqrtf(run_var[c] + eps), a = gamma[c] * invstd, m = run_mean[c];
        for (int n = 0; n < N; n++) { const float *p = x + ((size_t)n * C + c) * HW; float *q = y + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) q[i] = (p[i] - m) * a + beta[c]; }
    }
}

void batchnorm_backward_cpu(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *save_mean,
                            const float *save_invstd, const float *gamma, int N, int C, int HW) {
    double cnt = (double)N * HW;
    #pragma omp parallel for
    for (int c = 0; c < C; c++) {
        double sdy = 0, sdyx = 0; float m = save_mean[c], is = save_invstd[c];
        for (int n = 0; n < N; n++) { const float *p = x + ((size_t)n * C + c) * HW, *g = dy + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) { sdy += g[i]; sdyx += (double)g[i] * (p[i] - m) * is; } }
        dgamma[c] = (float)sdyx; dbeta[c] = (float)sdy;
        if (!dx) continue;
        float k1 = (float)(sdy / cnt), k2 = (float)(sdyx / cnt), a = gamma[c] * is;
        for (int n = 0; n < N; n++) { const float *p = x + ((size_t)n * C + c) * HW, *g = dy + ((size_t)n * C + c) * HW; float *d = dx + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) { float xh = (p[i] - m) * is; d[i] += a * (g[i] - k1 - xh * k2); } }
    }
}
