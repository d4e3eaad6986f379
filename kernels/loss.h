/* kernels/loss.h — what the two implementations of the losses share: loss.c
 * (the reference, in double) and loss.cu (one warp per row, in float).
 *
 * Per row b the kernels write three terms, rows[b*LOSS_TERMS + ...]:
 *   ROW_CE   CE_b                          (every loss)
 *   ROW_KD1  KD: KL(q||p)_b;  DKD: TCKD_b  (0 for CE)
 *   ROW_KD2  DKD: NCKD_b                   (0 for CE and KD)
 * (loss_total sums each column into its own LossValue field: ROW_KD1 into kl
 * for KD and into tckd for DKD, ROW_KD2 into nckd.)
 * and the gradient of the batch loss, whose two scale factors (λ/B in front of
 * the cross-entropy part, and T/B times the distillation weight in front of
 * the distillation part: docs/dkd_loss.md §5-6) come from loss_scales, once
 * per batch, on the host. Private to the two loss files and loss_total.
 */
#ifndef DKD_LOSS_H
#define DKD_LOSS_H
#include "dkd.h"

enum { LOSS_TERMS = 3, ROW_CE = 0, ROW_KD1 = 1, ROW_KD2 = 2 };

typedef struct {
    double ce;       /* λ/B: dz += ce · (P_j - [j=y]) */
    double distill;  /* KD: kd_weight·T/B; DKD: w·T/B (w the warm-up factor); CE: 0 */
} LossScales;

static inline LossScales loss_scales(int kind, LossParams p, int B) {
    LossScales s;
    s.ce = (double)p.ce_weight / B;
    s.distill = kind == LOSS_DKD ? (double)p.warm * p.T / B : kind == LOSS_KD ? (double)p.kd_weight * p.T / B : 0.0;
    return s;
}

#endif /* DKD_LOSS_H */
