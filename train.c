/* train.c — `dkd train` and `dkd eval`: mdistiller's recipe as a loop.
 *
 * One run (docs/recipe.md has the recipe and where each number comes from):
 *   for epoch = 1..E (1-based, as mdistiller):
 *     lr   = LR * RATE^(number of decay stages s with epoch > s)   (LR x0.1 after 150, 180, 210)
 *     warm = min(epoch / WARMUP, 1)                                 (DKD's weight ramps up over 20 epochs)
 *     order = a fresh permutation of the training set (counter-based RNG of
 *             (seed, epoch): a resumed run sees exactly the same batches)
 *     for each batch (the last one may be short: drop_last = False):
 *        x = augment(images[order[...]])       pad 4 + crop 32 + flip, normalise
 *        v = teacher(x)    eval mode           (no tape, recycled memory)
 *        z = student(x)    train mode          (batch statistics, tape kept)
 *        loss, dL/dz = CE + warm * DKD         (one fused per-row kernel)
 *        backward, SGD(momentum 0.9, wd 5e-4)
 *     evaluate the student on the test set (eval mode); log; checkpoint.
 *
 * The code follows that shape: parse_train_args (flags, --cfg FILE, KEY VALUE
 * pairs -> one DkdConfig, see config.c), prepare_run_dir, setup_run (data,
 * networks, device buffers), resume_run, then per epoch train_epoch ->
 * evaluate -> save_epoch.
 *
 * Files of a run (mdistiller's layout, output/cifar100_baselines/<tag>/):
 *   config.yaml      the resolved settings in mdistiller's schema + the command line(s)
 *   worklog.txt      mdistiller's per-epoch blocks, then "best_acc\t.."
 *   log.csv          the same numbers, machine-readable (plots read it), with the test-set size
 *   curves.png/.svg  loss/accuracy curves (plot.c), redrawn every epoch
 *   student_latest, student_best, student_<E> (E = 40, 80, ...)
 *                    {"model": state_dict} — torch.load-able, mdistiller's eval format
 *   latest, best, epoch_<E>  mdistiller's full state {"epoch", "model" (module.student.*
 *                    [+ module.teacher.*]), "optimizer" (torch.optim.SGD's state_dict:
 *                    momentum buffers), "best_acc"}: mdistiller can resume from them
 *   dkd_state        our resumable state: weights (module.student.*), momentum
 *                    (momentum.*), epoch, best accuracy and every setting that changes
 *                    what is trained or measured (--resume refuses a change)
 * Every file is written atomically (temp file + rename): a killed run leaves the
 * previous good files intact, and --resume continues bit-identically.
 */
#include "dkd.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { M_DKD, M_KD, M_CE };

const char *dkd_argv0;

typedef struct {
    DkdConfig c;                 /* mdistiller's settings (config.c) */
    int method;                  /* M_DKD, M_KD or M_CE (from c.method) */
    /* dkd's own settings, flags only */
    uint64_t seed;
    int subset, test_subset, threads, stop_after, resume;
    int no_graph;                /* --no-graph: a CUDA step launch by launch (debugging, profiling) */
    const char *data, *teacher_ckpt, *out, *device, *cfg_file, *t_flag;
    int n_models;                /* models named on the command line (0 with --cfg) */
    char opts_suffix[512];       /* mdistiller's run-name suffix for KEY VALUE pairs */
    char dir[DKD_PATH_MAX];      /* the run folder */
    int argc; char **argv;       /* the command line, recorded in config.yaml */
} TrainOpts;

/* ---------------------------------------------------------------- helpers */

/* Every numeric flag goes through parse_number (config.c): decimal only, in range. */
static int int_flag(const char *flag, const char *v, double lo, double hi) {
    double x;
    if (parse_number(flag, v, 1, lo, hi, &x)) dkd_die("%s", dkd_errbuf);
    return (int)x;
}
static const char *str_flag(const char *flag, const char *v) {
    if (!*v) dkd_die("%s needs a non-empty value", flag);
    return v;
}

/* dir/name into out[DKD_PATH_MAX]; a path that does not fit is an error, never a truncation. */
static void join_path(char *out, const char *dir, const char *name) {
    int n = snprintf(out, DKD_PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= DKD_PATH_MAX) dkd_die("path longer than %d characters: %s/%s", DKD_PATH_MAX - 1, dir, name);
}

static int mkdir_p(const char *path) {
    char buf[DKD_PATH_MAX];
    if (strlen(path) >= sizeof buf) return dkd_fail("path longer than %d characters: %s", DKD_PATH_MAX - 1, path);
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') { *p = 0; if (mkdir(buf, 0755) && errno != EEXIST) return dkd_fail("cannot create %s: %s", buf, strerror(errno)); *p = '/'; }
    }
    if (mkdir(buf, 0755) && errno != EEXIST) return dkd_fail("cannot create %s: %s", buf, strerror(errno));
    return 0;
}

static int file_exists(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISREG(st.st_mode); }

/* Short name of a model for run tags: the alias mdistiller's configs use. */
static const char *short_name(const char *name) {
    static char buf[4][32]; static int k;
    const ModelInfo *mi = model_find(name);
    k = (k + 1) & 3;
    if (mi && mi->aliases && *mi->aliases) { sscanf(mi->aliases, "%31s", buf[k]); return buf[k]; }
    snprintf(buf[k], sizeof buf[k], "%s", name);
    return buf[k];
}

/* Keep m images spread evenly over the split (every (n/m)-th): the test set
 * here may be sorted by class, so "the first m" would cover only a few classes. */
static void take_spread(CifarSplit *sp, int m) {
    if (m <= 0 || m >= sp->n) return;
    for (int i = 0; i < m; i++) {
        int j = (int)((long long)i * sp->n / m);
        memmove(sp->images + (size_t)i * CIFAR_IMG_BYTES, sp->images + (size_t)j * CIFAR_IMG_BYTES, CIFAR_IMG_BYTES);
        sp->labels[i] = sp->labels[j];
    }
    sp->n = m;
}

/* "1:02:03" */
static const char *hms(double seconds, char *buf, size_t cap) {
    if (!(seconds >= 0) || seconds > 1e8) { snprintf(buf, cap, "?"); return buf; }
    long s = (long)(seconds + 0.5);
    snprintf(buf, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    return buf;
}

/* -------------------------------------------------------------- progress */

/* One status line on stderr: rewritten in place on a terminal (twice a second),
 * a full line every 30 s otherwise (logs of batch jobs). */
static struct { int tty, quiet, shown; double last; } progress;

static int progress_due(int last_step) {
    if (progress.quiet) return 0;
    double t = now_seconds();
    if (!last_step && t - progress.last < (progress.tty ? 0.5 : 30.0)) return 0;
    progress.last = t;
    return 1;
}
static void progress_end_line(void) {
    if (progress.tty && progress.shown) fprintf(stderr, "\n");
    progress.shown = 0;
}
static void progress_eval(int done, int count, double t0) {
    if (!progress_due(done == count)) return;
    double ips = done / fmax(now_seconds() - t0, 1e-9);
    char eta[32];
    fprintf(stderr, "%sevaluating: %d/%d test images | %.0f img/s | ETA %s%s", progress.tty ? "\r" : "", done, count, ips,
            hms((count - done) / ips, eta, sizeof eta), progress.tty ? "   " : "\n");
    progress.shown = 1;
    if (done == count) progress_end_line();
}

/* ------------------------------------------------------------- evaluation */

typedef struct { double top1, top5, loss, img_s; } EvalResult;

/* The first non-finite entry of p[0..n), or n when all are finite. */
static size_t first_nonfinite(const float *p, size_t n) {
    for (size_t i = 0; i < n; i++) if (!isfinite(p[i])) return i;
    return n;
}

/* The first parameter or BN statistic (state_dict order) of n's host copy that holds a
 * NaN or an infinity, described in msg; 0 when all are finite. Call net_to_host first. */
static int nonfinite_param(const Net *n, char *msg, size_t cap) {
    for (int k = 0; k < n->n_pinfo; k++) {
        const ParamInfo *pi = &n->pinfo[k];
        if (pi->kind == PK_NBT) continue;
        const float *p = (pi->kind == PK_PARAM ? n->h_params : n->h_stats) + pi->off;
        size_t i = first_nonfinite(p, pi->numel);
        if (i == pi->numel) continue;
        size_t bad = 0;
        for (size_t j = i; j < pi->numel; j++) bad += !isfinite(p[j]);
        snprintf(msg, cap, "%s holds %zu non-finite value%s of %zu (the first, [%zu], is %g)", pi->name, bad,
                 bad == 1 ? "" : "s", pi->numel, i, (double)p[i]);
        return 1;
    }
    return 0;
}

/* A node's name for messages: its layer (the state_dict prefix of its weight), else the
 * layer that feeds it, e.g. "layer1.0.bn1" or "the node after layer1.0.bn1". */
static void node_label(const Net *n, int i, char *out, size_t cap) {
    for (int j = i; j >= 0; j--) {
        int w = n->nodes[j].w;
        if (w < 0) continue;
        const char *name = n->pinfo[w].name, *dot = strrchr(name, '.');
        int len = dot ? (int)(dot - name) : (int)strlen(name);
        snprintf(out, cap, "%s%.*s (node %d)", j == i ? "" : "the node after ", len, name, i);
        return;
    }
    snprintf(out, cap, i == 0 ? "the input images (node 0)" : "node %d", i);
}

/* The logits of nb images (d_images at the indices in d_idx) came out non-finite: find
 * where it starts, into dkd_errbuf. First the weights and BN statistics; if they are all
 * finite, the same images go once more through a copy of the network that keeps every
 * activation (a training arena on the CPU; the eval arena recycles them, the input
 * too), and the first layer whose output is non-finite is named. */
static void locate_nonfinite(Net *n, const uint8_t *d_images, const int *d_idx, int nb) {
    char msg[400];
    net_to_host(n);
    if (nonfinite_param(n, msg, sizeof msg)) { dkd_fail("parameter %s", msg); return; }
    Net *d = model_build(n->model);
    memcpy(d->h_params, n->h_params, n->n_params * sizeof(float));
    memcpy(d->h_stats, n->h_stats, n->n_stats * sizeof(float));
    memcpy(d->nbt, n->nbt, (size_t)n->n_nbt * sizeof(int64_t));
    net_setup(d, &backend_cpu, nb, 1);
    d->no_fuse = 1;   /* every node's own output is scanned below */
    n->be->augment_batch(n->x, d_images, d_idx, nb, 0, NULL, 0);
    n->be->download(d->x, n->x, (size_t)nb * CIFAR_IMG_BYTES * sizeof(float));
    net_forward(d, nb, 0);
    int bad = -1;
    for (int i = 0; i < d->n_nodes && bad < 0; i++) {
        const Node *nd = &d->nodes[i];
        size_t cnt = (size_t)nb * nd->C * nd->H * nd->W;
        if (first_nonfinite(d->act + nd->act, cnt) < cnt) bad = i;
    }
    if (bad >= 0) {
        node_label(d, bad, msg, sizeof msg);
        dkd_fail("every weight is finite, but the output of %s is the first activation with a NaN or an infinity "
                 "(a value beyond float's range)", msg);
    } else dkd_fail("every weight and activation of a second, CPU forward is finite: the %s backend computed "
                    "what the CPU does not", n->be->name);
    net_free(d);
}

/* Student (or any net) in eval mode over a data split already on the device.
 * 0, or -1 when a batch's logits (or its loss) are not finite: no accuracy is computed
 * from NaN (every comparison with NaN is false, so NaN would rank first); dkd_errbuf
 * then names the first parameter or layer where the non-finite values start.
 * The forwards run first (EvalStep: every batch's logits recorded on the device, the
 * full batches replayed from one CUDA graph where the backend has them and use_graph),
 * then the logits come back in one copy and the metrics are computed from them batch
 * by batch, as they always were. */
static int evaluate(Net *n, const uint8_t *d_images, int *d_idx, const int *labels, int count, int B, int use_graph,
                    EvalResult *out) {
    const Backend *be = n->be;
    int NC = net_num_classes(n);
    EvalStep es;
    if (eval_step_init(&es, be, n, B, count, d_images)) dkd_die("%s", dkd_errbuf);
    es.use_graph = es.use_graph && use_graph;
    float *logits = (float *)xmalloc((size_t)count * NC * sizeof(float));
    float *rows = (float *)xmalloc((size_t)B * 3 * sizeof(float));
    int *hidx = (int *)xmalloc((size_t)B * sizeof(int));
    long c1 = 0, c5 = 0; double loss = 0;
    double t0 = now_seconds();
    int rc = 0;
    for (int s = 0; s < count; s += B) {
        eval_step_run(&es, count - s < B ? count - s : B);
        if (!be->on_device) progress_eval(s + B < count ? s + B : count, count, t0);   /* (a device runs behind the host) */
    }
    be->download(logits, es.logits, (size_t)count * NC * sizeof(float));
    if (be->on_device) progress_eval(count, count, t0);
    for (int s = 0; s < count; s += B) {
        int nb = count - s < B ? count - s : B;
        const float *lg = logits + (size_t)s * NC;
        LossParams lp = {1.0f, 0.0f, 1.0f, 0.0f, 1.0f, 0.0f, NULL};
        ce_loss_cpu(NULL, rows, lg, labels + s, nb, NC, lp);
        LossValue lv = loss_total(LOSS_CE, rows, nb, lp);
        size_t bad = first_nonfinite(lg, (size_t)nb * NC);
        if (bad < (size_t)nb * NC) {
            char where[sizeof dkd_errbuf];
            for (int b = 0; b < nb; b++) hidx[b] = s + b;
            be->upload(d_idx, hidx, (size_t)nb * sizeof(int));
            locate_nonfinite(n, d_images, d_idx, nb);
            memcpy(where, dkd_errbuf, sizeof where);
            rc = dkd_fail("the logits of test images %d..%d are not finite (image %d, class %d: %g): %s", s, s + nb - 1,
                          s + (int)(bad / NC), (int)(bad % NC), (double)lg[bad], where);
            break;
        }
        if (!isfinite(lv.ce)) {
            rc = dkd_fail("test images %d..%d: the logits are finite but their cross-entropy is %g", s, s + nb - 1, lv.ce);
            break;
        }
        loss += lv.ce * nb;
        for (int b = 0; b < nb; b++) {
            const float *r = lg + (size_t)b * NC;
            float t = r[labels[s + b]];
            int higher = 0;   /* classes ranked above the target (ties go to the lower index, like topk) */
            for (int j = 0; j < NC; j++) if (r[j] > t || (r[j] == t && j < labels[s + b])) higher++;
            c1 += higher < 1; c5 += higher < 5;
        }
    }
    be->sync();
    double dt = now_seconds() - t0;
    EvalResult e = {100.0 * c1 / count, 100.0 * c5 / count, loss / count, count / dt};
    *out = e;
    eval_step_free(&es);
    free(logits); free(rows); free(hidx);
    return rc;
}

/* ------------------------------------------------------------- the run */

typedef struct {
    const TrainOpts *o;
    const Backend *be;
    Net *s, *t;                  /* student (trained), teacher (eval mode) or NULL */
    const char *teacher_path;
    CifarSplit tr, te;
    uint8_t *d_train, *d_test;   /* the splits in backend memory (the host copies on the CPU) */
    int B, EB, NC;               /* training batch, evaluation batch, classes */
    int *d_train_lab;            /* the training labels in backend memory (the host copy on the CPU) */
    int *d_idx;                  /* [EB] sample indices of an evaluation batch (backend) */
    TrainStep ts;                /* the training step of the student (train_step.c) */
    int *perm;                   /* [n_train] this epoch's order */
    float *h_mom;                /* [n_params] momentum on the host, for checkpoints */
    double eval_ips;             /* measured evaluation speed (0 until measured) */
    int start_epoch, best_epoch;
    double best;
} Run;

typedef struct { double loss, ce, kd, acc, img_s, secs; float lr; } EpochStats;   /* ce + kd = loss */

static float epoch_lr(const TrainOpts *o, int epoch) {
    int passed = 0;   /* mdistiller's adjust_learning_rate: LR * RATE^(stages already passed) */
    for (int k = 0; k < o->c.n_stages; k++) passed += epoch > o->c.stages[k];
    return (float)(o->c.lr * pow(o->c.decay_rate, passed));
}

static LossParams loss_params(const TrainOpts *o, int epoch) {
    const DkdConfig *c = &o->c;
    LossParams lp = {1.0f, 0.0f, (float)c->alpha, (float)c->beta, (float)c->dkd_T, 1.0f, NULL};
    if (o->method == M_DKD) { lp.ce_weight = (float)c->dkd_ce_weight; lp.warm = (float)fmin((double)epoch / c->warmup, 1.0); }
    if (o->method == M_KD) { lp.ce_weight = (float)c->kd_ce_weight; lp.kd_weight = (float)c->kd_kd_weight; lp.T = (float)c->kd_T; }
    return lp;
}
static int loss_kind(const TrainOpts *o) { return o->method == M_DKD ? LOSS_DKD : o->method == M_KD ? LOSS_KD : LOSS_CE; }
static double method_T(const TrainOpts *o) { return o->method == M_KD ? o->c.kd_T : o->c.dkd_T; }

/* ------------------------------------------------------------- run records */

/* Settings that change what a run trains or measures: saved in dkd_state and
 * compared on --resume. (--epochs and --lr may change; the LR change is noted.) */
typedef struct { const char *key; double value; const char *what; } Setting;
static int run_settings(const Run *r, Setting *out) {
    static const char *stage_keys[CFG_MAX_STAGES] = {"stage_1", "stage_2", "stage_3", "stage_4",
                                                     "stage_5", "stage_6", "stage_7", "stage_8"};
    const TrainOpts *o = r->o;
    const DkdConfig *c = &o->c;
    const ModelInfo *si = model_find(c->student), *ti = r->t ? model_find(c->teacher) : NULL;
    int n = 0;
    out[n++] = (Setting){"seed", (double)o->seed, "--seed"};
    out[n++] = (Setting){"method", o->method, "the method (DISTILLER.TYPE, --method)"};
    out[n++] = (Setting){"student", (double)(si - model_table), "the student (DISTILLER.STUDENT)"};
    out[n++] = (Setting){"teacher", ti ? (double)(ti - model_table) : -1, "the teacher (DISTILLER.TEACHER)"};
    out[n++] = (Setting){"batch", c->batch, "the batch size (SOLVER.BATCH_SIZE, --batch)"};
    out[n++] = (Setting){"subset", o->subset, "--subset"};
    out[n++] = (Setting){"train_images", r->tr.n, "the number of training images (--data, --subset)"};
    out[n++] = (Setting){"test_subset", o->test_subset, "--test-subset"};
    out[n++] = (Setting){"test_images", r->te.n, "the number of test images (--data, --test-subset)"};
    out[n++] = (Setting){"alpha", c->alpha, "DKD.ALPHA (--alpha)"};
    out[n++] = (Setting){"beta", c->beta, "DKD.BETA (--beta)"};
    out[n++] = (Setting){"T", method_T(o), "the temperature (DKD.T / KD.TEMPERATURE, --T)"};
    out[n++] = (Setting){"warmup", c->warmup, "DKD.WARMUP (--warmup)"};
    out[n++] = (Setting){"ce_weight", o->method == M_KD ? c->kd_ce_weight : c->dkd_ce_weight, "the CE weight (DKD.CE_WEIGHT / KD.LOSS.CE_WEIGHT)"};
    out[n++] = (Setting){"kd_weight", c->kd_kd_weight, "KD.LOSS.KD_WEIGHT"};
    out[n++] = (Setting){"wd", c->wd, "the weight decay (SOLVER.WEIGHT_DECAY, --wd)"};
    out[n++] = (Setting){"momentum", c->momentum, "SOLVER.MOMENTUM"};
    out[n++] = (Setting){"decay_rate", c->decay_rate, "SOLVER.LR_DECAY_RATE"};
    out[n++] = (Setting){"n_stages", c->n_stages, "SOLVER.LR_DECAY_STAGES (--decay-stages)"};
    for (int k = 0; k < c->n_stages; k++) out[n++] = (Setting){stage_keys[k], c->stages[k], "SOLVER.LR_DECAY_STAGES (--decay-stages)"};
    return n;
}
enum { MAX_SETTINGS = 20 + CFG_MAX_STAGES };

/* The momentum buffers as tensors named like their parameters, in parameter order. */
static PthTensorRef *momentum_refs(const Net *s, const float *h_mom, int64_t *shapes, int *n_out) {
    PthTensorRef *refs = net_state_refs(s, shapes);
    int k = 0;
    for (int i = 0; i < s->n_pinfo; i++) {
        if (s->pinfo[i].kind != PK_PARAM) continue;
        refs[k] = refs[i];
        refs[k++].data = h_mom + s->pinfo[i].off;
    }
    *n_out = k;
    return refs;
}

/* A state_dict view whose names carry a prefix (module.student., module.teacher., momentum.). */
static void prefix_names(PthTensorRef *refs, int n, const char *prefix, char **names) {
    for (int i = 0; i < n; i++) {
        names[i] = (char *)xmalloc(strlen(refs[i].name) + strlen(prefix) + 1);
        sprintf(names[i], "%s%s", prefix, refs[i].name);
        refs[i].name = names[i];
    }
}
static void free_names(char **names, int n) { for (int i = 0; i < n; i++) free(names[i]); free(names); }

/* dkd_state: {"model": {module.student.* (loadable by net_load_dict), momentum.*}, epoch, best, settings} */
static int save_state(const char *dir, const Run *r, int epoch) {
    const Net *s = r->s;
    int np = s->n_pinfo, nm;
    int64_t *shapes = (int64_t *)xmalloc((size_t)np * 8 * sizeof(int64_t));
    PthTensorRef *w = net_state_refs(s, shapes), *m = momentum_refs(s, r->h_mom, shapes + 4 * np, &nm);
    PthTensorRef *all = (PthTensorRef *)xmalloc((size_t)(np + nm) * sizeof(PthTensorRef));
    char **wn = (char **)xmalloc((size_t)np * sizeof(char *)), **mn = (char **)xmalloc((size_t)(nm ? nm : 1) * sizeof(char *));
    prefix_names(w, np, "module.student.", wn);
    prefix_names(m, nm, "momentum.", mn);
    memcpy(all, w, (size_t)np * sizeof *all);
    memcpy(all + np, m, (size_t)nm * sizeof *all);
    Setting set[MAX_SETTINGS];
    int ns = run_settings(r, set);
    PthItem items[5 + MAX_SETTINGS] = {
        {"model", PI_STATE_DICT, 0, 0, all, np + nm, NULL},   /* "model" is what pth_read returns */
        {"epoch", PI_INT, epoch, 0, NULL, 0, NULL},
        {"best_acc", PI_FLOAT, 0, r->best, NULL, 0, NULL},
        {"best_epoch", PI_INT, r->best_epoch, 0, NULL, 0, NULL},
        {"lr", PI_FLOAT, 0, r->o->c.lr, NULL, 0, NULL},
    };
    for (int i = 0; i < ns; i++) items[5 + i] = (PthItem){set[i].key, PI_FLOAT, 0, set[i].value, NULL, 0, NULL};
    char path[DKD_PATH_MAX];
    join_path(path, dir, "dkd_state");
    int rc = pth_write(path, items, 5 + ns);
    free_names(wn, np); free_names(mn, nm);
    free(all); free(w); free(m); free(shapes);
    return rc;
}

/* mdistiller's full state: {"epoch", "model": module.student.* [+ module.teacher.*],
 * "optimizer": torch.optim.SGD's state_dict, "best_acc"} (its trainer's "latest"). */
static int save_full(const char *path, const Run *r, int epoch, float lr) {
    const Net *s = r->s, *t = r->t;
    int ns = s->n_pinfo, nt = t ? t->n_pinfo : 0, nm;
    int64_t *shapes = (int64_t *)xmalloc((size_t)(2 * ns + nt + 1) * 4 * sizeof(int64_t));
    PthTensorRef *sr = net_state_refs(s, shapes), *tr = t ? net_state_refs(t, shapes + 4 * ns) : NULL;
    PthTensorRef *m = momentum_refs(s, r->h_mom, shapes + 4 * (ns + nt), &nm);
    PthTensorRef *all = (PthTensorRef *)xmalloc((size_t)(ns + nt + 1) * sizeof(PthTensorRef));
    char **sn = (char **)xmalloc((size_t)ns * sizeof(char *)), **tn = (char **)xmalloc((size_t)(nt ? nt : 1) * sizeof(char *));
    prefix_names(sr, ns, "module.student.", sn);
    if (t) prefix_names(tr, nt, "module.teacher.", tn);
    memcpy(all, sr, (size_t)ns * sizeof *all);
    if (t) memcpy(all + ns, tr, (size_t)nt * sizeof *all);
    PthSgdGroup sgd = {lr, r->o->c.momentum, 0.0, r->o->c.wd, 0};
    PthItem items[] = {
        {"epoch", PI_INT, epoch, 0, NULL, 0, NULL},
        {"model", PI_STATE_DICT, 0, 0, all, ns + nt, NULL},
        {"optimizer", PI_SGD_STATE, 0, 0, m, nm, &sgd},
        {"best_acc", PI_FLOAT, 0, r->best, NULL, 0, NULL},
    };
    int rc = pth_write(path, items, 4);
    free_names(sn, ns); free_names(tn, nt);
    free(sr); free(tr); free(m); free(all); free(shapes);
    return rc;
}

static int save_student(const char *dir, const char *name, const Net *s) {
    char path[DKD_PATH_MAX];
    join_path(path, dir, name);
    return net_save_file(s, path);
}

/* Read a checkpoint back (pth_read checks every zip entry's CRC-32) and check that its
 * float tensors are all finite. 0, or -1 with the reason in dkd_errbuf; *epoch = its
 * "epoch" entry, or -1 when it has none (student_* files). */
static int verify_checkpoint(const char *path, int *epoch) {
    PthDict d;
    if (pth_read(path, &d) != 0) return -1;
    double e = pth_scalar(&d, "epoch");
    *epoch = isfinite(e) ? (int)e : -1;
    int rc = 0;
    for (int i = 0; i < d.n && rc == 0; i++) {
        const PthTensor *t = &d.t[i];
        if (t->dtype == DT_F32 && first_nonfinite((const float *)t->data, t->numel) < t->numel)
            rc = dkd_fail("%s: tensor %s is not finite", path, t->name);
    }
    pth_dict_free(&d);
    return rc;
}

/* What a stopped run leaves on disk, verified rather than assumed: every checkpoint of the
 * run folder is read back (CRC-32 of each entry) and checked finite; out gets a sentence
 * naming the last good epoch and the files that hold it, or what is wrong with them. */
static void describe_last_good(const char *dir, char *out, size_t cap) {
    static const char *files[] = {"dkd_state", "latest", "student_latest", "best", "student_best"};
    char path[DKD_PATH_MAX + 32], good[300] = "", badmsg[700] = "";
    int state_epoch = -1, latest_epoch = -1, best_epoch = -1;
    size_t gl = 0, bl = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (!file_exists(path)) continue;
        int e;
        if (verify_checkpoint(path, &e) != 0) {
            bl += (size_t)snprintf(badmsg + bl, bl < sizeof badmsg ? sizeof badmsg - bl : 0, " BUT %s", dkd_errbuf);
            continue;
        }
        gl += (size_t)snprintf(good + gl, gl < sizeof good ? sizeof good - gl : 0, "%s%s", gl ? ", " : "", files[i]);
        if (i == 0) state_epoch = e;
        if (i == 1) latest_epoch = e;
        if (i == 3) best_epoch = e;
    }
    char latest_note[64] = "";
    if (latest_epoch >= 0 && latest_epoch != state_epoch)   /* killed between the two writes */
        snprintf(latest_note, sizeof latest_note, "; latest is epoch %d", latest_epoch);
    if (state_epoch < 0 && !badmsg[0])
        snprintf(out, cap, "no epoch of this run finished, so it saved no checkpoint in %s", dir);
    else if (state_epoch < 0)
        snprintf(out, cap, "the run's resumable state %s/dkd_state cannot be verified:%s", dir, badmsg);
    else
        snprintf(out, cap, "the last good epoch on disk is %d (%s/dkd_state%s): %s read back, every CRC-32 matches and "
                 "every tensor is finite%s%s; best is epoch %d",
                 state_epoch, dir, latest_note, good, badmsg[0] ? ";" : "", badmsg, best_epoch);
}

/* Stop a run whose loss, test metrics or weights stopped being finite: nothing of the
 * current epoch is saved, and the message says what is left on disk. */
static void stop_nonfinite(const char *dir, const char *what) {
    char left[1200];
    describe_last_good(dir, left, sizeof left);
    dkd_die("%s. Training stopped without saving anything of this epoch; %s. Continue from it with --resume "
            "and a lower --lr.", what, left);
}

/* Stop a run whose files of this epoch could not be written (a full disk, ...): every file
 * is written atomically, so each is the old or the new version; say which epoch is whole. */
static void stop_save_failed(const char *dir, int epoch) {
    char why[sizeof dkd_errbuf], left[1200];
    memcpy(why, dkd_errbuf, sizeof why);
    describe_last_good(dir, left, sizeof left);
    dkd_die("could not save epoch %d: %s. Training stopped; %s. Make room, then continue with --resume.", epoch, why, left);
}

/* worklog.txt is regenerated from log.csv (the source of truth) every epoch. */
typedef struct { int epoch; double lr, train_acc, train_loss, test_acc, test_top5, test_loss, img_s, secs, train_ce, train_kd; int test_n; } LogRow;

static int read_log(const char *dir, LogRow **rows_out, int max_epoch) {
    char path[DKD_PATH_MAX]; join_path(path, dir, "log.csv");
    FILE *f = fopen(path, "r");
    *rows_out = NULL;
    if (!f) return 0;
    char line[1024]; int n = 0, cap = 0; LogRow *rows = NULL;
    while (fgets(line, sizeof line, f)) {
        LogRow r;
        if (sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%d", &r.epoch, &r.lr, &r.train_acc, &r.train_loss,
                   &r.test_acc, &r.test_top5, &r.test_loss, &r.img_s, &r.secs, &r.train_ce, &r.train_kd, &r.test_n) != 12)
            continue;
        if (r.epoch > max_epoch) continue;
        if (n == cap) { cap = cap ? 2 * cap : 64; rows = (LogRow *)xrealloc(rows, (size_t)cap * sizeof(LogRow)); }
        rows[n++] = r;
    }
    fclose(f);
    *rows_out = rows;
    return n;
}

static int write_logs(const char *dir, const LogRow *rows, int n, int finished, double best) {
    size_t cap = 256 + (size_t)n * 256, len = 0;
    char *csv = (char *)xmalloc(cap), *wl = (char *)xmalloc(cap);
    len = (size_t)snprintf(csv, cap, "%s\n", DKD_LOG_CSV_HEADER_TRAIN);
    size_t wlen = 0;
    for (int i = 0; i < n; i++) {
        const LogRow *r = &rows[i];
        len += (size_t)snprintf(csv + len, cap - len, "%d,%.8g,%.4f,%.6f,%.4f,%.4f,%.6f,%.1f,%.1f,%.6f,%.6f,%d\n", r->epoch,
                                r->lr, r->train_acc, r->train_loss, r->test_acc, r->test_top5, r->test_loss, r->img_s, r->secs,
                                r->train_ce, r->train_kd, r->test_n);
        wlen += (size_t)snprintf(wl + wlen, cap - wlen,
                                 "-------------------------\nepoch: %d\nlr: %.2f\ntrain_acc: %.2f\ntrain_loss: %.2f\n"
                                 "test_acc: %.2f\ntest_acc_top5: %.2f\ntest_loss: %.2f\n-------------------------\n",
                                 r->epoch, r->lr, r->train_acc, r->train_loss, r->test_acc, r->test_top5, r->test_loss);
    }
    if (finished) wlen += (size_t)snprintf(wl + wlen, cap - wlen, "best_acc\t%.2f", best);
    char p1[DKD_PATH_MAX], p2[DKD_PATH_MAX];
    join_path(p1, dir, "log.csv");
    join_path(p2, dir, "worklog.txt");
    int r = write_file_atomic(p1, csv, len);
    if (r == 0) r = write_file_atomic(p2, wl, wlen);
    free(csv); free(wl);
    return r;
}

/* config.yaml: the resolved settings; a resumed run keeps the earlier command lines. */
static int write_config_record(const TrainOpts *o, int start_epoch) {
    char path[DKD_PATH_MAX];
    join_path(path, o->dir, "config.yaml");
    char **full = (char **)xmalloc((size_t)(o->argc + 1) * sizeof(char *));   /* the program, then "train ..." */
    full[0] = (char *)(dkd_argv0 ? dkd_argv0 : "dkd");
    memcpy(full + 1, o->argv, (size_t)o->argc * sizeof(char *));
    char *cmd = config_command_line(o->argc + 1, full);
    free(full);
    char *hdr = NULL; size_t hl = 0;
    FILE *h = open_memstream(&hdr, &hl);
    if (!h) dkd_die("out of memory");
    fprintf(h, "# The resolved settings of this run in mdistiller's schema (yacs): it loads with\n"
               "# mdistiller's tools/train.py --cfg and with ./dkd train --cfg.\n");
    size_t len = 0;
    unsigned char *old = start_epoch > 1 ? read_file(path, &len) : NULL;
    for (char *p = (char *)old; p && p < (char *)old + len;) {   /* earlier "# command" / "# resumed" lines */
        char *e = memchr(p, '\n', (size_t)((char *)old + len - p));
        size_t n = e ? (size_t)(e - p) : (size_t)((char *)old + len - p);
        if (!strncmp(p, "# command: ", 11) || !strncmp(p, "# resumed ", 10)) fprintf(h, "%.*s\n", (int)n, p);
        p += n + 1;
    }
    free(old);
    if (start_epoch > 1) fprintf(h, "# resumed at epoch %d: %s\n", start_epoch, cmd);
    else fprintf(h, "# command: %s\n", cmd);
    fprintf(h, "# dkd's own settings: seed %llu, train images %s, test images %s%s%s\n", (unsigned long long)o->seed,
            o->subset ? "the first --subset" : "all", o->test_subset ? "--test-subset (spread)" : "all",
            o->teacher_ckpt ? ", teacher checkpoint " : "", o->teacher_ckpt ? o->teacher_ckpt : "");
    fclose(h);
    int rc = config_write_yaml(&o->c, path, hdr);
    free(hdr); free(cmd);
    return rc;
}

/* -------------------------------------------------------------- the teacher */

static const char *find_teacher_ckpt(const TrainOpts *o) {
    static char path[DKD_PATH_MAX];
    if (o->teacher_ckpt) {
        if (!file_exists(o->teacher_ckpt)) dkd_die("--teacher-ckpt %s: no such file", o->teacher_ckpt);
        return o->teacher_ckpt;
    }
    char p1[DKD_PATH_MAX], p2[DKD_PATH_MAX];
    snprintf(p1, sizeof p1, "download_ckpts/cifar_teachers/%s_vanilla/ckpt_epoch_240.pth", o->c.teacher);
    snprintf(p2, sizeof p2, "%s/cifar100_baselines/vanilla,%s/student_best", o->c.prefix, short_name(o->c.teacher));
    if (file_exists(p1)) { snprintf(path, sizeof path, "%s", p1); return path; }
    if (file_exists(p2)) { snprintf(path, sizeof path, "%s", p2); return path; }
    fprintf(stderr,
            "dkd: error: no checkpoint for the teacher %s. Looked at:\n"
            "  --teacher-ckpt (not given)\n  %s (mdistiller's teachers)\n  %s (a teacher trained by dkd)\n"
            "Get one with:\n"
            "  scripts/get_teachers.sh            (mdistiller's released CIFAR-100 teachers)\n"
            "  ./dkd train %s                  (train the teacher yourself, 240 epochs)\n"
            "or pass --teacher-ckpt FILE.\n",
            o->c.teacher, p1, p2, short_name(o->c.teacher));
    exit(1);
}

/* ----------------------------------------------------------------- options */

static void train_usage(void) {
    printf(
        "usage: dkd train TEACHER STUDENT [flags] [KEY VALUE ...]   distill (DKD, or --method kd)\n"
        "       dkd train MODEL [flags] [KEY VALUE ...]             train MODEL alone with cross-entropy\n"
        "       dkd train --cfg FILE.yaml [flags] [KEY VALUE ...]   mdistiller's way: a config file\n"
        "Defaults are mdistiller's recipe for the pair (docs/recipe.md): its alpha/beta/T/warm-up/LR, batch 64,\n"
        "240 epochs, SGD momentum 0.9, weight decay 5e-4, LR x0.1 after epochs 150, 180, 210.\n"
        "--cfg reads a config in mdistiller's YAML schema (configs/cifar100/{dkd,kd,vanilla}/*.yaml ship\n"
        "with dkd; mdistiller's own files work too). KEY VALUE pairs then change single settings, as in\n"
        "mdistiller: SOLVER.BATCH_SIZE 128, SOLVER.LR_DECAY_STAGES [100,150], DKD.BETA 4.0. Keys dkd knows:\n"
        "EXPERIMENT.{PROJECT,NAME,TAG} DATASET.{TYPE,NUM_WORKERS,TEST.BATCH_SIZE} DISTILLER.{TYPE,TEACHER,STUDENT}\n"
        "SOLVER.{TRAINER,BATCH_SIZE,EPOCHS,LR,LR_DECAY_STAGES,LR_DECAY_RATE,WEIGHT_DECAY,MOMENTUM,TYPE}\n"
        "LOG.{TENSORBOARD_FREQ,SAVE_CHECKPOINT_FREQ,PREFIX,WANDB} KD.{TEMPERATURE,LOSS.CE_WEIGHT,LOSS.KD_WEIGHT}\n"
        "DKD.{CE_WEIGHT,ALPHA,BETA,T,WARMUP}; other keys are errors. As in mdistiller, the run folder is\n"
        "LOG.PREFIX/EXPERIMENT.PROJECT/<NAME or TAG> with \"KEY:VALUE\" of each pair appended.\n"
        "flags (each sets the setting named in brackets; flags and pairs apply in command-line order):\n"
        "  --cfg FILE             read the settings from a YAML config (instead of TEACHER STUDENT)\n"
        "  --method dkd|kd|ce     loss (default dkd with a teacher, ce without)      [DISTILLER.TYPE]\n"
        "  --epochs N             number of epochs (240)                             [SOLVER.EPOCHS]\n"
        "  --batch N              batch size (64)                                    [SOLVER.BATCH_SIZE]\n"
        "  --lr X                 base learning rate (the pair's: 0.05, or 0.01 for MobileNetV2/ShuffleNets) [SOLVER.LR]\n"
        "  --alpha X --beta X     DKD weights of TCKD and NCKD (1, the pair's beta)  [DKD.ALPHA, DKD.BETA]\n"
        "  --T X                  temperature (4)                      [DKD.T, or KD.TEMPERATURE with --method kd]\n"
        "  --warmup N             DKD warm-up epochs (20)                            [DKD.WARMUP]\n"
        "  --wd X                 weight decay (5e-4)                                [SOLVER.WEIGHT_DECAY]\n"
        "  --momentum X           SGD momentum (0.9)                                 [SOLVER.MOMENTUM]\n"
        "  --decay-stages a,b,c   increasing epochs after which the LR is multiplied by\n"
        "                         SOLVER.LR_DECAY_RATE (0.1): 150,180,210            [SOLVER.LR_DECAY_STAGES]\n"
        "  --save-every N         epochs between epoch_N/student_N checkpoints (40)  [LOG.SAVE_CHECKPOINT_FREQ]\n"
        "  --eval-batch N         batch size of the test-set evaluation (64)         [DATASET.TEST.BATCH_SIZE]\n"
        "  --seed N               seed of initialisation, shuffling and augmentation (0)\n"
        "  --data DIR             CIFAR-100 folder (else $DKD_DATA, else ./data)\n"
        "  --teacher-ckpt FILE    teacher weights (else download_ckpts/cifar_teachers/<t>_vanilla/ckpt_epoch_240.pth,\n"
        "                         else output/cifar100_baselines/vanilla,<t>/student_best)\n"
        "  --out DIR              run folder (default: see above, e.g. output/cifar100_baselines/dkd,res56,res20)\n"
        "  --threads N            CPU threads (all cores)\n"
        "  --device cpu|cuda|auto (auto: the GPU when present, else the CPU)\n"
        "  --subset N             train on the first N training images only (quick runs)\n"
        "  --test-subset N        evaluate on N test images spread evenly over the test set\n"
        "  --resume               continue the run in the run folder from its dkd_state; refused when a\n"
        "                         setting that changes what is trained or measured differs (--epochs and\n"
        "                         --lr may change)\n"
        "  --stop-after N         stop after epoch N as if killed (to test --resume)\n"
        "  --no-graph             on a GPU, run each training step and evaluation batch launch by launch\n"
        "                         instead of replaying it as one captured CUDA graph (same results; for\n"
        "                         debugging and profiling)\n"
        "Numbers are decimal (no hex, inf or nan). The run folder gets config.yaml (these settings and the\n"
        "command line), worklog.txt, log.csv, curves.png and mdistiller's checkpoints (latest, best,\n"
        "student_*, with the SGD state, so mdistiller can resume them).\n");
}

/* A yacs KEY on the command line: upper case, digits, '_' and at least one '.'. */
static int is_key_arg(const char *a) {
    if (!isupper((unsigned char)a[0]) || !strchr(a, '.')) return 0;
    for (const char *p = a; *p; p++)
        if (!(isupper((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' || *p == '.')) return 0;
    return 1;
}

/* The settings TEACHER STUDENT / MODEL stand for: what configs/cifar100/{dkd,vanilla}/ hold. */
static void apply_recipe(TrainOpts *o, const char *const *pos, int npos) {
    DkdConfig *c = &o->c;
    const ModelInfo *si = model_find(pos[npos - 1]), *ti = NULL;
    if (!si) dkd_die("unknown model '%s' (dkd list shows the 15 models and their aliases)", pos[npos - 1]);
    if (npos == 2 && !(ti = model_find(pos[0])))
        dkd_die("unknown teacher '%s' (dkd list shows the 15 models and their aliases)", pos[0]);
    snprintf(c->method, sizeof c->method, "%s", ti ? "DKD" : "NONE");
    snprintf(c->student, sizeof c->student, "%s", si->name);
    if (ti) snprintf(c->teacher, sizeof c->teacher, "%s", ti->name);
    snprintf(c->project, sizeof c->project, "cifar100_baselines");
    c->wd = 5e-4;
    const PairInfo *pp = ti ? pair_find(ti->name, si->name) : NULL;
    c->lr = pp ? pp->lr : (!strcmp(si->name, "MobileNetV2") || !strncmp(si->name, "Shuffle", 7)) ? 0.01 : 0.05;
    if (pp) { c->alpha = pp->alpha; c->beta = pp->beta; c->dkd_T = pp->T; c->warmup = pp->warmup; }
    if (ti && !pp)
        fprintf(stderr, "dkd: note: %s -> %s is not one of mdistiller's 11 pairs: using alpha %g, beta %g, T %g, LR %g\n",
                ti->name, si->name, c->alpha, c->beta, c->dkd_T, c->lr);
}

/* One flag with its value (argv[i], argv[i+1]) or a KEY VALUE pair. */
static void apply_flag(TrainOpts *o, const char *a, const char *v) {
    static const struct { const char *flag, *key; } keyed[] = {
        {"--epochs", "SOLVER.EPOCHS"}, {"--batch", "SOLVER.BATCH_SIZE"}, {"--lr", "SOLVER.LR"},
        {"--alpha", "DKD.ALPHA"}, {"--beta", "DKD.BETA"}, {"--warmup", "DKD.WARMUP"},
        {"--wd", "SOLVER.WEIGHT_DECAY"}, {"--momentum", "SOLVER.MOMENTUM"},
        {"--save-every", "LOG.SAVE_CHECKPOINT_FREQ"}, {"--eval-batch", "DATASET.TEST.BATCH_SIZE"}};
    for (size_t k = 0; k < sizeof keyed / sizeof keyed[0]; k++)
        if (!strcmp(a, keyed[k].flag)) { if (config_set(&o->c, keyed[k].key, v, a)) dkd_die("%s", dkd_errbuf); return; }
    if (is_key_arg(a)) {
        if (config_set(&o->c, a, v, "train")) dkd_die("%s", dkd_errbuf);
        size_t n = strlen(o->opts_suffix);   /* mdistiller: name += ",".join("KEY:VALUE") */
        int w = snprintf(o->opts_suffix + n, sizeof o->opts_suffix - n, "%s%s:%s", n ? "," : "", a, v);
        if (w < 0 || (size_t)w >= sizeof o->opts_suffix - n) dkd_die("too many KEY VALUE pairs for a run name; use --out DIR");
        for (char *p = o->opts_suffix + n; *p; p++) if (*p == '/') *p = '_';   /* never a sub-folder */
        return;
    }
    if (!strcmp(a, "--method")) {
        const char *type = !strcmp(v, "dkd") ? "DKD" : !strcmp(v, "kd") ? "KD" : (!strcmp(v, "ce") || !strcmp(v, "vanilla")) ? "NONE" : NULL;
        if (!type) dkd_die("--method expects dkd, kd or ce, got '%s'", v);
        if (config_set(&o->c, "DISTILLER.TYPE", type, a)) dkd_die("%s", dkd_errbuf);
    } else if (!strcmp(a, "--decay-stages")) {
        char list[512];
        if (snprintf(list, sizeof list, "[%s]", v) >= (int)sizeof list) dkd_die("--decay-stages: too long");
        if (!*v) dkd_die("--decay-stages expects increasing epochs like 150,180,210");
        if (config_set(&o->c, "SOLVER.LR_DECAY_STAGES", list, a)) dkd_die("%s", dkd_errbuf);
    } else if (!strcmp(a, "--T")) { double x; if (parse_number(a, v, 0, 1e-3, 1000, &x)) dkd_die("%s", dkd_errbuf); o->t_flag = v; }
    else if (!strcmp(a, "--seed")) o->seed = (uint64_t)int_flag(a, v, 0, 2147483647);
    else if (!strcmp(a, "--data")) o->data = str_flag(a, v);
    else if (!strcmp(a, "--teacher-ckpt")) o->teacher_ckpt = str_flag(a, v);
    else if (!strcmp(a, "--out")) o->out = str_flag(a, v);
    else if (!strcmp(a, "--threads")) o->threads = int_flag(a, v, 1, 1024);
    else if (!strcmp(a, "--device")) o->device = str_flag(a, v);
    else if (!strcmp(a, "--subset")) o->subset = int_flag(a, v, 1, CIFAR_TRAIN_N);
    else if (!strcmp(a, "--test-subset")) o->test_subset = int_flag(a, v, 1, CIFAR_TEST_N);
    else if (!strcmp(a, "--stop-after")) o->stop_after = int_flag(a, v, 1, CFG_MAX_EPOCHS);
    else if (!strcmp(a, "--cfg")) { /* read in the first pass */ }
    else dkd_die("train: unknown flag %s (see dkd train --help)", a);
}

/* Command line -> o. Returns 0, or the exit code when there is nothing to run (help: 0, usage: 2).
 * Pass 1 finds the models / --cfg (the base settings); pass 2 applies flags and KEY VALUE
 * pairs in order, so a later one wins, as in mdistiller's merge_from_list. */
static int parse_train_args(int argc, char **argv, TrainOpts *o) {
    memset(o, 0, sizeof *o);
    o->device = "auto"; o->argc = argc; o->argv = argv;
    const char *pos[2] = {NULL, NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { train_usage(); return -1; }
        if (!strcmp(a, "--resume")) { o->resume = 1; continue; }
        if (!strcmp(a, "--no-graph")) { o->no_graph = 1; continue; }
        if (is_key_arg(a) || (a[0] == '-' && a[1])) {
            if (i + 1 >= argc) dkd_die("train: %s needs a value (see dkd train --help)", a);
            if (!strcmp(a, "--cfg")) o->cfg_file = str_flag(a, argv[i + 1]);
            i++;
            continue;
        }
        if (o->n_models == 2) dkd_die("train: too many arguments ('%s'); see dkd train --help", a);
        pos[o->n_models++] = a;
    }
    config_defaults(&o->c);
    if (o->cfg_file && o->n_models) dkd_die("train: give either --cfg FILE or the models (TEACHER STUDENT / MODEL), not both");
    if (o->cfg_file) { if (config_load_file(&o->c, o->cfg_file)) dkd_die("%s", dkd_errbuf); }
    else if (o->n_models) apply_recipe(o, pos, o->n_models);
    else { train_usage(); return 2; }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--resume") || !strcmp(a, "--no-graph")) continue;
        if (is_key_arg(a) || (a[0] == '-' && a[1])) { apply_flag(o, a, argv[i + 1]); i++; }
    }
    /* resolve */
    DkdConfig *c = &o->c;
    o->method = !strcmp(c->method, "DKD") ? M_DKD : !strcmp(c->method, "KD") ? M_KD : M_CE;
    if (o->n_models == 1 && o->method != M_CE)
        dkd_die("--method %s needs a teacher: dkd train TEACHER STUDENT", o->method == M_KD ? "kd" : "dkd");
    if (o->n_models == 2 && o->method == M_CE) dkd_die("--method ce trains one model: dkd train MODEL");
    if (o->t_flag && config_set(c, o->method == M_KD ? "KD.TEMPERATURE" : "DKD.T", o->t_flag, "--T")) dkd_die("%s", dkd_errbuf);
    if (o->n_models && !config_is_set(c, "EXPERIMENT.TAG")) {
        const PairInfo *pp = o->method == M_DKD ? pair_find(c->teacher, c->student) : NULL;
        if (o->method == M_CE) snprintf(c->tag, sizeof c->tag, "vanilla,%s", short_name(c->student));
        else if (pp) snprintf(c->tag, sizeof c->tag, "%s", pp->tag);
        else snprintf(c->tag, sizeof c->tag, "%s,%s,%s", o->method == M_KD ? "kd" : "dkd", short_name(c->teacher), short_name(c->student));
    }
    int n;
    if (o->out) n = snprintf(o->dir, sizeof o->dir, "%s", o->out);
    else n = snprintf(o->dir, sizeof o->dir, "%s/%s/%s%s", c->prefix, c->project, c->name[0] ? c->name : c->tag, o->opts_suffix);
    if (n < 0 || n >= (int)sizeof o->dir - 64)
        dkd_die("the run folder name is %d characters long; dkd accepts up to %d (use a shorter --out)", n, (int)sizeof o->dir - 65);
    if (o->threads) dkd_set_threads(o->threads);
    return 0;
}

/* Before anything is loaded or trained: the run folder must be a writable folder,
 * or creatable (its nearest existing parent a writable folder); a fresh run refuses
 * a folder that already holds one, --resume needs one. Nothing is created here. */
static void check_run_dir(const TrainOpts *o) {
    struct stat st;
    char spath[DKD_PATH_MAX];
    join_path(spath, o->dir, "dkd_state");
    if (stat(o->dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) dkd_die("--out %s exists and is not a folder", o->dir);
        if (access(o->dir, W_OK | X_OK) != 0) dkd_die("cannot write into the run folder %s: %s", o->dir, strerror(errno));
    } else {
        char up[DKD_PATH_MAX];
        snprintf(up, sizeof up, "%s", o->dir);
        for (;;) {   /* the nearest existing parent */
            char *slash = strrchr(up, '/');
            while (slash && slash > up && slash[1] == 0) { *slash = 0; slash = strrchr(up, '/'); }   /* trailing '/' */
            if (!slash) { snprintf(up, sizeof up, "."); break; }
            if (slash == up) { up[1] = 0; break; }
            *slash = 0;
            if (stat(up, &st) == 0) break;
        }
        if (stat(up, &st) != 0 || !S_ISDIR(st.st_mode)) dkd_die("cannot create the run folder %s: %s is not a folder", o->dir, up);
        if (access(up, W_OK | X_OK) != 0) dkd_die("cannot create the run folder %s: %s is not writable", o->dir, up);
    }
    if (o->resume && !file_exists(spath)) dkd_die("--resume: %s holds no run to continue (no dkd_state)", o->dir);
    if (!o->resume && file_exists(spath))
        dkd_die("%s already holds a run: continue it with --resume, or choose another --out", o->dir);
}

/* ---------------------------------------------------------------- setting up */

static void setup_run(Run *r, const TrainOpts *o) {
    memset(r, 0, sizeof *r);
    r->o = o;
    r->be = backend_select(o->device);
    if (!r->be) dkd_die("%s", dkd_errbuf);
    if (backend_fell_back) fprintf(stderr, "dkd: no CUDA GPU found at run time: training on the CPU\n");
    const Backend *be = r->be;
    const char *ddir = cifar_find_dir(o->data);
    if (!ddir) dkd_die("%s", dkd_errbuf);
    if (cifar_load(ddir, 1, &r->tr) != 0) dkd_die("%s", dkd_errbuf);
    if (cifar_load(ddir, 0, &r->te) != 0) dkd_die("%s", dkd_errbuf);
    if (o->subset && o->subset < r->tr.n) r->tr.n = o->subset;
    take_spread(&r->te, o->test_subset);
    r->B = o->c.batch; r->EB = o->c.test_batch;
    int Bmax = r->B > r->EB ? r->B : r->EB;
    r->s = model_build(o->c.student);
    net_init_params(r->s, o->seed);
    if (o->method != M_CE) {
        r->teacher_path = find_teacher_ckpt(o);
        r->t = model_build(o->c.teacher);
        if (net_load_file(r->t, r->teacher_path) != 0) dkd_die("teacher: %s", dkd_errbuf);
        if (net_setup(r->t, be, r->B, 0)) dkd_die("%s", dkd_errbuf);
    }
    r->NC = net_num_classes(r->s);
    /* the data set on the device (the CPU backend uses the host copy directly) */
    r->d_train = r->tr.images; r->d_test = r->te.images;
    if (be->on_device) {
        r->d_train = (uint8_t *)be->alloc((size_t)r->tr.n * CIFAR_IMG_BYTES);
        be->upload(r->d_train, r->tr.images, (size_t)r->tr.n * CIFAR_IMG_BYTES);
        r->d_test = (uint8_t *)be->alloc((size_t)r->te.n * CIFAR_IMG_BYTES);
        be->upload(r->d_test, r->te.images, (size_t)r->te.n * CIFAR_IMG_BYTES);
    }
    r->d_train_lab = r->tr.labels;
    if (be->on_device) {
        r->d_train_lab = (int *)be->alloc((size_t)r->tr.n * sizeof(int));
        be->upload(r->d_train_lab, r->tr.labels, (size_t)r->tr.n * sizeof(int));
    }
    r->d_idx = (int *)be->alloc((size_t)Bmax * sizeof(int));
    r->perm = (int *)xmalloc((size_t)r->tr.n * sizeof(int));
    r->h_mom = (float *)xcalloc(r->s->n_params ? r->s->n_params : 1, sizeof(float));
    r->start_epoch = 1; r->best = -1; r->best_epoch = 0;
}

static void free_run(Run *r) {
    const Backend *be = r->be;
    if (be->on_device) { be->release(r->d_train); be->release(r->d_test); be->release(r->d_train_lab); }
    be->release(r->d_idx);
    train_step_free(&r->ts);
    free(r->perm); free(r->h_mom);
    net_free(r->s); net_free(r->t);
    cifar_free(&r->tr); cifar_free(&r->te);
}

/* ------------------------------------------------------------------- resume */

/* A saved setting as the user knows it: a model or method name, else the number. */
static const char *setting_text(const char *key, double v, char buf[64]) {
    static const char *methods[] = {"DKD", "KD", "NONE (cross-entropy)"};
    int i = (int)v, whole = v == floor(v);
    if ((!strcmp(key, "student") || !strcmp(key, "teacher")) && whole && i >= 0 && i < n_models) snprintf(buf, 64, "%s", model_table[i].name);
    else if (!strcmp(key, "teacher") && v == -1) snprintf(buf, 64, "none");
    else if (!strcmp(key, "method") && whole && i >= 0 && i < 3) snprintf(buf, 64, "%s", methods[i]);
    else snprintf(buf, 64, "%.15g", v);
    return buf;
}

/* A saved number that must be an integer in [lo, hi]; anything else means a damaged state. */
static int saved_int(const PthDict *st, const char *spath, const char *key, double lo, double hi) {
    double v = pth_scalar(st, key);
    if (isnan(v)) dkd_die("--resume: %s has no '%s': it is damaged or not a dkd run state", spath, key);
    if (!(v >= lo && v <= hi) || v != floor(v))
        dkd_die("--resume: %s holds %s = %.15g, not an integer in [%.15g, %.15g]: the file is damaged; start a new run", spath, key, v, lo, hi);
    return (int)v;
}

/* Continue from dir/dkd_state: weights through the checkpoint loader, momentum,
 * epoch and best accuracy, after checking every setting that changes what is
 * trained or measured. Returns 0, or 1 when the run has already finished. */
static int resume_run(Run *r, int epochs) {
    const TrainOpts *o = r->o;
    char spath[DKD_PATH_MAX];
    join_path(spath, o->dir, "dkd_state");
    PthDict st;
    if (pth_read(spath, &st) != 0) dkd_die("--resume: cannot read %s: %s", spath, dkd_errbuf);
    Setting set[MAX_SETTINGS];
    int ns = run_settings(r, set);
    for (int i = 0; i < ns; i++) {
        double got = pth_scalar(&st, set[i].key), want = set[i].value;
        if (isnan(got)) dkd_die("--resume: %s does not record %s (a state written by an older dkd?): start a new run", spath, set[i].what);
        if (!(fabs(got - want) <= 1e-9 * fabs(want))) {
            char was[64], now[64];
            dkd_die("--resume: %s was %s in the saved run but is %s now; resume with the same settings, or start a new run "
                    "in another --out", set[i].what, setting_text(set[i].key, got, was), setting_text(set[i].key, want, now));
        }
    }
    int epoch = saved_int(&st, spath, "epoch", 1, CFG_MAX_EPOCHS);
    int best_epoch = saved_int(&st, spath, "best_epoch", 1, epoch);
    double best = pth_scalar(&st, "best_acc");
    if (!(best >= 0 && best <= 100)) dkd_die("--resume: %s holds best_acc = %g, not a percentage: the file is damaged", spath, best);
    if (epoch > epochs) dkd_die("--resume: the saved run has finished epoch %d, beyond --epochs / SOLVER.EPOCHS %d", epoch, epochs);
    if (net_load_dict(r->s, &st) != 0) dkd_die("--resume: %s: %s", spath, dkd_errbuf);
    for (int i = 0; i < r->s->n_pinfo; i++) {
        const ParamInfo *pi = &r->s->pinfo[i];
        if (pi->kind != PK_PARAM) continue;
        char key[160]; snprintf(key, sizeof key, "momentum.%s", pi->name);
        const PthTensor *tt = pth_get(&st, key);
        if (!tt || tt->numel != pi->numel || tt->dtype != DT_F32) dkd_die("--resume: %s lacks a valid %s", spath, key);
        memcpy(r->h_mom + pi->off, tt->data, pi->numel * sizeof(float));
    }
    double old_lr = pth_scalar(&st, "lr");
    if (fabs(old_lr - o->c.lr) > 1e-9 * fabs(old_lr))
        printf("note: the saved run used --lr %g, continuing with --lr %g (not bit-identical to an uninterrupted run)\n", old_lr, o->c.lr);
    pth_dict_free(&st);
    r->start_epoch = epoch + 1; r->best = best; r->best_epoch = best_epoch;
    if (epoch == epochs) {
        printf("%s has already finished its %d epochs (best test top-1 %.2f at epoch %d): nothing to do\n", o->dir, epochs, best, best_epoch);
        return 1;
    }
    printf("resuming %s at epoch %d (best test top-1 so far %.2f)\n", o->dir, r->start_epoch, best);
    return 0;
}

/* ------------------------------------------------------------ one epoch */

/* The training step of net s (the run's student, or a scratch copy when timing) over
 * the run's training images; the run's --no-graph decides whether a CUDA step is
 * replayed as a graph. */
static void step_init(Run *r, TrainStep *ts, Net *s, int B) {
    const TrainOpts *o = r->o;
    if (train_step_init(ts, r->be, s, r->t, loss_kind(o), B, r->tr.n, r->d_train, r->d_train_lab, o->seed,
                        (float)o->c.momentum, (float)o->c.wd))
        dkd_die("%s", dkd_errbuf);
    if (o->no_graph) ts->use_graph = 0;
}

/* Seconds of one epoch (training + evaluation) at the measured speeds. */
static double epoch_seconds(const Run *r, double train_ips) { return r->tr.n / train_ips + r->te.n / r->eval_ips; }

/* Time remaining during an epoch: the rest of its training, its evaluation, the epochs after it. */
static double eta_run(const Run *r, int epoch, long seen, double train_ips) {
    return (r->tr.n - seen) / train_ips + r->te.n / r->eval_ips + (double)(r->o->c.epochs - epoch) * epoch_seconds(r, train_ips);
}

/* One epoch of steps. The loss and accuracy of each step come from the step's record
 * (train_step_results), summed in step order as they always were. On the CPU the record
 * is read after each step's forward half, and a non-finite loss stops the run before
 * its update. On a device the host reads the record only at the progress lines and at
 * the epoch's end (one wait each, none per step): a non-finite loss is then reported
 * at the step where it first appeared, though the steps after it have run; as on the
 * CPU, nothing of the epoch is saved. */
static void train_epoch(Run *r, int epoch, EpochStats *es) {
    const TrainOpts *o = r->o;
    const Backend *be = r->be;
    TrainStep *ts = &r->ts;
    int B = r->B, steps = (r->tr.n + B - 1) / B;
    es->lr = epoch_lr(o, epoch);
    cifar_epoch_order(r->perm, r->tr.n, o->seed, epoch);
    train_step_epoch(ts, r->perm, epoch, es->lr, loss_params(o, epoch));
    LossValue *lv = (LossValue *)xmalloc((size_t)steps * sizeof(LossValue));
    double t0 = now_seconds(), loss_sum = 0, ce_sum = 0, kd_sum = 0;
    long correct = 0, seen = 0;
    int summed = 0;   /* steps whose results are in the sums */
    for (int st = 0; st < steps; st++) {
        int off = st * B, nb = r->tr.n - off < B ? r->tr.n - off : B;
        if (be->on_device) train_step_run(ts, nb);
        else train_step_forward(ts, nb);
        int due = progress_due(st + 1 == steps);
        if (!be->on_device || due || st + 1 == steps) {
            train_step_results(ts, summed, st + 1, lv + summed, &correct);
            for (int k = summed; k <= st; k++) {
                int kb = r->tr.n - k * B < B ? r->tr.n - k * B : B;
                if (!isfinite(lv[k].total)) {
                    progress_end_line();
                    char what[200];
                    snprintf(what, sizeof what, "the loss became %s at epoch %d, step %d (ce %g, kd %g)",
                             isnan(lv[k].total) ? "NaN" : "infinite", epoch, k + 1, lv[k].ce, lv[k].distill);
                    stop_nonfinite(o->dir, what);   /* the CPU: before the step's update */
                }
                loss_sum += lv[k].total * kb; ce_sum += lv[k].ce * kb; kd_sum += lv[k].distill * kb; seen += kb;
            }
            summed = st + 1;
        }
        if (!be->on_device) train_step_update(ts, nb);
        if (due) {
            double ips = seen / fmax(now_seconds() - t0, 1e-9);
            char e1[32], e2[32];
            double left_ep = (r->tr.n - seen) / ips + (r->eval_ips > 0 ? r->te.n / r->eval_ips : 0);
            fprintf(stderr, "%sepoch %d/%d step %d/%d | %.0f img/s | loss %.4f | train acc %.2f | ETA epoch %s%s, run %s%s",
                    progress.tty ? "\r" : "", epoch, o->c.epochs, st + 1, steps, ips, loss_sum / seen, 100.0 * correct / seen,
                    hms(left_ep, e1, sizeof e1), r->eval_ips > 0 ? "" : " + evaluation",
                    r->eval_ips > 0 ? hms(eta_run(r, epoch, seen, ips), e2, sizeof e2) : "known after the first evaluation",
                    progress.tty ? "   " : "\n");
            progress.shown = 1;
        }
    }
    free(lv);
    progress_end_line();
    es->secs = now_seconds() - t0;
    es->img_s = seen / es->secs;
    es->loss = loss_sum / seen;
    es->ce = ce_sum / seen;
    es->kd = kd_sum / seen;
    es->acc = 100.0 * correct / seen;
}

/* Training and evaluation speed of this run's models on this machine, measured on a
 * scratch copy of the student (the run's own weights are not touched): a few steps. */
static void measure_speeds(Run *r, double *train_ips, double *eval_ips) {
    const Backend *be = r->be;
    int B = r->B < r->tr.n ? r->B : r->tr.n, EB = r->EB < r->te.n ? r->EB : r->te.n;
    Net *s = model_build(r->s->model);
    net_init_params(s, r->o->seed + 1);
    if (net_setup(s, be, r->B > r->EB ? r->B : r->EB, 1)) dkd_die("%s", dkd_errbuf);
    int *order = (int *)xmalloc((size_t)r->tr.n * sizeof(int));
    for (int i = 0; i < r->tr.n; i++) order[i] = i;
    TrainStep ts;
    step_init(r, &ts, s, B);
    train_step_epoch(&ts, order, 1, 0.0f, loss_params(r->o, 1));
    train_step_run(&ts, B);   /* warm-up: first-touch of the buffers (and the graph's capture) */
    be->sync();
    double t0 = now_seconds();
    enum { TIMED_STEPS = 2 };
    for (int k = 0; k < TIMED_STEPS; k++) {
        be->zero(ts.step, sizeof(int));   /* the first batch again: the record has ts.steps slots */
        train_step_run(&ts, B);
    }
    be->sync();
    train_step_free(&ts);
    *train_ips = (double)TIMED_STEPS * B / fmax(now_seconds() - t0, 1e-9);
    progress.quiet = 1;
    EvalResult ev;
    evaluate(s, r->d_test, r->d_idx, r->te.labels, EB, EB, !r->o->no_graph, &ev);   /* warm-up */
    int m = 2 * EB < r->te.n ? 2 * EB : r->te.n;
    evaluate(s, r->d_test, r->d_idx, r->te.labels, m, EB, !r->o->no_graph, &ev);    /* a fresh model: only its speed counts */
    progress.quiet = 0;
    *eval_ips = ev.img_s;
    free(order);
    net_free(s);
}

/* ------------------------------------------------------------- saving */

static void save_epoch(Run *r, int epoch, const EpochStats *es, const EvalResult *ev) {
    const TrainOpts *o = r->o;
    const char *dir = o->dir;
    net_to_host(r->s);
    r->be->download(r->h_mom, r->s->mom, r->s->n_params * sizeof(float));
    char msg[400];
    if (nonfinite_param(r->s, msg, sizeof msg)) {   /* never save weights that are not finite */
        char what[sizeof msg + 64];
        snprintf(what, sizeof what, "after epoch %d, parameter %s", epoch, msg);
        stop_nonfinite(dir, what);
    }
    /* logs first (log.csv is the source of truth), then checkpoints, then the resumable state last */
    LogRow *rows; int nrows = read_log(dir, &rows, epoch - 1);
    rows = (LogRow *)xrealloc(rows, (size_t)(nrows + 1) * sizeof(LogRow));
    rows[nrows++] = (LogRow){epoch, es->lr, es->acc, es->loss, ev->top1, ev->top5, ev->loss, es->img_s, es->secs, es->ce, es->kd, r->te.n};
    if (write_logs(dir, rows, nrows, epoch == o->c.epochs, r->best) != 0) stop_save_failed(dir, epoch);
    free(rows);
    char p[DKD_PATH_MAX];
    join_path(p, dir, "latest");
    if (save_full(p, r, epoch, es->lr) || save_student(dir, "student_latest", r->s)) stop_save_failed(dir, epoch);
    if (epoch % o->c.save_every == 0) {
        char nm[64];
        snprintf(nm, sizeof nm, "epoch_%d", epoch);
        join_path(p, dir, nm);
        snprintf(nm, sizeof nm, "student_%d", epoch);
        if (save_full(p, r, epoch, es->lr) || save_student(dir, nm, r->s)) stop_save_failed(dir, epoch);
    }
    if (r->best_epoch == epoch) {
        join_path(p, dir, "best");
        if (save_full(p, r, epoch, es->lr) || save_student(dir, "student_best", r->s)) stop_save_failed(dir, epoch);
    }
    if (save_state(dir, r, epoch) != 0) stop_save_failed(dir, epoch);
    if (plot_run_curves(dir) != 0) fprintf(stderr, "dkd: warning: could not draw %s/curves.png: %s\n", dir, dkd_errbuf);
}

/* ----------------------------------------------------------------- `train` */

/* `dkd train MODEL` trains without a teacher: say so, with the time it will take
 * (measured on a scratch copy; skipped for runs too short to be worth the few steps). */
static void announce_from_scratch(Run *r) {
    const TrainOpts *o = r->o;
    enum { MIN_STEPS_TO_MEASURE = 150 };
    long steps = (long)o->c.epochs * ((r->tr.n + r->B - 1) / r->B);
    printf("note: no teacher given: this trains %s from scratch with cross-entropy for %d epochs (how teachers\n"
           "  are made; to distill a student: dkd train TEACHER STUDENT).", o->c.student, o->c.epochs);
    if (steps >= MIN_STEPS_TO_MEASURE) {
        double tips, eips; char eta[32];
        measure_speeds(r, &tips, &eips);
        r->eval_ips = eips;
        printf(" Estimated time %s (measured here: %.0f img/s\n  training, %.0f img/s evaluation).",
               hms(o->c.epochs * (r->tr.n / tips + r->te.n / eips), eta, sizeof eta), tips, eips);
    }
    printf("\n");
    fflush(stdout);
}

static void print_run_header(const Run *r) {
    const TrainOpts *o = r->o;
    const DkdConfig *c = &o->c;
    const char *mname = o->method == M_DKD ? "DKD" : o->method == M_KD ? "KD" : "CE (vanilla)";
    int th = dkd_num_threads();
    printf("dkd train: %s%s%s with %s on %s (%d thread%s)\n", r->t ? c->teacher : "", r->t ? " -> " : "", c->student, mname,
           r->be->name, th, th == 1 ? "" : "s");
    if (r->teacher_path) printf("  teacher weights: %s\n", r->teacher_path);
    printf("  data: %d train, %d test images  run folder: %s\n", r->tr.n, r->te.n, o->dir);
    printf("  epochs %d, batch %d, lr %g (x%g after", c->epochs, c->batch, c->lr, c->decay_rate);
    for (int k = 0; k < c->n_stages; k++) printf("%s%d", k ? "/" : " ", c->stages[k]);
    printf("%s), wd %g, momentum %g", c->n_stages ? "" : " no epoch", c->wd, c->momentum);
    if (o->method == M_DKD) printf(", alpha %g, beta %g, T %g, warm-up %d", c->alpha, c->beta, c->dkd_T, c->warmup);
    if (o->method == M_KD) printf(", T %d, CE weight %g, KD weight %g", c->kd_T, c->kd_ce_weight, c->kd_kd_weight);
    printf(", seed %llu\n", (unsigned long long)o->seed);
    fflush(stdout);
}

int cmd_train(int argc, char **argv) {
    static TrainOpts o;   /* large (paths): not on the stack */
    int rc = parse_train_args(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    check_run_dir(&o);
    progress.tty = isatty(2);
    Run r;
    setup_run(&r, &o);
    if (mkdir_p(o.dir) != 0) dkd_die("run folder: %s", dkd_errbuf);
    if (o.resume && resume_run(&r, o.c.epochs)) { free_run(&r); return 0; }
    if (net_setup(r.s, r.be, r.B > r.EB ? r.B : r.EB, 1)) dkd_die("%s", dkd_errbuf);
    if (o.resume) r.be->upload(r.s->mom, r.h_mom, r.s->n_params * sizeof(float));
    step_init(&r, &r.ts, r.s, r.B);
    print_run_header(&r);
    if (o.method == M_CE && !o.resume) announce_from_scratch(&r);
    if (write_config_record(&o, r.start_epoch) != 0) dkd_die("%s", dkd_errbuf);

    double run_t0 = now_seconds();
    int last_epoch = r.start_epoch - 1;
    for (int epoch = r.start_epoch; epoch <= o.c.epochs; epoch++) {
        EpochStats es;
        train_epoch(&r, epoch, &es);
        EvalResult ev;
        if (evaluate(r.s, r.d_test, r.d_idx, r.te.labels, r.te.n, r.EB, !o.no_graph, &ev) != 0) {
            char what[sizeof dkd_errbuf + 64];
            snprintf(what, sizeof what, "the test metrics of epoch %d cannot be computed: %s", epoch, dkd_errbuf);
            stop_nonfinite(o.dir, what);
        }
        r.eval_ips = ev.img_s;
        if (ev.top1 >= r.best) { r.best = ev.top1; r.best_epoch = epoch; }   /* mdistiller: ties rewrite best too */
        char eta[32];
        printf("epoch %3d | lr %.5g | train loss %.4f acc %.2f | test loss %.4f top-1 %.2f top-5 %.2f | best %.2f | %.0f img/s, %.0fs"
               " | ETA run %s\n", epoch, es.lr, es.loss, es.acc, ev.loss, ev.top1, ev.top5, r.best, es.img_s, es.secs,
               hms((o.c.epochs - epoch) * epoch_seconds(&r, es.img_s), eta, sizeof eta));
        fflush(stdout);
        save_epoch(&r, epoch, &es, &ev);
        last_epoch = epoch;
        if (o.stop_after && epoch >= o.stop_after && epoch < o.c.epochs) {
            printf("stopping after epoch %d as asked (--stop-after); continue with --resume\n", epoch);
            break;
        }
    }
    if (last_epoch >= o.c.epochs)
        printf("done: best test top-1 %.2f (epoch %d), %.1f min; run folder %s\n", r.best, r.best_epoch,
               (now_seconds() - run_t0) / 60, o.dir);
    free_run(&r);
    return 0;
}

/* ------------------------------------------------------------------ `eval` */

static void eval_usage(void) {
    printf("usage: dkd eval -m MODEL [-c CKPT] [-d cifar100] [-bs N] [--data DIR] [--device cpu|cuda|auto]\n"
           "                [--threads N] [--test-subset N] [--no-graph]\n"
           "       dkd eval MODEL -c CKPT ...      (the model may also come first, without -m)\n"
           "  Top-1, top-5 and cross-entropy of MODEL with the weights of CKPT on the CIFAR-100 test set,\n"
           "  with mdistiller's tools/eval.py flags:\n"
           "  -m, --model MODEL      a model name or alias (dkd list)\n"
           "  -c, --ckpt CKPT        any mdistiller checkpoint ({'model': state_dict}, zip or legacy format, with\n"
           "                         or without 'module.' / 'module.student.' prefixes) or one of ours; without\n"
           "                         -c (or -c pretrain) a teacher's released weights are used:\n"
           "                         download_ckpts/cifar_teachers/<MODEL>_vanilla/ckpt_epoch_240.pth\n"
           "  -d, --dataset NAME     cifar100 (the only data set dkd has)\n"
           "  -bs, --batch-size N    evaluation batch size (64)\n"
           "  --no-graph             on a GPU, run every batch launch by launch (default: the batch captured\n"
           "                         once as a CUDA graph and replayed; the same results)\n");
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *ckpt = NULL, *data = NULL, *device = "auto";
    int B = 64, threads = 0, test_subset = 0, no_graph = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { eval_usage(); return 0; }
        if (!strcmp(a, "--no-graph")) { no_graph = 1; continue; }
        if (a[0] != '-') { if (model) dkd_die("eval: unexpected argument '%s' (see dkd eval --help)", a); model = a; continue; }
        if (i + 1 >= argc) dkd_die("eval: %s needs a value (see dkd eval --help)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "-c") || !strcmp(a, "--ckpt")) ckpt = str_flag(a, v);
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = str_flag(a, v);
        else if (!strcmp(a, "-d") || !strcmp(a, "--dataset")) {
            if (strcmp(v, "cifar100")) dkd_die("%s %s: dkd evaluates on cifar100 only", a, v);
        }
        else if (!strcmp(a, "--data")) data = str_flag(a, v);
        else if (!strcmp(a, "--batch") || !strcmp(a, "-bs") || !strcmp(a, "--batch-size")) B = int_flag(a, v, 1, 4096);
        else if (!strcmp(a, "--device")) device = str_flag(a, v);
        else if (!strcmp(a, "--threads")) threads = int_flag(a, v, 1, 1024);
        else if (!strcmp(a, "--test-subset")) test_subset = int_flag(a, v, 1, CIFAR_TEST_N);
        else dkd_die("eval: unknown flag %s (see dkd eval --help)", a);
    }
    if (!model) { eval_usage(); return 2; }
    const ModelInfo *mi = model_find(model);
    if (!mi) dkd_die("unknown model '%s' (dkd list shows the 15 models and their aliases)", model);
    char tp[DKD_PATH_MAX];
    if (!ckpt || !strcmp(ckpt, "pretrain")) {
        if (!mi->is_teacher)
            dkd_die("no checkpoint given: pass -c FILE (%s is not one of mdistiller's released teachers, so there is no "
                    "pretrained file to fall back on)", mi->name);
        snprintf(tp, sizeof tp, "download_ckpts/cifar_teachers/%s_vanilla/ckpt_epoch_240.pth", mi->name);
        if (!file_exists(tp)) dkd_die("no checkpoint given (-c FILE) and %s does not exist (scripts/get_teachers.sh fetches it)", tp);
        ckpt = tp;
    }
    if (threads) dkd_set_threads(threads);
    const Backend *be = backend_select(device);
    if (!be) dkd_die("%s", dkd_errbuf);
    Net *n = model_build(mi->name);
    if (net_load_file(n, ckpt) != 0) dkd_die("%s", dkd_errbuf);
    const char *ddir = cifar_find_dir(data);
    if (!ddir) dkd_die("%s", dkd_errbuf);
    CifarSplit te;
    if (cifar_load(ddir, 0, &te) != 0) dkd_die("%s", dkd_errbuf);
    take_spread(&te, test_subset);
    net_setup(n, be, B, 0);
    uint8_t *d_test = te.images;
    if (be->on_device) {
        d_test = (uint8_t *)be->alloc((size_t)te.n * CIFAR_IMG_BYTES);
        be->upload(d_test, te.images, (size_t)te.n * CIFAR_IMG_BYTES);
    }
    int *d_idx = (int *)be->alloc((size_t)B * sizeof(int));
    progress.tty = isatty(2);
    EvalResult ev;
    if (evaluate(n, d_test, d_idx, te.labels, te.n, B, !no_graph, &ev) != 0)
        dkd_die("eval of %s with %s: %s. No accuracy is reported.", mi->name, ckpt, dkd_errbuf);
    printf("%s  %s\n  test images %d | top-1 %.2f | top-5 %.2f | loss %.4f | %.0f img/s (%s, %d thread%s, batch %d)\n",
           mi->name, ckpt, te.n, ev.top1, ev.top5, ev.loss, ev.img_s, be->name, dkd_num_threads(),
           dkd_num_threads() == 1 ? "" : "s", B);
    if (be->on_device) be->release(d_test);
    be->release(d_idx);
    net_free(n); cifar_free(&te);
    return 0;
}
