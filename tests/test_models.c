/* tests/test_models.c — the 15 model builders and the registry against tables
 * kept in tests/ and read at test time, so the expected values live apart from
 * the code they check:
 *
 *  1. tests/arch_table.tsv: per model the trainable parameter count, BN layers,
 *     BN running floats, state_dict entries, conv layers, dense / depthwise /
 *     FC MACs and conv output floats per image, and the role (teacher or
 *     student) — all recomputed here from the built Net.
 *  2. tests/model_keys.txt: the state_dict keys of every model, teachers
 *     included, written as one template per family (its header says how to
 *     read it); expanded here and compared key by key: name, order, kind, shape.
 *  3. the fixture weights <fixtures>/<name>.pth (real torch.save files of
 *     mdistiller models): keys, order, shapes and dtypes equal ours.
 *     Fixtures: $DKD_FIXTURES, ../shared/fixtures, tests/fixtures (test.h).
 *  4. the WRN BN quirk (a BN whose running stats update twice per step), the
 *     initialiser of each family, an op census, graph sanity.
 *  5. the registry: aliases, the unknown-name error, the 11 DKD pairs of
 *     tests/pair_table.tsv and a few spot checks typed in below. */
#include "dkd.h"
#include "test.h"

#include <ctype.h>

/* ------------------------------------------------------------ reading files */

/* Open tests/<file>; path receives the name opened. NULL if it is missing. */
static FILE *open_table(const char *file, char *path, size_t cap) {
    snprintf(path, cap, "tests/%s", file);
    return fopen(path, "r");
}

/* Read a text file into an array of lines (trailing \r\n removed). */
typedef struct { char **line; int n; } Lines;
static Lines read_lines(FILE *f) {
    Lines L = {NULL, 0};
    int cap = 0;
    char buf[1024];
    while (fgets(buf, sizeof buf, f)) {
        size_t k = strlen(buf);
        while (k && (buf[k - 1] == '\n' || buf[k - 1] == '\r')) buf[--k] = 0;
        if (L.n == cap) { cap = cap ? 2 * cap : 256; L.line = (char **)xrealloc(L.line, (size_t)cap * sizeof(char *)); }
        L.line[L.n] = (char *)xmalloc(k + 1);
        memcpy(L.line[L.n++], buf, k + 1);
    }
    return L;
}
static void free_lines(Lines *L) {
    for (int i = 0; i < L->n; i++) free(L->line[i]);
    free(L->line);
    L->line = NULL; L->n = 0;
}

/* ------------------------------------------------------------ arch_table.tsv */

enum { COL_NAME, COL_ROLE, COL_PARAMS, COL_BN, COL_BNFLOATS, COL_ENTRIES, COL_CONVS,
       COL_DENSE, COL_DW, COL_FC, COL_TOTAL, COL_OUTFLOATS, N_COLS };
static const char *const col_names[N_COLS] = {
    "model_dict_name", "role_in_11_pairs", "trainable_params", "bn_layers", "bn_running_floats",
    "state_dict_entries", "conv_layers", "dense_conv_macs", "depthwise_conv_macs", "fc_macs",
    "total_macs", "conv_output_floats_per_image"};

typedef struct { char name[32]; int teacher; long long v[N_COLS]; } ArchRow;

/* Split a line on tabs in place; returns the number of fields (<= max). */
static int split_tabs(char *s, char **field, int max) {
    int n = 0;
    while (n < max) {
        field[n++] = s;
        char *t = strchr(s, '\t');
        if (!t) break;
        *t = 0; s = t + 1;
    }
    return n;
}

/* Split the header line of a TSV and find the column of each of names[0..n);
 * col[c] receives its index. Returns the number of header fields, -1 if a
 * column is missing. */
static int find_columns(char *header, const char *const *names, int n, int *col, const char *file) {
    char *field[64];
    int nf = split_tabs(header, field, 64);
    for (int c = 0; c < n; c++) {
        col[c] = -1;
        for (int j = 0; j < nf; j++) if (!strcmp(field[j], names[c])) col[c] = j;
        if (col[c] < 0) { printf("  %s: no column %s\n", file, names[c]); return -1; }
    }
    return nf;
}

/* Parse the TSV; returns the number of rows (-1 on a format error). */
static int read_arch_table(FILE *f, ArchRow *rows, int max) {
    Lines L = read_lines(f);
    int col[N_COLS], n = 0;
    char *field[64];
    if (L.n < 2) { free_lines(&L); return -1; }
    int nf = find_columns(L.line[0], col_names, N_COLS, col, "arch_table.tsv");
    if (nf < 0) { free_lines(&L); return -1; }
    for (int i = 1; i < L.n && n < max; i++) {
        if (!L.line[i][0]) continue;
        int k = split_tabs(L.line[i], field, 64);
        if (k != nf) { printf("  arch_table.tsv line %d: %d fields, header has %d\n", i + 1, k, nf); n = -1; break; }
        ArchRow *r = &rows[n++];
        snprintf(r->name, sizeof r->name, "%s", field[col[COL_NAME]]);
        r->teacher = !strcmp(field[col[COL_ROLE]], "teacher");
        for (int c = COL_PARAMS; c < N_COLS; c++) r->v[c] = strtoll(field[col[c]], NULL, 10);
    }
    free_lines(&L);
    return n;
}

/* Recompute the table's columns from a built net. */
static void net_counts(const Net *n, long long v[N_COLS]) {
    memset(v, 0, N_COLS * sizeof v[0]);
    v[COL_PARAMS] = (long long)n->n_params;
    v[COL_BNFLOATS] = (long long)n->n_stats;
    v[COL_ENTRIES] = n->n_pinfo;
    for (int i = 0; i < n->n_nodes; i++) {
        const Node *nd = &n->nodes[i];
        if (nd->op == OP_BN) v[COL_BN]++;
        if (nd->op == OP_CONV) {
            const Node *a = &n->nodes[nd->in[0]];
            long long macs = (long long)nd->OC * (a->C / nd->G) * nd->K * nd->K * nd->H * nd->W;
            int depthwise = nd->G > 1 && nd->G == a->C && nd->G == nd->OC;
            v[depthwise ? COL_DW : COL_DENSE] += macs;
            v[COL_CONVS]++;
            v[COL_OUTFLOATS] += (long long)nd->C * nd->H * nd->W;
        }
        if (nd->op == OP_LINEAR) {
            const Node *a = &n->nodes[nd->in[0]];
            v[COL_FC] += (long long)nd->OC * a->C * a->H * a->W;
        }
    }
    v[COL_TOTAL] = v[COL_DENSE] + v[COL_DW] + v[COL_FC];
}

/* ------------------------------------------------------------ key templates */

/* One expected state_dict entry. */
typedef struct { char name[128]; int kind; int ndim; int shape[4]; } Entry;
typedef struct { char name[16]; int val; } Var;
typedef struct { Entry *e; int n, cap; int err; char msg[160]; } Expansion;

static void skip_sp(const char **s) { while (**s == ' ') (*s)++; }

/* A line of model_keys.txt without its indentation; "" for a comment. */
static const char *content(const char *s) {
    skip_sp(&s);
    return *s == '#' ? "" : s;
}

/* expr := term (('+'|'-') term)* ; term := factor ('*' factor)* ;
 * factor := integer | variable. Sets x->err on anything else. */
static int eval_factor(const char **s, const Var *v, int nv, Expansion *x) {
    skip_sp(s);
    if (isdigit((unsigned char)**s)) return (int)strtol(*s, (char **)s, 10);
    if (isalpha((unsigned char)**s) || **s == '_') {
        char id[16]; int k = 0;
        while ((isalnum((unsigned char)**s) || **s == '_') && k < 15) id[k++] = *(*s)++;
        id[k] = 0;
        for (int i = nv - 1; i >= 0; i--) if (!strcmp(v[i].name, id)) return v[i].val;
        snprintf(x->msg, sizeof x->msg, "unknown variable '%s'", id);
    } else snprintf(x->msg, sizeof x->msg, "bad expression at '%.20s'", *s);
    x->err = 1;
    return 0;
}
static int eval_term(const char **s, const Var *v, int nv, Expansion *x) {
    int r = eval_factor(s, v, nv, x);
    while (**s == '*') { (*s)++; r *= eval_factor(s, v, nv, x); }
    return r;
}
/* Sizes are separated by spaces, so an expression ends at the first space. */
static int eval_expr(const char **s, const Var *v, int nv, Expansion *x) {
    int r = eval_term(s, v, nv, x);
    while (**s == '+' || **s == '-') {
        int sign = *(*s)++ == '-' ? -1 : 1;
        r += sign * eval_term(s, v, nv, x);
    }
    return r;
}

static void push_entry(Expansion *x, const char *name, int kind, int ndim, const int *shape) {
    if (x->n == x->cap) { x->cap = x->cap ? 2 * x->cap : 256; x->e = (Entry *)xrealloc(x->e, (size_t)x->cap * sizeof(Entry)); }
    Entry *e = &x->e[x->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->kind = kind; e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
}

/* One key line: "name{expr}... D0 D1 ..." (a tensor) or "name bn C" (five BN entries). */
static void expand_entry(const char *line, const Var *v, int nv, Expansion *x) {
    char name[96]; int k = 0;
    const char *s = line;
    while (*s && *s != ' ' && k < 90) {
        if (*s == '{') {
            s++;
            k += snprintf(name + k, sizeof name - (size_t)k, "%d", eval_expr(&s, v, nv, x));
            if (*s != '}') { x->err = 1; snprintf(x->msg, sizeof x->msg, "missing } in '%s'", line); return; }
            s++;
        } else name[k++] = *s++;
    }
    name[k] = 0;
    skip_sp(&s);
    if (!strncmp(s, "bn ", 3)) {
        s += 3;
        int c = eval_expr(&s, v, nv, x);
        char sub[128];
        snprintf(sub, sizeof sub, "%s.weight", name);       push_entry(x, sub, PK_PARAM, 1, &c);
        snprintf(sub, sizeof sub, "%s.bias", name);         push_entry(x, sub, PK_PARAM, 1, &c);
        snprintf(sub, sizeof sub, "%s.running_mean", name); push_entry(x, sub, PK_RUNMEAN, 1, &c);
        snprintf(sub, sizeof sub, "%s.running_var", name);  push_entry(x, sub, PK_RUNVAR, 1, &c);
        snprintf(sub, sizeof sub, "%s.num_batches_tracked", name); push_entry(x, sub, PK_NBT, 0, NULL);
        skip_sp(&s);
    } else {
        int shape[4], nd = 0;
        for (skip_sp(&s); *s && nd < 4; skip_sp(&s)) shape[nd++] = eval_expr(&s, v, nv, x);
        if (nd == 0) { x->err = 1; snprintf(x->msg, sizeof x->msg, "no shape in '%s'", line); return; }
        push_entry(x, name, PK_PARAM, nd, shape);
    }
    if (*s && !x->err) { x->err = 1; snprintf(x->msg, sizeof x->msg, "cannot read the end of '%s'", line); }
}

/* Expand lines [lo, hi) with variables v[0..nv). */
static void expand_lines(char **line, int lo, int hi, Var *v, int nv, Expansion *x) {
    for (int i = lo; i < hi && !x->err; i++) {
        const char *s = content(line[i]);
        if (!*s) continue;
        if (!strcmp(s, "end")) { x->err = 1; snprintf(x->msg, sizeof x->msg, "end without for"); return; }
        if (strncmp(s, "for ", 4)) { expand_entry(s, v, nv, x); continue; }
        /* for VAR FIRST LAST */
        char var[16]; int used = 0;
        if (sscanf(s + 4, "%15s %n", var, &used) != 1 || used == 0 || nv >= 15) {
            x->err = 1; snprintf(x->msg, sizeof x->msg, "bad loop '%s'", s); return;
        }
        const char *p = s + 4 + used;
        int a = eval_expr(&p, v, nv, x);
        skip_sp(&p);
        int b = eval_expr(&p, v, nv, x);
        if (*p) { x->err = 1; snprintf(x->msg, sizeof x->msg, "bad range in '%s'", s); return; }
        int depth = 1, j = i + 1;
        for (; j < hi; j++) {
            const char *t = content(line[j]);
            if (!strncmp(t, "for ", 4)) depth++;
            else if (!strcmp(t, "end") && --depth == 0) break;
        }
        if (j >= hi) { x->err = 1; snprintf(x->msg, sizeof x->msg, "for without end"); return; }
        snprintf(v[nv].name, sizeof v[nv].name, "%s", var);
        for (int it = a; it <= b && !x->err; it++) { v[nv].val = it; expand_lines(line, i + 1, j, v, nv + 1, x); }
        i = j;
    }
}

/* Find the family line naming model, e.g.
 * "family wrn: wrn_16_2 K=2 N=2, wrn_40_2 K=2 N=6", and expand its keys (the
 * lines up to the next family line) with that model's variables.
 * Returns 0 if found (x filled, x->err on a syntax problem), -1 if no family names it. */
static int expand_template_for(const Lines *L, const char *model, Expansion *x) {
    for (int i = 0; i < L->n; i++) {
        if (strncmp(L->line[i], "family ", 7)) continue;
        const char *s = strchr(L->line[i], ':');
        if (!s) continue;
        s++;
        /* items "model [VAR=val ...]" separated by ',' */
        while (*s) {
            char who[48]; int used = 0;
            if (sscanf(s, " %47[^ ,]%n", who, &used) != 1) break;
            s += used;
            Var v[16]; int nv = 0;
            for (;;) {
                char nm[16]; int val;
                if (sscanf(s, " %15[A-Za-z0-9_]=%d%n", nm, &val, &used) != 2) break;
                if (nv < 8) { snprintf(v[nv].name, sizeof v[nv].name, "%s", nm); v[nv++].val = val; }
                s += used;
            }
            skip_sp(&s);
            if (*s == ',') s++;
            if (strcmp(who, model)) continue;
            int end = i + 1;
            while (end < L->n && strncmp(L->line[end], "family ", 7)) end++;
            expand_lines(L->line, i + 1, end, v, nv, x);
            return 0;
        }
    }
    return -1;
}

/* Compare a net's ParamInfo list with expected entries; prints the first mismatch. */
static int same_keys(const Net *n, const Entry *e, int ne, char *why, size_t cap) {
    if (n->n_pinfo != ne) {
        snprintf(why, cap, "%d entries, expected %d", n->n_pinfo, ne);
        /* still report the first differing name below, if any */
    }
    int m = n->n_pinfo < ne ? n->n_pinfo : ne;
    for (int i = 0; i < m; i++) {
        const ParamInfo *p = &n->pinfo[i];
        int ok = !strcmp(p->name, e[i].name) && p->kind == e[i].kind && p->ndim == e[i].ndim;
        for (int d = 0; ok && d < p->ndim; d++) ok = p->shape[d] == e[i].shape[d];
        if (!ok) {
            snprintf(why, cap, "entry %d: ours %s (kind %d, %dd [%d,%d,%d,%d]), expected %s (kind %d, %dd [%d,%d,%d,%d])",
                     i, p->name, p->kind, p->ndim, p->shape[0], p->shape[1], p->shape[2], p->shape[3],
                     e[i].name, e[i].kind, e[i].ndim, e[i].shape[0], e[i].shape[1], e[i].shape[2], e[i].shape[3]);
            return 0;
        }
    }
    return n->n_pinfo == ne;
}

/* ------------------------------------------------------------ per-model checks */

/* The initialiser family of a model, from its name alone (independent of the builder). */
static int expected_family(const char *model) {
    if (!strncmp(model, "wrn", 3)) return FAMILY_WRN;
    if (!strncmp(model, "vgg", 3)) return FAMILY_VGG;
    if (!strcmp(model, "MobileNetV2")) return FAMILY_MBV2;
    if (!strncmp(model, "Shuffle", 7)) return FAMILY_SHUFFLE;
    return FAMILY_RESNET;
}

/* Every conv and linear parameter gets the initialiser its mdistiller class
 * uses: convs kaiming-normal (fan_out) with zero bias, except ShuffleNet's
 * convs, which keep PyTorch's default uniform(fan_in) for weight and bias;
 * the classifier normal(0, 0.01) with zero bias in VGG and MobileNetV2, the
 * default uniform(fan_in) elsewhere, its bias zero in WRN and uniform in the
 * ResNets and ShuffleNets. */
static void check_init(const Net *n) {
    int fam = expected_family(n->model), bad = 0;
    char why[200] = "";
    for (int i = 0; i < n->n_nodes && !bad; i++) {
        const Node *nd = &n->nodes[i];
        if (nd->op != OP_CONV && nd->op != OP_LINEAR) continue;
        const Node *a = &n->nodes[nd->in[0]];
        const ParamInfo *w = &n->pinfo[nd->w], *b = nd->b >= 0 ? &n->pinfo[nd->b] : NULL;
        int wi, wf, bi = -1;
        if (nd->op == OP_CONV) {
            if (fam == FAMILY_SHUFFLE) { wi = INIT_UNIFORM_FAN; wf = (a->C / nd->G) * nd->K * nd->K; }
            else { wi = INIT_KAIMING_OUT; wf = nd->OC * nd->K * nd->K; }
            if (b) bi = fam == FAMILY_SHUFFLE ? INIT_UNIFORM_FAN : INIT_ZERO;
        } else {
            wf = a->C * a->H * a->W;
            wi = (fam == FAMILY_VGG || fam == FAMILY_MBV2) ? INIT_NORMAL_001 : INIT_UNIFORM_FAN;
            bi = (fam == FAMILY_RESNET || fam == FAMILY_SHUFFLE) ? INIT_UNIFORM_FAN : INIT_ZERO;
        }
        if (w->init != wi || (wi != INIT_NORMAL_001 && w->fan != wf)) {
            snprintf(why, sizeof why, "%s: init %d fan %d, expected %d fan %d", w->name, w->init, w->fan, wi, wf); bad = 1;
        } else if (b && b->init != bi) {
            snprintf(why, sizeof why, "%s: init %d, expected %d", b->name, b->init, bi); bad = 1;
        } else if (!b && bi >= 0) {
            snprintf(why, sizeof why, "%s has no bias", w->name); bad = 1;
        }
    }
    check(n->family == fam && !bad, "%s: family %d and its conv/linear initialisers %s",
          n->model, n->family, why);
}

/* Graph sanity: topological order, positive shapes, logits last, distinct keys. */
static void check_graph(const Net *n) {
    int ok = n->n_nodes > 1 && n->nodes[0].op == OP_INPUT && n->nodes[0].C == 3 &&
             n->nodes[0].H == 32 && n->nodes[0].W == 32;
    for (int i = 1; ok && i < n->n_nodes; i++) {
        const Node *nd = &n->nodes[i];
        ok = nd->in[0] >= 0 && nd->in[0] < i && nd->in[1] < i && nd->C > 0 && nd->H > 0 && nd->W > 0;
        if (ok && (nd->op == OP_ADD || nd->op == OP_CONCAT)) ok = nd->in[1] >= 0;
    }
    const Node *out = &n->nodes[n->n_nodes - 1];
    ok = ok && n->output == n->n_nodes - 1 && out->op == OP_LINEAR && out->C == 100 &&
         out->H == 1 && out->W == 1 && net_num_classes(n) == 100;
    /* every node except the logits is consumed by a later node (no dead branch) */
    int dead = -1;
    for (int i = 0; ok && i < n->n_nodes - 1 && dead < 0; i++) {
        int used = 0;
        for (int j = i + 1; j < n->n_nodes && !used; j++) used = n->nodes[j].in[0] == i || n->nodes[j].in[1] == i;
        if (!used) dead = i;
    }
    int dup = -1;
    for (int i = 0; i < n->n_pinfo && dup < 0; i++)
        for (int j = i + 1; j < n->n_pinfo && dup < 0; j++)
            if (!strcmp(n->pinfo[i].name, n->pinfo[j].name)) dup = i;
    check(ok && dead < 0 && dup < 0, "%s: graph: %d nodes in order, logits node last (100x1x1), "
          "every other node used, keys distinct", n->model, n->n_nodes);
    if (dead >= 0) printf("       unused node %d (op %d)\n", dead, n->nodes[dead].op);
    if (dup >= 0) printf("       duplicate key %s\n", n->pinfo[dup].name);
}

/* WRN: exactly block2.layer.0.bn1, block3.layer.0.bn1 and bn1 update twice;
 * every other BN of every model once. */
static void check_bn_updates(const Net *n) {
    int is_wrn = expected_family(n->model) == FAMILY_WRN, twice = 0, wrong = 0;
    for (int i = 0; i < n->n_nodes; i++) {
        const Node *nd = &n->nodes[i];
        if (nd->op != OP_BN) continue;
        char bn[96];
        snprintf(bn, sizeof bn, "%s", n->pinfo[nd->w].name);
        char *dot = strrchr(bn, '.');
        if (dot) *dot = 0;                 /* "x.weight" -> "x" */
        int quirk = is_wrn && (!strcmp(bn, "block2.layer.0.bn1") || !strcmp(bn, "block3.layer.0.bn1") || !strcmp(bn, "bn1"));
        if (nd->bn_updates != (quirk ? 2 : 1)) { wrong++; printf("       %s: bn_updates %d\n", bn, nd->bn_updates); }
        twice += nd->bn_updates == 2;
    }
    check(!wrong && twice == (is_wrn ? 3 : 0), "%s: BN running-stat updates per step (%d BNs twice)%s",
          n->model, twice, is_wrn ? ": the WRN quirk" : "");
}

/* Op census: how many residual adds, concats, splits, shuffles, pools and ReLUs
 * each architecture has, counted by hand from the block structure of each. These
 * catch wiring mistakes that leave the parameter counts intact (a dropped
 * residual, a missing shuffle, a max pool where an average pool belongs). */
typedef struct { const char *model; int add, concat, split, shuffle, maxpool, avgpool, relu; } Census;
static const Census census[] = {
    /* CIFAR ResNets, N blocks per stage: 3N adds; ReLUs 1 (stem) + 2 per block */
    {"resnet20", 9, 0, 0, 0, 0, 1, 19},     {"resnet32", 15, 0, 0, 0, 0, 1, 31},
    {"resnet56", 27, 0, 0, 0, 0, 1, 55},    {"resnet110", 54, 0, 0, 0, 0, 1, 109},
    {"resnet8x4", 3, 0, 0, 0, 0, 1, 7},     {"resnet32x4", 15, 0, 0, 0, 0, 1, 31},
    /* ResNet50: 16 bottlenecks, ReLUs 1 + 3 per block */
    {"ResNet50", 16, 0, 0, 0, 0, 1, 49},
    /* WRN, N blocks per group: 3N adds; ReLUs 2 per block + the final one */
    {"wrn_16_2", 6, 0, 0, 0, 0, 1, 13},     {"wrn_40_1", 18, 0, 0, 0, 0, 1, 37},
    {"wrn_40_2", 18, 0, 0, 0, 0, 1, 37},
    /* VGG: pool0-2 max (pool3 skipped), pool4 average; one ReLU per conv */
    {"vgg8", 0, 0, 0, 0, 3, 1, 5},          {"vgg13", 0, 0, 0, 0, 3, 1, 10},
    /* MobileNetV2: residual blocks 1.1, 2.1-2, 3.1-3, 4.1-2, 5.1-2 = 10;
     * ReLUs stem + 2 in each of 17 blocks + conv2 = 36 */
    {"MobileNetV2", 10, 0, 0, 0, 0, 1, 36},
    /* ShuffleV1: 16 blocks, 3 of stride 2 (concat + avg-pool shortcut), 13 adds;
     * shuffle in every block but layer1.0; ReLUs stem + 3 per block */
    {"ShuffleV1", 13, 3, 0, 15, 0, 4, 49},
    /* ShuffleV2: 3 DownBlocks + 13 BasicBlocks, each one concat + one shuffle;
     * 2 splits per BasicBlock; ReLUs stem + 3 per DownBlock + 2 per BasicBlock + head */
    {"ShuffleV2", 0, 16, 26, 16, 0, 1, 37},
};

static void check_census(const Net *n) {
    const Census *c = NULL;
    for (size_t i = 0; i < sizeof census / sizeof census[0]; i++) if (!strcmp(census[i].model, n->model)) c = &census[i];
    if (!c) { check(0, "%s: no op census in the test", n->model); return; }
    int k[OP_SHUFFLE + 1] = {0};
    for (int i = 0; i < n->n_nodes; i++) if (n->nodes[i].op >= 0 && n->nodes[i].op <= OP_SHUFFLE) k[n->nodes[i].op]++;
    check(k[OP_ADD] == c->add && k[OP_CONCAT] == c->concat && k[OP_SPLIT] == c->split && k[OP_SHUFFLE] == c->shuffle &&
          k[OP_MAXPOOL] == c->maxpool && k[OP_AVGPOOL] == c->avgpool && k[OP_RELU] == c->relu,
          "%s: op census add %d concat %d split %d shuffle %d maxpool %d avgpool %d relu %d "
          "(expected %d %d %d %d %d %d %d)", n->model, k[OP_ADD], k[OP_CONCAT], k[OP_SPLIT], k[OP_SHUFFLE],
          k[OP_MAXPOOL], k[OP_AVGPOOL], k[OP_RELU], c->add, c->concat, c->split, c->shuffle, c->maxpool, c->avgpool, c->relu);
}

/* WRN: the 1x1 convShortcut reads the ACTIVATED block input ReLU(bn1(x)), not x. */
static void check_wrn_shortcuts(const Net *n) {
    if (expected_family(n->model) != FAMILY_WRN) return;
    int found = 0, bad = 0;
    for (int i = 0; i < n->n_nodes; i++) {
        const Node *nd = &n->nodes[i];
        if (nd->op != OP_CONV || !strstr(n->pinfo[nd->w].name, ".convShortcut.")) continue;
        found++;
        const Node *a = &n->nodes[nd->in[0]];
        const Node *b = a->op == OP_RELU ? &n->nodes[a->in[0]] : NULL;
        char want[96];
        snprintf(want, sizeof want, "%s", n->pinfo[nd->w].name);
        strcpy(strstr(want, ".convShortcut."), ".bn1.weight");
        if (!b || b->op != OP_BN || strcmp(n->pinfo[b->w].name, want)) bad++;
    }
    check(found > 0 && !bad, "%s: %d convShortcuts read ReLU(bn1(x)) of their block", n->model, found);
}

/* Our key list vs a real PyTorch state_dict file. */
static void check_fixture(const Net *n, const char *file) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", fixtures_dir(), file);
    FILE *f = fopen(path, "rb");
    if (!f) { skip("%s: fixture %s not found (set DKD_FIXTURES)", n->model, path); return; }
    fclose(f);
    PthDict d;
    if (pth_read(path, &d) != 0) { check(0, "%s: pth_read %s: %s", n->model, path, dkd_errbuf); return; }
    char why[400] = "";
    int ok = d.n == n->n_pinfo;
    if (!ok) snprintf(why, sizeof why, "%d keys in the file, %d in ours", d.n, n->n_pinfo);
    for (int i = 0; i < d.n && i < n->n_pinfo && ok; i++) {
        const PthTensor *t = &d.t[i];
        const ParamInfo *p = &n->pinfo[i];
        ok = !strcmp(t->name, p->name) && t->ndim == p->ndim &&
             t->dtype == (p->kind == PK_NBT ? DT_I64 : DT_F32);
        for (int k = 0; ok && k < t->ndim; k++) ok = t->shape[k] == p->shape[k];
        if (!ok)
            snprintf(why, sizeof why, "entry %d: file %s (dtype %d, %dd [%lld,%lld,%lld,%lld]) vs ours %s (%dd [%d,%d,%d,%d])",
                     i, t->name, t->dtype, t->ndim, (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0),
                     (long long)(t->ndim > 2 ? t->shape[2] : 0), (long long)(t->ndim > 3 ? t->shape[3] : 0),
                     p->name, p->ndim, p->shape[0], p->shape[1], p->shape[2], p->shape[3]);
    }
    check(ok, "%s: keys, order, shapes and dtypes equal %s (%d entries) %s", n->model, file, d.n, why);
    pth_dict_free(&d);
}

/* ------------------------------------------------------------ the pairs */

/* tests/pair_table.tsv: every row must be in pair_table with the same values,
 * and the file must list exactly the pairs of pair_table. */
enum { PC_TEACHER, PC_STUDENT, PC_BETA, PC_LR, PC_ALPHA, PC_T, PC_WARMUP, PC_TAG, N_PC };
static const char *const pair_cols[N_PC] = {"teacher", "student", "beta", "lr", "alpha", "T", "warmup", "tag"};

static void check_pair_table(FILE *f, const char *path) {
    Lines L = read_lines(f);
    int col[N_PC], rows = 0, bad = 0;
    int nf = L.n ? find_columns(L.line[0], pair_cols, N_PC, col, path) : -1;
    for (int i = 1; nf > 0 && i < L.n; i++) {
        if (!L.line[i][0]) continue;
        char *c[16];
        if (split_tabs(L.line[i], c, 16) != nf) { bad++; printf("       %s line %d: not %d fields\n", path, i + 1, nf); continue; }
        const char *teacher = c[col[PC_TEACHER]], *student = c[col[PC_STUDENT]], *tag = c[col[PC_TAG]];
        float beta = strtof(c[col[PC_BETA]], NULL), lr = strtof(c[col[PC_LR]], NULL);
        float alpha = strtof(c[col[PC_ALPHA]], NULL), T = strtof(c[col[PC_T]], NULL);
        int warmup = atoi(c[col[PC_WARMUP]]);
        const PairInfo *p = pair_find(teacher, student);
        rows++;
        if (!p || strcmp(p->teacher, teacher) || strcmp(p->student, student) || strcmp(p->tag, tag) ||
            p->beta != beta || p->lr != lr || p->alpha != alpha || p->T != T || p->warmup != warmup) {
            bad++;
            printf("       %s: %s -> %s alpha %g beta %g T %g warm-up %d lr %g tag %s: ours %s\n", path, teacher, student,
                   alpha, beta, T, warmup, lr, tag, p ? p->tag : "(not found)");
        }
    }
    check(nf > 0 && rows == 11 && rows == n_pairs && !bad, "pair_table equals the %d rows of %s (%d differ)", rows, path, bad);
    free_lines(&L);
}

static void check_registry(void) {
    /* aliases: the short names of the experiment tags, and the dict names themselves */
    static const char *alias[][2] = {
        {"res56", "resnet56"}, {"res20", "resnet20"}, {"res110", "resnet110"}, {"res32", "resnet32"},
        {"res32x4", "resnet32x4"}, {"res8x4", "resnet8x4"}, {"wrn40_2", "wrn_40_2"}, {"wrn_40_2", "wrn_40_2"},
        {"wrn16_2", "wrn_16_2"}, {"wrn40_1", "wrn_40_1"}, {"vgg13", "vgg13"}, {"vgg8", "vgg8"},
        {"mv2", "MobileNetV2"}, {"res50", "ResNet50"}, {"shuv1", "ShuffleV1"}, {"shuv2", "ShuffleV2"},
        {"ResNet50", "ResNet50"}, {"MobileNetV2", "MobileNetV2"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++) {
        const ModelInfo *m = model_find(alias[i][0]);
        if (!m || strcmp(m->name, alias[i][1])) { bad++; printf("       %s -> %s\n", alias[i][0], m ? m->name : "NULL"); }
    }
    check(!bad, "model_find: %d aliases map to their mdistiller dict names", (int)(sizeof alias / sizeof alias[0]));

    /* every table entry: its name and each alias find it again, and exactly six teachers */
    int teachers = 0; bad = 0;
    for (int i = 0; i < n_models; i++) {
        const ModelInfo *m = &model_table[i];
        teachers += m->is_teacher;
        if (model_find(m->name) != m) bad++;
        char al[128];
        snprintf(al, sizeof al, "%s", m->aliases);
        for (char *t = strtok(al, " "); t; t = strtok(NULL, " "))
            if (model_find(t) != m) { bad++; printf("       alias %s does not find %s\n", t, m->name); }
    }
    check(n_models == 15 && teachers == 6 && !bad, "model_table: %d models, %d teachers, names and aliases round-trip", n_models, teachers);

    check(!model_find("RESNET20") && !model_find("mobilenetv2") && !model_find("") && !model_find(NULL) &&
          !model_find("res") && !model_find("resnet"),
          "model_find: case-sensitive, no prefixes, empty and NULL give NULL");

    dkd_errbuf[0] = 0;
    Net *n = model_build("resnet999");
    int listed = 1;
    for (int i = 0; i < n_models; i++) listed &= strstr(dkd_errbuf, model_table[i].name) != NULL;
    check(!n && strstr(dkd_errbuf, "unknown model 'resnet999'") && strstr(dkd_errbuf, "known:") && listed,
          "model_build(\"resnet999\") -> NULL, \"%.60s...\"", dkd_errbuf);

    /* the builders refuse a name that is not theirs instead of building something */
    bad = 0;
    for (int i = 0; i < n_models; i++) {
        Net *x = model_table[i].build("not_a_model");
        if (x) { bad++; net_free(x); }
    }
    check(!bad, "every builder returns NULL for a name that is not its own");

    /* spot checks typed in here, independent of pair_table.tsv */
    const PairInfo *p = pair_find("res56", "res20");
    check(p && p->beta == 2.0f && p->lr == 0.05f && p->alpha == 1.0f && p->T == 4.0f && p->warmup == 20 &&
          !strcmp(p->tag, "dkd,res56,res20"), "pair_find(res56, res20): beta 2, lr 0.05, tag dkd,res56,res20");
    p = pair_find("res32x4", "shuv2");
    check(p && p->beta == 8.0f && p->lr == 0.01f && !strcmp(p->teacher, "resnet32x4") && !strcmp(p->student, "ShuffleV2"),
          "pair_find(res32x4, shuv2): beta 8, lr 0.01");
    p = pair_find("wrn_40_2", "wrn16_2");
    check(p && p->beta == 6.0f && p->lr == 0.05f, "pair_find(wrn_40_2, wrn16_2): beta 6, lr 0.05");
    p = pair_find("ResNet50", "mv2");
    check(p && p->beta == 8.0f && p->lr == 0.01f && !strcmp(p->tag, "dkd,res50,mv2"), "pair_find(ResNet50, mv2): beta 8, lr 0.01");
    check(!pair_find("res20", "res56") && !pair_find("resnet56", "resnet32") && !pair_find("nope", "res20") &&
          !pair_find(NULL, NULL), "pair_find: reversed, unlisted and unknown pairs give NULL");

    /* every pair: a teacher architecture teaching a student one */
    bad = 0;
    for (int i = 0; i < n_pairs; i++) {
        const ModelInfo *t = model_find(pair_table[i].teacher), *s = model_find(pair_table[i].student);
        if (!t || !s || !t->is_teacher || s->is_teacher || pair_find(t->name, s->name) != &pair_table[i]) bad++;
    }
    check(n_pairs == 11 && !bad, "pair_table: 11 pairs, each teacher is_teacher, each student not");
}

/* ------------------------------------------------------------ main */

int main(void) {
    (void)check_close; (void)check_same; (void)test_fill;   /* test.h helpers this test does not need */
    char tsv_path[512], keys_path[512], pairs_path[512];
    printf("test_models: the 15 mdistiller architectures and the registry\n");

    check_registry();

    FILE *f = open_table("pair_table.tsv", pairs_path, sizeof pairs_path);
    check(f != NULL, "%s is readable", pairs_path);
    if (f) { check_pair_table(f, pairs_path); fclose(f); }

    Lines keys = {NULL, 0};
    f = open_table("model_keys.txt", keys_path, sizeof keys_path);
    check(f != NULL, "%s is readable", keys_path);
    if (f) { keys = read_lines(f); fclose(f); }

    ArchRow rows[32];
    int nrows = -1;
    f = open_table("arch_table.tsv", tsv_path, sizeof tsv_path);
    if (f) { nrows = read_arch_table(f, rows, 32); fclose(f); }
    if (nrows < 0) check(0, "%s: missing or unreadable", tsv_path);
    else {
        int all = nrows == n_models;
        for (int i = 0; i < nrows; i++) all &= model_find(rows[i].name) && !strcmp(model_find(rows[i].name)->name, rows[i].name);
        check(all, "%s: its %d models are exactly the %d of model_table", tsv_path, nrows, n_models);
    }

    /* fixture weights files that exist for the students (fixtures/README.md) */
    static const char *fixture_for[][2] = {
        {"resnet20", "resnet20.pth"}, {"resnet20", "resnet20_legacy.pth"}, {"resnet32", "resnet32.pth"},
        {"resnet8x4", "resnet8x4.pth"}, {"wrn_16_2", "wrn_16_2.pth"}, {"wrn_40_1", "wrn_40_1.pth"},
        {"vgg8", "vgg8.pth"}, {"MobileNetV2", "MobileNetV2.pth"}, {"ShuffleV1", "ShuffleV1.pth"},
        {"ShuffleV1", "ShuffleV1_legacy.pth"}, {"ShuffleV2", "ShuffleV2.pth"},
    };

    for (int m = 0; m < n_models; m++) {
        const char *name = model_table[m].name;
        double t0 = now_seconds();
        Net *n = model_build(name);
        if (!n) { check(0, "%s: model_build failed: %s", name, dkd_errbuf); continue; }
        printf("%s (%d nodes, %.2fs to build)\n", name, n->n_nodes, now_seconds() - t0);
        check(!strcmp(n->model, name), "%s: Net.model is its dict name", name);

        /* 1. the measured counts */
        const ArchRow *r = NULL;
        for (int i = 0; i < nrows; i++) if (!strcmp(rows[i].name, name)) r = &rows[i];
        if (r) {
            long long v[N_COLS];
            net_counts(n, v);
            check(v[COL_PARAMS] == r->v[COL_PARAMS], "%s: trainable parameters %lld (table %lld)", name, v[COL_PARAMS], r->v[COL_PARAMS]);
            check(v[COL_BN] == r->v[COL_BN] && n->n_nbt == r->v[COL_BN], "%s: BN layers %lld, num_batches_tracked slots %d (table %lld)",
                  name, v[COL_BN], n->n_nbt, r->v[COL_BN]);
            check(v[COL_BNFLOATS] == r->v[COL_BNFLOATS], "%s: BN running floats %lld (table %lld)", name, v[COL_BNFLOATS], r->v[COL_BNFLOATS]);
            check(v[COL_ENTRIES] == r->v[COL_ENTRIES], "%s: state_dict entries %lld (table %lld)", name, v[COL_ENTRIES], r->v[COL_ENTRIES]);
            check(v[COL_CONVS] == r->v[COL_CONVS], "%s: conv layers %lld (table %lld)", name, v[COL_CONVS], r->v[COL_CONVS]);
            check(v[COL_DENSE] == r->v[COL_DENSE] && v[COL_DW] == r->v[COL_DW] && v[COL_FC] == r->v[COL_FC],
                  "%s: MACs dense %lld, depthwise %lld, fc %lld (table %lld, %lld, %lld)", name,
                  v[COL_DENSE], v[COL_DW], v[COL_FC], r->v[COL_DENSE], r->v[COL_DW], r->v[COL_FC]);
            check((long long)net_macs(n) == r->v[COL_TOTAL], "%s: net_macs %zu (table %lld)", name, net_macs(n), r->v[COL_TOTAL]);
            check(v[COL_OUTFLOATS] == r->v[COL_OUTFLOATS], "%s: conv output floats per image %lld (table %lld)",
                  name, v[COL_OUTFLOATS], r->v[COL_OUTFLOATS]);
            check(model_table[m].is_teacher == r->teacher, "%s: is_teacher %d, table role %s", name,
                  model_table[m].is_teacher, r->teacher ? "teacher" : "student");
        } else if (nrows >= 0) check(0, "%s: not in %s", name, tsv_path);

        /* 2. the key template */
        if (keys.n) {
            Expansion x;
            memset(&x, 0, sizeof x);
            if (expand_template_for(&keys, name, &x) != 0) check(0, "%s: no family line names it in %s", name, keys_path);
            else if (x.err) check(0, "%s: its keys in %s: %s", name, keys_path, x.msg);
            else {
                char why[400] = "";
                int ok = same_keys(n, x.e, x.n, why, sizeof why);
                check(ok, "%s: %d keys, order, kinds and shapes equal %s %s", name, x.n, keys_path, why);
            }
            free(x.e);
        }

        /* 3. real state_dict files */
        for (size_t k = 0; k < sizeof fixture_for / sizeof fixture_for[0]; k++)
            if (!strcmp(fixture_for[k][0], name)) check_fixture(n, fixture_for[k][1]);

        /* 4. structure */
        check_graph(n);
        check_bn_updates(n);
        check_init(n);
        check_census(n);
        check_wrn_shortcuts(n);
        net_free(n);
    }
    free_lines(&keys);
    return test_summary();
}
