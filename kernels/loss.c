/* kernels/loss.c — cross-entropy, KD and the decoupled KD loss with their gradients
 * w.r.t. the student logits (SPEC §3). DKD is computed per row in the stable form of
 * SPEC §3.6: log p_nt from a log-sum-exp over the non-target classes, never log(1-p_t). */
#include "dkd.h"

#include <math.h>
#include <string.h>

static float row_lse(const float *z, int NC, float scale, int skip) {
    float m = -INFINITY;
    for (int j = 0; j < NC; j++) if (j != skip && z[j] * scale > m) m = z[j] * scale;
    double s = 0;
    for (int j = 0; j < NC; j++) if (j != skip) s += exp((double)(z[j] * scale - m));
    return m + (float)log(s);
}

void ce_loss_cpu(float *dz, float *rows, const float *z, const int *y, int B, int NC, LossParams p) {
    for (int b = 0; b < B; b++) {
        const float *r = z + (size_t)b * NC;
        float L = row_lse(r, NC, 1.0f, -1);
        rows[b * 3] = L - r[y[b]]; rows[b * 3 + 1] = 0; rows[b * 3 + 2] = 0;
        if (dz) for (int j = 0; j < NC; j++) dz[(size_t)b * NC + j] = p.ce_weight / B * (expf(r[j] - L) - (j == y[b]));
    }
}

void kd_loss_cpu(float *dz, float *rows, const float *z, const float *v, const int *y, int B, int NC, LossParams p) {
    float iT = 1.0f / p.T;
    for (int b = 0; b < B; b++) {
        const float *r = z + (size_t)b * NC, *t = v + (size_t)b * NC;
        float L = row_lse(r, NC, 1.0f, -1), Ls = row_lse(r, NC, iT, -1), Lt = row_lse(t, NC, iT, -1);
        double kl = 0;
        for (int j = 0; j < NC; j++) { double lq = t[j] * iT - Lt, lp = r[j] * iT - Ls; kl += exp(lq) * (lq - lp); }
        rows[b * 3] = L - r[y[b]]; rows[b * 3 + 1] = (float)kl; rows[b * 3 + 2] = 0;
        if (dz) for (int j = 0; j < NC; j++)
            dz[(size_t)b * NC + j] = p.ce_weight / B * (expf(r[j] - L) - (j == y[b])) + p.kd_weight * p.T / B * (expf(r[j] * iT - Ls) - expf(t[j] * iT - Lt));
    }
}

void dkd_loss_cpu(float *dz, float *rows, const float *z, const float *v, const int *y, int B, int NC, LossParams p) {
    float iT = 1.0f / p.T;
    for (int b = 0; b < B; b++) {
        const float *r = z + (size_t)b * NC, *t = v + (size_t)b * NC;
        int yb = y[b];
        float L = row_lse(r, NC, 1.0f, -1);
        double sy = r[yb] * iT, uy = t[yb] * iT;
        double Ln = row_lse(r, NC, iT, yb), Lnt = row_lse(t, NC, iT, yb);
        double La = fmax(sy, Ln) + log1p(exp(-fabs(sy - Ln))), Lat = fmax(uy, Lnt) + log1p(exp(-fabs(uy - Lnt)));
        double lpt = sy - La, lpn = Ln - La, lqt = uy - Lat, lqn = Lnt - Lat;
        double pt = exp(lpt), qt = exp(lqt), qn = exp(lqn);
        double tckd = qt * (lqt - lpt) + qn * (lqn - lpn), nckd = 0;
        for (int j = 0; j < NC; j++) if (j != yb) { double lq = t[j] * iT - Lnt, lp = r[j] * iT - Ln; nckd += exp(lq) * (lq - lp); }
        rows[b * 3] = L - r[yb]; rows[b * 3 + 1] = (float)tckd; rows[b * 3 + 2] = (float)nckd;
        if (!dz) continue;
        double k = (double)p.warm * p.T / B;
        for (int j = 0; j < NC; j++) {
            double g = (double)p.ce_weight / B * (exp(r[j] - (double)L) - (j == yb));
            if (j == yb) g += k * p.alpha * (pt - qt);
            else { double ph = exp(r[j] * iT - Ln), qh = exp(t[j] * iT - Lnt); g += k * (p.beta * (ph - qh) - p.alpha * (pt - qt) * ph); }
            dz[(size_t)b * NC + j] = (float)g;
        }
    }
}

LossValue loss_total(int kind, const float *rows, int B, LossParams p) {
    LossValue v; memset(&v, 0, sizeof v);
    double ce = 0, a = 0, c = 0;
    for (int b = 0; b < B; b++) { ce += rows[b * 3]; a += rows[b * 3 + 1]; c += rows[b * 3 + 2]; }
    double T2 = (double)p.T * p.T;
    v.ce = ce / B;
    if (kind == LOSS_DKD) { v.tckd = T2 * a / B; v.nckd = T2 * c / B; v.kd = p.warm * (p.alpha * v.tckd + p.beta * v.nckd); }
    else if (kind == LOSS_KD) { v.tckd = T2 * a / B; v.kd = p.kd_weight * v.tckd; }
    v.total = p.ce_weight * v.ce + v.kd;
    return v;
}
