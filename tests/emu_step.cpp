/* tests/emu_step.cpp — whole DKD training steps on the CUDA backend (its
 * kernels run by the CPU emulator) against the same steps on the CPU backend.
 *
 * A step is train.c's: augment the batch on the device (crop + flip +
 * normalise from uint8 images), teacher forward in eval mode, student forward
 * in train mode (BN batch statistics, running statistics updated), the fused
 * DKD loss and its gradient, the backward walk, SGD with momentum and weight
 * decay. Both backends get the same models, weights, images and labels.
 *
 * Compared: the augmented batch (bit for bit: integer draws, same formula),
 * teacher and student logits, every node's output (but a BN's or add's output
 * that the fused train-mode BN [+ add] + ReLU does not materialise), the BN
 * running statistics and num_batches_tracked, the per-row loss terms and the
 * loss, dL/dz, every node's output gradient (but a BN output gradient that the
 * fused BN + ReLU backward does not materialise), every parameter gradient, every parameter and
 * momentum after SGD. The node-by-node comparisons name the first op that is
 * off, so a failure points at the kernel to look at.
 *
 * Pinning. A ReLU mask (y > 0) and a max-pool argmax are discontinuous: a
 * pre-activation that is 1e-7 on one backend and -1e-7 on the other (they sum
 * in different orders) flips one gradient element by its full size, and in a
 * batch of 3 the train-mode BatchNorms spread that to every upstream gradient
 * (a few percent, measured). Such flips are rounding, not bugs, so after the
 * forward comparison the CPU's activations (and BN saved statistics, and the
 * teacher logits) are copied into the CUDA net: the backward then starts from
 * the same point, and gradients can be held to a tight tolerance. For the same
 * reason the second step starts both sides from the CPU's parameters, momentum
 * and running statistics. Forward, loss, backward and SGD are each still run
 * entirely by the CUDA kernels.
 *
 * Tolerance model. The two backends evaluate the same formulas in different
 * summation orders (GEMM tiles vs the CPU's blocked FMA GEMM, tree reductions
 * vs loops), so values differ by float32 roundings (relative 1e-7..1e-6 per
 * op), amplified through ~20 layers of train-mode BatchNorm with a batch of 3.
 * A tensor t of a kind (gradients, parameters, ...) passes when
 *     |got - ref| <= TOL_SCALE * max|ref_t| + TOL_GLOBAL * max|ref_kind| + TOL_REL * |ref|
 * The first term judges a tensor at its own scale (entries that are nearly
 * zero by cancellation are not judged relative to themselves). The second
 * covers tensors whose exact value is zero: the gradient of a BN bias that
 * feeds a conv and then another train-mode BN (the next BN removes any
 * constant shift) is pure rounding noise, of the size of the terms that
 * cancelled; it is accepted at 1e-5 of the largest value of that kind in the
 * network. TOL_SCALE = 3e-4, TOL_GLOBAL = 1e-5, TOL_REL = 1e-4. Measured when
 * the test was written (each report prints "x% of tol"): node outputs of the
 * (unpinned) forward use up to ~15% of this tolerance (deviations up to 5e-5
 * of their scale after ~50 layers), gradients up to ~13% (a conv bias whose
 * exact gradient is zero, in the second step), parameters and momentum less,
 * the loss ~1e-6 relative (checked at 1e-5). A bug (a wrong index, a
 * missing term, a race, a wrong stride) gives errors of order one.
 *
 * Pairs (real registry models, random weights, batch 3 — small, because the
 * emulator runs about a million times slower than a GPU):
 *   resnet8x4   -> ShuffleV2   conv 3x3/1x1 (GEMM), depthwise, BN eval + train,
 *                              ReLU, add, split, concat, channel shuffle,
 *                              global avgpool, linear
 *   MobileNetV2 -> ShuffleV1   grouped 1x1 convs, avgpool 3x3/2 pad 1, concat;
 *                              depthwise and inverted residuals in eval
 *   MobileNetV2 -> vgg8        maxpool, conv bias; 2 steps: the second SGD
 *                              step has a non-zero momentum buffer
 */
#include "dkd.h"
#include "kernels/cuda_common.h"
#include "test.h"
#include "emu_test.h"     // defines: schedules, NSCHED, max_abs, the GPU stand-ins


static const double TOL_SCALE = 3e-4, TOL_GLOBAL = 1e-5, TOL_REL = 1e-4;
enum { B = 3, NDATA = 7, NC = 100 };


/* The tolerance model above. verbose: 1 always report, 0 report failures, -1 silent.
 * Returns 1 if within tolerance; *used gets the largest |err| / tolerance
 * (1 = at the limit), which the reports print as "x% of tol". */
static int close_scaled(const char *name, const float *got, const float *ref, size_t n, double global, int verbose,
                        double *used) {
    double scale = max_abs(ref, n), worst = 0; size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        double lim = TOL_SCALE * scale + TOL_GLOBAL * global + TOL_REL * fabs((double)ref[i]);
        double u = d / (lim > 0 ? lim : 1e-300);
        if (!(u <= worst)) { worst = u; wi = i; }   /* a NaN sticks */
    }
    int ok = worst <= 1.0;
    if (used) *used = worst;
    if (verbose > 0 || (verbose == 0 && !ok))
        check(ok, "%s: n=%zu, %.2g%% of tol (worst [%zu]: %.8g vs %.8g)", name, n, 100 * worst, wi,
              n ? (double)got[wi] : 0.0, n ? (double)ref[wi] : 0.0);
    return ok;
}

/* ------------------------------------------------------------------ a side */
/* One teacher/student pair on one backend, with its device buffers. */
typedef struct {
    const Backend *be;
    Net *t, *s;
    uint8_t *d_data; int *d_idx, *d_lab;
    float *d_dz, *d_rows;
    float *v, *z;                  /* logits of the last forward (backend memory) */
} Side;

/* Host copies of what one step produced. */
typedef struct {
    float *x, *v, *z, *dz, rows[B * 3], *grads, *params, *mom, *stats, *act, *dact, *save;
    int64_t *nbt;
    LossValue loss;
} Snap;

static int side_init(Side *sd, const Backend *be, const char *teacher, const char *student,
                     const uint8_t *data, const int *idx, const int *lab) {
    memset(sd, 0, sizeof *sd);
    sd->be = be;
    sd->t = model_build(teacher);
    sd->s = model_build(student);
    if (!sd->t || !sd->s) { check(0, "build %s / %s: %s", teacher, student, dkd_errbuf); return -1; }
    net_init_params(sd->t, 11);
    net_init_params(sd->s, 22);
    /* fresh BN running stats (0 and 1) make eval BN an identity: use others */
    for (size_t i = 0; i < sd->t->n_stats; i++) sd->t->h_stats[i] = 0.5f + 0.25f * (float)((i * 7919) % 13) / 13.0f;
    if (net_setup(sd->t, be, B, 0) || net_setup(sd->s, be, B, 1)) { check(0, "net_setup: %s", dkd_errbuf); return -1; }
    sd->d_data = (uint8_t *)be->alloc(NDATA * 3072);
    be->upload(sd->d_data, data, NDATA * 3072);
    sd->d_idx = (int *)be->alloc(B * sizeof(int));
    be->upload(sd->d_idx, idx, B * sizeof(int));
    sd->d_lab = (int *)be->alloc(B * sizeof(int));
    be->upload(sd->d_lab, lab, B * sizeof(int));
    sd->d_dz = (float *)be->alloc((size_t)B * NC * sizeof(float));
    sd->d_rows = (float *)be->alloc((size_t)B * 3 * sizeof(float));
    return 0;
}
static void side_free(Side *sd) {
    const Backend *be = sd->be;
    if (sd->d_data) {
        be->release(sd->d_data); be->release(sd->d_idx); be->release(sd->d_lab);
        be->release(sd->d_dz); be->release(sd->d_rows);
    }
    if (sd->t) net_free(sd->t);
    if (sd->s) net_free(sd->s);
}

static void snap_alloc(Snap *p, const Net *s) {
    p->x = (float *)xmalloc((size_t)B * 3072 * sizeof(float));
    p->v = (float *)xmalloc((size_t)B * NC * sizeof(float));
    p->z = (float *)xmalloc((size_t)B * NC * sizeof(float));
    p->dz = (float *)xmalloc((size_t)B * NC * sizeof(float));
    p->grads = (float *)xmalloc(s->n_params * sizeof(float));
    p->params = (float *)xmalloc(s->n_params * sizeof(float));
    p->mom = (float *)xmalloc(s->n_params * sizeof(float));
    p->stats = (float *)xmalloc((s->n_stats ? s->n_stats : 1) * sizeof(float));
    p->act = (float *)xmalloc(s->act_floats * sizeof(float));
    p->dact = (float *)xmalloc(s->act_floats * sizeof(float));
    p->save = (float *)xmalloc((s->save_floats ? s->save_floats : 1) * sizeof(float));
    p->nbt = (int64_t *)xmalloc((size_t)(s->n_nbt ? s->n_nbt : 1) * sizeof(int64_t));
}
static void snap_free(Snap *p) {
    free(p->x); free(p->v); free(p->z); free(p->dz); free(p->grads); free(p->params); free(p->mom);
    free(p->stats); free(p->act); free(p->dact); free(p->save); free(p->nbt);
}

/* ------------------------------------------------------------ the phases */
static void forward(Side *sd, int epoch, Snap *o) {
    const Backend *be = sd->be;
    Net *t = sd->t, *s = sd->s;
    int *d_epoch = (int *)be->alloc(sizeof epoch);   /* the epoch in backend memory */
    be->upload(d_epoch, &epoch, sizeof epoch);
    be->augment_batch(s->x, sd->d_data, sd->d_idx, B, 1234, d_epoch, 1);
    be->release(d_epoch);
    be->copy(t->x, s->x, (size_t)B * 3072 * sizeof(float));
    be->download(o->x, s->x, (size_t)B * 3072 * sizeof(float));
    sd->v = net_forward(t, B, 0);
    sd->z = net_forward(s, B, 1);
    be->download(o->v, sd->v, (size_t)B * NC * sizeof(float));
    be->download(o->z, sd->z, (size_t)B * NC * sizeof(float));
    be->download(o->act, s->act, s->act_floats * sizeof(float));
    be->download(o->save, s->save, s->save_floats * sizeof(float));
    be->download(o->stats, s->stats, s->n_stats * sizeof(float));
    net_to_host(s);   /* a device net counts num_batches_tracked on the device: fold it into s->nbt */
    memcpy(o->nbt, s->nbt, (size_t)s->n_nbt * sizeof(int64_t));
}
static void loss(Side *sd, LossParams lp, Snap *o) {
    const Backend *be = sd->be;
    be->dkd_loss(sd->d_dz, sd->d_rows, sd->z, sd->v, sd->d_lab, B, NC, lp);
    be->download(o->dz, sd->d_dz, (size_t)B * NC * sizeof(float));
    be->download(o->rows, sd->d_rows, sizeof o->rows);
    o->loss = loss_total(LOSS_DKD, o->rows, B, lp);
}
static void backward(Side *sd, Snap *o) {
    Net *s = sd->s;
    net_backward(s, sd->d_dz, B);
    sd->be->download(o->grads, s->grads, s->n_params * sizeof(float));
    sd->be->download(o->dact, s->dact, s->act_floats * sizeof(float));
}
static void sgd(Side *sd, Snap *o) {
    Net *s = sd->s;
    float lr = 0.05f, *d_lr = (float *)sd->be->alloc(sizeof lr);   /* the rate in backend memory */
    sd->be->upload(d_lr, &lr, sizeof lr);
    net_sgd(s, d_lr, 0.9f, 5e-4f);
    sd->be->release(d_lr);
    sd->be->download(o->params, s->params, s->n_params * sizeof(float));
    sd->be->download(o->mom, s->mom, s->n_params * sizeof(float));
    sd->be->sync();
}

/* ------------------------------------------------------------ comparisons */
static const char *op_name(int op) {
    static const char *names[] = {"input", "conv", "bn", "relu", "maxpool", "avgpool", "linear",
                                  "add", "concat", "split", "shuffle"};
    return op >= 0 && op <= OP_SHUFFLE ? names[op] : "?";
}

/* Node j is the one node reading node i (once), and i is not the output. */
static int sole_reader(const Net *s, int i, int j) {
    if (i == s->output || j >= s->n_nodes) return 0;
    for (int k = i + 1; k < s->n_nodes; k++) {
        int reads = (s->nodes[k].in[0] == i) + (s->nodes[k].in[1] == i);
        if (reads && (k != j || reads != 1)) return 0;
    }
    return s->nodes[j].in[0] == i || s->nodes[j].in[1] == i;
}
static int op_at(const Net *s, int i) { return i < s->n_nodes ? s->nodes[i].op : -1; }

/* A BN whose output only its ReLU reads: the CUDA backend's fused BN + ReLU
 * backward (kernels/batchnorm.cu, used by net.c) never writes that output's
 * gradient tensor, so there is nothing to compare; the BN's parameter
 * gradients and its input's gradient still are (tests/emu_fused.cpp holds the
 * fused op to the separate ones bit for bit). */
static int grad_fused_away(const Net *s, int i) {
    return backend_cuda.batchnorm_relu_backward && s->nodes[i].op == OP_BN && op_at(s, i + 1) == OP_RELU &&
           sole_reader(s, i, i + 1);
}

/* The same in the forward: the fused train-mode BN [+ add] + ReLU writes only the
 * ReLU's output; the BN's (and the add's) are never written. Node i is such a BN,
 * or such an add (then its BN is node i-1). */
static int act_fused_away(const Net *s, int i) {
    if (!backend_cuda.batchnorm_train_relu) return 0;
    int bn = s->nodes[i].op == OP_ADD ? i - 1 : i;
    if (s->nodes[bn].op != OP_BN) return 0;
    if (op_at(s, bn + 1) == OP_RELU) return bn == i && sole_reader(s, bn, bn + 1);
    return op_at(s, bn + 1) == OP_ADD && op_at(s, bn + 2) == OP_RELU && s->nodes[bn + 2].in[0] == bn + 1 &&
           sole_reader(s, bn, bn + 1) && sole_reader(s, bn + 1, bn + 2);
}

/* Node by node. backward = 0: outputs, the first bad node in forward order is
 * the suspect; backward = 1: output gradients, computed in reverse, so the
 * LAST bad node is the suspect (its gradient comes from its consumers). */
static void compare_nodes(const char *what, const Net *s, const float *got, const float *ref, int backward) {
    int bad = 0, first = -1, skipped = 0;
    double worst = 0;
    for (int i = 1; i < s->n_nodes; i++) {
        const Node *nd = &s->nodes[i];
        if (backward ? grad_fused_away(s, i) : act_fused_away(s, i)) { skipped++; continue; }
        size_t n = (size_t)B * nd->C * nd->H * nd->W;
        double e;
        if (!close_scaled("", got + nd->act, ref + nd->act, n, 0, -1, &e)) { bad++; if (first < 0 || backward) first = i; }
        if (e > worst) worst = e;
    }
    if (skipped)
        printf("  (%d %s not compared: the fused BN + ReLU %s does not materialise them)\n", skipped,
               backward ? "BN output gradients" : "BN and add outputs", backward ? "backward" : "train forward");
    if (first < 0) {
        check(1, "%s: all %d nodes within tolerance (worst %.2g%% of tol)", what, s->n_nodes - 1 - skipped, 100 * worst);
        return;
    }
    const Node *nd = &s->nodes[first];
    char name[240], users[64] = "";
    if (backward)
        for (int j = first + 1, u = 0; j < s->n_nodes && u < 3; j++)
            if (s->nodes[j].in[0] == first || s->nodes[j].in[1] == first) {
                u++;
                snprintf(users + strlen(users), sizeof users - strlen(users), " %d:%s", j, op_name(s->nodes[j].op));
            }
    snprintf(name, sizeof name, "%s: %d of %d nodes off; %s node %d (%s, out %dx%dx%d%s%s)", what, bad, s->n_nodes - 1 - skipped,
             backward ? "first in the backward walk:" : "first:", first, op_name(nd->op), nd->C, nd->H, nd->W,
             backward ? ", consumed by" : "", users);
    close_scaled(name, got + nd->act, ref + nd->act, (size_t)B * nd->C * nd->H * nd->W, 0, 1, NULL);
}

/* State-dict tensors of one kind, tensor by tensor; one summary check, plus
 * one line per failing tensor. */
static void compare_params(const char *what, const Net *s, int kind, const float *got, const float *ref) {
    double global = 0;
    for (int k = 0; k < s->n_pinfo; k++)
        if (s->pinfo[k].kind == kind) {
            double m = max_abs(ref + s->pinfo[k].off, s->pinfo[k].numel);
            if (m > global) global = m;
        }
    int n_ok = 0, n = 0;
    double worst = 0; const char *worst_name = "-";
    for (int k = 0; k < s->n_pinfo; k++) {
        const ParamInfo *pi = &s->pinfo[k];
        if (pi->kind != kind) continue;
        char name[160];
        snprintf(name, sizeof name, "%s %s", what, pi->name);
        double e;
        n++;
        n_ok += close_scaled(name, got + pi->off, ref + pi->off, pi->numel, global, 0, &e);
        if (e > worst) { worst = e; worst_name = pi->name; }
    }
    check(n_ok == n, "%s: %d of %d tensors within tolerance (worst %.2g%% of tol: %s)", what, n_ok, n, 100 * worst,
          worst_name);
}

/* ------------------------------------------------------------------ a pair */
static void run_pair(const char *teacher, const char *student, int steps) {
    printf("pair %s -> %s, batch %d, %d step%s (emulator schedule %s)\n", teacher, student, B, steps,
           steps > 1 ? "s" : "", emu_schedule());
    uint8_t *data = (uint8_t *)xmalloc(NDATA * 3072);
    for (int i = 0; i < NDATA * 3072; i++) data[i] = (uint8_t)((i * 2654435761u) >> 13);
    int idx[B] = {5, 0, 3}, lab[B] = {17, 99, 0};
    Side cpu, gpu;
    if (side_init(&cpu, &backend_cpu, teacher, student, data, idx, lab) ||
        side_init(&gpu, &backend_cuda, teacher, student, data, idx, lab)) {
        side_free(&cpu); side_free(&gpu); free(data); return;
    }
    Net *s = cpu.s, *gs = gpu.s;
    s->no_fuse = 1;   /* the CPU student writes every node's output (its training forward would
                         fuse bn->relu and add->relu), so that every node can be compared */
    Snap rc, rg;
    snap_alloc(&rc, s); snap_alloc(&rg, gs);
    for (int it = 0; it < steps; it++) {
        int epoch = 3 + it;
        LossParams lp = {1.0f, 0.0f, 1.0f, 8.0f, 4.0f, (float)epoch / 20.0f, NULL};
        double t0 = now_seconds(), tg = 0;
        if (it > 0) {   /* pin: both sides start from the CPU's state */
            gpu.be->upload(gs->params, rc.params, s->n_params * sizeof(float));
            gpu.be->upload(gs->mom, rc.mom, s->n_params * sizeof(float));
            gpu.be->upload(gs->stats, rc.stats, s->n_stats * sizeof(float));
        }
        printf(" step %d\n", it + 1);
        forward(&cpu, epoch, &rc);
        tg -= now_seconds(); forward(&gpu, epoch, &rg); tg += now_seconds();
        check(!memcmp(rc.x, rg.x, (size_t)B * 3072 * sizeof(float)), "  augmented batch bit-identical");
        close_scaled("  teacher logits (eval)", rg.v, rc.v, (size_t)B * NC, 0, 1, NULL);
        close_scaled("  student logits (train)", rg.z, rc.z, (size_t)B * NC, 0, 1, NULL);
        compare_nodes("  student node outputs", s, rg.act, rc.act, 0);
        compare_params("  running mean", s, PK_RUNMEAN, rg.stats, rc.stats);
        compare_params("  running var", s, PK_RUNVAR, rg.stats, rc.stats);
        check(!memcmp(rg.nbt, rc.nbt, (size_t)s->n_nbt * sizeof(int64_t)), "  num_batches_tracked equal (%lld)",
              s->n_nbt ? (long long)rc.nbt[0] : 0LL);

        /* pin the forward state (see the top of the file) */
        gpu.be->upload(gs->act, rc.act, s->act_floats * sizeof(float));
        gpu.be->upload(gs->save, rc.save, s->save_floats * sizeof(float));
        gpu.be->upload(gpu.v, rc.v, (size_t)B * NC * sizeof(float));

        loss(&cpu, lp, &rc);
        tg -= now_seconds(); loss(&gpu, lp, &rg); tg += now_seconds();
        close_scaled("  loss rows {CE, TCKD, NCKD}", rg.rows, rc.rows, (size_t)B * 3, 0, 1, NULL);
        check(fabs(rg.loss.total - rc.loss.total) <= 1e-5 * fabs(rc.loss.total),
              "  loss %.7f (cuda) vs %.7f (cpu)", rg.loss.total, rc.loss.total);
        close_scaled("  dL/dz", rg.dz, rc.dz, (size_t)B * NC, 0, 1, NULL);

        backward(&cpu, &rc);
        tg -= now_seconds(); backward(&gpu, &rg); tg += now_seconds();
        compare_nodes("  student node output gradients", s, rg.dact, rc.dact, 1);
        compare_params("  grad", s, PK_PARAM, rg.grads, rc.grads);

        sgd(&cpu, &rc);
        tg -= now_seconds(); sgd(&gpu, &rg); tg += now_seconds();
        compare_params("  param after SGD", s, PK_PARAM, rg.params, rc.params);
        compare_params("  momentum after SGD", s, PK_PARAM, rg.mom, rc.mom);
        printf("  (step %.1f s, of which emulated CUDA %.1f s)\n", now_seconds() - t0, tg);
    }
    snap_free(&rc); snap_free(&rg);
    side_free(&cpu); side_free(&gpu);
    free(data);
}

int main(void) {
    double t0 = now_seconds();
    run_pair("resnet8x4", "ShuffleV2", 1);
    run_pair("MobileNetV2", "ShuffleV1", 1);
    run_pair("MobileNetV2", "vgg8", 2);
    printf("emu_step: %lld kernel launches, %lld emulated threads, %.1f s\n", emu_launch_count(), emu_thread_count(),
           now_seconds() - t0);
    check_race_free("emu_step");
    return test_summary();
}
