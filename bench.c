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

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void bench_usage(void) {
    printf("usage: dkd bench [--teacher T] [--student S] [--batch 64] [--steps 10] [--warmup 2]\n"
           "                 [--threads N] [--device cpu|cuda|auto] [--infer [MODEL,...|all]] [--infer-batch 64]\n"
           "  Times DKD training steps (teacher eval forward + student forward/backward + loss + SGD)\n"
           "  for a teacher->student pair (default resnet56 -> resnet20) and prints images/s.\n"
           "  --infer: instead time eval-mode inference of the listed models (default: all 15).\n"
           "  --gemm: GFLOP/s of the CPU and CUDA GEMMs at the models' convolution shapes\n"
           "          (dkd bench --gemm --help).\n"
           "  --check-devices: one DKD step of each of the 11 pairs on CUDA and on the CPU, compared.\n"
           "  --profile: also time every op of the timed steps or forwards (synchronising after\n"
           "             each) and print a table, largest first: where the time goes.\n");
}

static void fill_random(float *h, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) h[i] = (float)((dkd_rand32(seed, 9, 0, (uint32_t)i) >> 8) * (2.0 / 16777216.0) - 1.0);
}

static double bench_train(const Backend *be, const char *tname, const char *sname, int B, int steps, int warm, int profile) {
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
        if (it == warm) { be->sync(); t0 = now_seconds(); net_profile = profile; }
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
    if (profile) {
        net_profile = 0;
        printf("profile of %d step(s), %.1f ms/step:\n", steps, 1e3 * dt / steps);
        net_profile_report(dt);
    }
    be->release(dy); be->release(dz); be->release(rows);
    free(hx); free(hy); free(hrows);
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
    LossParams lp = {1.0f, 0.0f, 1.0f, 8.0f, 4.0f, 1.0f};
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
        net_sgd(s[k], 0.05f, 0.9f, 5e-4f);
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

int cmd_bench(int argc, char **argv) {
    const char *tname = "resnet56", *sname = "resnet20", *device = "auto", *infer = NULL;
    int B = 64, steps = 10, warm = 2, threads = 0, infer_batch = 64, check = 0, profile = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--gemm")) return bench_gemm(argc, argv);   /* gemm_bench.c */
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { bench_usage(); return 0; }
        else if (!strcmp(a, "--check-devices")) { check = 1; continue; }
        else if (!strcmp(a, "--profile")) { profile = 1; continue; }
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
    if (check) {   /* every pair's step on the CUDA backend against the C reference */
        const Backend *cu = backend_select("cuda");
        if (!cu) dkd_die("--check-devices: %s", dkd_errbuf);
        int bad = 0;
        for (int i = 0; i < n_pairs; i++) bad += !compare_backends_step(&backend_cpu, cu, pair_table[i].teacher, pair_table[i].student, B);
        printf("%d of %d pairs agree\n", n_pairs - bad, n_pairs);
        return bad ? 1 : 0;
    }
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
            printf("%-12s %8d %12.1f\n", nm, infer_batch, bench_infer(be, nm, infer_batch, steps, warm, profile));
            fflush(stdout);
        }
        return 0;
    }
    const ModelInfo *ti = model_find(tname), *si = model_find(sname);
    if (!ti || !si) dkd_die("bench: unknown model '%s' (see dkd list)", !ti ? tname : sname);
    double ips = bench_train(be, ti->name, si->name, B, steps, warm, profile);
    printf("DKD train step %s -> %s, batch %d: %.1f img/s (%.1f ms/step, %d timed steps after %d warm-up)\n", ti->name,
           si->name, B, ips, 1000.0 * B / ips, steps, warm);
    return 0;
}
