/* kernels/loss.cu — the three losses on the GPU, each a fused per-row kernel
 * that writes the row's loss terms and the gradient with respect to the
 * student logits (reference: kernels/loss.c; every formula below is derived
 * step by step in docs/dkd_loss.md).
 *
 * Inputs: z [B,NC] student logits, v [B,NC] teacher logits, y [B] labels
 * (int32 on the device), LossParams p (λ = p.ce_weight, T, α, β, w = p.warm).
 * Outputs: rows [B,3] per-row terms (the host sums them in row order with
 * loss_total), dz [B,NC] the gradient of the TOTAL batch loss (=, may be NULL
 * for CE in evaluation).
 *
 *   CE    rows = {CE_b, 0, 0}          CE_b = logsumexp(z) - z_y
 *         dz_j = (λ/B) (P_j - [j=y]),  P = softmax(z)
 *   KD    rows = {CE_b, KL(q||p)_b, 0} with p = softmax(z/T), q = softmax(v/T)
 *         dz_j = (λ/B)(P_j - [j=y]) + (kd_weight T/B)(p_j - q_j)
 *   DKD   rows = {CE_b, TCKD_b, NCKD_b}, the stable per-row form (docs/dkd_loss.md §7):
 *         L_n  = logsumexp_{j≠y}(z_j/T)  (student non-target log-mass, never 1-p_t)
 *         L    = logaddexp(s_y, L_n)   = max + log1p(exp(-|s_y - L_n|))
 *         log p_t = s_y - L,  log p_nt = L_n - L,  p̂_j = exp(s_j - L_n)
 *         (the same with u = v/T for the teacher: q_t, q_nt, q̂_j)
 *         TCKD = q_t (log q_t - log p_t) + q_nt (log q_nt - log p_nt)   (0 log 0 = 0)
 *         NCKD = sum_{j≠y} q̂_j ((u_j - L_n^T) - (s_j - L_n))
 *         dz_y = (λ/B)(P_y - 1) + (w T α/B)(p_t - q_t)
 *         dz_j = (λ/B) P_j + (w T/B)(β(p̂_j - q̂_j) - α(p_t - q_t) p̂_j)   (j ≠ y)
 *
 * How work maps to blocks and threads: ONE WARP PER ROW. A row of NC = 100
 * classes is 100 floats: lane l handles classes l, l+32, l+64, l+96, so a
 * warp reads the row in four coalesced 128-byte loads. Every max and sum
 * over the row is a warp reduction: each lane folds its classes in order,
 * then a butterfly of __shfl_xor_sync (offsets 16, 8, 4, 2, 1) leaves the
 * total in every lane with the same bits (a+b == b+a exactly), so all lanes
 * then use identical row statistics. No shared memory, no __syncthreads: the
 * warps of a block are independent, and a warp whose row is past B returns
 * as a whole before any shuffle. The fixed butterfly makes results
 * bit-reproducible and independent of the block size.
 * A label outside [0, NC) makes the row's terms NaN (the loss shows it) and
 * its gradient 0, as in loss.c; nothing is read out of bounds.
 * Rows per block = loss_cuda_threads / 32 (a knob, default 128 threads = 4
 * rows; tests run several). Values are re-read from global memory (L1) on
 * each pass instead of being kept in registers, so any NC works.
 *
 * Precision: everything here is FLOAT, while loss.c (the reference) computes
 * in double. The log-sum-exp form keeps every term bounded, so float loses
 * nothing that matters: against the double reference the row terms agree to
 * about 1e-6 relative, TCKD (a small difference of logs) to about 1e-4, and
 * the gradient to 1e-7 absolute + 1e-4 relative (tests/emu_ops.cpp holds
 * them to that).
 * The gradient's scale factors a = λ/B and k = (KD weight)·T/B come from
 * loss_scales (kernels/loss.h, shared with loss.c), computed on the host;
 * for DKD with p.warm_at set, the kernel computes k from the warm-up factor
 * in device memory instead (the same double expression), so a step captured
 * as a CUDA graph follows the warm-up schedule.
 */
#include "kernels/cuda_common.h"   // defines: LAUNCH, ceil_div
#include "kernels/cuda_ops.h"      // defines: the _cuda declarations
#include "kernels/reduce.cuh"      // defines: warp_sum, warp_max (butterflies: the result in every lane)
#include "kernels/loss.h"          // defines: LOSS_TERMS, ROW_*, loss_scales (shared with loss.c)
#include <math.h>

/* Tuning knob: threads per block (a multiple of 32, <= 1024); one warp per row. */
extern "C" { int loss_cuda_threads = 128; }

/* log sum_{j != skip} exp(r_j / T) over one row, in every lane (skip = -1: all j).
 * Max-shifted: m + log sum exp(r_j/T - m), so nothing overflows. */
__device__ static float warp_logsumexp(const float *r, int NC, float T, int skip) {
    int lane = threadIdx.x % 32;
    float m = -INFINITY;
    for (int j = lane; j < NC; j += 32)
        if (j != skip) m = fmaxf(m, r[j] / T);
    m = warp_max(m);
    float s = 0.0f;
    for (int j = lane; j < NC; j += 32)
        if (j != skip) s += expf(r[j] / T - m);
    s = warp_sum(s);
    return m + logf(s);
}

/* Row b's three terms (kernels/loss.h), written once, by lane 0 of the warp. */
__device__ static inline void write_terms(float *rows, int b, float ce, float kd1, float kd2) {
    if (threadIdx.x % 32 != 0) return;
    rows[LOSS_TERMS * b + ROW_CE] = ce;
    rows[LOSS_TERMS * b + ROW_KD1] = kd1;
    rows[LOSS_TERMS * b + ROW_KD2] = kd2;
}

/* A label outside [0, NC): rows = NaN, dz row = 0; returns 1 (the warp skips the row). */
__device__ static int bad_label(float *dz, float *rows, int b, int t, int NC) {
    if (t >= 0 && t < NC) return 0;
    int lane = threadIdx.x % 32;
    write_terms(rows, b, NAN, NAN, NAN);
    if (dz)
        for (int j = lane; j < NC; j += 32) dz[(size_t)b * NC + j] = 0.0f;
    return 1;
}

/* This warp's row b (one warp per row) and its label t. Returns 0 when the
 * warp has nothing to do: no row (b >= B), or a bad label (the row is then
 * written by bad_label). The answer is the same in every lane, so the whole
 * warp leaves together, before any shuffle. */
__device__ static int warp_row(int B, int NC, const int *y, float *dz, float *rows, int *b, int *t) {
    *b = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (*b >= B) return 0;
    *t = y[*b];
    return !bad_label(dz, rows, *b, *t, NC);
}

/* ------------------------------------------------------------------ CE */
__global__ void ce_loss_kernel(float *__restrict__ dz, float *__restrict__ rows, const float *__restrict__ z,
                               const int *__restrict__ y, int B, int NC, float a) {
    int b, t, lane = threadIdx.x % 32;
    if (!warp_row(B, NC, y, dz, rows, &b, &t)) return;
    const float *zr = z + (size_t)b * NC;
    float Lz = warp_logsumexp(zr, NC, 1.0f, -1);
    write_terms(rows, b, Lz - zr[t], 0.0f, 0.0f);
    if (!dz) return;
    for (int j = lane; j < NC; j += 32) dz[(size_t)b * NC + j] = a * (expf(zr[j] - Lz) - (j == t ? 1.0f : 0.0f));
}

/* ------------------------------------------------------------------ KD */
__global__ void kd_loss_kernel(float *__restrict__ dz, float *__restrict__ rows, const float *__restrict__ z,
                               const float *__restrict__ v, const int *__restrict__ y, int B, int NC, float T,
                               float a, float k) {
    int b, t, lane = threadIdx.x % 32;
    if (!warp_row(B, NC, y, dz, rows, &b, &t)) return;
    const float *zr = z + (size_t)b * NC, *vr = v + (size_t)b * NC;
    float Lz = warp_logsumexp(zr, NC, 1.0f, -1);   /* CE, un-tempered */
    float Ls = warp_logsumexp(zr, NC, T, -1);      /* student, tempered */
    float Lu = warp_logsumexp(vr, NC, T, -1);      /* teacher, tempered */
    /* KL(q||p) = sum_j q_j (log q_j - log p_j) */
    float kl = 0.0f;
    for (int j = lane; j < NC; j += 32) {
        float lq = vr[j] / T - Lu, lp = zr[j] / T - Ls;
        kl += expf(lq) * (lq - lp);
    }
    kl = warp_sum(kl);
    write_terms(rows, b, Lz - zr[t], kl, 0.0f);
    if (!dz) return;
    for (int j = lane; j < NC; j += 32) {
        float P = expf(zr[j] - Lz), ps = expf(zr[j] / T - Ls), qs = expf(vr[j] / T - Lu);
        dz[(size_t)b * NC + j] = a * (P - (j == t ? 1.0f : 0.0f)) + k * (ps - qs);
    }
}

/* ----------------------------------------------------------------- DKD */
/* log(exp(a) + exp(b)) without overflow. */
__device__ static inline float logaddexp(float a, float b) {
    return fmaxf(a, b) + log1pf(expf(-fabsf(a - b)));
}

__global__ void dkd_loss_kernel(float *__restrict__ dz, float *__restrict__ rows, const float *__restrict__ z,
                                const float *__restrict__ v, const int *__restrict__ y, int B, int NC, LossParams p,
                                float a, float k) {
    int b, t, lane = threadIdx.x % 32;
    if (!warp_row(B, NC, y, dz, rows, &b, &t)) return;
    /* the warm-up factor from device memory (a captured step): k = w T / B, the same
     * double operations as loss_scales on the host, so the same float */
    if (p.warm_at) k = (float)((double)*p.warm_at * p.T / B);
    const float *zr = z + (size_t)b * NC, *vr = v + (size_t)b * NC;
    float T = p.T;
    /* CE on the raw logits */
    float Lz = warp_logsumexp(zr, NC, 1.0f, -1);
    /* student: non-target log-mass and the binary split (never forms 1 - p_t) */
    float sy = zr[t] / T;
    float Ln = warp_logsumexp(zr, NC, T, t);
    float Ls = logaddexp(sy, Ln);
    float log_pt = sy - Ls, log_pnt = Ln - Ls, pt = expf(log_pt);
    /* teacher: the same with u = v/T */
    float uy = vr[t] / T;
    float Lnt = warp_logsumexp(vr, NC, T, t);
    float Lu = logaddexp(uy, Lnt);
    float log_qt = uy - Lu, log_qnt = Lnt - Lu, qt = expf(log_qt), qnt = expf(log_qnt);
    /* TCKD = KL(b^T || b^S) over {target, non-target}; 0 log 0 = 0 */
    float tckd = (qt > 0.0f ? qt * (log_qt - log_pt) : 0.0f) + (qnt > 0.0f ? qnt * (log_qnt - log_pnt) : 0.0f);
    /* NCKD = KL(q̂ || p̂) over the non-target classes */
    float nckd = 0.0f;
    for (int j = lane; j < NC; j += 32) {
        if (j == t) continue;
        float lq = vr[j] / T - Lnt, lp = zr[j] / T - Ln;
        nckd += expf(lq) * (lq - lp);
    }
    nckd = warp_sum(nckd);
    write_terms(rows, b, Lz - zr[t], tckd, nckd);
    if (!dz) return;
    float dpt = pt - qt;
    for (int j = lane; j < NC; j += 32) {
        float P = expf(zr[j] - Lz), g;
        if (j == t) {
            g = a * (P - 1.0f) + k * p.alpha * dpt;
        } else {
            float ph = expf(zr[j] / T - Ln), qh = expf(vr[j] / T - Lnt);
            g = a * P + k * (p.beta * (ph - qh) - p.alpha * dpt * ph);
        }
        dz[(size_t)b * NC + j] = g;
    }
}

/* --------------------------------------------------------------- launchers */
static int loss_threads(void) {
    int t = loss_cuda_threads;
    return (t >= 32 && t <= 1024 && t % 32 == 0) ? t : 128;
}

extern "C" void ce_loss_cuda(float *dz, float *rows, const float *z, const int *y, int B, int NC, LossParams p) {
    if (B <= 0 || NC <= 0) return;
    int th = loss_threads();
    LossScales sc = loss_scales(LOSS_CE, p, B);
    LAUNCH(ce_loss_kernel, ceil_div(B, th / 32), th, 0, dz, rows, z, y, B, NC, (float)sc.ce);
}
extern "C" void kd_loss_cuda(float *dz, float *rows, const float *z, const float *v, const int *y, int B, int NC,
                             LossParams p) {
    if (B <= 0 || NC <= 0) return;
    int th = loss_threads();
    LossScales sc = loss_scales(LOSS_KD, p, B);
    LAUNCH(kd_loss_kernel, ceil_div(B, th / 32), th, 0, dz, rows, z, v, y, B, NC, p.T, (float)sc.ce, (float)sc.distill);
}
extern "C" void dkd_loss_cuda(float *dz, float *rows, const float *z, const float *v, const int *y, int B, int NC,
                              LossParams p) {
    if (B <= 0 || NC <= 0) return;
    int th = loss_threads();
    LossScales sc = loss_scales(LOSS_DKD, p, B);
    LAUNCH(dkd_loss_kernel, ceil_div(B, th / 32), th, 0, dz, rows, z, v, y, B, NC, p, (float)sc.ce, (float)sc.distill);
}
