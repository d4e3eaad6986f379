/* train_step.c — one training step of the recipe, in a form a device can run
 * without the host, and its capture as a CUDA graph.
 *
 * A step (train.c's loop runs one per batch; the emulation tests run this very
 * code):
 *     batch_gather   idx, lab <- the epoch's order at step s (s in device memory)
 *     augment_batch  x <- pad/crop/flip/normalise images[idx]
 *     teacher        v = t(x), eval mode            (KD, DKD)
 *     student        z = s(x), train mode           (+1 on the device's train-forward count)
 *     loss           rows [nb,3], dz = dL/dz        (CE, KD or DKD)
 *     step_record    rows -> rec_rows[s], top-1 hits -> hits[s], s += 1
 *     backward, SGD
 * Every value a step needs that changes from step to step lives in device
 * memory and is moved on by a kernel (the step number, hence the batch and the
 * record slot). What changes per epoch lives in device memory too, written by
 * train_step_epoch before the epoch's first step, outside any capture: the
 * permutation, the learning rate (read by sgd_step), the DKD warm-up factor
 * (read by the DKD loss through lp.warm_at) and the epoch (read by the
 * augmentation's draws). Kernel arguments are therefore the same at every step
 * of every epoch: pointers into memory that never moves, and sizes. The host
 * reads nothing back during the step: the loss and accuracy come from the
 * record (train_step_results), read once per log point.
 *
 * The graph: on a backend with graphs (CUDA) and use_graph set, the first
 * full-batch step of the run is captured (graph_begin .. graph_end: recorded,
 * not run), then every full-batch step is one graph_launch. An epoch's short
 * last batch runs launch by launch (a graph holds fixed sizes). The step is
 * captured again only if a loss weight or the temperature (kernel arguments)
 * differ from the captured ones; train.c never changes them. use_graph = 0
 * (`--no-graph`) runs every step launch by launch: the same kernels with the
 * same arguments in the same order, hence the same bits (tests/emu_graph.cpp
 * proves it under the emulator). Evaluation works the same way (EvalStep, at
 * the end of this file).
 */
#include "dkd.h"

#include <stdlib.h>
#include <string.h>

int train_step_init(TrainStep *ts, const Backend *be, Net *s, Net *t, int kind, int B, int n,
                    const uint8_t *images, const int *labels, uint64_t seed, float momentum, float wd) {
    memset(ts, 0, sizeof *ts);
    if (B <= 0 || n <= 0) return dkd_fail("train_step_init: batch %d over %d images", B, n);
    if (!s->trainable || s->Bmax < B || s->be != be || (t && (t->Bmax < B || t->be != be)))
        return dkd_fail("train_step_init: the networks are not set up on this backend for batch %d", B);
    ts->be = be; ts->s = s; ts->t = t; ts->kind = kind;
    ts->B = B; ts->n = n; ts->NC = net_num_classes(s);
    ts->images = images; ts->labels = labels;
    ts->seed = seed; ts->momentum = momentum; ts->wd = wd;
    ts->steps = (n + B - 1) / B;
    ts->order = (int *)be->alloc((size_t)n * sizeof(int));
    ts->idx = (int *)be->alloc((size_t)B * sizeof(int));
    ts->lab = (int *)be->alloc((size_t)B * sizeof(int));
    ts->step = (int *)be->alloc(sizeof(int));
    ts->hits = (int *)be->alloc((size_t)ts->steps * sizeof(int));
    ts->dz = (float *)be->alloc((size_t)B * ts->NC * sizeof(float));
    ts->rows = (float *)be->alloc((size_t)B * 3 * sizeof(float));
    ts->rec_rows = (float *)be->alloc((size_t)ts->steps * B * 3 * sizeof(float));
    ts->d_lr = (float *)be->alloc(sizeof(float));
    ts->d_warm = (float *)be->alloc(sizeof(float));
    ts->d_epoch = (int *)be->alloc(sizeof(int));
    ts->use_graph = be->graph_begin != NULL;
    be->zero(ts->step, sizeof(int));
    return 0;
}

void train_step_free(TrainStep *ts) {
    const Backend *be = ts->be;
    if (!be) return;
    if (ts->graph) be->graph_free(ts->graph);
    be->release(ts->order); be->release(ts->idx); be->release(ts->lab); be->release(ts->step);
    be->release(ts->hits); be->release(ts->dz); be->release(ts->rows); be->release(ts->rec_rows);
    be->release(ts->d_lr); be->release(ts->d_warm); be->release(ts->d_epoch);
    memset(ts, 0, sizeof *ts);
}

/* The loss settings a captured step holds as kernel arguments (all but the warm-up factor). */
static int same_loss_args(LossParams a, LossParams b) {
    return a.ce_weight == b.ce_weight && a.kd_weight == b.kd_weight && a.alpha == b.alpha && a.beta == b.beta &&
           a.T == b.T;
}

void train_step_epoch(TrainStep *ts, const int *order, int epoch, float lr, LossParams lp) {
    const Backend *be = ts->be;
    be->upload(ts->order, order, (size_t)ts->n * sizeof(int));
    be->zero(ts->step, sizeof(int));
    be->upload(ts->d_lr, &lr, sizeof lr);
    be->upload(ts->d_warm, &lp.warm, sizeof lp.warm);
    be->upload(ts->d_epoch, &epoch, sizeof epoch);
    lp.warm_at = ts->d_warm;
    if (ts->graph && !same_loss_args(lp, ts->lp)) { be->graph_free(ts->graph); ts->graph = NULL; }
    ts->epoch = epoch; ts->lr = lr; ts->lp = lp;
}

/* The first half of a step: from the batch to the recorded loss (nb images). */
void train_step_forward(TrainStep *ts, int nb) {
    const Backend *be = ts->be;
    Net *s = ts->s, *t = ts->t;
    be->batch_gather(ts->idx, ts->lab, ts->order, ts->labels, ts->step, ts->B, ts->n);
    be->augment_batch(s->x, ts->images, ts->idx, nb, ts->seed, ts->d_epoch, 1);
    float *v = NULL;
    if (t) { be->copy(t->x, s->x, (size_t)nb * CIFAR_IMG_BYTES * sizeof(float)); v = net_forward(t, nb, 0); }
    float *z = net_forward(s, nb, 1);
    if (ts->kind == LOSS_DKD) be->dkd_loss(ts->dz, ts->rows, z, v, ts->lab, nb, ts->NC, ts->lp);
    else if (ts->kind == LOSS_KD) be->kd_loss(ts->dz, ts->rows, z, v, ts->lab, nb, ts->NC, ts->lp);
    else be->ce_loss(ts->dz, ts->rows, z, ts->lab, nb, ts->NC, ts->lp);
    be->step_record(ts->rec_rows, ts->hits, ts->step, ts->rows, 3, z, ts->lab, ts->B, nb, ts->NC);
}

/* The second half: backward from the recorded step's dL/dz, then SGD. */
void train_step_update(TrainStep *ts, int nb) {
    net_backward(ts->s, ts->dz, nb);
    net_sgd(ts->s, ts->d_lr, ts->momentum, ts->wd);
}

/* A step's body, run launch by launch, or as a replay of *graph (captured from the
 * body first, on the first call) when use_graph and the step is a full batch (a graph
 * holds fixed sizes). Profiling (net_profile) synchronises around every op, so it
 * always runs launch by launch. */
static void run_step(const Backend *be, void **graph, int *captures, int use_graph, int full,
                     void (*body)(void *ctx, int nb), void *ctx, int nb) {
    if (!use_graph || !be->graph_begin || !full || net_profile) { body(ctx, nb); return; }
    if (!*graph) {
        if (be->graph_begin() != 0) dkd_die("%s", dkd_errbuf);
        body(ctx, nb);
        *graph = be->graph_end();
        if (!*graph) dkd_die("%s (run with --no-graph to run launch by launch)", dkd_errbuf);
        (*captures)++;
    }
    be->graph_launch(*graph);
}

static void train_body(void *ctx, int nb) {
    train_step_forward((TrainStep *)ctx, nb);
    train_step_update((TrainStep *)ctx, nb);
}

void train_step_run(TrainStep *ts, int nb) {
    run_step(ts->be, &ts->graph, &ts->captures, ts->use_graph, nb == ts->B, train_body, ts, nb);
}

void train_step_results(const TrainStep *ts, int k0, int k1, LossValue *lv, long *hits) {
    const Backend *be = ts->be;
    if (k1 <= k0) return;
    size_t per = (size_t)ts->B * 3;
    float *rows = (float *)xmalloc((size_t)(k1 - k0) * per * sizeof(float));
    int *h = (int *)xmalloc((size_t)(k1 - k0) * sizeof(int));
    be->download(rows, ts->rec_rows + (size_t)k0 * per, (size_t)(k1 - k0) * per * sizeof(float));
    be->download(h, ts->hits + k0, (size_t)(k1 - k0) * sizeof(int));
    for (int k = k0; k < k1; k++) {
        int nb = ts->n - k * ts->B < ts->B ? ts->n - k * ts->B : ts->B;
        lv[k - k0] = loss_total(ts->kind, rows + (size_t)(k - k0) * per, nb, ts->lp);
        *hits += h[k - k0];
    }
    free(rows); free(h);
}

/* ------------------------------------------------------------ evaluation
 * The same idea for an eval-mode pass over a test set: batch_gather over the
 * identity order (the step number picks images s*B ..), the plain
 * normalisation, the forward, and step_record copying the batch's logits into
 * logits[s*B*NC ..] (W = NC, no hits). The host reads all logits once at the
 * end and computes accuracy and loss from them exactly as it did per batch. */
int eval_step_init(EvalStep *es, const Backend *be, Net *net, int B, int n, const uint8_t *images) {
    memset(es, 0, sizeof *es);
    if (B <= 0 || n <= 0 || net->Bmax < B || net->be != be)
        return dkd_fail("eval_step_init: the network is not set up on this backend for batch %d", B);
    es->be = be; es->net = net; es->B = B; es->n = n; es->NC = net_num_classes(net); es->images = images;
    es->use_graph = be->graph_begin != NULL;
    es->order = (int *)be->alloc((size_t)n * sizeof(int));
    es->idx = (int *)be->alloc((size_t)B * sizeof(int));
    es->step = (int *)be->alloc(sizeof(int));
    es->logits = (float *)be->alloc((size_t)n * es->NC * sizeof(float));
    int *iota = (int *)xmalloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) iota[i] = i;
    be->upload(es->order, iota, (size_t)n * sizeof(int));
    free(iota);
    be->zero(es->step, sizeof(int));
    return 0;
}

static void eval_batch(void *ctx, int nb) {
    EvalStep *es = (EvalStep *)ctx;
    const Backend *be = es->be;
    be->batch_gather(es->idx, NULL, es->order, NULL, es->step, es->B, es->n);
    be->augment_batch(es->net->x, es->images, es->idx, nb, 0, NULL, 0);
    float *z = net_forward(es->net, nb, 0);
    be->step_record(es->logits, NULL, es->step, z, es->NC, NULL, NULL, es->B, nb, es->NC);
}

void eval_step_run(EvalStep *es, int nb) {
    run_step(es->be, &es->graph, &es->captures, es->use_graph, nb == es->B, eval_batch, es, nb);
}

void eval_step_free(EvalStep *es) {
    const Backend *be = es->be;
    if (!be) return;
    if (es->graph) be->graph_free(es->graph);
    be->release(es->order); be->release(es->idx); be->release(es->step); be->release(es->logits);
    memset(es, 0, sizeof *es);
}
