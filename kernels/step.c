/* kernels/step.c — the bookkeeping of a training step, on the CPU: what lets
 * the step run on a device without the host (the CUDA twins are in step.cu;
 * train_step.c strings them together; kernels/README.md, "The training step
 * as one CUDA graph", says why each exists).
 *
 *   counter_add   c[0] += inc (int64). A device net counts its train-mode
 *                 forwards here instead of incrementing every BN layer's
 *                 num_batches_tracked on the host (net.c folds the count into
 *                 the host copies in net_to_host).
 *   batch_gather  the batch of step s = *step (s read from memory, so a
 *                 replayed CUDA graph takes the next batch each time):
 *                   for b in [0, B) with k = s*B + b < n:
 *                     idx[b] = order[k],  lab[b] = labels[order[k]]
 *                 order [n] the epoch's permutation, labels [Nall] the split's
 *                 labels (lab NULL: indices only). B is the full batch: the
 *                 last, short batch of an epoch fills its first n - s*B entries.
 *   step_record   after step s = *step: its nb rows of W floats, rows [nb,W],
 *                 go to rec[s*B*W ...] (row order kept); with hits given, the
 *                 number of rows whose top-1 class (the first maximum of the
 *                 logits z [nb,NC]) equals lab[b] to hits[s]; then *step = s+1.
 *                 Training records the loss terms (W = 3) and the hits; the
 *                 host reads the record once per log point and sums it in the
 *                 order the per-step host code did (loss_total per step).
 *                 Evaluation records the logits themselves (W = NC, no hits).
 */
#include "dkd.h"

void counter_add_cpu(int64_t *c, int64_t inc) { c[0] += inc; }

void batch_gather_cpu(int *idx, int *lab, const int *order, const int *labels, const int *step, int B, int n) {
    long long s = *step;
    for (int b = 0; b < B; b++) {
        long long k = s * B + b;
        if (k >= n) break;
        idx[b] = order[k];
        if (lab) lab[b] = labels[order[k]];
    }
}

/* The first index of the largest logit (NaN never wins a comparison), as the
 * trainer's accuracy always counted it. */
static int row_top1(const float *r, int NC) {
    int am = 0;
    for (int j = 1; j < NC; j++)
        if (r[j] > r[am]) am = j;
    return am;
}

void step_record_cpu(float *rec, int *hits, int *step, const float *rows, int W, const float *z, const int *lab,
                     int B, int nb, int NC) {
    int s = *step;
    float *dst = rec + (size_t)s * B * W;
    for (size_t i = 0; i < (size_t)nb * W; i++) dst[i] = rows[i];
    if (hits) {
        int h = 0;
        for (int b = 0; b < nb; b++) h += row_top1(z + (size_t)b * NC, NC) == lab[b];
        hits[s] = h;
    }
    *step = s + 1;
}
