/* kernels/pool.c — max pooling (K×K, stride S, no padding; ties to the first element
 * in row-major window order) and average pooling with count_include_pad (divide by K*K).
 * Backward: max routes dy to the argmax (recomputed from x); avg spreads dy/(K*K). */
#include "dkd.h"

#include <math.h>
#include <string.h>

void maxpool_forward_cpu(float *y, const float *x, int N, int C, int H, int W, int K, int S) {
    int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
    #pragma omp parallel for
    for (int nc = 0; nc < N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W; float *yp = y + (size_t)nc * OH * OW;
        for (int oh = 0; oh < OH; oh++) for (int ow = 0; ow < OW; ow++) {
            float m = xp[oh * S * W + ow * S];
            for (int kh = 0; kh < K; kh++) for (int kw = 0; kw < K; kw++) { float v = xp[(oh * S + kh) * W + ow * S + kw]; if (v > m) m = v; }
            yp[oh * OW + ow] = m;
        }
    }
}

void maxpool_backward_cpu(float *dx, const float *dy, const float *x, int N, int C, int H, int W, int K, int S) {
    if (!dx) return;
    int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
    #pragma omp parallel for
    for (int nc = 0; nc < N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W; float *dp = dx + (size_t)nc * H * W; const float *g = dy + (size_t)nc * OH * OW;
        for (int oh = 0; oh < OH; oh++) for (int ow = 0; ow < OW; ow++) {
            int best = oh * S * W + ow * S; float m = xp[best];
            for (int kh = 0; kh < K; kh++) for (int kw = 0; kw < K; kw++) { int i = (oh * S + kh) * W + ow * S + kw; if (xp[i] > m) { m = xp[i]; best = i; } }
            dp[best] += g[oh * OW + ow];
        }
    }
}

void avgpool_forward_cpu(float *y, const float *x, int N, int C, int H, int W, int K, int S, int P) {
    int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
    float inv = 1.0f / (float)(K * K);
    #pragma omp parallel for
    for (int nc = 0; nc < N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W; float *yp = y + (size_t)nc * OH * OW;
        for (int oh = 0; oh < OH; oh++) for (int ow = 0; ow < OW; ow++) {
            float s = 0;
            for (int kh = 0; kh < K; kh++) { int ih = oh * S - P + kh; if (ih < 0 || ih >= H) continue;
                for (int kw = 0; kw < K; kw++) { int iw = ow * S - P + kw; if (iw < 0 || iw >= W) continue; s += xp[ih * W + iw]; } }
            yp[oh * OW + ow] = s / (float)(K * K);
            (void)inv;
        }
    }
}

void avgpool_backward_cpu(float *dx, const float *dy, int N, int C, int H, int W, int K, int S, int P) {
    if (!dx) return;
    int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
    #pragma omp parallel for
    for (int nc = 0; nc < N * C; nc++) {
        float *dp = dx + (size_t)nc * H * W; const float *g = dy + (size_t)nc * OH * OW;
        for (int oh = 0; oh < OH; oh++) for (int ow = 0; ow < OW; ow++) {
            float v = g[oh * OW + ow] / (float)(K * K);
            for (int kh = 0; kh < K; kh++) { int ih = oh * S - P + kh; if (ih < 0 || ih >= H) continue;
                for (int kw = 0; kw < K; kw++) { int iw = ow * S - P + kw; if (iw < 0 || iw >= W) continue; dp[ih * W + iw] += v; } }
        }
    }
}
