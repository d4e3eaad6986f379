/* bench.c — `dkd bench`: how fast is one DKD training step, and inference?
 *
 * Training step = what train.c does per batch: teacher forward (eval mode,
 * inference arena), student forward (train mode), fused DKD loss + gradient,
 * student backward, one SGD step. Inputs are random (speed does not depend on
 * the pixel values), weights are fresh. Reported as images/s over timed steps
 * after warm-up steps (the first steps touch fresh memory).
 * Inference = eval-mode forward of a model at a batch size, images/s.
 */
#include "dkd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void bench_usage(void) {
    printf("usage: dkd bench [--teacher T] [--student S] [--batch 64] [--steps 10] [--warmup 2]\n"
           "                 [--threads N] [--device cpu|cuda|auto] [--infer [MODEL,...|all]] [--infer-batch 64]\n"
           "  Times DKD training steps (teacher eval forward + student forward/backward + loss + SGD)\n"
           "  for a teacher->student pair (default resnet56 -> resnet20) and prints images/s.\n"
           "  --infer: instead time eval-mode inference of the listed models (default: all 15).\n");
}

static void fill_random(float *h, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) h[i] = (float)((dkd_rand32(seed, 9, 0, (uint32_t)i) >> 8) * (2.0 / 16777216.0) - 1.0);
}

static double bench_train(const Backend *be, const char *tname, const char *sname, int B, int steps, int warm) {
    Net *t = model_build(tname), *s = model_build(sname);
    if (!t || !s) dkd_die("%s", dkd_errbuf);
    if (net_setup(t, be, B, 0) || net_setup(s, be, B, 1)) dkd_die("%s", dkd_errbuf);
    const PairInfo *pp = pair_find(tname, sname);
    LossParams lp = {1.0f, 0.0f, 1.0f, pp ? pp->beta : 8.0f, 4.0f, 1.0f};
    int NC = net_num_classes(s);
    size_t xin = (size_t)B * 3 * 32 * 32;
    float *hx = (float *)xmalloc(xin * sizeof(float));
    fill_random(hx, xin, 1);
    int *hy = (int *)xmalloc((size_t)B * sizeof(int));
    for (int b = 0; b < B; b++) hy[b] = (int)(dkd_rand32(2, 9, 1, (uint32_t)b) % (uint32_t)NC);
    int *dy = (int *)be->alloc((size_t)B * sizeof(int));
    be->upload(dy, hy, (size_t)B * sizeof(int));
    float *dz = (float *)be->alloc((size_t)B * NC * sizeof(float));
    float *rows = (float *)be->alloc((size_t)B * 3 * sizeof(float));
    float *hrows = (float *)xmalloc((size_t)B * 3 * sizeof(float));
    double t0 = 0;
    for (int it = 0; it < warm + steps; it++) {
        if (it == warm) { be->sync(); t0 = now_seconds(); }
        be->upload(t->x, hx, xin * sizeof(float));
        float *tv = net_forward(t, B, 0);
        be->upload(s->x, hx, xin * sizeof(float));
        float *sz = net_forward(s, B, 1);
        be->dkd_loss(dz, rows, sz, tv, dy, B, NC, lp);
        be->download(hrows, rows, (size_t)B * 3 * sizeof(float));   /* the trainer logs the loss every step */
        net_backward(s, dz, B);
        net_sgd(s, 0.05f, 0.9f, 5e-4f);
    }
    be->sync();
    double dt = now_seconds() - t0;
    be->release(dy); be->release(dz); be->release(rows);
    free(hx); free(hy); free(hrows);
    net_free(t); net_free(s);
    return (double)B * steps / dt;
}

static double bench_infer(const Backend *be, const char *name, int B, int steps, int warm) {
    Net *n = model_build(name);
    if (!n) dkd_die("%s", dkd_errbuf);
    if (net_setup(n, be, B, 0)) dkd_die("%s", dkd_errbuf);
    size_t xin = (size_t)B * 3 * 32 * 32;
    float *hx = (float *)xmalloc(xin * sizeof(float));
    fill_random(hx, xin, 3);
    double t0 = 0;
    for (int it = 0; it < warm + steps; it++) {
        if (it == warm) { be->sync(); t0 = now_seconds(); }
        be->upload(n->x, hx, xin * sizeof(float));
        net_forward(n, B, 0);
    }
    be->sync();
    double dt = now_seconds() - t0;
    free(hx); net_free(n);
    return (double)B * steps / dt;
}

int cmd_bench(int argc, char **argv) {
    const char *tname = "resnet56", *sname = "resnet20", *device = "auto", *infer = NULL;
    int B = 64, steps = 10, warm = 2, threads = 0, infer_batch = 64;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { bench_usage(); return 0; }
        else if (!strcmp(a, "--infer")) { infer = (v && v[0] != '-') ? argv[++i] : "all"; continue; }
        if (!v) dkd_die("bench: %s needs a value (see dkd bench --help)", a);
        if (!strcmp(a, "--teacher")) tname = v;
        else if (!strcmp(a, "--student")) sname = v;
        else if (!strcmp(a, "--batch")) B = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--warmup")) warm = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--infer-batch")) infer_batch = atoi(v);
        else dkd_die("bench: unknown flag %s (see dkd bench --help)", a);
        i++;
    }
    if (B <= 0 || steps <= 0 || warm < 0 || infer_batch <= 0) dkd_die("bench: --batch/--steps/--infer-batch must be positive");
    if (threads > 0) dkd_set_threads(threads);
    const Backend *be = backend_select(device);
    if (!be) dkd_die("%s", dkd_errbuf);
    printf("device %s, %d thread(s)\n", be->name, dkd_num_threads());
    if (infer) {
        printf("%-12s %8s %12s\n", "model", "batch", "img/s");
        for (int i = 0; i < n_models; i++) {
            const char *nm = model_table[i].name;
            if (strcmp(infer, "all")) {
                const ModelInfo *mi = NULL;
                char buf[512]; snprintf(buf, sizeof buf, "%s", infer);
                for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","))
                    if (model_find(tok) == &model_table[i]) mi = &model_table[i];
                if (!mi) continue;
            }
            printf("%-12s %8d %12.1f\n", nm, infer_batch, bench_infer(be, nm, infer_batch, steps, warm));
            fflush(stdout);
        }
        return 0;
    }
    const ModelInfo *ti = model_find(tname), *si = model_find(sname);
    if (!ti || !si) dkd_die("bench: unknown model '%s' (see dkd list)", !ti ? tname : sname);
    double ips = bench_train(be, ti->name, si->name, B, steps, warm);
    printf("DKD train step %s -> %s, batch %d: %.1f img/s (%.1f ms/step, %d timed steps after %d warm-up)\n", ti->name,
           si->name, B, ips, 1000.0 * B / ips, steps, warm);
    return 0;
}
