/* bench.c — `dkd bench`: how fast is one DKD training step, and inference?
 *
 * Training step = what train.c does per batch, through the same code
 * (train_step.c): batch gather and augmentation, teacher forward (eval mode,
 * inference arena), student forward (train mode), fused DKD loss + gradient,
 * student backward, one SGD step; on CUDA replayed as one captured graph per
 * step (--no-graph: launch by launch). Images are random (speed does not
 * depend on the pixel values), weights are fresh. Reported as images/s over timed steps
 * after warm-up steps (the first steps touch fresh memory), with the process's
 * peak resident memory (getrusage) after the pair.
 * Inference = eval-mode forward of a model at a batch size, images/s; with --data,
 * over the whole CIFAR-100 test set (10,000 images, batch 64 like mdistiller's
 * evaluation), several runs, the models grouped like the reference work's speed tables.
 * --peak: the FMA peak per instruction set (kernels/isa.c), the ceiling that the
 * profile's GFLOP/s column is measured against.
 */
#include "dkd.h"
#include "kernels/isa.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static void bench_usage(void) {
    printf("usage: dkd bench [--teacher T] [--student S] [--batch 64] [--steps 10] [--warmup 2]\n"
           "                 [--threads N[,N...]] [--device cpu|cuda|auto] [--isa avx512|avx2|scalar]\n"
           "                 [--infer [MODEL,...|all]] [--infer-batch 64] [--data DIR] [--runs 3] [--peak]\n"
           "  Times DKD training steps (teacher eval forward + student forward/backward + loss + SGD)\n"
           "  for a teacher->student pair (default resnet56 -> resnet20) and prints images/s and\n"
           "  the peak resident memory. --teacher all: every one of the 11 pairs.\n"
           "  --infer: instead time eval-mode inference of the listed models (default: all 15).\n"
           "  --gemm: GFLOP/s of the CPU and CUDA GEMMs at the models' convolution shapes\n"
           "          (dkd bench --gemm --help).\n"
           "  --data DIR (with --infer): over the whole CIFAR-100 test set in DIR, --runs times,\n"
           "             batch --infer-batch; mean and spread per model, data loading timed apart.\n"
           "  --threads 1,2: the same measurement for each thread count (scaling).\n"
           "  --isa: force the CPU kernels' instruction set (default: the best this CPU has;\n"
           "         also the environment variable DKD_ISA).\n"
           "  --peak: the FMA peak (GFLOP/s, register-only loop) of every instruction set here.\n"
           "  --check-devices: one DKD step of each of the 11 pairs on CUDA and on the CPU, compared.\n"
           "  --no-graph: on CUDA, time the training step launch by launch (default: the step\n"
           "             captured once as a CUDA graph and replayed, as dkd train runs it).\n"
           "  --profile: also time every op of the timed steps or forwards (synchronising after\n"
           "             each) and print a table, largest first: where the time goes; convolutions\n"
           "             with their GFLOP/s and the share of the FMA peak of the path in use.\n");
}

/* Peak resident memory of this process so far, MiB. */
static double peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0.0;
    return ru.ru_maxrss / 1024.0;   /* Linux: KiB */
}

/* FMA peak of one instruction set with t threads (each runs the loop), GFLOP/s. */
static double peak_threads(int isa, int t, double seconds) {
    double sum = 0.0;
    #pragma omp parallel num_threads(t) reduction(+ : sum)
    sum += dkd_isa_peak_gflops(isa, seconds);
    return sum;
}

static void bench_peak(const char *thread_list) {
    printf("FMA peak (register-only loop, 16 independent chains, best of 3):\n");
    printf("%-8s %8s %12s\n", "isa", "threads", "GFLOP/s");
    for (int isa = DKD_ISA_COUNT - 1; isa >= 0; isa--) {
        if (!dkd_isa_available(isa)) { printf("%-8s  (not available on this CPU / in this build)\n", dkd_isa_name(isa)); continue; }
        char buf[256]; snprintf(buf, sizeof buf, "%s", thread_list);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            int t = atoi(tok);
            printf("%-8s %8d %12.1f\n", dkd_isa_name(isa), t, peak_threads(isa, t, 0.3));
            fflush(stdout);
        }
    }
}

static void fill_random(float *h, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) h[i] = (float)((dkd_rand32(seed, 9, 0, (uint32_t)i) >> 8) * (2.0 / 16777216.0) - 1.0);
}

/* CPU seconds used by the whole process (all threads): on a shared, loaded machine,
 * one thread's CPU time per step is steadier than its wall time (it still counts
 * OpenMP's spinning when there are several threads). */
static double process_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static double last_cpu_per_step;   /* of the last bench_train, seconds */

/* Images/s of DKD training steps: the trainer's own step (train_step.c: batch gather,
 * augmentation, teacher, student, loss, record, backward, SGD) over warm + steps batches
 * of random images. graph: replay the step as a CUDA graph where the backend has them
 * (train's default; 0: launch by launch, as --no-graph); *graph_used says what ran. */
static double bench_train(const Backend *be, const char *tname, const char *sname, int B, int steps, int warm, int profile,
                          int graph, int *graph_used) {
    Net *t = model_build(tname), *s = model_build(sname);
    if (!t || !s) dkd_die("%s", dkd_errbuf);
    if (net_setup(t, be, B, 0) || net_setup(s, be, B, 1)) dkd_die("%s", dkd_errbuf);
    const PairInfo *pp = pair_find(tname, sname);
    LossParams lp = {1.0f, 0.0f, 1.0f, pp ? pp->beta : 8.0f, 4.0f, 1.0f, NULL};
    int NC = net_num_classes(s), n = B * (warm + steps);
    uint8_t *himg = (uint8_t *)xmalloc((size_t)n * CIFAR_IMG_BYTES);
    for (size_t i = 0; i < (size_t)n * CIFAR_IMG_BYTES; i++) himg[i] = (uint8_t)(dkd_rand32(1, 9, 0, (uint32_t)i) >> 24);
    int *hlab = (int *)xmalloc((size_t)n * sizeof(int)), *order = (int *)xmalloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) { hlab[i] = (int)(dkd_rand32(2, 9, 1, (uint32_t)i) % (uint32_t)NC); order[i] = i; }
    uint8_t *dimg = himg;
    int *dlab = hlab;
    if (be->on_device) {
        dimg = (uint8_t *)be->alloc((size_t)n * CIFAR_IMG_BYTES);
        dlab = (int *)be->alloc((size_t)n * sizeof(int));
        be->upload(dimg, himg, (size_t)n * CIFAR_IMG_BYTES);
        be->upload(dlab, hlab, (size_t)n * sizeof(int));
    }
    TrainStep ts;
    if (train_step_init(&ts, be, s, t, LOSS_DKD, B, n, dimg, dlab, 1, 0.9f, 5e-4f)) dkd_die("%s", dkd_errbuf);
    ts.use_graph = graph && ts.use_graph;
    train_step_epoch(&ts, order, 1, 0.05f, lp);
    double t0 = 0, c0 = 0;
    for (int it = 0; it < warm + steps; it++) {
        if (it == warm) { be->sync(); t0 = now_seconds(); c0 = process_cpu_seconds(); net_profile = profile; }
        train_step_run(&ts, B);   /* (profiling: launch by launch, a sync around every op) */
    }
    be->sync();
    double dt = now_seconds() - t0;
    last_cpu_per_step = (process_cpu_seconds() - c0) / steps;
    *graph_used = ts.graph != NULL && !profile;
    if (profile) {
        net_profile = 0;
        printf("profile of %d step(s), %.1f ms/step:\n", steps, 1e3 * dt / steps);
        net_profile_report(dt);
    }
    train_step_free(&ts);
    if (be->on_device) { be->release(dimg); be->release(dlab); }
    free(himg); free(hlab); free(order);
    net_free(t); net_free(s);
    return (double)B * steps / dt;
}

/* One DKD training step of teacher -> student at batch B on two backends from
 * the same weights and the same batch; compares the teacher and student logits,
 * the loss, every gradient and the parameters after SGD. Returns 1 if all agree
 * within tolerances suited to different summation orders (float32):
 *   logits max|d| <= 1e-3 max|ref|, loss 1e-4 relative, gradients global
 *   relative L2 <= 1e-2 (ReLU mask flips are possible), params after SGD
 *   max|d| <= 1e-5 + 1e-4 |p|. Prints one line per comparison into stdout. */
static double relmax(const float *a, const float *b, size_t n) {
    double m = 0, d = 0;
    for (size_t i = 0; i < n; i++) { double r = fabs(b[i]); if (r > m) m = r; double e = fabs((double)a[i] - b[i]); if (!(e <= d)) d = e; }
    return d / (m > 0 ? m : 1);
}
static double rell2(const float *a, const float *b, size_t n) {
    double s = 0, r = 0;
    for (size_t i = 0; i < n; i++) { double e = (double)a[i] - b[i]; s += e * e; r += (double)b[i] * b[i]; }
    return sqrt(s) / (r > 0 ? sqrt(r) : 1);
}
int compare_backends_step(const Backend *ref, const Backend *dut, const char *tname, const char *sname, int B) {
    Net *t[2], *s[2];
    const Backend *be[2] = {ref, dut};
    int NC = 0;
    float *hz[2], *hv[2], *hg[2], *hp[2], *hrows[2];
    size_t xin = (size_t)B * 3 * 32 * 32;
    float *hx = (float *)xmalloc(xin * sizeof(float));
    fill_random(hx, xin, 11);
    int *hy = NULL;
    LossParams lp = {1.0f, 0.0f, 1.0f, 8.0f, 4.0f, 1.0f, NULL};
    for (int k = 0; k < 2; k++) {
        t[k] = model_build(tname); s[k] = model_build(sname);
        if (!t[k] || !s[k]) dkd_die("%s", dkd_errbuf);
        net_init_params(t[k], 5); net_init_params(s[k], 6);
        if (net_setup(t[k], be[k], B, 0) || net_setup(s[k], be[k], B, 1)) dkd_die("%s", dkd_errbuf);
        NC = net_num_classes(s[k]);
        if (!hy) { hy = (int *)xmalloc((size_t)B * sizeof(int)); for (int b = 0; b < B; b++) hy[b] = (int)(dkd_rand32(4, 9, 2, (uint32_t)b) % (uint32_t)NC); }
        int *dy = (int *)be[k]->alloc((size_t)B * sizeof(int));
        be[k]->upload(dy, hy, (size_t)B * sizeof(int));
        float *dz = (float *)be[k]->alloc((size_t)B * NC * sizeof(float));
        float *rows = (float *)be[k]->alloc((size_t)B * 3 * sizeof(float));
        be[k]->upload(t[k]->x, hx, xin * sizeof(float));
        be[k]->upload(s[k]->x, hx, xin * sizeof(float));
        float *v = net_forward(t[k], B, 0);
        float *z = net_forward(s[k], B, 1);
        hz[k] = (float *)xmalloc((size_t)B * NC * sizeof(float)); hv[k] = (float *)xmalloc((size_t)B * NC * sizeof(float));
        be[k]->download(hz[k], z, (size_t)B * NC * sizeof(float));
        be[k]->download(hv[k], v, (size_t)B * NC * sizeof(float));
        be[k]->dkd_loss(dz, rows, z, v, dy, B, NC, lp);
        hrows[k] = (float *)xmalloc((size_t)B * 3 * sizeof(float));
        be[k]->download(hrows[k], rows, (size_t)B * 3 * sizeof(float));
        net_backward(s[k], dz, B);
        hg[k] = (float *)xmalloc(s[k]->n_params * sizeof(float));
        be[k]->download(hg[k], s[k]->grads, s[k]->n_params * sizeof(float));
        float lr = 0.05f, *d_lr = (float *)be[k]->alloc(sizeof lr);   /* the rate in backend memory */
        be[k]->upload(d_lr, &lr, sizeof lr);
        net_sgd(s[k], d_lr, 0.9f, 5e-4f);
        be[k]->release(d_lr);
        net_to_host(s[k]);
        hp[k] = s[k]->h_params;
        be[k]->release(dy); be[k]->release(dz); be[k]->release(rows);
    }
    LossValue l0 = loss_total(LOSS_DKD, hrows[0], B, lp), l1 = loss_total(LOSS_DKD, hrows[1], B, lp);
    double e_v = relmax(hv[1], hv[0], (size_t)B * NC), e_z = relmax(hz[1], hz[0], (size_t)B * NC);
    double e_l = fabs(l1.total - l0.total) / fabs(l0.total), e_g = rell2(hg[1], hg[0], s[0]->n_params);
    double e_p = 0; size_t badp = 0;
    for (size_t i = 0; i < s[0]->n_params; i++) {
        double d = fabs((double)hp[1][i] - hp[0][i]);
        if (!(d <= 1e-5 + 1e-4 * fabs(hp[0][i]))) badp++;
        if (d > e_p) e_p = d;
    }
    int ok = e_v <= 1e-3 && e_z <= 1e-3 && e_l <= 1e-4 && e_g <= 1e-2 && badp == 0;
    printf("%s %s -> %s batch %d (%s vs %s): teacher logits %.2g, student logits %.2g, loss %.2g, grads rel L2 %.2g, params max|d| %.2g (%zu off)\n",
           ok ? "ok  " : "FAIL", tname, sname, B, dut->name, ref->name, e_v, e_z, e_l, e_g, e_p, badp);
    for (int k = 0; k < 2; k++) { free(hz[k]); free(hv[k]); free(hg[k]); free(hrows[k]); net_free(t[k]); net_free(s[k]); }
    free(hx); free(hy);
    return ok;
}

static double bench_infer(const Backend *be, const char *name, int B, int steps, int warm, int profile) {
    Net *n = model_build(name);
    if (!n) dkd_die("%s", dkd_errbuf);
    if (net_setup(n, be, B, 0)) dkd_die("%s", dkd_errbuf);
    size_t xin = (size_t)B * 3 * 32 * 32;
    float *hx = (float *)xmalloc(xin * sizeof(float));
    fill_random(hx, xin, 3);
    double t0 = 0;
    for (int it = 0; it < warm + steps; it++) {
        if (it == warm) { be->sync(); t0 = now_seconds(); net_profile = profile; }
        be->upload(n->x, hx, xin * sizeof(float));
        net_forward(n, B, 0);
    }
    be->sync();
    double dt = now_seconds() - t0;
    if (profile) {
        net_profile = 0;
        printf("profile of %s, %d forward(s), %.1f ms each:\n", name, steps, 1e3 * dt / steps);
        net_profile_report(dt);
    }
    free(hx); net_free(n);
    return (double)B * steps / dt;
}

/* ---- inference over the CIFAR-100 test set ----------------------------------------- */

/* The reference work's grouping: the models of the same-family pairs (teachers, then
 * students), then the cross-family ones (teacher, students) not listed before. */
static const struct { const char *group, *models; } infer_groups[] = {
    {"same-family teachers", "resnet56,resnet110,resnet32x4,wrn_40_2,vgg13"},
    {"same-family students", "resnet20,resnet32,resnet8x4,wrn_16_2,wrn_40_1,vgg8"},
    {"cross-family teacher", "ResNet50"},
    {"cross-family students", "MobileNetV2,ShuffleV1,ShuffleV2"},
};

/* Seconds per run of eval-mode inference of `name` over x [n,3,32,32] (already
 * normalised) in batches of B: upload + forward of every batch, runs times after one
 * warm-up batch; the per-run times go to sec[]. */
static void infer_dataset(const Backend *be, const char *name, const float *x, int n, int B, int runs, double *sec,
                          int profile) {
    Net *net = model_build(name);
    if (!net) dkd_die("%s", dkd_errbuf);
    if (net_setup(net, be, B, 0)) dkd_die("%s", dkd_errbuf);
    size_t img = 3 * 32 * 32;
    be->upload(net->x, x, (size_t)B * img * sizeof(float));
    net_forward(net, B, 0);   /* warm-up: first touch of the arenas */
    for (int r = 0; r < runs; r++) {
        be->sync();
        if (profile && r == runs - 1) net_profile = 1;
        double t0 = now_seconds();
        for (int s = 0; s < n; s += B) {
            int nb = n - s < B ? n - s : B;
            be->upload(net->x, x + (size_t)s * img, (size_t)nb * img * sizeof(float));
            net_forward(net, nb, 0);
        }
        be->sync();
        sec[r] = now_seconds() - t0;
        if (profile && r == runs - 1) {
            net_profile = 0;
            printf("profile of %s, one run over %d images, %.2f s:\n", name, n, sec[r]);
            net_profile_report(sec[r]);
        }
    }
    net_free(net);
}

static int in_list(const char *list, const char *name) {
    char buf[512]; snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","))
        if (model_find(tok) && model_find(tok) == model_find(name)) return 1;
    return 0;
}

static void bench_infer_data(const Backend *be, const char *want, const char *dir, int B, int runs, int profile) {
    if (runs < 1 || runs > 100) dkd_die("bench: --runs must be 1..100");
    CifarSplit te;
    double t0 = now_seconds();
    if (cifar_load(cifar_find_dir(dir), 0, &te)) dkd_die("%s", dkd_errbuf);
    double t_read = now_seconds() - t0;
    size_t img = 3 * 32 * 32;
    float *x = (float *)xmalloc((size_t)te.n * img * sizeof(float));
    int *idx = (int *)xmalloc((size_t)te.n * sizeof(int));
    for (int i = 0; i < te.n; i++) idx[i] = i;
    t0 = now_seconds();
    augment_batch_cpu(x, te.images, idx, te.n, 0, NULL, 0);   /* normalise only, like mdistiller's test transform */
    double t_norm = now_seconds() - t0;
    printf("inference over the CIFAR-100 test set: %d images, batch %d, eval mode, %d run(s) per model\n", te.n, B, runs);
    printf("data loading (not in the times below): read %.3f s, normalise %.3f s\n", t_read, t_norm);
    printf("%-22s %-12s %9s %9s %10s\n", "group", "model", "mean s", "sd s", "img/s");
    double *sec = (double *)xmalloc((size_t)runs * sizeof(double));
    for (size_t g = 0; g < sizeof infer_groups / sizeof infer_groups[0]; g++) {
        char buf[512]; snprintf(buf, sizeof buf, "%s", infer_groups[g].models);
        char *save = NULL;
        for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (strcmp(want, "all") && !in_list(want, tok)) continue;
            infer_dataset(be, tok, x, te.n, B, runs, sec, profile);
            double mean = 0, var = 0;
            for (int r = 0; r < runs; r++) mean += sec[r] / runs;
            for (int r = 0; r < runs; r++) var += (sec[r] - mean) * (sec[r] - mean) / (runs > 1 ? runs - 1 : 1);
            printf("%-22s %-12s %9.3f %9.3f %10.1f\n", infer_groups[g].group, tok, mean, sqrt(var), te.n / mean);
            fflush(stdout);
        }
    }
    free(sec); free(x); free(idx); cifar_free(&te);
}

/* ---- the command ------------------------------------------------------------------------ */

static void bench_infer_random(const Backend *be, const char *infer, int infer_batch, int steps, int warm, int profile) {
    printf("%-12s %8s %12s\n", "model", "batch", "img/s");
    for (int i = 0; i < n_models; i++) {
        const char *nm = model_table[i].name;
        if (strcmp(infer, "all") && !in_list(infer, nm)) continue;
        printf("%-12s %8d %12.1f\n", nm, infer_batch, bench_infer(be, nm, infer_batch, steps, warm, profile));
        fflush(stdout);
    }
}

static void bench_pair(const Backend *be, const char *tname, const char *sname, int B, int steps, int warm, int profile,
                       int graph) {
    const ModelInfo *ti = model_find(tname), *si = model_find(sname);
    if (!ti || !si) dkd_die("bench: unknown model '%s' (see dkd list)", !ti ? tname : sname);
    int used = 0;
    double ips = bench_train(be, ti->name, si->name, B, steps, warm, profile, graph, &used);
    printf("DKD train step %s -> %s, batch %d: %.1f img/s (%.1f ms/step, %d timed steps after %d warm-up, %s), "
           "CPU %.1f ms/step, peak RSS %.0f MiB\n", ti->name, si->name, B, ips, 1000.0 * B / ips, steps, warm,
           used ? "one CUDA graph per step" : be->on_device ? "launch by launch" : "op by op on the CPU",
           1e3 * last_cpu_per_step, peak_rss_mib());
    fflush(stdout);
}

int cmd_bench(int argc, char **argv) {
    const char *tname = "resnet56", *sname = "resnet20", *device = "auto", *infer = NULL, *data = NULL, *isa = NULL;
    const char *thread_list = NULL;
    int B = 64, steps = 10, warm = 2, infer_batch = 64, check = 0, profile = 0, peak = 0, runs = 3, graph = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--gemm")) return bench_gemm(argc, argv);   /* gemm_bench.c */
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { bench_usage(); return 0; }
        else if (!strcmp(a, "--check-devices")) { check = 1; continue; }
        else if (!strcmp(a, "--profile")) { profile = 1; continue; }
        else if (!strcmp(a, "--no-graph")) { graph = 0; continue; }
        else if (!strcmp(a, "--peak")) { peak = 1; continue; }
        else if (!strcmp(a, "--infer")) { infer = (v && v[0] != '-') ? argv[++i] : "all"; continue; }
        if (!v) dkd_die("bench: %s needs a value (see dkd bench --help)", a);
        if (!strcmp(a, "--teacher")) tname = v;
        else if (!strcmp(a, "--student")) sname = v;
        else if (!strcmp(a, "--batch")) B = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--warmup")) warm = atoi(v);
        else if (!strcmp(a, "--threads")) thread_list = v;
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--infer-batch")) infer_batch = atoi(v);
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--runs")) runs = atoi(v);
        else if (!strcmp(a, "--isa")) isa = v;
        else dkd_die("bench: unknown flag %s (see dkd bench --help)", a);
        i++;
    }
    if (B <= 0 || steps <= 0 || warm < 0 || infer_batch <= 0) dkd_die("bench: --batch/--steps/--infer-batch must be positive");
    if (data && !infer) dkd_die("bench: --data times inference over the test set: use it with --infer");
    /* --threads N[,N...]: validated up front */
    int threads[16], n_threads = 0;
    if (thread_list) {
        char buf[256]; snprintf(buf, sizeof buf, "%s", thread_list);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            char *end; long t = strtol(tok, &end, 10);
            if (*end || t <= 0 || t > 4096 || n_threads == 16) dkd_die("bench: --threads wants positive counts, e.g. 1,2 (got '%s')", thread_list);
            threads[n_threads++] = (int)t;
        }
    }
    if (isa) {
        int k = dkd_isa_parse(isa);
        if (k < 0) dkd_die("bench: --isa %s: unknown (expected avx512, avx2, scalar or auto)", isa);
        if (dkd_set_isa(k)) dkd_die("bench: --isa %s: %s", isa, dkd_errbuf);
    }
    if (peak) {
        char all[256];
        snprintf(all, sizeof all, "%d", dkd_num_threads());
        bench_peak(thread_list ? thread_list : all);
        return 0;
    }
    const Backend *be = backend_select(device);
    if (!be) dkd_die("%s", dkd_errbuf);
    if (!n_threads) threads[n_threads++] = 0;   /* 0: as set (OMP_NUM_THREADS or all cores) */
    for (int ti = 0; ti < n_threads; ti++) {
        if (threads[ti] > 0) dkd_set_threads(threads[ti]);
        printf("device %s, %d thread(s)", be->name, dkd_num_threads());
        if (!strcmp(be->name, "cpu")) {
            printf(", kernels %s (available:", dkd_isa_name(dkd_isa()));
            for (int k = DKD_ISA_COUNT - 1; k >= 0; k--) if (dkd_isa_available(k)) printf(" %s", dkd_isa_name(k));
            printf(")");
            if (profile) {   /* the profile's conv GFLOP/s against this path's peak */
                net_profile_peak = peak_threads(dkd_isa(), dkd_num_threads(), 0.2);
                printf(", FMA peak %.1f GFLOP/s", net_profile_peak);
            }
        }
        printf("\n");
        fflush(stdout);
        if (check) {   /* every pair's step on the CUDA backend against the C reference */
            const Backend *cu = backend_select("cuda");
            if (!cu) dkd_die("--check-devices: %s", dkd_errbuf);
            int bad = 0;
            for (int i = 0; i < n_pairs; i++) bad += !compare_backends_step(&backend_cpu, cu, pair_table[i].teacher, pair_table[i].student, B);
            printf("%d of %d pairs agree\n", n_pairs - bad, n_pairs);
            return bad ? 1 : 0;
        }
        if (infer && data) bench_infer_data(be, infer, data, infer_batch, runs, profile);
        else if (infer) bench_infer_random(be, infer, infer_batch, steps, warm, profile);
        else if (!strcmp(tname, "all"))
            for (int i = 0; i < n_pairs; i++) bench_pair(be, pair_table[i].teacher, pair_table[i].student, B, steps, warm, profile, graph);
        else bench_pair(be, tname, sname, B, steps, warm, profile, graph);
    }
    return 0;
}
