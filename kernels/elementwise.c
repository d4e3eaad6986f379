/* kernels/elementwise.c — the tensor plumbing ops on the CPU: residual add, channel
 * concat, channel split (slice) and channel shuffle. Each only moves or adds values,
 * so each backward is the same move run in reverse, ADDED into the input gradients.
 *
 * Layout is NCHW: in image n, channel c is the contiguous block of HW floats at
 * offset (n·C + c)·HW, so these ops copy whole HW blocks.
 *
 *   add       y = a + b (n elements)                 da += dy, db += dy
 *   concat    a [N,Ca,HW], b [N,Cb,HW] -> y [N,Ca+Cb,HW]:
 *             y[n, c] = a[n, c] (c < Ca), b[n, c-Ca] (c >= Ca)
 *             da += dy[:, :Ca], db += dy[:, Ca:]
 *   split     y [N,Cs,HW] = x[:, c0 : c0+Cs] of x [N,C,HW]
 *             dx[:, c0 : c0+Cs] += dy  (other channels untouched)
 *   shuffle   G groups of C/G channels, "transposed": view the channels as a
 *             [G, C/G] matrix, transpose it to [C/G, G], flatten:
 *             out channel i·G + j = in channel j·(C/G) + i   (i < C/G, j < G)
 *             backward: dx[j·(C/G) + i] += dy[i·G + j]
 * Any gradient pointer may be NULL (that input needs no gradient).
 * Parallel over (image, channel) blocks; no two threads write the same element.
 */
#include "dkd.h"

#include <string.h>

void add_forward_cpu(float *y, const float *a, const float *b, size_t n) {
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void add_backward_cpu(float *da, float *db, const float *dy, size_t n) {
    if (da) {
        #pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) da[i] += dy[i];
    }
    if (db) {
        #pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) db[i] += dy[i];
    }
}

/* The same where an input's gradient is written (=, its flag set), not added to: the add
 * is that input's one reader (net.c's Node.dact_set; the buffer was not zeroed). */
void add_backward_assign_cpu(float *da, int da_set, float *db, int db_set, const float *dy, size_t n) {
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        if (da) da[i] = da_set ? dy[i] : da[i] + dy[i];
        if (db) db[i] = db_set ? dy[i] : db[i] + dy[i];
    }
}

/* dst[i] += src[i], i < n */
static void add_into(float *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

void concat_forward_cpu(float *y, const float *a, const float *b, int N, int Ca, int Cb, int HW) {
    int C = Ca + Cb;
    #pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        int n = nc / C, c = nc % C;
        const float *src = c < Ca ? a + ((size_t)n * Ca + c) * HW : b + ((size_t)n * Cb + (c - Ca)) * HW;
        memcpy(y + (size_t)nc * HW, src, (size_t)HW * sizeof(float));
    }
}

void concat_backward_cpu(float *da, float *db, const float *dy, int N, int Ca, int Cb, int HW) {
    int C = Ca + Cb;
    #pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        int n = nc / C, c = nc % C;
        float *dst = c < Ca ? (da ? da + ((size_t)n * Ca + c) * HW : NULL) : (db ? db + ((size_t)n * Cb + (c - Ca)) * HW : NULL);
        if (dst) add_into(dst, dy + (size_t)nc * HW, (size_t)HW);
    }
}

void split_forward_cpu(float *y, const float *x, int N, int C, int HW, int c0, int Cs) {
    #pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * Cs; nc++) {
        int n = nc / Cs, c = nc % Cs;
        memcpy(y + (size_t)nc * HW, x + ((size_t)n * C + c0 + c) * HW, (size_t)HW * sizeof(float));
    }
}

void split_backward_cpu(float *dx, const float *dy, int N, int C, int HW, int c0, int Cs) {
    if (!dx) return;
    #pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * Cs; nc++) {
        int n = nc / Cs, c = nc % Cs;
        add_into(dx + ((size_t)n * C + c0 + c) * HW, dy + (size_t)nc * HW, (size_t)HW);
    }
}

void shuffle_forward_cpu(float *y, const float *x, int N, int C, int HW, int G) {
    int cg = C / G;
    #pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        int n = nc / C, o = nc % C;           /* out channel o = i·G + j */
        int i = o / G, j = o % G;
        memcpy(y + (size_t)nc * HW, x + ((size_t)n * C + (size_t)j * cg + i) * HW, (size_t)HW * sizeof(float));
    }
}

void shuffle_backward_cpu(float *dx, const float *dy, int N, int C, int HW, int G) {
    if (!dx) return;
    int cg = C / G;
    #pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        int n = nc / C, o = nc % C;
        int i = o / G, j = o % G;
        add_into(dx + ((size_t)n * C + (size_t)j * cg + i) * HW, dy + (size_t)nc * HW, (size_t)HW);
    }
}
