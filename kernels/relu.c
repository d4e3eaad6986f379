/* kernels/relu.c — ReLU: y = max(0, x); backward dx += dy where y > 0 (relu'(0) = 0, as PyTorch). */
#include "dkd.h"

#include <math.h>
#include <string.h>

void relu_forward_cpu(float *y, const float *x, size_t n) {
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
}

void relu_backward_cpu(float *dx, const float *dy, const float *y, size_t n) {
    if (!dx) return;
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) if (y[i] > 0) dx[i] += dy[i];
}
