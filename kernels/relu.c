/* kernels/relu.c — rectified linear unit on the CPU.
 *
 *   y = max(0, x)                                   x, y: n floats (any shape)
 *   backward: dx += dy unless y <= 0                 (relu'(0) = 0, as in PyTorch)
 *
 * NaN goes through, as in PyTorch: relu(NaN) = NaN, so a diverged network shows
 * NaN logits instead of quietly turning them into zeros. That is why the forward
 * tests "x < 0" and the backward "y <= 0", never "x > 0": every comparison with
 * NaN is false, so NaN takes the branch that keeps it (torch's threshold_backward
 * likewise lets the gradient through where the output is NaN).
 *
 * The mask reads the OUTPUT y (y > 0 exactly where x > 0), so the backward does not
 * need x, and an in-place ReLU (y == x) would work too.
 */
#include "dkd.h"

void relu_forward_cpu(float *y, const float *x, size_t n) {
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = x[i] <= 0.0f ? 0.0f : x[i];   /* -0 -> +0, NaN -> NaN */
}

void relu_backward_cpu(float *dx, const float *dy, const float *y, size_t n) {
    if (!dx) return;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)   /* written as a select, not an if, so it vectorises */
        dx[i] += y[i] <= 0.0f ? 0.0f : dy[i];
}

/* The same with dx written (=), not added to: the ReLU is its input's one reader (net.c's
 * Node.dact_set; the buffer was not zeroed). */
void relu_backward_assign_cpu(float *dx, const float *dy, const float *y, size_t n) {
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dx[i] = y[i] <= 0.0f ? 0.0f : dy[i];
}
