/* kernels/sgd.c — one SGD step with momentum and weight decay, on the CPU.
 *
 *   p, g, buf: n floats (the whole flat parameter, gradient and momentum buffers)
 *   d   = g + wd·p                 weight decay folded into the gradient
 *   buf = momentum·buf + d         (dampening 0, no Nesterov)
 *   p   = p - lr·buf
 * buf starts at 0, so the first step gives buf = d exactly, as torch initialises it.
 *
 * Rounding exactly as torch 1.13 does in float32 (fixtures/README.md "SGD"): the first
 * and last lines are fused multiply-adds (one rounding), the middle one is a rounded
 * multiply followed by a rounded add:
 *   d = fmaf(wd, p, g);  t = buf·momentum;  buf = t + d;  p = fmaf(-lr, buf, p)
 * The project is compiled with -std=c11, which keeps gcc from fusing t + d into an FMA.
 * Each element is independent: parallel and deterministic. The learning rate is
 * read from memory (lr_at), as the CUDA kernel reads it from device memory. 
 */
#include "dkd.h"

#include <math.h>

void sgd_step_cpu(float *p, const float *g, float *buf, size_t n, const float *lr_at, float momentum, float wd) {
    const float lr = *lr_at;   /* (backend memory: on the CPU, host memory) */
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float d = fmaf(wd, p[i], g[i]);
        float t = buf[i] * momentum;
        buf[i] = t + d;
        p[i] = fmaf(-lr, buf[i], p[i]);
    }
}
