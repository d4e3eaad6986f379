/* net.c — the network: a list of nodes in topological order, one flat buffer
 * for all parameters (and one each for their gradients and momentum), one for
 * the BatchNorm running statistics, and arenas for activations.
 *
 * How a model is described (models/NAME.c): a builder calls nb_conv, nb_bn, ...
 * in forward order. Each call appends a Node (op + inputs + output shape) and
 * registers the op's state_dict entries (ParamInfo) in mdistiller's order.
 *
 * How it runs:
 *   forward  = walk the nodes in order, each reading its inputs' outputs;
 *   backward = walk them in reverse; every op ADDS into its inputs' gradient
 *              slots (zeroed first), so a tensor used twice (a residual
 *              branch) gets the sum of both gradients automatically;
 *   SGD      = one call over the flat parameter buffer.
 * Every op goes through n->be (a Backend table): the same walk drives the C
 * reference ops, the CUDA kernels, or the CUDA kernels under the CPU emulator.
 *
 * Memory: everything is sized once in net_setup for a maximum batch Bmax.
 * A trainable net keeps every node's output (the "tape") for the backward.
 * An inference-only net (a teacher, or evaluation) gives each output a slot
 * that is recycled as soon as the last consumer has run, which keeps e.g.
 * ResNet-56 at batch 64 at a fraction of the tape's size.
 */
#include "dkd.h"
#include "kernels/isa.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- building */

Net *net_new(const char *model, int family) {
    Net *n = (Net *)xcalloc(1, sizeof(Net));
    snprintf(n->model, sizeof n->model, "%s", model);
    n->family = family;
    n->output = -1;
    return n;
}

const char *nbname(const char *fmt, ...) {
    static char buf[8][96];
    static int k = 0;
    k = (k + 1) & 7;
    va_list ap; va_start(ap, fmt);
    vsnprintf(buf[k], sizeof buf[k], fmt, ap);
    va_end(ap);
    return buf[k];
}

static int add_node(Net *n, Node nd) {
    if (n->n_nodes == n->cap_nodes) {
        n->cap_nodes = n->cap_nodes ? 2 * n->cap_nodes : 64;
        n->nodes = (Node *)xrealloc(n->nodes, (size_t)n->cap_nodes * sizeof(Node));
    }
    n->nodes[n->n_nodes] = nd;
    return n->n_nodes++;
}

static Node node_of(int op, int in0, int in1) {
    Node nd;
    memset(&nd, 0, sizeof nd);
    nd.op = op; nd.in[0] = in0; nd.in[1] = in1;
    nd.w = nd.b = nd.rm = nd.rv = nd.nbt = -1;
    nd.bn_updates = 1;
    nd.alias = nd.fold_bn = -1;
    return nd;
}

/* Register one state_dict entry; returns its ParamInfo index. */
static int add_param(Net *n, const char *name, int kind, int ndim, const int *shape, int init, int fan) {
    if (n->n_pinfo == n->cap_pinfo) {
        n->cap_pinfo = n->cap_pinfo ? 2 * n->cap_pinfo : 128;
        n->pinfo = (ParamInfo *)xrealloc(n->pinfo, (size_t)n->cap_pinfo * sizeof(ParamInfo));
    }
    ParamInfo *p = &n->pinfo[n->n_pinfo];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->kind = kind; p->ndim = ndim; p->init = init; p->fan = fan;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) { p->shape[i] = shape[i]; p->numel *= (size_t)shape[i]; }
    if (kind == PK_PARAM) { p->off = n->n_params; n->n_params += p->numel; }
    else if (kind == PK_NBT) { p->off = (size_t)n->n_nbt++; }
    else { p->off = n->n_stats; n->n_stats += p->numel; }
    return n->n_pinfo++;
}

static const Node *in_node(const Net *n, int in) {
    if (in < 0 || in >= n->n_nodes) dkd_die("model builder: bad input node %d", in);
    return &n->nodes[in];
}

int nb_input(Net *n, int C, int H, int W) {
    if (n->n_nodes != 0) dkd_die("model builder: the input must be the first node");
    Node nd = node_of(OP_INPUT, -1, -1);
    nd.C = C; nd.H = H; nd.W = W;
    return add_node(n, nd);
}

int nb_conv(Net *n, int in, const char *name_in, int OC, int K, int S, int P, int G, int bias) {
    char name_[96];   /* name may itself come from nbname(): keep a copy */
    snprintf(name_, sizeof name_, "%s", name_in);
    const char *name = name_;
    const Node *x = in_node(n, in);
    if (x->C % G || OC % G) dkd_die("model builder: %s: channels %d->%d not divisible by groups %d", name, x->C, OC, G);
    Node nd = node_of(OP_CONV, in, -1);
    nd.K = K; nd.S = S; nd.P = P; nd.G = G; nd.OC = OC;
    nd.C = OC; nd.H = (x->H + 2 * P - K) / S + 1; nd.W = (x->W + 2 * P - K) / S + 1;
    int shape[4] = {OC, x->C / G, K, K};
    int shuffle = n->family == FAMILY_SHUFFLE;
    int init = shuffle ? INIT_UNIFORM_FAN : INIT_KAIMING_OUT;
    int fan = shuffle ? (x->C / G) * K * K : OC * K * K;
    nd.w = add_param(n, nbname("%s.weight", name), PK_PARAM, 4, shape, init, fan);
    if (bias) nd.b = add_param(n, nbname("%s.bias", name), PK_PARAM, 1, &OC, shuffle ? INIT_UNIFORM_FAN : INIT_ZERO, fan);
    return add_node(n, nd);
}

int nb_bn(Net *n, int in, const char *name_in) {
    char name_[96];   /* name may itself come from nbname(): keep a copy */
    snprintf(name_, sizeof name_, "%s", name_in);
    const char *name = name_;
    const Node *x = in_node(n, in);
    Node nd = node_of(OP_BN, in, -1);
    nd.C = x->C; nd.H = x->H; nd.W = x->W;
    int C = x->C;
    nd.w = add_param(n, nbname("%s.weight", name), PK_PARAM, 1, &C, INIT_ONE, 0);
    nd.b = add_param(n, nbname("%s.bias", name), PK_PARAM, 1, &C, INIT_ZERO, 0);
    nd.rm = add_param(n, nbname("%s.running_mean", name), PK_RUNMEAN, 1, &C, INIT_ZERO, 0);
    nd.rv = add_param(n, nbname("%s.running_var", name), PK_RUNVAR, 1, &C, INIT_ONE, 0);
    nd.nbt = add_param(n, nbname("%s.num_batches_tracked", name), PK_NBT, 0, NULL, INIT_ZERO, 0);
    return add_node(n, nd);
}

int nb_conv_bn(Net *n, int in, const char *conv_in, const char *bn_in, int OC, int K, int S, int P, int G) {
    char conv[96], bn[96];   /* both may come from nbname(): copy them before nb_conv calls it again */
    snprintf(conv, sizeof conv, "%s", conv_in);
    snprintf(bn, sizeof bn, "%s", bn_in);
    return nb_bn(n, nb_conv(n, in, conv, OC, K, S, P, G, 0), bn);
}

int nb_residual(Net *n, int x, int h, const char *proj_conv, const char *proj_bn, int stride) {
    int sc = x;
    if (stride != 1 || n->nodes[x].C != n->nodes[h].C)
        sc = nb_conv_bn(n, x, proj_conv, proj_bn, n->nodes[h].C, 1, stride, 0, 1);
    return nb_relu(n, nb_add(n, h, sc));
}

static int same_shape_node(Net *n, int op, int in) {
    const Node *x = in_node(n, in);
    Node nd = node_of(op, in, -1);
    nd.C = x->C; nd.H = x->H; nd.W = x->W;
    return add_node(n, nd);
}

int nb_relu(Net *n, int in) { return same_shape_node(n, OP_RELU, in); }

int nb_maxpool(Net *n, int in, int K, int S) {
    const Node *x = in_node(n, in);
    Node nd = node_of(OP_MAXPOOL, in, -1);
    nd.K = K; nd.S = S;
    nd.C = x->C; nd.H = (x->H - K) / S + 1; nd.W = (x->W - K) / S + 1;
    return add_node(n, nd);
}

int nb_avgpool(Net *n, int in, int K, int S, int P) {
    const Node *x = in_node(n, in);
    Node nd = node_of(OP_AVGPOOL, in, -1);
    nd.K = K; nd.S = S; nd.P = P;
    nd.C = x->C; nd.H = (x->H + 2 * P - K) / S + 1; nd.W = (x->W + 2 * P - K) / S + 1;
    return add_node(n, nd);
}

int nb_linear(Net *n, int in, const char *name_in, int OUT) {
    char name_[96];   /* name may itself come from nbname(): keep a copy */
    snprintf(name_, sizeof name_, "%s", name_in);
    const char *name = name_;
    const Node *x = in_node(n, in);
    int IN = x->C * x->H * x->W;
    Node nd = node_of(OP_LINEAR, in, -1);
    nd.OC = OUT; nd.C = OUT; nd.H = 1; nd.W = 1;
    int shape[2] = {OUT, IN};
    int wi, bi;
    switch (n->family) {
    case FAMILY_VGG: case FAMILY_MBV2: wi = INIT_NORMAL_001; bi = INIT_ZERO; break;
    case FAMILY_WRN: wi = INIT_UNIFORM_FAN; bi = INIT_ZERO; break;
    default: wi = INIT_UNIFORM_FAN; bi = INIT_UNIFORM_FAN; break;
    }
    nd.w = add_param(n, nbname("%s.weight", name), PK_PARAM, 2, shape, wi, IN);
    nd.b = add_param(n, nbname("%s.bias", name), PK_PARAM, 1, &OUT, bi, IN);
    return add_node(n, nd);
}

int nb_add(Net *n, int a, int b) {
    const Node *x = in_node(n, a), *y = in_node(n, b);
    if (x->C != y->C || x->H != y->H || x->W != y->W)
        dkd_die("model builder: add of %dx%dx%d and %dx%dx%d", x->C, x->H, x->W, y->C, y->H, y->W);
    Node nd = node_of(OP_ADD, a, b);
    nd.C = x->C; nd.H = x->H; nd.W = x->W;
    return add_node(n, nd);
}

int nb_concat(Net *n, int a, int b) {
    const Node *x = in_node(n, a), *y = in_node(n, b);
    if (x->H != y->H || x->W != y->W) dkd_die("model builder: concat of %dx%d and %dx%d maps", x->H, x->W, y->H, y->W);
    Node nd = node_of(OP_CONCAT, a, b);
    nd.C = x->C + y->C; nd.H = x->H; nd.W = x->W;
    return add_node(n, nd);
}

int nb_split(Net *n, int in, int c0, int Cs) {
    const Node *x = in_node(n, in);
    if (c0 < 0 || Cs <= 0 || c0 + Cs > x->C) dkd_die("model builder: split [%d,%d) of %d channels", c0, c0 + Cs, x->C);
    Node nd = node_of(OP_SPLIT, in, -1);
    nd.c0 = c0; nd.C = Cs; nd.H = x->H; nd.W = x->W;
    return add_node(n, nd);
}

int nb_shuffle(Net *n, int in, int G) {
    const Node *x = in_node(n, in);
    if (x->C % G) dkd_die("model builder: shuffle of %d channels in %d groups", x->C, G);
    int k = same_shape_node(n, OP_SHUFFLE, in);
    n->nodes[k].G = G;
    return k;
}

void net_finalize(Net *n) {
    n->output = n->n_nodes - 1;
    n->h_params = (float *)xcalloc(n->n_params, sizeof(float));
    n->h_stats = (float *)xcalloc(n->n_stats ? n->n_stats : 1, sizeof(float));
    n->nbt = (int64_t *)xcalloc(n->n_nbt ? (size_t)n->n_nbt : 1, sizeof(int64_t));
    net_init_params(n, 0);
}

/* ---------------------------------------------------------------- weights */

/* Uniform in [0,1) from 24 random bits, and a standard normal by Box-Muller;
 * both pure functions of (seed, parameter index, element index). */
static double init_uniform(uint64_t seed, int p, uint32_t i, int k) {
    return (dkd_rand32(seed, RNG_INIT, (uint32_t)p, 2 * i + (uint32_t)k) >> 8) * (1.0 / 16777216.0);
}
static double init_normal(uint64_t seed, int p, uint32_t i) {
    double u1 = init_uniform(seed, p, i, 0), u2 = init_uniform(seed, p, i, 1);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

void net_init_params(Net *n, uint64_t seed) {
    for (int k = 0; k < n->n_pinfo; k++) {
        ParamInfo *p = &n->pinfo[k];
        if (p->kind == PK_NBT) { n->nbt[p->off] = 0; continue; }
        float *dst = (p->kind == PK_PARAM ? n->h_params : n->h_stats) + p->off;
        for (size_t i = 0; i < p->numel; i++) {
            double v;
            switch (p->init) {
            case INIT_ONE: v = 1.0; break;
            case INIT_KAIMING_OUT: v = sqrt(2.0 / p->fan) * init_normal(seed, k, (uint32_t)i); break;
            case INIT_UNIFORM_FAN: v = (2.0 * init_uniform(seed, k, (uint32_t)i, 0) - 1.0) / sqrt((double)p->fan); break;
            case INIT_NORMAL_001: v = 0.01 * init_normal(seed, k, (uint32_t)i); break;
            default: v = 0.0; break;
            }
            dst[i] = (float)v;
        }
    }
    net_weights_changed(n);
    if (n->be && n->be->on_device) net_to_device(n);
}

void net_weights_changed(Net *n) { n->fold_valid = 0; n->wcache_key = -1; }

/* ---------------------------------------------------------------- arenas */

static size_t node_floats(const Node *nd, int B) { return (size_t)B * nd->C * nd->H * nd->W; }

static void free_arenas(Net *n) {
    if (!n->be) return;
    const Backend *be = n->be;
    if (be->on_device) {   /* on the host, params/stats are the host copies: freed with the Net */
        if (n->params) be->release(n->params);
        if (n->stats) be->release(n->stats);
    }
    if (n->grads) be->release(n->grads);
    if (n->mom) be->release(n->mom);
    if (n->act) be->release(n->act);
    if (n->dact) be->release(n->dact);
    if (n->save) be->release(n->save);
    if (n->ws) be->release(n->ws);
    if (n->fold) be->release(n->fold);
    if (n->wcache) be->release(n->wcache);
    if (n->train_forwards) be->release(n->train_forwards);
    n->train_forwards = NULL;
    n->params = n->grads = n->mom = n->stats = n->act = n->dact = n->save = n->ws = n->x = n->fold = n->wcache = NULL;
}

void net_free(Net *n) {
    if (!n) return;
    free_arenas(n);
    free(n->nodes); free(n->pinfo);
    free(n->h_params); free(n->h_stats); free(n->nbt);
    free(n);
}

/* ---------------------------------------------------------------- eval-mode fusion
 *
 * In eval mode BatchNorm is a fixed per-channel affine map, so a convolution
 * followed by BN is one convolution with new weights and bias. With
 * s[o] = gamma[o] / sqrt(running_var[o] + eps):
 *
 *     w'[o, ...] = w[o, ...] * s[o]
 *     b'[o]      = beta[o] + (b[o] - running_mean[o]) * s[o]     (b = 0 without a bias)
 *
 * and a ReLU right after (conv->bn->relu, conv->relu, add->relu, and bn->relu where
 * the BN does not follow a conv) is applied by the node before it: an eval forward
 * makes one memory pass fewer per BN and per add+relu or bn+relu. A residual add
 * after a conv (conv [-> bn] -> add [-> relu], ResNet's blocks) is done by the conv
 * too, as it stores its output (plan_add_into_conv, kernels/epilogue.h): the block's
 * end costs no pass of its own. The skipped node gets "alias" = the node whose output
 * it shares. Only where the intermediate tensor has no other reader; train mode never
 * fuses, so training is bit for bit what it was. The folded weights (computed in double, rounded once) cost a pass
 * over the weights: an inference-only net (the teacher) keeps them until
 * net_weights_changed (a load, an init, net_to_device, a train forward); a trainable
 * net refolds at every eval forward, so SGD can never leave them stale.
 * Host backends only (the CUDA path runs every node as written).
 * Folding changes rounding; the measured error against the unfused path is in
 * results/cpu_vs_pytorch.md. Net.no_fuse = 1 turns it off for one net (and the
 * training fusions: the CPU's bn->relu and add->relu, forward_train_relu_fused, and a
 * device's bn [-> add] -> relu, forward_bn_relu_fused).
 */

/* How many nodes read each node's output (the logits count as read once more). */
static int *count_uses(const Net *n) {
    int *uses = (int *)xcalloc((size_t)n->n_nodes, sizeof(int));
    for (int i = 1; i < n->n_nodes; i++)
        for (int k = 0; k < 2; k++)
            if (n->nodes[i].in[k] >= 0) uses[n->nodes[i].in[k]]++;
    uses[n->output]++;
    return uses;
}

static size_t conv_weight_floats(const Net *n, const Node *nd) {
    return (size_t)nd->OC * (n->nodes[nd->in[0]].C / nd->G) * nd->K * nd->K;
}

/* The node whose output node i's is in an eval forward: its alias, or itself. */
static int resolved(const Net *n, int i) { return n->nodes[i].alias >= 0 ? n->nodes[i].alias : i; }

/* An add node j whose input is a conv's output (through its folded BN) read by nothing
 * else: that conv adds the add's other input itself (conv2d_forward_eval_cpu's res) and
 * the add is skipped, where the other input is ready before the conv runs (an earlier
 * node: a ResNet's identity shortcut, or the main branch when the projection conv comes
 * after it) and no ReLU sits between conv and add. Returns 1 if planned. */
static int plan_add_into_conv(Net *n, int j, const int *uses) {
    Node *add = &n->nodes[j];
    int best = -1, other = -1;
    for (int k = 0; k < 2; k++) {
        int a = add->in[k], r = resolved(n, a), b = add->in[1 - k];
        const Node *conv = &n->nodes[r];
        if (conv->op == OP_CONV && uses[a] == 1 && !conv->fuse_relu && conv->fuse_add < 0 &&
            resolved(n, b) < r && r > best) {
            best = r; other = b;
        }
    }
    if (best < 0) return 0;
    n->nodes[best].fuse_add = other;
    add->alias = best;
    return 1;
}

/* Marks the fusable nodes; returns the floats the folded weights need. */
static size_t plan_eval_fusion(Net *n) {
    int *uses = count_uses(n);
    size_t floats = 0;
    for (int i = 0; i < n->n_nodes; i++) {
        n->nodes[i].alias = n->nodes[i].fold_bn = n->nodes[i].fuse_add = -1;
        n->nodes[i].fuse_relu = 0;
    }
    for (int j = 1; j < n->n_nodes; j++) {
        Node *nd = &n->nodes[j];
        int i = nd->in[0];
        Node *src = &n->nodes[i];
        if (nd->op == OP_BN && src->op == OP_CONV && uses[i] == 1) {
            nd->alias = i; src->fold_bn = j; src->fold = floats;
            floats += conv_weight_floats(n, src) + (size_t)src->OC;
        } else if (nd->op == OP_ADD && plan_add_into_conv(n, j, uses)) {
            /* (done: the conv adds the other input) */
        } else if (nd->op == OP_RELU && uses[i] == 1) {
            int r = resolved(n, i);
            Node *root = &n->nodes[r];
            if (root->op == OP_CONV || ((root->op == OP_ADD || root->op == OP_BN) && r == i)) {
                nd->alias = r; root->fuse_relu = 1;
            }
        }
    }
    free(uses);
    return floats;
}

/* Conv node i's folded weights and bias from its BN's parameters and running statistics. */
static void fold_conv_bn(Net *n, const Node *conv, float eps) {
    const Node *bn = &n->nodes[conv->fold_bn];
    const float *gamma = n->params + n->pinfo[bn->w].off, *beta = n->params + n->pinfo[bn->b].off;
    const float *mean = n->stats + n->pinfo[bn->rm].off, *var = n->stats + n->pinfo[bn->rv].off;
    const float *w = n->params + n->pinfo[conv->w].off;
    const float *b = conv->b >= 0 ? n->params + n->pinfo[conv->b].off : NULL;
    size_t per_oc = conv_weight_floats(n, conv) / (size_t)conv->OC;
    float *wf = n->fold + conv->fold, *bf = wf + per_oc * conv->OC;
    for (int o = 0; o < conv->OC; o++) {
        double s = gamma[o] / sqrt((double)var[o] + eps);
        for (size_t k = 0; k < per_oc; k++) wf[o * per_oc + k] = (float)(w[o * per_oc + k] * s);
        bf[o] = (float)(beta[o] + ((b ? b[o] : 0.0) - mean[o]) * s);
    }
}

/* y = relu(a + b), NaN kept (as kernels/relu.c). */
static void add_relu(float *y, const float *a, const float *b, size_t count) {
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) {
        float v = a[i] + b[i];
        y[i] = v <= 0.0f ? 0.0f : v;
    }
}

static int conv_bn_chain(const Net *n, int i, int *res, int *relu);   /* below */

/* Inference plan: give each node a slot, recycled after its last consumer. */
static size_t plan_reuse(Net *n, int Bmax) {
    int N = n->n_nodes;
    int *last = (int *)xmalloc((size_t)N * sizeof(int));
    for (int i = 0; i < N; i++) last[i] = i;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 2; k++)
            if (n->nodes[i].in[k] >= 0) last[n->nodes[i].in[k]] = i;
    last[n->output] = N;   /* the logits stay readable after the forward */
    for (int i = 1; i < N && n->be->conv2d_bn_eval; i++) {   /* a fused conv chain reads x until its end */
        int r, relu, end = conv_bn_chain(n, i, &r, &relu), x = n->nodes[i].in[0];
        if (end > last[x]) last[x] = end;
    }
    for (int j = N - 1; j >= 1; j--) {   /* a fused eval forward reads node alias for node j */
        int r = n->nodes[j].alias;
        if (r >= 0 && last[j] > last[r]) last[r] = last[j];
    }
    size_t *cap = (size_t *)xmalloc((size_t)N * sizeof(size_t));
    int *busy = (int *)xmalloc((size_t)N * sizeof(int));
    int *slot_of = (int *)xmalloc((size_t)N * sizeof(int));
    int nslots = 0;
    for (int i = 0; i < N; i++) {
        size_t need = node_floats(&n->nodes[i], Bmax);
        int best = -1;
        for (int s = 0; s < nslots; s++)
            if (!busy[s] && cap[s] >= need && (best < 0 || cap[s] < cap[best])) best = s;
        if (best < 0) {   /* grow the largest free slot, or open a new one */
            for (int s = 0; s < nslots; s++)
                if (!busy[s] && (best < 0 || cap[s] > cap[best])) best = s;
            if (best < 0) { best = nslots++; cap[best] = 0; }
            cap[best] = need;
        }
        busy[best] = 1; slot_of[i] = best;
        for (int k = 0; k < 2; k++) {   /* free inputs (and what they alias) whose last use was this node */
            int in = n->nodes[i].in[k];
            if (in < 0) continue;
            if (last[in] == i) busy[slot_of[in]] = 0;
            int r = n->nodes[in].alias;
            if (r >= 0 && last[r] == i) busy[slot_of[r]] = 0;
        }
    }
    size_t *soff = (size_t *)xmalloc((size_t)(nslots + 1) * sizeof(size_t));
    size_t total = 0;
    for (int s = 0; s < nslots; s++) { soff[s] = total; total += (cap[s] + 15) & ~(size_t)15; }
    for (int i = 0; i < N; i++) n->nodes[i].act = soff[slot_of[i]];
    free(last); free(cap); free(busy); free(slot_of); free(soff);
    return total;
}

static int only_reader(const Net *n, int i, int j);   /* below */

/* CPU training: a node whose one reader is a conv, BN, ReLU or add (every conv before its
 * BN, a ReLU before its conv, a residual branch's last BN) gets its gradient from that
 * reader's backward alone, so the reader writes it (conv2d_backward_set_cpu, the
 * *_assign_cpu kernels) and net_backward does not zero it first: two passes over the
 * tensor fewer. */
static void plan_gradient_writes(Net *n) {
    for (int i = 0; i < n->n_nodes; i++) n->nodes[i].dact_set = 0;
    for (int j = 1; j < n->n_nodes; j++) {
        int op = n->nodes[j].op;
        if (op != OP_CONV && op != OP_BN && op != OP_RELU && op != OP_ADD) continue;
        for (int k = 0; k < (op == OP_ADD ? 2 : 1); k++) {
            int i = n->nodes[j].in[k];
            if (i > 0 && only_reader(n, i, j)) n->nodes[i].dact_set = 1;
        }
    }
}

/* The eval cache of a CPU inference net (a teacher, a model being evaluated): every conv's
 * weights in the form its path multiplies with (Winograd's transformed U, shiftconv's
 * packing: conv2d_eval_cache_floats), made by the first forward and reused while the
 * weights stay as they are (net_weights_changed drops it) instead of being remade on every
 * forward: 5-9% of a Winograd-heavy model's inference (vgg13, resnet32x4). The price is
 * memory: F(4x4)'s U holds 36 numbers per 9 weights (resnet32x4: ~120 MB). */
static void plan_weight_cache(Net *n) {
    size_t total = 0;
    for (int i = 0; i < n->n_nodes; i++) {
        Node *nd = &n->nodes[i];
        if (nd->op != OP_CONV) continue;
        const Node *x = &n->nodes[nd->in[0]];
        nd->wcache = total;
        total += conv2d_eval_cache_floats(x->C, x->H, x->W, nd->OC, nd->K, nd->S, nd->P, nd->G);
    }
    n->wcache = total ? (float *)n->be->alloc(total * sizeof(float)) : NULL;
    n->wcache_floats = total;
    n->wcache_key = -1;
}
/* What a filled cache was made from: the folded weights or not (fuse), on which
 * instruction set (the paths transform and pack differently). */
static int wcache_key(int fuse) { return fuse + 2 * dkd_isa(); }

int net_setup(Net *n, const Backend *be, int Bmax, int trainable) {
    if (Bmax <= 0) return dkd_fail("net_setup: batch must be positive");
    free_arenas(n);
    n->be = be; n->Bmax = Bmax; n->trainable = trainable;
    net_weights_changed(n);
    size_t act = 0, save = 0, ws = 0, fold = 0;
    if (!be->on_device) fold = plan_eval_fusion(n);
    if (trainable) {
        for (int i = 0; i < n->n_nodes; i++) { n->nodes[i].act = act; act += (node_floats(&n->nodes[i], Bmax) + 15) & ~(size_t)15; }
    } else {
        act = plan_reuse(n, Bmax);
    }
    for (int i = 0; i < n->n_nodes; i++) {
        Node *nd = &n->nodes[i];
        if (nd->op == OP_BN) { nd->save = save; save += 2 * (size_t)nd->C; }
        if (nd->op == OP_CONV) {
            const Node *x = &n->nodes[nd->in[0]];
            size_t w = be->conv2d_workspace_floats(Bmax, x->C, x->H, x->W, nd->OC, nd->K, nd->S, nd->P, nd->G);
            if (w > ws) ws = w;
        }
    }
    n->act_floats = act; n->save_floats = save; n->ws_floats = ws;
    n->act = (float *)be->alloc(act * sizeof(float));
    n->save = (float *)be->alloc((save ? save : 1) * sizeof(float));
    n->ws = (float *)be->alloc((ws ? ws : 1) * sizeof(float));
    if (!be->on_device) { n->fold = (float *)be->alloc((fold ? fold : 1) * sizeof(float)); n->fold_floats = fold; }
    if (!be->on_device && !trainable) plan_weight_cache(n);
    if (!be->on_device && trainable) plan_gradient_writes(n);
    if (trainable) {
        n->dact = (float *)be->alloc(act * sizeof(float));
        n->grads = (float *)be->alloc(n->n_params * sizeof(float));
        n->mom = (float *)be->alloc(n->n_params * sizeof(float));
        be->zero(n->mom, n->n_params * sizeof(float));
        be->zero(n->grads, n->n_params * sizeof(float));
    }
    if (!be->on_device) {
        n->params = n->h_params; n->stats = n->h_stats;
    } else {
        n->params = (float *)be->alloc(n->n_params * sizeof(float));
        n->stats = (float *)be->alloc((n->n_stats ? n->n_stats : 1) * sizeof(float));
        n->train_forwards = (int64_t *)be->alloc(sizeof(int64_t));
        net_to_device(n);
    }
    n->x = n->act + n->nodes[0].act;
    return 0;
}

void net_to_device(Net *n) {
    net_weights_changed(n);
    if (!n->be || !n->be->on_device || !n->params) return;
    n->be->upload(n->params, n->h_params, n->n_params * sizeof(float));
    if (n->n_stats) n->be->upload(n->stats, n->h_stats, n->n_stats * sizeof(float));
    n->be->zero(n->train_forwards, sizeof(int64_t));   /* the host copies (nbt too) are the truth now */
}

void net_to_host(Net *n) {
    if (!n->be || !n->be->on_device || !n->params) return;
    n->be->download(n->h_params, n->params, n->n_params * sizeof(float));
    if (n->n_stats) n->be->download(n->h_stats, n->stats, n->n_stats * sizeof(float));
    /* num_batches_tracked: each BN layer counts bn_updates per train forward */
    int64_t c = 0;
    n->be->download(&c, n->train_forwards, sizeof c);
    for (int i = 1; i < n->n_nodes; i++) {
        const Node *nd = &n->nodes[i];
        if (nd->op == OP_BN) n->nbt[n->pinfo[nd->nbt].off] += c * nd->bn_updates;
    }
    n->be->zero(n->train_forwards, sizeof(int64_t));
}

/* ---------------------------------------------------------------- running */

#define ACT(i) (n->act + n->nodes[(i)].act)
#define DACT(i) (n->dact + n->nodes[(i)].act)
#define PARAM(k) (n->params + n->pinfo[(k)].off)
#define GRAD(k) (n->grads + n->pinfo[(k)].off)
#define STAT(k) (n->stats + n->pinfo[(k)].off)

static const float BN_MOMENTUM = 0.1f, BN_EPS = 1e-5f;

/* ---------------------------------------------------------------- profile */

int net_profile = 0;
double net_profile_peak = 0.0;

typedef struct { char key[72]; double sec, macs; long calls; } ProfRow;
static ProfRow prof_rows[256];
static int prof_n;

static const char *op_name(int op) {
    static const char *names[] = {"input", "conv", "bn", "relu", "maxpool", "avgpool", "linear",
                                  "add", "concat", "split", "shuffle"};
    return op >= 0 && op < (int)(sizeof names / sizeof names[0]) ? names[op] : "?";
}

/* Adds dt seconds of node i (forward: dir 'F', backward: 'B') to its row. Convolutions
 * get a row per shape (KxK/stride, groups, channels, input size), so the costly layers
 * stand out; train- and eval-mode BN are told apart. */
static void prof_add(const Net *n, int i, int B, char dir, int train, double dt) {
    const Node *nd = &n->nodes[i], *a = &n->nodes[nd->in[0]];
    char key[72];
    double macs = 0;
    if (nd->op == OP_CONV) {
        snprintf(key, sizeof key, "%c conv %dx%d/s%d%s %3d->%-3d @%dx%d", dir, nd->K, nd->K, nd->S,
                 nd->G > 1 ? (nd->G == a->C ? " dw" : " grp") : "", a->C, nd->OC, a->H, a->W);
        macs = (double)B * nd->OC * nd->H * nd->W * (a->C / nd->G) * nd->K * nd->K * (dir == 'B' ? 2 : 1);
    } else if (nd->op == OP_BN) {
        snprintf(key, sizeof key, "%c bn (%s)", dir, train ? "train" : "eval");
    } else {
        snprintf(key, sizeof key, "%c %s", dir, op_name(nd->op));
    }
    int r = 0;
    while (r < prof_n && strcmp(prof_rows[r].key, key)) r++;
    if (r == prof_n) {
        if (prof_n == (int)(sizeof prof_rows / sizeof prof_rows[0])) return;
        memset(&prof_rows[prof_n], 0, sizeof prof_rows[0]);
        snprintf(prof_rows[prof_n].key, sizeof prof_rows[0].key, "%s", key);
        prof_n++;
    }
    prof_rows[r].sec += dt;
    prof_rows[r].macs += macs;
    prof_rows[r].calls++;
}

static int prof_cmp(const void *x, const void *y) {
    double a = ((const ProfRow *)x)->sec, b = ((const ProfRow *)y)->sec;
    return a < b ? 1 : a > b ? -1 : 0;
}

void net_profile_report(double total) {
    qsort(prof_rows, (size_t)prof_n, sizeof prof_rows[0], prof_cmp);
    double sum = 0;
    for (int r = 0; r < prof_n; r++) sum += prof_rows[r].sec;
    printf("%-40s %8s %9s %6s %8s%s\n", "op (F forward, B backward)", "calls", "ms", "%", "GFLOP/s",
           net_profile_peak > 0 ? "  % of peak" : "");
    for (int r = 0; r < prof_n; r++) {
        const ProfRow *p = &prof_rows[r];
        printf("%-40s %8ld %9.1f %6.1f", p->key, p->calls, 1e3 * p->sec, total > 0 ? 100.0 * p->sec / total : 0.0);
        if (p->macs > 0) printf(" %8.1f", 2e-9 * p->macs / p->sec);
        if (p->macs > 0 && net_profile_peak > 0) printf("  %9.0f", 100.0 * 2e-9 * p->macs / p->sec / net_profile_peak);
        printf("\n");
    }
    printf("%-40s %8s %9.1f %6.1f   (the rest: loss, SGD, uploads)\n", "sum of the ops", "", 1e3 * sum,
           total > 0 ? 100.0 * sum / total : 0.0);
    prof_n = 0;
}

/* Fused ops. A backend may offer one op for a chain of nodes (dkd.h: Backend's
 * optional fused ops); it is used where the chain is private (each node's
 * output read only by the next) and the separate ops run where the backend
 * has none or declines. only_reader: node j is the one node reading node i,
 * once, and i is not the network's output. */
static int only_reader(const Net *n, int i, int j) {
    if (i == n->output) return 0;
    for (int k = i + 1; k < n->n_nodes; k++) {
        int reads = (n->nodes[k].in[0] == i) + (n->nodes[k].in[1] == i);
        if (reads && (k != j || reads != 1)) return 0;
    }
    return n->nodes[j].in[0] == i || n->nodes[j].in[1] == i;
}

/* A train-mode BN's count of batches (num_batches_tracked), on the host where the
 * device has no counter of train forwards (net_forward counts on the device). */
static void count_bn_update(Net *n, const Node *nd) {
    if (!n->train_forwards) n->nbt[n->pinfo[nd->nbt].off] += nd->bn_updates;
}

/* BN node i -> ReLU, or BN -> add (of another node) -> ReLU, as one fused op of a
 * device backend, in eval or train mode: the number of nodes it did (2 or 3), 0 if
 * not fused. In train mode the BN's and the add's outputs are not written: no
 * backward reads them (BN's reads its input, add's nothing, ReLU's its output). */
static int forward_bn_relu_fused(Net *n, int i, int B, int train) {
    const Backend *be = n->be;
    const Node *nd = &n->nodes[i];
    if (train ? !be->batchnorm_train_relu : !be->batchnorm_eval_relu) return 0;
    int last = i + 1;
    const float *res = NULL;
    if (last < n->n_nodes && n->nodes[last].op == OP_ADD && only_reader(n, i, last)) {
        const Node *add = &n->nodes[last];
        res = ACT(add->in[0] == i ? add->in[1] : add->in[0]);
        last++;
    }
    if (last >= n->n_nodes || n->nodes[last].op != OP_RELU || n->nodes[last].in[0] != last - 1 ||
        !only_reader(n, last - 1, last))
        return 0;
    int HW = nd->H * nd->W;
    if (!train)
        return be->batchnorm_eval_relu(ACT(last), ACT(nd->in[0]), res, PARAM(nd->w), PARAM(nd->b), STAT(nd->rm),
                                       STAT(nd->rv), B, nd->C, HW, BN_EPS) ? last - i + 1 : 0;
    if (!be->batchnorm_train_relu(ACT(last), n->save + nd->save, n->save + nd->save + nd->C, STAT(nd->rm),
                                  STAT(nd->rv), ACT(nd->in[0]), res, PARAM(nd->w), PARAM(nd->b), B, nd->C, HW,
                                  BN_MOMENTUM, BN_EPS, nd->bn_updates))
        return 0;
    count_bn_update(n, nd);
    return last - i + 1;
}

/* ReLU node i whose input is BN node i-1: both backwards as one fused op; 1 if done. */
/* Node i+1 is a ReLU and the only reader of node i (so the pair can run as one op). */
static int relu_only_reader(const Net *n, int i) {
    return i + 1 < n->n_nodes && n->nodes[i + 1].op == OP_RELU && n->nodes[i + 1].in[0] == i && only_reader(n, i, i + 1);
}

/* 1 if node a's and node b's outputs (batch B) share memory in the arena. */
static int acts_overlap(const Net *n, int a, int b, int B) {
    const float *pa = ACT(a), *pb = ACT(b);
    return pa < pb + node_floats(&n->nodes[b], B) && pb < pa + node_floats(&n->nodes[a], B);
}

/* Eval-mode conv node i -> BN [-> add (of another node)] [-> ReLU] as one fused
 * op, the BN (+ add, ReLU) applied in the conv's epilogue: the number of nodes
 * it did (2 to 4), 0 if not fused. Each intermediate output must have its next
 * node as only reader (conv_bn_chain: the chain's last node, 0 if none; the
 * add's other input, or -1; whether a ReLU ends it). The chain's output may not
 * share memory with the conv's input (the conv reads x while writing y; an
 * inference arena's plan_reuse keeps x alive to the chain's end), and the
 * residual must be y itself or apart from it. */
static int conv_bn_chain(const Net *n, int i, int *res, int *relu) {
    if (n->nodes[i].op != OP_CONV || i + 1 >= n->n_nodes || n->nodes[i + 1].op != OP_BN || !only_reader(n, i, i + 1))
        return 0;
    int last = i + 1;
    *res = -1;
    if (last + 1 < n->n_nodes && n->nodes[last + 1].op == OP_ADD && only_reader(n, last, last + 1)) {
        const Node *add = &n->nodes[++last];
        *res = add->in[0] == last - 1 ? add->in[1] : add->in[0];
    }
    *relu = relu_only_reader(n, last);
    return last + *relu;
}

static int forward_conv_bn_fused(Net *n, int i, int B) {
    const Backend *be = n->be;
    int r, relu, last = be->conv2d_bn_eval && !n->no_fuse ? conv_bn_chain(n, i, &r, &relu) : 0;
    if (!last) return 0;
    const Node *cv = &n->nodes[i], *bn = &n->nodes[i + 1], *a = &n->nodes[cv->in[0]];
    if (acts_overlap(n, last, cv->in[0], B) || (r >= 0 && ACT(r) != ACT(last) && acts_overlap(n, last, r, B)))
        return 0;   /* (plan_reuse avoids this) */
    if (!be->conv2d_bn_eval(ACT(last), ACT(cv->in[0]), PARAM(cv->w), cv->b >= 0 ? PARAM(cv->b) : NULL, B, a->C, a->H,
                            a->W, cv->OC, cv->K, cv->S, cv->P, cv->G, n->ws, r >= 0 ? ACT(r) : NULL, PARAM(bn->w),
                            PARAM(bn->b), STAT(bn->rm), STAT(bn->rv), BN_EPS, relu))
        return 0;
    return last - i + 1;
}

static int backward_bn_relu_fused(Net *n, int i, int B) {
    const Backend *be = n->be;
    const Node *bn = &n->nodes[i - 1];
    if (!be->batchnorm_relu_backward || bn->op != OP_BN || !relu_only_reader(n, i - 1)) return 0;
    float *dx = bn->in[0] > 0 ? DACT(bn->in[0]) : NULL;
    if (dx && n->nodes[bn->in[0]].dact_set) {
        batchnorm_backward_assign_cpu(dx, GRAD(bn->w), GRAD(bn->b), DACT(i), ACT(i), ACT(bn->in[0]), n->save + bn->save,
                                      n->save + bn->save + bn->C, PARAM(bn->w), B, bn->C, bn->H * bn->W);
        return 1;
    }
    return be->batchnorm_relu_backward(dx, GRAD(bn->w), GRAD(bn->b), DACT(i), ACT(i), ACT(bn->in[0]),
                                       n->save + bn->save, n->save + bn->save + bn->C, PARAM(bn->w), B, bn->C,
                                       bn->H * bn->W);
}

/* CPU training: BN -> ReLU and add -> ReLU in one pass that writes only the ReLU's output
 * (ReLU's backward reads its output; BN's reads BN's input; add's reads nothing), where
 * the BN or add output has no other reader. The same numbers as the two ops, one memory
 * pass fewer. Returns 2 if done, 0 if node i is not such a pair. */
static int forward_train_relu_fused(Net *n, int i, int B) {
    const Node *nd = &n->nodes[i];
    if ((nd->op != OP_BN && nd->op != OP_ADD) || !relu_only_reader(n, i)) return 0;
    float *y = ACT(i + 1);
    if (nd->op == OP_ADD) {
        add_relu(y, ACT(nd->in[0]), ACT(nd->in[1]), node_floats(nd, B));
        return 2;
    }
    batchnorm_relu_forward_train_cpu(y, n->save + nd->save, n->save + nd->save + nd->C, STAT(nd->rm), STAT(nd->rv),
                                     ACT(nd->in[0]), PARAM(nd->w), PARAM(nd->b), B, nd->C, nd->H * nd->W, BN_MOMENTUM,
                                     BN_EPS, nd->bn_updates);
    count_bn_update(n, nd);
    return 2;
}

/* Node i's forward on batch B (train: BN uses and updates batch statistics;
 * fuse: a CPU eval forward with the BN folding above, inputs read through their alias).
 * Returns the number of nodes done: 1, or more when a backend's fused op did a chain. */
static int forward_train_relu_fused(Net *n, int i, int B);   /* below */

static int forward_node(Net *n, int i, int B, int train, int fuse) {
    const Backend *be = n->be;
    const Node *nd = &n->nodes[i];
    if (train && !be->on_device && !n->no_fuse) {
        int done = forward_train_relu_fused(n, i, B);
        if (done) return done;
    }
    const Node *a = &n->nodes[nd->in[0]];
    #define IN(k) ACT(fuse ? resolved(n, nd->in[k]) : nd->in[k])
    const float *x = IN(0);
    float *y = ACT(i);
    int HW = nd->H * nd->W;
    switch (nd->op) {
    case OP_CONV: {
        int done = train || fuse ? 0 : forward_conv_bn_fused(n, i, B);   /* a device backend's conv + BN [+ add] [+ ReLU] */
        if (done) return done;
        int folded = fuse && nd->fold_bn >= 0;
        const float *w = folded ? n->fold + nd->fold : PARAM(nd->w);
        const float *b = folded ? w + conv_weight_floats(n, nd) : nd->b >= 0 ? PARAM(nd->b) : NULL;
        if (!train && !be->on_device)   /* (eval-mode CPU forward: may take Winograd F(4x4); with fuse,
                                           the residual add and ReLU that follow) */
            conv2d_forward_eval_cpu(y, x, w, b, B, a->C, a->H, a->W, nd->OC, nd->K, nd->S, nd->P, nd->G, n->ws,
                                    n->wcache ? n->wcache + nd->wcache : NULL, n->wcache_key == wcache_key(fuse),
                                    fuse && nd->fuse_add >= 0 ? ACT(resolved(n, nd->fuse_add)) : NULL,
                                    fuse && nd->fuse_relu);
        else
            be->conv2d_forward(y, x, w, b, B, a->C, a->H, a->W, nd->OC, nd->K, nd->S, nd->P, nd->G, n->ws);
        break;
    }
    case OP_BN:
        if (train) {
            int done = n->no_fuse ? 0 : forward_bn_relu_fused(n, i, B, 1);   /* a device's fused BN (+ add) + ReLU */
            if (done) return done;
            be->batchnorm_forward_train(y, n->save + nd->save, n->save + nd->save + nd->C,
                                        STAT(nd->rm), STAT(nd->rv), x, PARAM(nd->w), PARAM(nd->b),
                                        B, nd->C, HW, BN_MOMENTUM, BN_EPS, nd->bn_updates);
            count_bn_update(n, nd);
        } else {
            if (fuse) {   /* the CPU's folded eval forward (BN + ReLU in one pass where planned) */
                (nd->fuse_relu ? batchnorm_relu_forward_eval_cpu : be->batchnorm_forward_eval)(
                    y, x, PARAM(nd->w), PARAM(nd->b), STAT(nd->rm), STAT(nd->rv), B, nd->C, HW, BN_EPS);
                break;
            }
            int done = forward_bn_relu_fused(n, i, B, 0);   /* a device backend's fused BN (+ add) + ReLU */
            if (done) return done;
            be->batchnorm_forward_eval(y, x, PARAM(nd->w), PARAM(nd->b), STAT(nd->rm), STAT(nd->rv),
                                       B, nd->C, HW, BN_EPS);
        }
        break;
    case OP_RELU: be->relu_forward(y, x, node_floats(nd, B)); break;
    case OP_MAXPOOL: be->maxpool_forward(y, x, B, a->C, a->H, a->W, nd->K, nd->S); break;
    case OP_AVGPOOL: be->avgpool_forward(y, x, B, a->C, a->H, a->W, nd->K, nd->S, nd->P); break;
    case OP_LINEAR:
        be->linear_forward(y, x, PARAM(nd->w), PARAM(nd->b), B, a->C * a->H * a->W, nd->OC);
        break;
    case OP_ADD:
        if (fuse && nd->fuse_relu) add_relu(y, x, IN(1), node_floats(nd, B));
        else be->add_forward(y, x, IN(1), node_floats(nd, B));
        break;
    case OP_CONCAT:
        be->concat_forward(y, x, IN(1), B, a->C, n->nodes[nd->in[1]].C, HW);
        break;
    case OP_SPLIT: be->split_forward(y, x, B, a->C, HW, nd->c0, nd->C); break;
    case OP_SHUFFLE: be->shuffle_forward(y, x, B, nd->C, HW, nd->G); break;
    default: dkd_die("net_forward: unknown op %d", nd->op);
    }
    #undef IN
    return 1;
}

/* Node i's backward: its input gradients (+=) and parameter gradients (=).
 * Returns the number of nodes done: 1, or 2 when a ReLU and its BN were fused. */
static int backward_node(Net *n, int i, int B) {
    const Backend *be = n->be;
    const Node *nd = &n->nodes[i];
    const Node *a = &n->nodes[nd->in[0]];
    const float *x = ACT(nd->in[0]);
    const float *dy = DACT(i);
    float *dx = nd->in[0] > 0 ? DACT(nd->in[0]) : NULL;   /* no gradient w.r.t. the image */
    int HW = nd->H * nd->W;
    switch (nd->op) {
    case OP_CONV:
        (dx && a->dact_set ? conv2d_backward_set_cpu : be->conv2d_backward)(
            dx, GRAD(nd->w), nd->b >= 0 ? GRAD(nd->b) : NULL, dy, x, PARAM(nd->w), B, a->C, a->H, a->W, nd->OC, nd->K,
            nd->S, nd->P, nd->G, n->ws);
        break;
    case OP_BN:
        if (dx && a->dact_set)   /* (CPU: dx written, not zeroed and added to) */
            batchnorm_backward_assign_cpu(dx, GRAD(nd->w), GRAD(nd->b), dy, NULL, x, n->save + nd->save,
                                          n->save + nd->save + nd->C, PARAM(nd->w), B, nd->C, HW);
        else
            be->batchnorm_backward(dx, GRAD(nd->w), GRAD(nd->b), dy, x, n->save + nd->save,
                                   n->save + nd->save + nd->C, PARAM(nd->w), B, nd->C, HW);
        break;
    case OP_RELU:
        if (backward_bn_relu_fused(n, i, B)) return 2;
        if (dx && a->dact_set) relu_backward_assign_cpu(dx, dy, ACT(i), node_floats(nd, B));
        else if (dx) be->relu_backward(dx, dy, ACT(i), node_floats(nd, B));
        break;
    case OP_MAXPOOL: if (dx) be->maxpool_backward(dx, dy, x, B, a->C, a->H, a->W, nd->K, nd->S); break;
    case OP_AVGPOOL: if (dx) be->avgpool_backward(dx, dy, B, a->C, a->H, a->W, nd->K, nd->S, nd->P); break;
    case OP_LINEAR:
        be->linear_backward(dx, GRAD(nd->w), GRAD(nd->b), dy, x, PARAM(nd->w), B, a->C * a->H * a->W, nd->OC);
        break;
    case OP_ADD: {
        float *db = nd->in[1] > 0 ? DACT(nd->in[1]) : NULL;
        int da_set = dx && a->dact_set, db_set = db && n->nodes[nd->in[1]].dact_set;
        if (da_set || db_set) add_backward_assign_cpu(dx, da_set, db, db_set, dy, node_floats(nd, B));
        else be->add_backward(dx, db, dy, node_floats(nd, B));
        break;
    }
    case OP_CONCAT: {
        float *db = nd->in[1] > 0 ? DACT(nd->in[1]) : NULL;
        be->concat_backward(dx, db, dy, B, a->C, n->nodes[nd->in[1]].C, HW);
        break;
    }
    case OP_SPLIT: if (dx) be->split_backward(dx, dy, B, a->C, HW, nd->c0, nd->C); break;
    case OP_SHUFFLE: if (dx) be->shuffle_backward(dx, dy, B, nd->C, HW, nd->G); break;
    default: dkd_die("net_backward: unknown op %d", nd->op);
    }
    return 1;
}

/* The profiling wrapper around one node's step (dir 'F' or 'B'): synchronise,
 * run it, synchronise, add the wall time to the node's row. The walks below
 * call it instead of the step when net_profile is set; nothing else differs. */
static int profiled_node(Net *n, int i, int B, char dir, int train, int fuse) {
    n->be->sync();
    double t0 = now_seconds();
    int done = dir == 'F' ? forward_node(n, i, B, train, fuse) : backward_node(n, i, B);
    n->be->sync();
    prof_add(n, i, B, dir, train, now_seconds() - t0);
    return done;
}

float *net_forward(Net *n, int B, int train) {
    if (B > n->Bmax) dkd_die("net_forward: batch %d exceeds the arena's %d", B, n->Bmax);
    int fuse = !train && !n->no_fuse && n->fold;
    if (train) net_weights_changed(n);   /* (the running statistics move) */
    if (train && n->train_forwards) n->be->counter_add(n->train_forwards, 1);   /* num_batches_tracked, on the device */
    if (fuse && !n->fold_valid) {
        for (int i = 1; i < n->n_nodes; i++)
            if (n->nodes[i].op == OP_CONV && n->nodes[i].fold_bn >= 0) fold_conv_bn(n, &n->nodes[i], BN_EPS);
        n->fold_valid = !n->trainable;   /* a trainable net's weights change under SGD: folded every time */
    }
    for (int i = 1; i < n->n_nodes;) {
        if (fuse && n->nodes[i].alias >= 0) { i++; continue; }   /* done by the node it aliases */
        i += net_profile ? profiled_node(n, i, B, 'F', train, fuse) : forward_node(n, i, B, train, fuse);
    }
    if (!train && n->wcache) n->wcache_key = wcache_key(fuse);   /* (every conv's cache is filled now) */
    int out = fuse ? resolved(n, n->output) : n->output;
    return ACT(out);
}

/* Node i's output gradient needs no zeroing before the backward walk: it is never written
 * (the input image's: nothing upstream learns; on the CPU a BN's whose backward runs fused
 * with its ReLU's, backward_bn_relu_fused reads the ReLU's output gradient instead), or
 * it is written whole, not added to, by its one reader's backward (dact_set). */
static int dact_needs_no_zero(const Net *n, int i) {
    if (i == 0 || n->nodes[i].dact_set) return 1;
    return !n->be->on_device && n->be->batchnorm_relu_backward && n->nodes[i].op == OP_BN && relu_only_reader(n, i);
}

void net_backward(Net *n, const float *dlogits, int B) {
    if (!n->trainable) dkd_die("net_backward: network was set up for inference only");
    const Backend *be = n->be;
    /* the gradients are accumulated (+=) into zeros: zero the B images' part of every
     * output gradient the walk adds to (on the CPU not the BN outputs that the fused
     * BN+ReLU backward never needs, nor the conv outputs that their BN writes whole) */
    for (int i = 0; i < n->n_nodes; i++)
        if (!dact_needs_no_zero(n, i)) be->zero(DACT(i), node_floats(&n->nodes[i], B) * sizeof(float));
    be->copy(DACT(n->output), dlogits, node_floats(&n->nodes[n->output], B) * sizeof(float));
    for (int i = n->n_nodes - 1; i >= 1;)
        i -= net_profile ? profiled_node(n, i, B, 'B', 1, 0) : backward_node(n, i, B);
}

void net_sgd(Net *n, const float *lr, float momentum, float wd) {
    if (!n->trainable) dkd_die("net_sgd: network was set up for inference only");
    n->be->sgd_step(n->params, n->grads, n->mom, n->n_params, lr, momentum, wd);
}

/* ---------------------------------------------------------------- queries */

int net_num_classes(const Net *n) { return n->nodes[n->output].C; }

size_t net_macs(const Net *n) {
    size_t macs = 0;
    for (int i = 1; i < n->n_nodes; i++) {
        const Node *nd = &n->nodes[i], *a = &n->nodes[nd->in[0]];
        if (nd->op == OP_CONV) macs += (size_t)nd->OC * (a->C / nd->G) * nd->K * nd->K * nd->H * nd->W;
        if (nd->op == OP_LINEAR) macs += (size_t)nd->OC * a->C * a->H * a->W;
    }
    return macs;
}

const ParamInfo *net_find(const Net *n, const char *name) {
    for (int k = 0; k < n->n_pinfo; k++)
        if (!strcmp(n->pinfo[k].name, name)) return &n->pinfo[k];
    return NULL;
}

void *net_host_ptr(const Net *n, const ParamInfo *pi) {
    switch (pi->kind) {
    case PK_PARAM: return n->h_params + pi->off;
    case PK_NBT: return n->nbt + pi->off;
    default: return n->h_stats + pi->off;
    }
}
