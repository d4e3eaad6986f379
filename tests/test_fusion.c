/* tests/test_fusion.c — the eval-mode fusion of net.c (BN folded into the conv before
 * it; relu applied by the conv, add or bn before it; a residual add done by the conv
 * before it) against the same forward with every node as written (Net.no_fuse = 1).
 *
 * For every model, with BN parameters and running statistics moved away from their
 * initial 1/0 (else folding would be a no-op and prove nothing):
 *   - fused eval logits match the unfused ones (max|d| <= 1e-5 of max|logit|: folding
 *     only changes rounding), on an inference-only net and on a trainable one;
 *   - an inference-only net keeps its folded weights (and its convolutions' eval
 *     cache of transformed weights, n->wcache) between forwards, and drops them when
 *     the weights change (net_init_params, net_weights_changed): the second forward
 *     after a change matches the unfused forward of the NEW weights;
 *   - a NaN in the input reaches the logits exactly where the unfused forward puts it
 *     (the fused relu keeps NaN, as kernels/relu.c);
 *   - a train-mode forward is bit for bit the same with and without fusion enabled;
 *   - the CPU backward where a BN, ReLU or add writes its input's gradient (=) instead of
 *     adding to a zeroed one, being that input's one reader (Node.dact_set): the same parameter gradients as with every gradient
 *     zeroed and added to, and again on a second backward, whose buffers hold the first
 *     one's values (a gradient that was neither zeroed nor written would show there).
 */
#include "dkd.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *MODELS[] = {"resnet20", "resnet8x4", "wrn_16_2", "vgg8", "MobileNetV2", "ShuffleV1", "ShuffleV2",
                               "ResNet50"};
enum { B = 4 };

static float lcg(unsigned *s) { *s = *s * 1103515245u + 12345u; return ((*s >> 8) & 0xffff) / 65536.0f; }

static void random_input(Net *n, unsigned seed) {
    for (int i = 0; i < B * 3 * 32 * 32; i++) n->x[i] = 2.0f * lcg(&seed) - 1.0f;
}

/* gamma, beta, running mean and variance of every BN away from 1, 0, 0, 1. */
static void perturb_bn(Net *n, unsigned seed) {
    for (int i = 0; i < n->n_nodes; i++) {
        const Node *nd = &n->nodes[i];
        if (nd->op != OP_BN) continue;
        float *g = n->h_params + n->pinfo[nd->w].off, *b = n->h_params + n->pinfo[nd->b].off;
        float *m = n->h_stats + n->pinfo[nd->rm].off, *v = n->h_stats + n->pinfo[nd->rv].off;
        for (int c = 0; c < nd->C; c++) {
            g[c] = 0.5f + lcg(&seed); b[c] = lcg(&seed) - 0.5f;
            m[c] = 0.2f * (lcg(&seed) - 0.5f); v[c] = 0.5f + lcg(&seed);
        }
    }
    net_weights_changed(n);
}

/* Logits of an eval forward of the fixed test input (with one NaN if asked), fused or
 * not, copied out. (The input is written every time: an inference net recycles its slot.) */
static float *eval_logits(Net *n, int no_fuse, int with_nan) {
    size_t count = (size_t)B * net_num_classes(n);
    random_input(n, 3);
    if (with_nan) n->x[5] = NAN;
    n->no_fuse = no_fuse;
    float *out = (float *)xmalloc(count * sizeof(float));
    memcpy(out, net_forward(n, B, 0), count * sizeof(float));
    n->no_fuse = 0;
    return out;
}

static double rel_maxdiff(const float *a, const float *b, size_t count) {
    double d = 0, m = 0;
    for (size_t i = 0; i < count; i++) {
        if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
        if (fabs((double)b[i]) > m) m = fabs((double)b[i]);
    }
    return m > 0 ? d / m : d;
}

static void check_fused(Net *n, const char *model, const char *what) {
    size_t count = (size_t)B * net_num_classes(n);
    float *fused = eval_logits(n, 0, 0), *plain = eval_logits(n, 1, 0);
    double r = rel_maxdiff(fused, plain, count);
    check(r <= 1e-5, "%s %s: fused vs unfused eval logits, max|d| = %.3g of max|logit|", model, what, r);
    free(fused); free(plain);
}

static void inference_net(const char *model) {
    Net *n = model_build(model);
    net_init_params(n, 1);
    perturb_bn(n, 11);
    net_setup(n, &backend_cpu, B, 0);
    int folded = 0;
    for (int i = 0; i < n->n_nodes; i++) folded += n->nodes[i].fold_bn >= 0;
    check(folded > 0, "%s: %d BatchNorms folded into convolutions", model, folded);
    int adds = 0, conv_adds = 0;
    for (int i = 0; i < n->n_nodes; i++) { adds += n->nodes[i].op == OP_ADD; conv_adds += n->nodes[i].fuse_add >= 0; }
    check(adds == 0 || conv_adds > 0, "%s: %d of %d residual adds done by the conv before them", model, conv_adds, adds);
    check(n->wcache != NULL || strcmp(model, "vgg8") != 0, "%s: an eval weight cache of %zu floats", model,
          n->wcache_floats);
    check_fused(n, model, "inference net");
    check_fused(n, model, "inference net, folded weights reused");

    size_t count = (size_t)B * net_num_classes(n);
    float *before = eval_logits(n, 0, 0);
    net_init_params(n, 2);   /* new weights: the folded ones must not be reused */
    perturb_bn(n, 12);
    float *after = eval_logits(n, 0, 0), *plain = eval_logits(n, 1, 0);
    check(rel_maxdiff(after, plain, count) <= 1e-5 && rel_maxdiff(before, plain, count) > 1e-3,
          "%s: after new weights the fused forward follows them (max|d| %.3g vs the new, %.3g vs the old)", model,
          rel_maxdiff(after, plain, count), rel_maxdiff(before, plain, count));
    free(before); free(after); free(plain);

    float *fn = eval_logits(n, 0, 1), *pn = eval_logits(n, 1, 1);
    size_t same = 0, nans = 0;
    for (size_t i = 0; i < count; i++) { same += isnan(fn[i]) == isnan(pn[i]); nans += isnan(pn[i]) != 0; }
    check(same == count && nans > 0, "%s: a NaN input gives NaN logits where the unfused forward does (%zu of %zu)",
          model, nans, count);
    free(fn); free(pn);
    net_free(n);
}

static void trainable_net(const char *model) {
    Net *n = model_build(model);
    net_init_params(n, 4);
    perturb_bn(n, 13);
    net_setup(n, &backend_cpu, B, 1);
    check_fused(n, model, "trainable net");

    size_t count = (size_t)B * net_num_classes(n);
    float *stats0 = (float *)xmalloc(n->n_stats * sizeof(float));
    memcpy(stats0, n->h_stats, n->n_stats * sizeof(float));
    float *a = (float *)xmalloc(count * sizeof(float));
    random_input(n, 5);
    memcpy(a, net_forward(n, B, 1), count * sizeof(float));
    memcpy(n->h_stats, stats0, n->n_stats * sizeof(float));
    random_input(n, 5);
    n->no_fuse = 1;
    const float *b = net_forward(n, B, 1);
    n->no_fuse = 0;
    check_same("train forward: logits with fusion enabled vs disabled", a, b, count * sizeof(float));
    free(stats0); free(a);
    net_free(n);
}

/* Parameter gradients of a train forward + backward of the fixed input (BN statistics
 * restored to stats0 first, so every call sees the same net), copied out. */
static float *train_grads(Net *n, const float *stats0) {
    memcpy(n->h_stats, stats0, n->n_stats * sizeof(float));
    random_input(n, 7);
    const float *logits = net_forward(n, B, 1);
    size_t count = (size_t)B * net_num_classes(n);
    float *dl = (float *)xmalloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++) dl[i] = logits[i] * 0.01f - (i % 7 == 0 ? 0.1f : 0.0f);
    net_backward(n, dl, B);
    float *g = (float *)xmalloc(n->n_params * sizeof(float));
    memcpy(g, n->grads, n->n_params * sizeof(float));
    free(dl);
    return g;
}

static int same_values(const float *a, const float *b, size_t count) {   /* (-0 == +0) */
    for (size_t i = 0; i < count; i++) if (!(a[i] == b[i])) return 0;
    return 1;
}

static void gradient_writes(const char *model) {
    Net *n = model_build(model);
    net_init_params(n, 6);
    perturb_bn(n, 14);
    net_setup(n, &backend_cpu, B, 1);
    float *stats0 = (float *)xmalloc(n->n_stats * sizeof(float));
    memcpy(stats0, n->h_stats, n->n_stats * sizeof(float));
    int set = 0;
    for (int i = 0; i < n->n_nodes; i++) set += n->nodes[i].dact_set;
    float *first = train_grads(n, stats0), *again = train_grads(n, stats0);
    for (int i = 0; i < n->n_nodes; i++) n->nodes[i].dact_set = 0;   /* every gradient zeroed and added to */
    float *added = train_grads(n, stats0);
    check(set > 0 && same_values(first, added, n->n_params) && same_values(again, added, n->n_params),
          "%s: %d gradients written by their one reader, not zeroed: parameter gradients = the zero-and-add backward's, "
          "twice", model, set);
    free(stats0); free(first); free(again); free(added);
    net_free(n);
}

int main(void) {
    for (size_t m = 0; m < sizeof MODELS / sizeof MODELS[0]; m++) {
        inference_net(MODELS[m]);
        trainable_net(MODELS[m]);
        gradient_writes(MODELS[m]);
    }
    return test_summary();
}
