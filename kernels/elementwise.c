/* kernels/elementwise.c — residual add, channel concat / split, channel shuffle.
 * Layouts are NCHW; a channel is a contiguous HW block, so all of these move whole
 * HW blocks. Shuffle with G groups: out channel i*G+j = in channel j*(C/G)+i.
 * Backward: the same moves in reverse, accumulated into the input gradients. */
#include "dkd.h"

#include <math.h>
#include <string.h>

void add_forward_cpu(float *y, const float *a, const float *b, size_t n) {
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void add_backward_cpu(float *da, float *db, const float *dy, size_t n) {
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) { if (da) da[i] += dy[i]; if (db) db[i] += dy[i]; }
}

void concat_forward_cpu(float *y, const float *a, const float *b, int N, int Ca, int Cb, int HW) {
    for (int n = 0; n < N; n++) {
        memcpy(y + (size_t)n * (Ca + Cb) * HW, a + (size_t)n * Ca * HW, (size_t)Ca * HW * sizeof(float));
        memcpy(y + ((size_t)n * (Ca + Cb) + Ca) * HW, b + (size_t)n * Cb * HW, (size_t)Cb * HW * sizeof(float));
    }
}

void concat_backward_cpu(float *da, float *db, const float *dy, int N, int Ca, int Cb, int HW) {
    for (int n = 0; n < N; n++) {
        const float *d = dy + (size_t)n * (Ca + Cb) * HW;
        if (da) for (size_t i = 0; i < (size_t)Ca * HW; i++) da[(size_t)n * Ca * HW + i] += d[i];
        if (db) for (size_t i = 0; i < (size_t)Cb * HW; i++) db[(size_t)n * Cb * HW + i] += d[(size_t)Ca * HW + i];
    }
}

void split_forward_cpu(float *y, const float *x, int N, int C, int HW, int c0, int Cs) {
    for (int n = 0; n < N; n++) memcpy(y + (size_t)n * Cs * HW, x + ((size_t)n * C + c0) * HW, (size_t)Cs * HW * sizeof(float));
}

void split_backward_cpu(float *dx, const float *dy, int N, int C, int HW, int c0, int Cs) {
    if (!dx) return;
    for (int n = 0; n < N; n++) for (size_t i = 0; i < (size_t)Cs * HW; i++) dx[((size_t)n * C + c0) * HW + i] += dy[(size_t)n * Cs * HW + i];
}

void shuffle_forward_cpu(float *y, const float *x, int N, int C, int HW, int G) {
    int cg = C / G;
    for (int n = 0; n < N; n++) for (int i = 0; i < cg; i++) for (int j = 0; j < G; j++)
        memcpy(y + ((size_t)n * C + i * G + j) * HW, x + ((size_t)n * C + j * cg + i) * HW, (size_t)HW * sizeof(float));
}

void shuffle_backward_cpu(float *dx, const float *dy, int N, int C, int HW, int G) {
    if (!dx) return;
    int cg = C / G;
    for (int n = 0; n < N; n++) for (int i = 0; i < cg; i++) for (int j = 0; j < G; j++) {
        float *d = dx + ((size_t)n * C + j * cg + i) * HW; const float *s = dy + ((size_t)n * C + i * G + j) * HW;
        for (int k = 0; k < HW; k++) d[k] += s[k];
    }
}
