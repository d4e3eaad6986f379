/* kernels/linear.c — y[n,o] = sum_i x[n,i] w[o,i] + b[o].
 * Backward: dx[n,i] += sum_o dy[n,o] w[o,i]; dw[o,i] = sum_n dy[n,o] x[n,i]; db[o] = sum_n dy[n,o]. */
#include "dkd.h"

#include <math.h>
#include <string.h>

void linear_forward_cpu(float *y, const float *x, const float *w, const float *b, int N, int IN, int OUT) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) for (int o = 0; o < OUT; o++) {
        float s = 0; const float *xr = x + (size_t)n * IN, *wr = w + (size_t)o * IN;
        for (int i = 0; i < IN; i++) s += xr[i] * wr[i];
        y[(size_t)n * OUT + o] = s + (b ? b[o] : 0.0f);
    }
}

void linear_backward_cpu(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N, int IN, int OUT) {
    if (dx) {
        #pragma omp parallel for
        for (int n = 0; n < N; n++) for (int i = 0; i < IN; i++) {
            float s = 0; for (int o = 0; o < OUT; o++) s += dy[(size_t)n * OUT + o] * w[(size_t)o * IN + i];
            dx[(size_t)n * IN + i] += s;
        }
    }
    #pragma omp parallel for
    for (int o = 0; o < OUT; o++) {
        for (int i = 0; i < IN; i++) { float s = 0; for (int n = 0; n < N; n++) s += dy[(size_t)n * OUT + o] * x[(size_t)n * IN + i]; dw[(size_t)o * IN + i] = s; }
        if (db) { float s = 0; for (int n = 0; n < N; n++) s += dy[(size_t)n * OUT + o]; db[o] = s; }
    }
}
