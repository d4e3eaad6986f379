/* kernels/pool.c — max pooling and average pooling on the CPU.
 *
 *   x [N,C,H,W] -> y [N,C,OH,OW]; every (n,c) plane is pooled on its own.
 *
 * Max pool, K x K window, stride S, no padding: OH = (H-K)/S+1.
 *   y[oh,ow] = max over the window x[oh·S+kh, ow·S+kw], kh,kw in [0,K)
 *   backward: dy goes to the position of the maximum (the argmax), which we recompute
 *   from x instead of storing it. Ties go to the first maximum in row-major window
 *   order (strict ">" while scanning), which is what PyTorch's CPU kernel does
 *   (a NaN in the window wins, also as in PyTorch).
 *   Windows overlap when S < K, so one x position may receive several dy: +=.
 *
 * Average pool, K x K, stride S, zero padding P, count_include_pad=True: OH = (H+2P-K)/S+1.
 *   y[oh,ow] = (1/(K·K)) Σ over the window of x (padding counts as 0 but still
 *   counts in the divisor K·K)
 *   backward: every in-image position of the window receives dy/(K·K).
 *   Global average pooling is K = H = W, S = K, P = 0.
 *
 * Parallel over planes: each dx element is written by one thread, in a fixed order.
 *
 * The 2x2 stride-2 max pool (all of VGG's) has its own loops: the same comparisons in
 * the same order, written as selects (m = v > m || v != v ? v : m) that the compiler
 * turns into vector blends, where the general loop's branches kept it scalar (VGG13 ->
 * VGG8 step, 2 threads: the pools took ~9% of the step). Its windows do not overlap, so
 * the backward adds dy to the argmax and 0 to the other three positions of each window.
 */
#include "dkd.h"

/* m, then v: the larger, or v if it is NaN (strict >: ties keep the first) */
static inline float max_nan(float m, float v) { return v > m || v != v ? v : m; }

static void maxpool2_forward_plane(float *restrict y, const float *restrict x, int W, int OH, int OW) {
    for (int oh = 0; oh < OH; oh++) {
        const float *restrict r0 = x + (size_t)2 * oh * W, *restrict r1 = r0 + W;
        float *restrict yr = y + (size_t)oh * OW;
        for (int ow = 0; ow < OW; ow++)
            yr[ow] = max_nan(max_nan(max_nan(r0[2 * ow], r0[2 * ow + 1]), r1[2 * ow]), r1[2 * ow + 1]);
    }
}

static void maxpool2_backward_plane(float *restrict dx, const float *restrict g, const float *restrict x, int W, int OH,
                                    int OW) {
    for (int oh = 0; oh < OH; oh++) {
        const float *restrict r0 = x + (size_t)2 * oh * W, *restrict r1 = r0 + W;
        float *restrict d0 = dx + (size_t)2 * oh * W, *restrict d1 = d0 + W;
        const float *restrict gr = g + (size_t)oh * OW;
        for (int ow = 0; ow < OW; ow++) {
            float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], e = r1[2 * ow + 1];
            /* the argmax in window order a, b, c, e: which of the selects took its value last */
            int tb = b > a || b != b;
            float m = tb ? b : a;
            int tc = c > m || c != c;
            m = tc ? c : m;
            int te = e > m || e != e;
            float v = gr[ow];
            d0[2 * ow] += !tb && !tc && !te ? v : 0.0f;
            d0[2 * ow + 1] += tb && !tc && !te ? v : 0.0f;
            d1[2 * ow] += tc && !te ? v : 0.0f;
            d1[2 * ow + 1] += te ? v : 0.0f;
        }
    }
}

void maxpool_forward_cpu(float *y, const float *x, int N, int C, int H, int W, int K, int S) {
    int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
    #pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W;
        float *yp = y + (size_t)nc * OH * OW;
        if (K == 2 && S == 2) { maxpool2_forward_plane(yp, xp, W, OH, OW); continue; }
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *win = xp + (size_t)oh * S * W + (size_t)ow * S;
                float m = win[0];
                for (int kh = 0; kh < K; kh++)
                    for (int kw = 0; kw < K; kw++) {
                        float v = win[kh * W + kw];
                        if (v > m || v != v) m = v;     /* v != v: NaN wins, as in PyTorch */
                    }
                yp[oh * OW + ow] = m;
            }
    }
}

void maxpool_backward_cpu(float *dx, const float *dy, const float *x, int N, int C, int H, int W, int K, int S) {
    if (!dx) return;
    int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
    #pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W, *g = dy + (size_t)nc * OH * OW;
        float *dp = dx + (size_t)nc * H * W;
        if (K == 2 && S == 2) { maxpool2_backward_plane(dp, g, xp, W, OH, OW); continue; }
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                size_t best = (size_t)oh * S * W + (size_t)ow * S;   /* window origin */
                float m = xp[best];
                for (int kh = 0; kh < K; kh++)
                    for (int kw = 0; kw < K; kw++) {
                        size_t i = (size_t)(oh * S + kh) * W + (size_t)(ow * S + kw);
                        if (xp[i] > m || xp[i] != xp[i]) { m = xp[i]; best = i; }
                    }
                dp[best] += g[oh * OW + ow];
            }
    }
}

void avgpool_forward_cpu(float *y, const float *x, int N, int C, int H, int W, int K, int S, int P) {
    int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
    float div = (float)(K * K);
    #pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W;
        float *yp = y + (size_t)nc * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float s = 0.0f;
                for (int kh = 0; kh < K; kh++) {
                    int ih = oh * S - P + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < K; kw++) {
                        int iw = ow * S - P + kw;
                        if (iw >= 0 && iw < W) s += xp[(size_t)ih * W + iw];
                    }
                }
                yp[oh * OW + ow] = s / div;
            }
    }
}

void avgpool_backward_cpu(float *dx, const float *dy, int N, int C, int H, int W, int K, int S, int P) {
    if (!dx) return;
    int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
    float div = (float)(K * K);
    #pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        float *dp = dx + (size_t)nc * H * W;
        const float *g = dy + (size_t)nc * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float v = g[oh * OW + ow] / div;
                for (int kh = 0; kh < K; kh++) {
                    int ih = oh * S - P + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < K; kw++) {
                        int iw = ow * S - P + kw;
                        if (iw >= 0 && iw < W) dp[(size_t)ih * W + iw] += v;
                    }
                }
            }
    }
}
