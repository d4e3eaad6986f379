/* gemm_bench.c — `dkd bench --gemm`: how fast is each GEMM at the shapes the
 * convolutions of the models really run?
 *
 * A convolution layer (C -> OC channels, KxK, stride S, G groups, on HxW
 * maps, batch B) is three matrix products once im2col has laid the input out
 * as columns (kernels/conv.cu; Cg = C/G, OCg = OC/G, P = B*OH*OW positions):
 *   F   forward        Y  [OCg, P]      = W [OCg, Cg*K*K] · col [Cg*K*K, P]
 *   dX  input grad     dcol [Cg*K*K, P] = W^T · dY                (A transposed)
 *   dW  weight grad    dW [OCg, Cg*K*K] = dY [OCg, P] · col^T     (B transposed)
 * each done G times (once per group). This file collects the distinct shapes
 * of the chosen models' convolutions (depthwise ones excluded: conv.cu runs
 * them without a GEMM), then times, for each product:
 *   - the CPU GEMM, sgemm_cpu of kernels/gemm.c, with the threads dkd uses;
 *   - every version of the CUDA GEMM (kernels/gemm.cu) when a GPU is present
 *     (CUDA events; "n/m" = not measured when there is none);
 * and prints GFLOP/s = 2·M·N·K·G / seconds. Operands are random (CPU) or
 * zeros (GPU); the GEMMs' speed does not depend on the values.
 * Each CPU timing repeats the product until at least MIN_SECONDS have passed,
 * after one untimed warm-up call.
 */
#include "dkd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* kernels/gemm.cu, when the binary is built with nvcc (weak: NULL otherwise). */
extern double gemm_cuda_gflops(int v, int tA, int tB, int M, int N, int K, int G, int reps) __attribute__((weak));
extern int gemm_cuda_versions(void) __attribute__((weak));

static const double MIN_SECONDS = 0.2;
enum { MAX_SHAPES = 128, CUDA_REPS = 20 };

typedef struct { int C, H, W, OC, K, S, P, G; } ConvShape;

static void gemm_bench_usage(void) {
    printf("usage: dkd bench --gemm [--models M1,M2,...|all] [--batch 64] [--threads N]\n"
           "  GFLOP/s of the CPU GEMM (kernels/gemm.c) and of every CUDA GEMM version\n"
           "  (kernels/gemm.cu, when a GPU is present) at the three matrix products\n"
           "  (forward F, input gradient dX, weight gradient dW) of every distinct\n"
           "  convolution shape of the models (default: resnet56,resnet20).\n");
}

/* The distinct non-depthwise convolution shapes of model `name`, appended to s[0..*n). */
static void collect_shapes(const char *name, ConvShape *s, int *n) {
    Net *net = model_build(name);
    if (!net) dkd_die("%s", dkd_errbuf);
    for (int i = 1; i < net->n_nodes; i++) {
        const Node *nd = &net->nodes[i], *a = &net->nodes[nd->in[0]];
        if (nd->op != OP_CONV || (nd->G == a->C && nd->OC == a->C && nd->G > 1)) continue;
        ConvShape c = {a->C, a->H, a->W, nd->OC, nd->K, nd->S, nd->P, nd->G};
        int seen = 0;
        for (int k = 0; k < *n && !seen; k++) seen = !memcmp(&s[k], &c, sizeof c);
        if (!seen && *n < MAX_SHAPES) s[(*n)++] = c;
    }
    net_free(net);
}

/* GFLOP/s of sgemm_cpu on G products of M x N x K (operands packed, random). */
static double cpu_gflops(int tA, int tB, int M, int N, int K, int G) {
    size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
    float *A = (float *)xmalloc(na * sizeof(float)), *B = (float *)xmalloc(nb * sizeof(float));
    float *C = (float *)xmalloc(nc * sizeof(float));
    for (size_t i = 0; i < na; i++) A[i] = (float)((i * 7 % 13) - 6) * 0.1f;
    for (size_t i = 0; i < nb; i++) B[i] = (float)((i * 5 % 11) - 5) * 0.1f;
    int lda = tA ? M : K, ldb = tB ? K : N;
    double t0 = 0, dt = 0;
    long reps = 0;
    for (long r = -1; dt < MIN_SECONDS; r++) {   /* r = -1: the untimed warm-up */
        if (r == 0) t0 = now_seconds();
        for (int g = 0; g < G; g++) sgemm_cpu(tA, tB, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
        if (r >= 0) { reps = r + 1; dt = now_seconds() - t0; }
    }
    free(A); free(B); free(C);
    return 2.0 * M * N * (double)K * G * reps / dt / 1e9;
}

/* The CPU's name from /proc/cpuinfo ("unknown CPU" if there is none). */
static void cpu_name(char *buf, size_t cap) {
    snprintf(buf, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && colon) {
            colon += 1 + (colon[1] == ' ');
            colon[strcspn(colon, "\n")] = 0;
            snprintf(buf, cap, "%s", colon);
            break;
        }
    }
    fclose(f);
}

int bench_gemm(int argc, char **argv) {
    const char *models = "resnet56,resnet20";
    int B = 64, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--gemm")) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { gemm_bench_usage(); return 0; }
        if (!v) dkd_die("bench --gemm: %s needs a value (see dkd bench --gemm --help)", a);
        if (!strcmp(a, "--models")) models = v;
        else if (!strcmp(a, "--batch")) B = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else dkd_die("bench --gemm: unknown flag %s (see dkd bench --gemm --help)", a);
        i++;
    }
    if (B <= 0) dkd_die("bench --gemm: --batch must be positive");
    if (threads > 0) dkd_set_threads(threads);

    ConvShape shapes[MAX_SHAPES];
    int n = 0;
    char list[1024];
    snprintf(list, sizeof list, "%s", models);
    if (!strcmp(models, "all"))
        for (int m = 0; m < n_models; m++) collect_shapes(model_table[m].name, shapes, &n);
    else
        for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) collect_shapes(tok, shapes, &n);

    int have_gpu = gemm_cuda_gflops && gemm_cuda_versions && dkd_cuda_device_count() > 0;
    int nv = gemm_cuda_versions ? gemm_cuda_versions() : 0;
    char cpu[160];
    cpu_name(cpu, sizeof cpu);
    printf("GEMM GFLOP/s at the convolution shapes of %s, batch %d\n", models, B);
    printf("CPU: %s, %d thread(s), sgemm_cpu (kernels/gemm.c)\n", cpu, dkd_num_threads());
    if (!gemm_cuda_gflops) printf("CUDA: not built (no nvcc when ./build.sh ran)\n");
    else if (!have_gpu) printf("CUDA: versions 1..%d not measured (no GPU): n/m\n", nv);
    else printf("CUDA: versions 1..%d of kernels/gemm.cu, %d launches each, CUDA events\n", nv, CUDA_REPS);
    printf("%-28s %-3s %6s %7s %6s %3s %8s", "conv layer", "op", "M", "N", "K", "G", "CPU");
    for (int v = 1; v <= nv; v++) printf("  cuda-v%d", v);
    printf("\n");
    for (int s = 0; s < n; s++) {
        const ConvShape *c = &shapes[s];
        int OH = (c->H + 2 * c->P - c->K) / c->S + 1, OW = (c->W + 2 * c->P - c->K) / c->S + 1;
        int Cg = c->C / c->G, OCg = c->OC / c->G, CKK = Cg * c->K * c->K, P = B * OH * OW;
        char layer[64];
        snprintf(layer, sizeof layer, "%dx%d/s%d%s %d->%d @%dx%d", c->K, c->K, c->S, c->G > 1 ? " grp" : "", c->C,
                 c->OC, c->H, c->W);
        /* op, tA, tB, M, N, K */
        const struct { const char *op; int tA, tB, M, N, K; } prods[3] = {
            {"F", 0, 0, OCg, P, CKK}, {"dX", 1, 0, CKK, P, OCg}, {"dW", 0, 1, OCg, CKK, P}};
        for (int k = 0; k < 3; k++) {
            printf("%-28s %-3s %6d %7d %6d %3d %8.1f", k ? "" : layer, prods[k].op, prods[k].M, prods[k].N,
                   prods[k].K, c->G, cpu_gflops(prods[k].tA, prods[k].tB, prods[k].M, prods[k].N, prods[k].K, c->G));
            for (int v = 1; v <= nv; v++) {
                if (!have_gpu) { printf("  %7s", "n/m"); continue; }
                double g = gemm_cuda_gflops(v, prods[k].tA, prods[k].tB, prods[k].M, prods[k].N, prods[k].K, c->G,
                                            CUDA_REPS);
                if (g < 0) printf("  %7s", "no mem");
                else printf("  %7.1f", g);
            }
            printf("\n");
            fflush(stdout);
        }
    }
    return 0;
}
