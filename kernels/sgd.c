/* kernels/sgd.c — SGD with momentum and weight decay, in torch 1.13's float32 order:
 *   d = fmaf(wd, p, g); buf = round(buf*momentum) + d; p = fmaf(-lr, buf, p)
 * (build with -std=c11 so the compiler does not fuse buf*momentum + d into an fma). */
#include "dkd.h"

#include <math.h>
#include <string.h>

void sgd_step_cpu(float *p, const float *g, float *buf, size_t n, float lr, float momentum, float wd) {
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float d = fmaf(wd, p[i], g[i]);
        float t = buf[i] * momentum;
        buf[i] = t + d;
        p[i] = fmaf(-lr, buf[i], p[i]);
    }
}
