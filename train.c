/* train.c — `dkd train` and `dkd eval`: mdistiller's recipe (SPEC §2) as a loop.
 *
 * One run:
 *   for epoch = 1..E (1-based, as mdistiller):
 *     lr   = LR * 0.1^(number of decay stages s with epoch > s)       SPEC §2.4
 *     warm = min(epoch / WARMUP, 1)                                    SPEC §2.5
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
 * Files of a run (mdistiller's layout, output/cifar100_baselines/<tag>/):
 *   worklog.txt      mdistiller's per-epoch blocks, then "best_acc\t.."
 *   log.csv          the same numbers, machine-readable (plots read it)
 *   curves.png       loss/accuracy curves, redrawn every epoch
 *   student_latest, student_best, student_<E> (E = 40, 80, ...)
 *                    {"model": state_dict} — torch.load-able, mdistiller's eval format
 *   latest, epoch_<E> {"epoch", "model" (module.student.* [+ module.teacher.*]),
 *                    "best_acc"} — like mdistiller's full state (without its optimizer dict)
 *   dkd_state        our resumable state: weights, BN statistics, momentum,
 *                    epoch, best accuracy, seed and the run's settings
 * Every file is written atomically (temp file + rename): a killed run leaves the
 * previous good files intact, and --resume continues bit-identically.
 */
#include "dkd.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { M_DKD, M_KD, M_CE };

typedef struct {
    const char *teacher, *student;   /* mdistiller names (teacher NULL for vanilla) */
    int method;
    int epochs, batch, warmup, subset, test_subset, threads, save_every;
    float lr, alpha, beta, T, wd, momentum, ce_weight, kd_weight;
    int stages[3];
    uint64_t seed;
    const char *data, *teacher_ckpt, *out, *device;
    int resume, stop_after;
} TrainOpts;

/* ---------------------------------------------------------------- helpers */

static int parse_int(const char *flag, const char *v, int lo, int hi) {
    char *end; errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) dkd_die("%s expects an integer in [%d, %d], got '%s'", flag, lo, hi, v);
    return (int)x;
}
static float parse_float(const char *flag, const char *v, double lo, double hi) {
    char *end; errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || end == v || !(x >= lo && x <= hi)) dkd_die("%s expects a number in [%g, %g], got '%s'", flag, lo, hi, v);
    return (float)x;
}

static int mkdir_p(const char *path) {
    char buf[1024];
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
        memmove(sp->images + (size_t)i * 3072, sp->images + (size_t)j * 3072, 3072);
        sp->labels[i] = sp->labels[j];
    }
    sp->n = m;
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
    n->be->augment_batch(n->x, d_images, d_idx, nb, 0, 0, 0);
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
 * then names the first parameter or layer where the non-finite values start. */
static int evaluate(Net *n, const uint8_t *d_images, int *d_idx, const int *labels, int count, int B, EvalResult *out) {
    const Backend *be = n->be;
    int NC = net_num_classes(n);
    float *logits = (float *)xmalloc((size_t)B * NC * sizeof(float));
    float *rows = (float *)xmalloc((size_t)B * 3 * sizeof(float));
    int *hidx = (int *)xmalloc((size_t)B * sizeof(int));
    long c1 = 0, c5 = 0; double loss = 0;
    double t0 = now_seconds();
    int rc = 0;
    for (int s = 0; s < count; s += B) {
        int nb = count - s < B ? count - s : B;
        for (int b = 0; b < nb; b++) hidx[b] = s + b;
        be->upload(d_idx, hidx, (size_t)nb * sizeof(int));
        be->augment_batch(n->x, d_images, d_idx, nb, 0, 0, 0);
        float *z = net_forward(n, nb, 0);
        be->download(logits, z, (size_t)nb * NC * sizeof(float));
        LossParams lp = {1.0f, 0.0f, 1.0f, 0.0f, 1.0f, 0.0f};
        ce_loss_cpu(NULL, rows, logits, labels + s, nb, NC, lp);
        LossValue lv = loss_total(LOSS_CE, rows, nb, lp);
        size_t bad = first_nonfinite(logits, (size_t)nb * NC);
        if (bad < (size_t)nb * NC) {
            char where[sizeof dkd_errbuf];
            locate_nonfinite(n, d_images, d_idx, nb);
            memcpy(where, dkd_errbuf, sizeof where);
            rc = dkd_fail("the logits of test images %d..%d are not finite (image %d, class %d: %g): %s", s, s + nb - 1,
                          s + (int)(bad / NC), (int)(bad % NC), (double)logits[bad], where);
            break;
        }
        if (!isfinite(lv.ce)) {
            rc = dkd_fail("test images %d..%d: the logits are finite but their cross-entropy is %g", s, s + nb - 1, lv.ce);
            break;
        }
        loss += lv.ce * nb;
        for (int b = 0; b < nb; b++) {
            const float *r = logits + (size_t)b * NC;
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
    free(logits); free(rows); free(hidx);
    return rc;
}

/* --------------------------------------------------------------- run state */

static int save_state(const char *dir, const Net *s, const TrainOpts *o, int epoch, double best, int best_epoch) {
    /* every state_dict entry as "student.<k>", every parameter's momentum as "momentum.<k>" */
    int np = s->n_pinfo;
    int64_t *shapes = (int64_t *)xmalloc((size_t)np * 4 * sizeof(int64_t));
    PthTensorRef *refs = net_state_refs(s, shapes);
    PthTensorRef *all = (PthTensorRef *)xmalloc((size_t)2 * np * sizeof(PthTensorRef));
    char **names = (char **)xmalloc((size_t)2 * np * sizeof(char *));
    float *hmom = (float *)xmalloc(s->n_params * sizeof(float));
    s->be->download(hmom, s->mom, s->n_params * sizeof(float));
    int k = 0;
    for (int i = 0; i < np; i++) {
        names[k] = (char *)xmalloc(strlen(refs[i].name) + 16);
        sprintf(names[k], "student.%s", refs[i].name);
        all[k] = refs[i]; all[k].name = names[k]; k++;
    }
    for (int i = 0; i < np; i++) {
        const ParamInfo *pi = &s->pinfo[i];
        if (pi->kind != PK_PARAM) continue;
        names[k] = (char *)xmalloc(strlen(pi->name) + 16);
        sprintf(names[k], "momentum.%s", pi->name);
        all[k] = refs[i]; all[k].name = names[k]; all[k].data = hmom + pi->off; k++;
    }
    PthItem items[] = {
        {"model", PI_STATE_DICT, 0, 0, all, k},   /* "model" is what pth_read returns */
        {"epoch", PI_INT, epoch, 0, NULL, 0},
        {"best_acc", PI_FLOAT, 0, best, NULL, 0},
        {"best_epoch", PI_INT, best_epoch, 0, NULL, 0},
        {"seed", PI_INT, (int64_t)o->seed, 0, NULL, 0},
        {"method", PI_INT, o->method, 0, NULL, 0},
        {"batch", PI_INT, o->batch, 0, NULL, 0},
        {"subset", PI_INT, o->subset, 0, NULL, 0},
        {"lr", PI_FLOAT, 0, o->lr, NULL, 0},
        {"alpha", PI_FLOAT, 0, o->alpha, NULL, 0},
        {"beta", PI_FLOAT, 0, o->beta, NULL, 0},
        {"T", PI_FLOAT, 0, o->T, NULL, 0},
        {"warmup", PI_INT, o->warmup, 0, NULL, 0},
        {"wd", PI_FLOAT, 0, o->wd, NULL, 0},
    };
    char path[1100];
    snprintf(path, sizeof path, "%s/dkd_state", dir);
    int r = pth_write(path, items, (int)(sizeof items / sizeof items[0]));
    for (int i = 0; i < k; i++) free(names[i]);
    free(names); free(all); free(refs); free(shapes); free(hmom);
    return r;
}

/* A state_dict item whose names carry a prefix (module.student., module.teacher.). */
static PthTensorRef *prefixed_refs(const Net *n, const char *prefix, int64_t **shape_out, char ***names_out) {
    int np = n->n_pinfo;
    int64_t *shapes = (int64_t *)xmalloc((size_t)np * 4 * sizeof(int64_t));
    PthTensorRef *refs = net_state_refs(n, shapes);
    char **names = (char **)xmalloc((size_t)np * sizeof(char *));
    for (int i = 0; i < np; i++) {
        names[i] = (char *)xmalloc(strlen(refs[i].name) + strlen(prefix) + 1);
        sprintf(names[i], "%s%s", prefix, refs[i].name);
        refs[i].name = names[i];
    }
    *shape_out = shapes; *names_out = names;
    return refs;
}

static int save_full(const char *path, const Net *s, const Net *t, int epoch, double best) {
    int64_t *ss, *ts = NULL; char **sn, **tn = NULL;
    PthTensorRef *sr = prefixed_refs(s, "module.student.", &ss, &sn);
    int ns = s->n_pinfo, nt = t ? t->n_pinfo : 0;
    PthTensorRef *all = (PthTensorRef *)xmalloc((size_t)(ns + nt + 1) * sizeof(PthTensorRef));
    memcpy(all, sr, (size_t)ns * sizeof(PthTensorRef));
    PthTensorRef *tr = NULL;
    if (t) { tr = prefixed_refs(t, "module.teacher.", &ts, &tn); memcpy(all + ns, tr, (size_t)nt * sizeof(PthTensorRef)); }
    PthItem items[] = {
        {"epoch", PI_INT, epoch, 0, NULL, 0},
        {"model", PI_STATE_DICT, 0, 0, all, ns + nt},
        {"best_acc", PI_FLOAT, 0, best, NULL, 0},
    };
    int r = pth_write(path, items, 3);
    for (int i = 0; i < ns; i++) free(sn[i]);
    for (int i = 0; i < nt; i++) free(tn[i]);
    free(sn); free(tn); free(ss); free(ts); free(sr); free(tr); free(all);
    return r;
}

static int save_student(const char *dir, const char *name, const Net *s) {
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
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
    char path[1100], good[300] = "", badmsg[700] = "";
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
typedef struct { int epoch; double lr, train_acc, train_loss, test_acc, test_top5, test_loss, img_s, secs; } LogRow;

static int read_log(const char *dir, LogRow **rows_out, int max_epoch) {
    char path[1100]; snprintf(path, sizeof path, "%s/log.csv", dir);
    FILE *f = fopen(path, "r");
    *rows_out = NULL;
    if (!f) return 0;
    char line[1024]; int n = 0, cap = 0; LogRow *rows = NULL;
    while (fgets(line, sizeof line, f)) {
        LogRow r;
        if (sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &r.epoch, &r.lr, &r.train_acc, &r.train_loss, &r.test_acc,
                   &r.test_top5, &r.test_loss, &r.img_s, &r.secs) != 9) continue;
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
    len = (size_t)snprintf(csv, cap, "epoch,lr,train_acc,train_loss,test_acc,test_acc_top5,test_loss,img_per_s,seconds\n");
    size_t wlen = 0;
    for (int i = 0; i < n; i++) {
        const LogRow *r = &rows[i];
        len += (size_t)snprintf(csv + len, cap - len, "%d,%.8g,%.4f,%.6f,%.4f,%.4f,%.6f,%.1f,%.1f\n", r->epoch, r->lr,
                                r->train_acc, r->train_loss, r->test_acc, r->test_top5, r->test_loss, r->img_s, r->secs);
        wlen += (size_t)snprintf(wl + wlen, cap - wlen,
                                 "-------------------------\nepoch: %d\nlr: %.2f\ntrain_acc: %.2f\ntrain_loss: %.2f\n"
                                 "test_acc: %.2f\ntest_acc_top5: %.2f\ntest_loss: %.2f\n-------------------------\n",
                                 r->epoch, r->lr, r->train_acc, r->train_loss, r->test_acc, r->test_top5, r->test_loss);
    }
    if (finished) wlen += (size_t)snprintf(wl + wlen, cap - wlen, "best_acc\t%.2f", best);
    char p1[1100], p2[1100];
    snprintf(p1, sizeof p1, "%s/log.csv", dir);
    snprintf(p2, sizeof p2, "%s/worklog.txt", dir);
    int r = write_file_atomic(p1, csv, len);
    if (r == 0) r = write_file_atomic(p2, wl, wlen);
    free(csv); free(wl);
    return r;
}

/* -------------------------------------------------------------- the teacher */

static const char *find_teacher_ckpt(const TrainOpts *o) {
    static char path[1100];
    if (o->teacher_ckpt) {
        if (!file_exists(o->teacher_ckpt)) dkd_die("--teacher-ckpt %s: no such file", o->teacher_ckpt);
        return o->teacher_ckpt;
    }
    char p1[1100], p2[1100];
    snprintf(p1, sizeof p1, "download_ckpts/cifar_teachers/%s_vanilla/ckpt_epoch_240.pth", o->teacher);
    snprintf(p2, sizeof p2, "output/cifar100_baselines/vanilla,%s/student_best", short_name(o->teacher));
    if (file_exists(p1)) { snprintf(path, sizeof path, "%s", p1); return path; }
    if (file_exists(p2)) { snprintf(path, sizeof path, "%s", p2); return path; }
    fprintf(stderr,
            "dkd: error: no checkpoint for the teacher %s. Looked at:\n"
            "  --teacher-ckpt (not given)\n  %s (mdistiller's teachers)\n  %s (a teacher trained by dkd)\n"
            "Get one with:\n"
            "  scripts/get_teachers.sh            (mdistiller's released CIFAR-100 teachers)\n"
            "  ./dkd train %s                  (train the teacher yourself, 240 epochs)\n"
            "or pass --teacher-ckpt FILE.\n",
            o->teacher, p1, p2, short_name(o->teacher));
    exit(1);
}

/* ----------------------------------------------------------------- `train` */

static void train_usage(void) {
    printf(
        "usage: dkd train TEACHER STUDENT [flags]     distill (DKD, or --method kd)\n"
        "       dkd train MODEL [flags]               train MODEL alone with cross-entropy\n"
        "Defaults are mdistiller's (SPEC §1-2): the pair's alpha/beta/T/warm-up/LR, batch 64,\n"
        "240 epochs, SGD momentum 0.9, weight decay 5e-4, LR x0.1 after epochs 150, 180, 210.\n"
        "flags:\n"
        "  --method dkd|kd|ce     loss (default dkd with a teacher, ce without)\n"
        "  --epochs N             number of epochs (240)\n"
        "  --batch N              batch size (64)\n"
        "  --lr X                 base learning rate (the pair's: 0.05, or 0.01 for MobileNetV2/ShuffleNets)\n"
        "  --alpha X --beta X     DKD weights of TCKD and NCKD (1, the pair's beta)\n"
        "  --T X                  temperature (4)\n"
        "  --warmup N             DKD warm-up epochs (20)\n"
        "  --wd X                 weight decay (5e-4)\n"
        "  --decay-stages a,b,c   epochs after which LR is multiplied by 0.1 (150,180,210)\n"
        "  --seed N               seed of initialisation, shuffling and augmentation (0)\n"
        "  --data DIR             CIFAR-100 folder (else $DKD_DATA, else ./data)\n"
        "  --teacher-ckpt FILE    teacher weights (else download_ckpts/cifar_teachers/<t>_vanilla/ckpt_epoch_240.pth,\n"
        "                         else output/cifar100_baselines/vanilla,<t>/student_best)\n"
        "  --out DIR              run folder (output/cifar100_baselines/<method>,<teacher>,<student>)\n"
        "  --threads N            CPU threads (all cores)\n"
        "  --device cpu|cuda|auto (auto: the GPU when present, else the CPU)\n"
        "  --subset N             train on the first N training images only (quick runs)\n"
        "  --test-subset N        evaluate on N test images spread evenly over the test set\n"
        "  --save-every N         epochs between epoch_N/student_N checkpoints (40)\n"
        "  --resume               continue the run in --out (or the default folder) from its dkd_state\n"
        "                         (same settings; --epochs and --lr may change)\n"
        "  --stop-after N         stop after epoch N as if killed (to test --resume)\n");
}

int cmd_train(int argc, char **argv) {
    TrainOpts o;
    memset(&o, 0, sizeof o);
    o.method = -1; o.epochs = 240; o.batch = 64; o.warmup = -1; o.lr = -1; o.alpha = -1; o.beta = -1; o.T = -1;
    o.wd = 5e-4f; o.momentum = 0.9f; o.stages[0] = 150; o.stages[1] = 180; o.stages[2] = 210;
    o.save_every = 40; o.device = "auto"; o.stop_after = 0;
    const char *pos[2] = {NULL, NULL}; int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { train_usage(); return 0; }
        if (!strcmp(a, "--resume")) { o.resume = 1; continue; }
        if (a[0] != '-' || a[1] == 0) {
            if (npos == 2) dkd_die("train: too many arguments ('%s'); see dkd train --help", a);
            pos[npos++] = a; continue;
        }
        if (i + 1 >= argc) dkd_die("train: %s needs a value (see dkd train --help)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--method")) {
            if (!strcmp(v, "dkd")) o.method = M_DKD; else if (!strcmp(v, "kd")) o.method = M_KD;
            else if (!strcmp(v, "ce") || !strcmp(v, "vanilla")) o.method = M_CE;
            else dkd_die("--method expects dkd, kd or ce, got '%s'", v);
        }
        else if (!strcmp(a, "--epochs")) o.epochs = parse_int(a, v, 1, 100000);
        else if (!strcmp(a, "--batch")) o.batch = parse_int(a, v, 1, 4096);
        else if (!strcmp(a, "--lr")) o.lr = parse_float(a, v, 0, 1e30);
        else if (!strcmp(a, "--alpha")) o.alpha = parse_float(a, v, 0, 1000);
        else if (!strcmp(a, "--beta")) o.beta = parse_float(a, v, 0, 1000);
        else if (!strcmp(a, "--T")) o.T = parse_float(a, v, 1e-3, 1000);
        else if (!strcmp(a, "--warmup")) o.warmup = parse_int(a, v, 1, 100000);
        else if (!strcmp(a, "--wd")) o.wd = parse_float(a, v, 0, 1);
        else if (!strcmp(a, "--seed")) o.seed = (uint64_t)parse_int(a, v, 0, 2147483647);
        else if (!strcmp(a, "--data")) o.data = v;
        else if (!strcmp(a, "--teacher-ckpt")) o.teacher_ckpt = v;
        else if (!strcmp(a, "--out")) o.out = v;
        else if (!strcmp(a, "--threads")) o.threads = parse_int(a, v, 1, 1024);
        else if (!strcmp(a, "--device")) o.device = v;
        else if (!strcmp(a, "--subset")) o.subset = parse_int(a, v, 1, 50000);
        else if (!strcmp(a, "--test-subset")) o.test_subset = parse_int(a, v, 1, 10000);
        else if (!strcmp(a, "--save-every")) o.save_every = parse_int(a, v, 1, 100000);
        else if (!strcmp(a, "--stop-after")) o.stop_after = parse_int(a, v, 1, 100000);
        else if (!strcmp(a, "--decay-stages")) {
            if (sscanf(v, "%d,%d,%d", &o.stages[0], &o.stages[1], &o.stages[2]) != 3)
                dkd_die("--decay-stages expects three epochs like 150,180,210, got '%s'", v);
        }
        else dkd_die("train: unknown flag %s (see dkd train --help)", a);
    }
    if (npos == 0) { train_usage(); return 2; }
    const ModelInfo *si = model_find(pos[npos - 1]);
    if (!si) dkd_die("unknown model '%s' (dkd list shows the 15 models and their aliases)", pos[npos - 1]);
    const ModelInfo *ti = NULL;
    if (npos == 2) {
        ti = model_find(pos[0]);
        if (!ti) dkd_die("unknown teacher '%s' (dkd list shows the 15 models and their aliases)", pos[0]);
    }
    o.student = si->name; o.teacher = ti ? ti->name : NULL;
    if (o.method < 0) o.method = ti ? M_DKD : M_CE;
    if (o.method != M_CE && !ti) dkd_die("--method %s needs a teacher: dkd train TEACHER STUDENT", o.method == M_KD ? "kd" : "dkd");
    if (o.method == M_CE && ti) dkd_die("--method ce trains one model: dkd train MODEL");
    const PairInfo *pp = ti ? pair_find(ti->name, si->name) : NULL;
    if (ti && !pp) fprintf(stderr, "dkd: note: %s -> %s is not one of mdistiller's 11 pairs: using defaults alpha 1, beta 8, T 4, LR 0.05\n", ti->name, si->name);
    if (o.lr < 0) {
        if (pp) o.lr = pp->lr;
        else o.lr = (!strcmp(si->name, "MobileNetV2") || !strncmp(si->name, "Shuffle", 7)) ? 0.01f : 0.05f;
    }
    if (o.alpha < 0) o.alpha = pp ? pp->alpha : 1.0f;
    if (o.beta < 0) o.beta = pp ? pp->beta : 8.0f;
    if (o.T < 0) o.T = pp ? pp->T : 4.0f;
    if (o.warmup < 0) o.warmup = pp ? pp->warmup : 20;
    o.ce_weight = o.method == M_KD ? 0.1f : 1.0f;
    o.kd_weight = o.method == M_KD ? 0.9f : 0.0f;
    if (o.threads) dkd_set_threads(o.threads);

    char dir[1024];
    if (o.out) snprintf(dir, sizeof dir, "%s", o.out);
    else if (o.method == M_CE) snprintf(dir, sizeof dir, "output/cifar100_baselines/vanilla,%s", short_name(si->name));
    else if (o.method == M_DKD && pp) snprintf(dir, sizeof dir, "output/cifar100_baselines/%s", pp->tag);
    else snprintf(dir, sizeof dir, "output/cifar100_baselines/%s,%s,%s", o.method == M_KD ? "kd" : "dkd",
                  short_name(ti->name), short_name(si->name));

    const Backend *be = backend_select(o.device);
    if (!be) dkd_die("%s", dkd_errbuf);

    /* data */
    const char *ddir = cifar_find_dir(o.data);
    if (!ddir) dkd_die("%s", dkd_errbuf);
    CifarSplit tr, te;
    if (cifar_load(ddir, 1, &tr) != 0) dkd_die("%s", dkd_errbuf);
    if (cifar_load(ddir, 0, &te) != 0) dkd_die("%s", dkd_errbuf);
    if (o.subset && o.subset < tr.n) tr.n = o.subset;
    take_spread(&te, o.test_subset);

    /* networks */
    Net *s = model_build(si->name);
    Net *t = NULL;
    net_init_params(s, o.seed);
    const char *tck = NULL;
    if (ti) {
        tck = find_teacher_ckpt(&o);
        t = model_build(ti->name);
        if (net_load_file(t, tck) != 0) dkd_die("teacher: %s", dkd_errbuf);
    }
    int start_epoch = 1; double best = -1; int best_epoch = 0;
    if (mkdir_p(dir) != 0) dkd_die("%s", dkd_errbuf);
    char spath[1100]; snprintf(spath, sizeof spath, "%s/dkd_state", dir);
    if (o.resume) {
        PthDict st;
        if (pth_read(spath, &st) != 0) dkd_die("--resume: cannot read %s: %s", spath, dkd_errbuf);
        struct { const char *k; double want; } chk[] = {
            {"seed", (double)o.seed}, {"method", o.method}, {"batch", o.batch}, {"subset", o.subset},
            {"alpha", o.alpha}, {"beta", o.beta}, {"T", o.T}, {"warmup", o.warmup}, {"wd", o.wd}};
        for (size_t i = 0; i < sizeof chk / sizeof chk[0]; i++) {
            double got = pth_scalar(&st, chk[i].k);
            if (!(fabs(got - chk[i].want) <= 1e-6 * fabs(chk[i].want) + 1e-12))
                dkd_die("--resume: %s was %g in the saved run but is %g now; resume with the same settings", chk[i].k, got, chk[i].want);
        }
        /* weights + statistics (names "student.<k>") and momentum ("momentum.<k>") */
        for (int i = 0; i < s->n_pinfo; i++) {
            const ParamInfo *pi = &s->pinfo[i];
            char key[160];
            snprintf(key, sizeof key, "student.%s", pi->name);
            const PthTensor *tt = pth_get(&st, key);
            size_t esz = pi->kind == PK_NBT ? 8 : 4;
            if (!tt || tt->numel != pi->numel || (pi->kind == PK_NBT ? tt->dtype != DT_I64 : tt->dtype != DT_F32))
                dkd_die("--resume: %s lacks a valid %s", spath, key);
            memcpy(net_host_ptr(s, pi), tt->data, pi->numel * esz);
        }
        double old_lr = pth_scalar(&st, "lr");
        if (fabs(old_lr - o.lr) > 1e-6 * fabs(old_lr))
            printf("note: the saved run used --lr %g, continuing with --lr %g (not bit-identical to an uninterrupted run)\n", old_lr, o.lr);
        start_epoch = (int)pth_scalar(&st, "epoch") + 1;
        best = pth_scalar(&st, "best_acc");
        best_epoch = (int)pth_scalar(&st, "best_epoch");
        net_setup(s, be, o.batch, 1);
        float *hm = (float *)xmalloc(s->n_params * sizeof(float));
        for (int i = 0; i < s->n_pinfo; i++) {
            const ParamInfo *pi = &s->pinfo[i];
            if (pi->kind != PK_PARAM) continue;
            char key[160]; snprintf(key, sizeof key, "momentum.%s", pi->name);
            const PthTensor *tt = pth_get(&st, key);
            if (!tt || tt->numel != pi->numel || tt->dtype != DT_F32) dkd_die("--resume: %s lacks a valid %s", spath, key);
            memcpy(hm + pi->off, tt->data, pi->numel * 4);
        }
        be->upload(s->mom, hm, s->n_params * sizeof(float));
        free(hm);
        pth_dict_free(&st);
        printf("resuming %s at epoch %d (best test top-1 so far %.2f)\n", dir, start_epoch, best);
    } else {
        if (file_exists(spath))
            dkd_die("%s already holds a run: continue it with --resume, or choose another --out", dir);
        net_setup(s, be, o.batch, 1);
    }
    if (t) net_setup(t, be, o.batch, 0);

    /* the data set on the device (the CPU backend uses the host copy directly) */
    uint8_t *d_train = tr.images, *d_test = te.images;
    if (be != &backend_cpu) {
        d_train = (uint8_t *)be->alloc((size_t)tr.n * 3072);
        be->upload(d_train, tr.images, (size_t)tr.n * 3072);
        d_test = (uint8_t *)be->alloc((size_t)te.n * 3072);
        be->upload(d_test, te.images, (size_t)te.n * 3072);
    }
    int B = o.batch, NC = net_num_classes(s);
    int *d_idx = (int *)be->alloc((size_t)B * sizeof(int));
    int *d_lab = (int *)be->alloc((size_t)B * sizeof(int));
    float *d_dz = (float *)be->alloc((size_t)B * NC * sizeof(float));
    float *d_rows = (float *)be->alloc((size_t)B * 3 * sizeof(float));
    float *h_rows = (float *)xmalloc((size_t)B * 3 * sizeof(float));
    float *h_logits = (float *)xmalloc((size_t)B * NC * sizeof(float));
    int *perm = (int *)xmalloc((size_t)tr.n * sizeof(int));
    int *h_lab = (int *)xmalloc((size_t)B * sizeof(int));

    const char *mname = o.method == M_DKD ? "DKD" : o.method == M_KD ? "KD" : "CE (vanilla)";
    printf("dkd train: %s%s%s with %s on %s (%d thread%s)\n", ti ? ti->name : "", ti ? " -> " : "", si->name, mname, be->name,
           dkd_num_threads(), dkd_num_threads() == 1 ? "" : "s");
    if (tck) printf("  teacher weights: %s\n", tck);
    printf("  data: %s (%d train, %d test images)  run folder: %s\n", ddir, tr.n, te.n, dir);
    printf("  epochs %d, batch %d, lr %g (x0.1 after %d/%d/%d), wd %g, momentum %g", o.epochs, B, o.lr, o.stages[0],
           o.stages[1], o.stages[2], o.wd, o.momentum);
    if (o.method == M_DKD) printf(", alpha %g, beta %g, T %g, warm-up %d", o.alpha, o.beta, o.T, o.warmup);
    if (o.method == M_KD) printf(", T %g, CE weight %g, KD weight %g", o.T, o.ce_weight, o.kd_weight);
    printf(", seed %llu\n", (unsigned long long)o.seed);
    fflush(stdout);

    int steps_per_epoch = (tr.n + B - 1) / B;
    double run_t0 = now_seconds();
    int tty = isatty(2);
    int last_epoch = start_epoch - 1;
    for (int epoch = start_epoch; epoch <= o.epochs; epoch++) {
        int nst = 0;
        for (int k = 0; k < 3; k++) if (epoch > o.stages[k]) nst++;
        float lr = (float)(o.lr * pow(0.1, nst));
        float warm = (float)fmin((double)epoch / o.warmup, 1.0);
        LossParams lp = {o.ce_weight, o.kd_weight, o.alpha, o.beta, o.T, warm};
        cifar_epoch_order(perm, tr.n, o.seed, epoch);
        double ep_t0 = now_seconds(), last_print = 0, loss_sum = 0;
        long correct = 0, seen = 0;
        for (int st = 0; st < steps_per_epoch; st++) {
            int off = st * B, nb = tr.n - off < B ? tr.n - off : B;
            for (int b = 0; b < nb; b++) h_lab[b] = tr.labels[perm[off + b]];
            be->upload(d_idx, perm + off, (size_t)nb * sizeof(int));
            be->upload(d_lab, h_lab, (size_t)nb * sizeof(int));
            be->augment_batch(s->x, d_train, d_idx, nb, o.seed, epoch, 1);
            float *v = NULL;
            if (t) { be->copy(t->x, s->x, (size_t)nb * 3072 * sizeof(float)); v = net_forward(t, nb, 0); }
            float *z = net_forward(s, nb, 1);
            if (o.method == M_DKD) be->dkd_loss(d_dz, d_rows, z, v, d_lab, nb, NC, lp);
            else if (o.method == M_KD) be->kd_loss(d_dz, d_rows, z, v, d_lab, nb, NC, lp);
            else be->ce_loss(d_dz, d_rows, z, d_lab, nb, NC, lp);
            be->download(h_rows, d_rows, (size_t)nb * 3 * sizeof(float));
            be->download(h_logits, z, (size_t)nb * NC * sizeof(float));
            LossValue lv = loss_total(o.method == M_DKD ? LOSS_DKD : o.method == M_KD ? LOSS_KD : LOSS_CE, h_rows, nb, lp);
            if (!isfinite(lv.total)) {
                if (tty) fprintf(stderr, "\n");
                char what[200];
                snprintf(what, sizeof what, "the loss became %s at epoch %d, step %d (ce %g, kd %g)",
                         isnan(lv.total) ? "NaN" : "infinite", epoch, st + 1, lv.ce, lv.kd);
                stop_nonfinite(dir, what);
            }
            for (int b = 0; b < nb; b++) {
                const float *r = h_logits + (size_t)b * NC;
                int am = 0;
                for (int j = 1; j < NC; j++) if (r[j] > r[am]) am = j;
                correct += am == h_lab[b];
            }
            loss_sum += lv.total * nb; seen += nb;
            net_backward(s, d_dz, nb);
            net_sgd(s, lr, o.momentum, o.wd);
            double tnow = now_seconds();
            if (st + 1 == steps_per_epoch || tnow - last_print > (tty ? 0.5 : 30.0)) {
                last_print = tnow;
                double ips = seen / (tnow - ep_t0);
                double left_ep = (tr.n - seen) / ips;
                double left_all = left_ep + (double)(o.epochs - epoch) * (tr.n / ips + te.n / (ips * 3));
                fprintf(stderr, "%sepoch %d/%d step %d/%d | %.0f img/s | loss %.4f | train acc %.2f | ETA epoch %.0fs, run %.1fh%s",
                        tty ? "\r" : "", epoch, o.epochs, st + 1, steps_per_epoch, ips, loss_sum / seen, 100.0 * correct / seen,
                        left_ep, left_all / 3600, tty ? "   " : "\n");
            }
        }
        if (tty) fprintf(stderr, "\n");
        double train_secs = now_seconds() - ep_t0;
        double ips = seen / train_secs;
        EvalResult ev;
        char what[1200];
        if (evaluate(s, d_test, d_idx, te.labels, te.n, B, &ev) != 0) {
            snprintf(what, sizeof what, "the test metrics of epoch %d cannot be computed: %s", epoch, dkd_errbuf);
            stop_nonfinite(dir, what);
        }
        double train_acc = 100.0 * correct / seen, train_loss = loss_sum / seen;
        if (ev.top1 >= best) { best = ev.top1; best_epoch = epoch; }   /* mdistiller: ties rewrite best too */
        printf("epoch %3d | lr %.5g | train loss %.4f acc %.2f | test loss %.4f top-1 %.2f top-5 %.2f | best %.2f | %.0f img/s, %.0fs\n",
               epoch, lr, train_loss, train_acc, ev.loss, ev.top1, ev.top5, best, ips, now_seconds() - ep_t0);
        fflush(stdout);

        /* logs first (log.csv is the source of truth), then checkpoints, then the resumable state last */
        net_to_host(s);
        char msg[400];
        if (nonfinite_param(s, msg, sizeof msg)) {
            snprintf(what, sizeof what, "after epoch %d, parameter %s", epoch, msg);
            stop_nonfinite(dir, what);
        }
        LogRow *rows; int nrows = read_log(dir, &rows, epoch - 1);
        rows = (LogRow *)xrealloc(rows, (size_t)(nrows + 1) * sizeof(LogRow));
        LogRow r = {epoch, lr, train_acc, train_loss, ev.top1, ev.top5, ev.loss, ips, now_seconds() - ep_t0};
        rows[nrows++] = r;
        if (write_logs(dir, rows, nrows, epoch == o.epochs, best) != 0) stop_save_failed(dir, epoch);
        free(rows);
        char p[1100];
        snprintf(p, sizeof p, "%s/latest", dir);
        if (save_full(p, s, t, epoch, best) || save_student(dir, "student_latest", s)) stop_save_failed(dir, epoch);
        if (epoch % o.save_every == 0) {
            char nm[64];
            snprintf(p, sizeof p, "%s/epoch_%d", dir, epoch);
            snprintf(nm, sizeof nm, "student_%d", epoch);
            if (save_full(p, s, t, epoch, best) || save_student(dir, nm, s)) stop_save_failed(dir, epoch);
        }
        if (best_epoch == epoch) {
            snprintf(p, sizeof p, "%s/best", dir);
            if (save_full(p, s, t, epoch, best) || save_student(dir, "student_best", s)) stop_save_failed(dir, epoch);
        }
        if (save_state(dir, s, &o, epoch, best, best_epoch) != 0) stop_save_failed(dir, epoch);
        if (plot_run_curves(dir) != 0) fprintf(stderr, "dkd: warning: could not draw %s/curves.png: %s\n", dir, dkd_errbuf);
        last_epoch = epoch;
        if (o.stop_after && epoch >= o.stop_after && epoch < o.epochs) {
            printf("stopping after epoch %d as asked (--stop-after); continue with --resume\n", epoch);
            break;
        }
    }
    if (last_epoch >= o.epochs)
        printf("done: best test top-1 %.2f (epoch %d), %.1f min; run folder %s\n", best, best_epoch, (now_seconds() - run_t0) / 60, dir);

    if (be != &backend_cpu) { be->release(d_train); be->release(d_test); }
    be->release(d_idx); be->release(d_lab); be->release(d_dz); be->release(d_rows);
    free(h_rows); free(h_logits); free(perm); free(h_lab);
    net_free(s); net_free(t);
    cifar_free(&tr); cifar_free(&te);
    return 0;
}

/* ------------------------------------------------------------------ `eval` */

static void eval_usage(void) {
    printf("usage: dkd eval MODEL -c CKPT [--data DIR] [--batch 64] [--device cpu|cuda|auto] [--threads N] [--test-subset N]\n"
           "  Top-1, top-5 and cross-entropy of MODEL with the weights of CKPT on the CIFAR-100 test set.\n"
           "  CKPT: any mdistiller checkpoint ({'model': state_dict}, zip or legacy format, with or without\n"
           "  'module.' / 'module.student.' prefixes) or one of ours; '-c pretrain' uses the teacher path\n"
           "  download_ckpts/cifar_teachers/<MODEL>_vanilla/ckpt_epoch_240.pth (as mdistiller's tools/eval.py).\n");
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *ckpt = NULL, *data = NULL, *device = "auto";
    int B = 64, threads = 0, test_subset = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { eval_usage(); return 0; }
        if (a[0] != '-') { if (model) dkd_die("eval: unexpected argument '%s' (see dkd eval --help)", a); model = a; continue; }
        if (i + 1 >= argc) dkd_die("eval: %s needs a value (see dkd eval --help)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "-c") || !strcmp(a, "--ckpt")) ckpt = v;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--batch") || !strcmp(a, "-bs")) B = parse_int(a, v, 1, 4096);
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--threads")) threads = parse_int(a, v, 1, 1024);
        else if (!strcmp(a, "--test-subset")) test_subset = parse_int(a, v, 1, 10000);
        else dkd_die("eval: unknown flag %s (see dkd eval --help)", a);
    }
    if (!model) { eval_usage(); return 2; }
    const ModelInfo *mi = model_find(model);
    if (!mi) dkd_die("unknown model '%s' (dkd list shows the 15 models and their aliases)", model);
    char tp[1100];
    if (!ckpt || !strcmp(ckpt, "pretrain")) {
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
    if (be != &backend_cpu) { d_test = (uint8_t *)be->alloc((size_t)te.n * 3072); be->upload(d_test, te.images, (size_t)te.n * 3072); }
    int *d_idx = (int *)be->alloc((size_t)B * sizeof(int));
    EvalResult ev;
    if (evaluate(n, d_test, d_idx, te.labels, te.n, B, &ev) != 0)
        dkd_die("eval of %s with %s: %s. No accuracy is reported.", mi->name, ckpt, dkd_errbuf);
    printf("%s  %s\n  test images %d | top-1 %.2f | top-5 %.2f | loss %.4f | %.0f img/s (%s, %d thread%s, batch %d)\n",
           mi->name, ckpt, te.n, ev.top1, ev.top5, ev.loss, ev.img_s, be->name, dkd_num_threads(),
           dkd_num_threads() == 1 ? "" : "s", B);
    if (be != &backend_cpu) be->release(d_test);
    be->release(d_idx);
    net_free(n); cifar_free(&te);
    return 0;
}
