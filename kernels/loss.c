/* kernels/loss.c — cross-entropy, KD and decoupled KD (DKD) losses with their gradients
 * with respect to the student logits, on the CPU. The derivation of every formula
 * below, step by step: docs/dkd_loss.md.
 *
 *   z [B,NC] student logits, v [B,NC] teacher logits (a constant), y [B] labels
 *   dz [B,NC] = dL/dz of the TOTAL loss L (=, every element written)
 *   rows [B,3] per-row terms, summed by loss_total() in row order
 *
 * Per row (one image), with T the temperature:
 *   P = softmax(z)                        (CE uses un-tempered logits)
 *   p = softmax(z/T), q = softmax(v/T)    (tempered student / teacher)
 *   p_t = p_y, p_nt = Σ_{j≠y} p_j = 1 - p_t;  p̂_j = p_j / p_nt (j ≠ y): the distribution
 *   over the 99 non-target classes (= softmax of z/T with class y removed); same for q.
 *
 *   CE_b   = logsumexp(z) - z_y
 *   KL_b   = Σ_j q_j (log q_j - log p_j)                                        (KD)
 *   TCKD_b = q_t (log q_t - log p_t) + q_nt (log q_nt - log p_nt)   = KL(b^T‖b^S)
 *   NCKD_b = Σ_{j≠y} q̂_j (log q̂_j - log p̂_j)                       = KL(q̂‖p̂)
 *
 * Batch losses (assembled by loss_total; w = warm-up factor, λ = ce_weight):
 *   CE   L = (λ/B) Σ CE_b
 *   KD   L = (λ/B) Σ CE_b + kd_weight·(T²/B) Σ KL_b
 *   DKD  L = (λ/B) Σ CE_b + w·(T²/B) Σ (α·TCKD_b + β·NCKD_b)
 *
 * Gradients (docs/dkd_loss.md §4-6; derivatives with respect to z/T, times 1/T for the chain rule,
 * so T²·(1/T) leaves a factor T):
 *   dCE_b/dz_j    = P_j - [j=y]
 *   dKL_b/dz_j    = (p_j - q_j) / T
 *   dTCKD_b/dz_j  = (p_t - q_t)·([j=y] - [j≠y]·p̂_j) / T
 *                   (log p_t and log p_nt have derivatives [j=y] - p_j and [j≠y]·p̂_j - p_j;
 *                    q_t + q_nt = 1 and p_j = p_nt·p̂_j simplify the sum)
 *   dNCKD_b/dz_j  = [j≠y]·(p̂_j - q̂_j) / T   (exactly 0 at the target)
 * so for DKD
 *   g_y = (λ/B)(P_y - 1) + (w·T·α/B)(p_t - q_t)
 *   g_j = (λ/B)P_j + (w·T/B)(β(p̂_j - q̂_j) - α(p_t - q_t)p̂_j)            (j ≠ y)
 * Every row of g sums to 0 (each term is invariant to adding a constant to the row).
 *
 * Numerics (docs/dkd_loss.md §7): everything is in log space, in double. log p_nt is NOT
 * log(1 - p_t) (which has no correct digits once p_t is within 6e-8 of 1 in float)
 * but a log-sum-exp over the non-target classes:
 *   L_n = logsumexp_{j≠y}(s_j),  L = logaddexp(s_y, L_n),
 *   log p_t = s_y - L,  log p_nt = L_n - L,  log p̂_j = s_j - L_n.
 * The target class is skipped exactly (mdistiller subtracts 1000 instead, which
 * gives the same numbers). A probability that underflows to 0 multiplies a finite
 * log, so no 0·log 0 = NaN can appear, even for logits in the hundreds.
 * Rows are independent: the loop over rows is the only loop, in order.
 */
#include "dkd.h"
#include "loss.h"     // defines: LOSS_TERMS, ROW_*, loss_scales (shared with loss.cu)

#include <math.h>
#include <string.h>

/* log Σ_{j≠skip} exp(a_j) (skip = -1: all j), as max + log Σ exp(a_j - max). */
static double logsumexp(const double *a, int n, int skip) {
    double m = -INFINITY;
    for (int j = 0; j < n; j++)
        if (j != skip && a[j] > m) m = a[j];
    if (m == -INFINITY) return m;
    double s = 0.0;
    for (int j = 0; j < n; j++)
        if (j != skip) s += exp(a[j] - m);
    return m + log(s);
}

/* log(exp(a) + exp(b)) without overflow. */
static double logaddexp(double a, double b) {
    double m = a > b ? a : b;
    if (m == -INFINITY) return m;
    return m + log1p(exp(-fabs(a - b)));
}

/* One row's logits as doubles, scaled by 1/T: a[j] = r[j] / T. */
static void scaled_row(double *a, const float *r, int NC, double T) {
    for (int j = 0; j < NC; j++) a[j] = (double)r[j] / T;
}

/* A label outside [0, NC): the row's terms become NaN (so the loss shows it) and its
 * gradient 0; nothing is read out of bounds. */
static int bad_label(float *dz_row, float *row3, int label, int NC) {
    if (label >= 0 && label < NC) return 0;
    row3[0] = row3[1] = row3[2] = NAN;
    if (dz_row) memset(dz_row, 0, (size_t)NC * sizeof(float));
    return 1;
}

enum { MAX_NC = 4096 };   /* row buffers on the stack; the models have NC = 100 */

/* One row of a loss: the three scalings of its logits (a = z, s = z/T, u = v/T)
 * and where its outputs go. row_begin fills them for row b (s and u only when
 * the teacher's v is given) and returns 0 when the label is outside [0, NC):
 * the row is then already written (NaN terms, zero gradient) and is skipped. */
typedef struct {
    double *a, *s, *u;   /* [NC] buffers of the caller */
    float *g;            /* the row of dz, or NULL */
    float *out;          /* the row's LOSS_TERMS terms */
    int t;               /* the label */
} Row;

static int row_begin(Row *r, int b, float *dz, float *rows, const float *z, const float *v, const int *y, int NC,
                     double T) {
    const float *zr = z + (size_t)b * NC;
    r->g = dz ? dz + (size_t)b * NC : NULL;
    r->out = rows + (size_t)b * LOSS_TERMS;
    r->t = y[b];
    if (bad_label(r->g, r->out, r->t, NC)) return 0;
    scaled_row(r->a, zr, NC, 1.0);
    if (v) {
        scaled_row(r->s, zr, NC, T);
        scaled_row(r->u, v + (size_t)b * NC, NC, T);
    }
    return 1;
}

/* The three losses row by row. Each gets the row's buffers filled by row_begin
 * and writes the row's terms and, when r->g is given, its gradient. */
static void ce_row(const Row *r, int NC, LossScales sc) {
    const double *a = r->a;
    float *g = r->g, *row = r->out;
    int t = r->t;
    double L = logsumexp(a, NC, -1);
    row[ROW_CE] = (float)(L - a[t]);
    row[ROW_KD1] = row[ROW_KD2] = 0.0f;
    if (g)
        for (int j = 0; j < NC; j++)
            g[j] = (float)(sc.ce * (exp(a[j] - L) - (j == t)));
}

static void kd_row(const Row *r, int NC, LossScales sc) {
    const double *a = r->a, *s = r->s, *u = r->u;
    float *g = r->g, *row = r->out;
    int t = r->t;
    double L = logsumexp(a, NC, -1), Ls = logsumexp(s, NC, -1), Lu = logsumexp(u, NC, -1);
    double kl = 0.0;
    for (int j = 0; j < NC; j++) {
        double lq = u[j] - Lu, lp = s[j] - Ls;
        kl += exp(lq) * (lq - lp);
    }
    row[ROW_CE] = (float)(L - a[t]);
    row[ROW_KD1] = (float)kl;
    row[ROW_KD2] = 0.0f;
    if (g)
        for (int j = 0; j < NC; j++)
            g[j] = (float)(sc.ce * (exp(a[j] - L) - (j == t)) + sc.distill * (exp(s[j] - Ls) - exp(u[j] - Lu)));
}

static void dkd_row(const Row *r, int NC, LossScales sc, LossParams p) {
    const double *a = r->a, *s = r->s, *u = r->u;
    float *g = r->g, *row = r->out;
    int t = r->t;
    /* CE */
    double L = logsumexp(a, NC, -1);
    /* student: non-target log-mass, target / non-target log-probabilities */
    double Ln = logsumexp(s, NC, t), Ls = logaddexp(s[t], Ln);
    double lpt = s[t] - Ls, lpnt = Ln - Ls, pt = exp(lpt);
    /* teacher: the same */
    double Lnu = logsumexp(u, NC, t), Lu = logaddexp(u[t], Lnu);
    double lqt = u[t] - Lu, lqnt = Lnu - Lu, qt = exp(lqt), qnt = exp(lqnt);
    double tckd = qt * (lqt - lpt) + qnt * (lqnt - lpnt);
    double nckd = 0.0;
    for (int j = 0; j < NC; j++) {
        if (j == t) continue;
        double lqh = u[j] - Lnu, lph = s[j] - Ln;   /* log q̂_j, log p̂_j */
        nckd += exp(lqh) * (lqh - lph);
    }
    row[ROW_CE] = (float)(L - a[t]);
    row[ROW_KD1] = (float)tckd;
    row[ROW_KD2] = (float)nckd;
    if (g) {
        double dt = pt - qt;
        for (int j = 0; j < NC; j++) {
            double ce = exp(a[j] - L) - (j == t), kd;
            if (j == t) kd = p.alpha * dt;
            else {
                double ph = exp(s[j] - Ln), qh = exp(u[j] - Lnu);
                kd = p.beta * (ph - qh) - p.alpha * dt * ph;
            }
            g[j] = (float)(sc.ce * ce + sc.distill * kd);
        }
    }
}

/* The loop over rows, in order, shared by the three losses (who names the
 * caller in the error). v is NULL for CE. */
static void loss_rows(int kind, const char *who, float *dz, float *rows, const float *z, const float *v,
                      const int *y, int B, int NC, LossParams p) {
    double a[MAX_NC], s[MAX_NC], u[MAX_NC];
    if (p.warm_at) p.warm = *p.warm_at;   /* the factor in (host) memory, as loss.cu reads it on the device */
    if (NC > MAX_NC) dkd_die("%s: %d classes, at most %d supported", who, NC, MAX_NC);
    LossScales sc = loss_scales(kind, p, B);
    Row r = {a, s, u, NULL, NULL, 0};
    for (int b = 0; b < B; b++) {
        if (!row_begin(&r, b, dz, rows, z, v, y, NC, p.T)) continue;
        if (kind == LOSS_CE) ce_row(&r, NC, sc);
        else if (kind == LOSS_KD) kd_row(&r, NC, sc);
        else dkd_row(&r, NC, sc, p);
    }
}

void ce_loss_cpu(float *dz, float *rows, const float *z, const int *y, int B, int NC, LossParams p) {
    loss_rows(LOSS_CE, "ce_loss_cpu", dz, rows, z, NULL, y, B, NC, p);
}
void kd_loss_cpu(float *dz, float *rows, const float *z, const float *v, const int *y, int B, int NC, LossParams p) {
    loss_rows(LOSS_KD, "kd_loss_cpu", dz, rows, z, v, y, B, NC, p);
}
void dkd_loss_cpu(float *dz, float *rows, const float *z, const float *v, const int *y, int B, int NC, LossParams p) {
    loss_rows(LOSS_DKD, "dkd_loss_cpu", dz, rows, z, v, y, B, NC, p);
}

/* Sums the rows in row order, in double; see the batch losses at the top. */
LossValue loss_total(int kind, const float *rows, int B, LossParams p) {
    LossValue v;
    memset(&v, 0, sizeof v);
    if (B <= 0) return v;
    double ce = 0.0, r1 = 0.0, r2 = 0.0;
    for (int b = 0; b < B; b++) {
        const float *row = rows + (size_t)b * LOSS_TERMS;
        ce += row[ROW_CE];
        r1 += row[ROW_KD1];
        r2 += row[ROW_KD2];
    }
    double T2B = (double)p.T * p.T / B;
    v.ce = ce / B;
    if (kind == LOSS_DKD) {
        v.tckd = T2B * r1;
        v.nckd = T2B * r2;
        v.distill = (double)p.warm * ((double)p.alpha * v.tckd + (double)p.beta * v.nckd);
    } else if (kind == LOSS_KD) {
        v.kl = T2B * r1;
        v.distill = (double)p.kd_weight * v.kl;
    }
    v.total = (double)p.ce_weight * v.ce + v.distill;
    return v;
}
