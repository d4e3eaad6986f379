/* kernels/linear.c — fully connected layer (the classifier of every model) on the CPU.
 *
 *   y[n,o] = b[o] + Σ_i x[n,i] · w[o,i]          x [N,IN]  w [OUT,IN]  b [OUT]  y [N,OUT]
 *   i.e. Y = X · W^T + b (row-major), one GEMM: M=N, N=OUT, K=IN, B transposed.
 *
 * Backward, from L's gradient dY [N,OUT]:
 *   dX = dY · W        dx[n,i] += Σ_o dy[n,o] · w[o,i]     (GEMM, beta = 1: accumulate)
 *   dW = dY^T · X      dw[o,i]  = Σ_n dy[n,o] · x[n,i]     (GEMM with A transposed)
 *   db[o] = Σ_n dy[n,o]
 * (y depends on w[o,i] only through y[n,o] = ... + w[o,i]·x[n,i], hence dw is the
 * sum over the batch of dy[n,o]·x[n,i]; likewise for x and b.)
 *
 * Determinism: sgemm_cpu computes each element in a fixed order whatever the thread
 * count; db is a sequential sum over n.
 */
#include "dkd.h"

void linear_forward_cpu(float *y, const float *x, const float *w, const float *b, int N, int IN, int OUT) {
    sgemm_cpu(0, 1, N, OUT, IN, 1.0f, x, IN, w, IN, 0.0f, y, OUT);
    if (b)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OUT; o++) y[(size_t)n * OUT + o] += b[o];
}

void linear_backward_cpu(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                         int N, int IN, int OUT) {
    if (dx) sgemm_cpu(0, 0, N, IN, OUT, 1.0f, dy, OUT, w, IN, 1.0f, dx, IN);
    sgemm_cpu(1, 0, OUT, IN, N, 1.0f, dy, OUT, x, IN, 0.0f, dw, IN);
    if (db)
        for (int o = 0; o < OUT; o++) {
            float s = 0.0f;
            for (int n = 0; n < N; n++) s += dy[(size_t)n * OUT + o];
            db[o] = s;
        }
}
