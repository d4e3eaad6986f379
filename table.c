/* table.c — `dkd table`: the accuracy tables of the DKD paper, filled from runs.
 *
 *   dkd table output/                              every run folder under output/
 *   dkd table RUN_DIR... --pytorch PT_DIR... -o results/table.md
 *
 * What it does:
 *  1. finds run folders: a folder with log.csv (a dkd run) or worklog.txt (an
 *     mdistiller run) is a run; any other folder is searched (a few levels
 *     deep, so output/, output_1/ ... or results/runs/ all work);
 *  2. tells the pair and the method from the folder's name, mdistiller's
 *     EXPERIMENT.TAG: "dkd,res56,res20", "kd,res32x4,res8x4", "vanilla,res20" or
 *     mdistiller's "vanilla,res32x4,res8x4" (teacher named, student trained);
 *     anything after the third field (",seed2", ",full") only tells runs apart;
 *  3. takes each run's best test top-1 over its logged epochs (what mdistiller
 *     reports as best_acc), and per pair and method the mean ± sample standard
 *     deviation over its runs (seeds);
 *  4. prints, per method found, the two tables of the paper — teacher and
 *     student of the same family (6 pairs), of different families (5 pairs) —
 *     with the columns
 *        paper | PyTorch | dkd | difference | fluctuation % | runs
 *     paper: the published number (DKD and KD: mdistiller's README; vanilla:
 *     the student trained alone, from CRD's table the DKD paper reuses);
 *     PyTorch: mdistiller runs given with --pytorch; difference = dkd minus
 *     PyTorch where there is a PyTorch number, else dkd minus paper;
 *     fluctuation % = difference / that reference x 100;
 *  5. lists the pairs with no run, and the runs that are unfinished (no final
 *     best_acc line in worklog.txt, or fewer epochs than config.yaml plans) or
 *     short (finished with fewer than the recipe's 240 epochs);
 *  6. --max-epoch N counts only the first N epochs of every run (runs of
 *     unequal length compared at the same point);
 *  7. with -o OUT.md also writes the Markdown there and a bar chart per method
 *     (OUT_<method>.png and .svg: paper, PyTorch and dkd per pair).
 */
#include "dkd.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { METH_DKD, METH_KD, METH_VANILLA, N_METH };
static const char *const METH_NAME[N_METH] = {"dkd", "kd", "vanilla"};
static const char *const METH_TITLE[N_METH] = {"DKD", "KD", "vanilla (student alone)"};
enum { RECIPE_EPOCHS = 240 };

/* Published CIFAR-100 test top-1 (%) per pair: DKD and KD as in mdistiller's
 * README (KD there is CRD's number), vanilla = the student trained alone (CRD's
 * table, which the DKD paper reuses). Facts, keyed by mdistiller's names. */
static const struct { const char *teacher, *student; double paper[N_METH]; } PAPER[] = {
    {"resnet56", "resnet20", {71.97, 70.66, 69.06}},
    {"resnet110", "resnet32", {74.11, 73.08, 71.14}},
    {"resnet32x4", "resnet8x4", {76.32, 73.33, 72.50}},
    {"wrn_40_2", "wrn_16_2", {76.23, 74.92, 73.26}},
    {"wrn_40_2", "wrn_40_1", {74.81, 73.54, 71.98}},
    {"vgg13", "vgg8", {74.68, 72.98, 70.36}},
    {"resnet32x4", "ShuffleV1", {76.45, 74.07, 70.50}},
    {"wrn_40_2", "ShuffleV1", {76.70, 74.83, 70.50}},
    {"vgg13", "MobileNetV2", {69.71, 67.37, 64.60}},
    {"ResNet50", "MobileNetV2", {70.35, 67.35, 64.60}},
    {"resnet32x4", "ShuffleV2", {77.07, 74.45, 71.82}},
};
enum { N_SAME_FAMILY = 6 };

static double paper_number(const PairInfo *p, int method) {
    for (size_t i = 0; i < sizeof PAPER / sizeof PAPER[0]; i++)
        if (!strcmp(PAPER[i].teacher, p->teacher) && !strcmp(PAPER[i].student, p->student)) return PAPER[i].paper[method];
    return NAN;
}

/* One run folder, read. */
typedef struct {
    char path[1024];
    int method;
    const char *student;     /* mdistiller name (vanilla: the pair is any pair with this student) */
    const PairInfo *pair;    /* dkd / kd: the pair */
    double best;             /* best test top-1 over the logged epochs */
    int epochs, planned;     /* epochs logged; planned from config.yaml (0: unknown) */
    int finished;            /* worklog.txt ends with best_acc */
    int pytorch;             /* given with --pytorch */
} RunRec;

typedef struct { RunRec *r; int n, cap; } RunList;

/* "SOLVER: ... EPOCHS: N" in the run's config.yaml (mdistiller's schema), 0 if none. */
static int planned_epochs(const char *dir) {
    char path[1100];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[512];
    int epochs = 0;
    while (fgets(line, sizeof line, f)) {
        const char *s = line + strspn(line, " \t");
        if (!strncmp(s, "EPOCHS:", 7)) epochs = atoi(s + 7);
    }
    fclose(f);
    return epochs > 0 ? epochs : 0;
}

/* The folder name's tag -> method and pair. 0, or -1 with dkd_errbuf. */
static int parse_tag(const char *dir, RunRec *rec) {
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    char tag[256], *tok[8];
    snprintf(tag, sizeof tag, "%s", base);
    int nt = 0;
    for (char *p = strtok(tag, ","); p && nt < 8; p = strtok(NULL, ",")) tok[nt++] = p;
    const char *expect = "expected METHOD,TEACHER,STUDENT[,...] or vanilla,STUDENT[,...] as mdistiller's tags";
    if (nt < 2) return dkd_fail("%s: cannot tell the pair from the folder name (%s)", dir, expect);
    for (char *c = tok[0]; *c; c++) *c = (char)tolower((unsigned char)*c);
    if (!strcmp(tok[0], "ce") || !strcmp(tok[0], "none")) tok[0] = (char *)"vanilla";
    rec->method = -1;
    for (int m = 0; m < N_METH; m++) if (!strcmp(tok[0], METH_NAME[m])) rec->method = m;
    if (rec->method < 0) return dkd_fail("%s: method '%s' is none of dkd, kd, vanilla (%s)", dir, tok[0], expect);
    const ModelInfo *a = model_find(tok[1]), *b = nt > 2 ? model_find(tok[2]) : NULL;
    if (rec->method == METH_VANILLA) {
        const ModelInfo *s = b ? b : a;          /* mdistiller: vanilla,TEACHER,STUDENT; dkd: vanilla,STUDENT */
        if (!s) return dkd_fail("%s: '%s' is not a model (%s)", dir, tok[1], expect);
        rec->student = s->name;
        return 0;
    }
    if (!a || !b) return dkd_fail("%s: '%s,%s' are not two models (%s)", dir, tok[1], nt > 2 ? tok[2] : "", expect);
    rec->pair = pair_find(a->name, b->name);
    if (!rec->pair) return dkd_fail("%s: %s -> %s is not one of the 11 pairs (dkd list shows them)", dir, a->name, b->name);
    rec->student = rec->pair->student;
    return 0;
}

static int is_run_folder(const char *dir) {
    char p[1100];
    struct stat st;
    snprintf(p, sizeof p, "%s/log.csv", dir);
    if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) return 1;
    snprintf(p, sizeof p, "%s/worklog.txt", dir);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Read one run folder into the list; a folder we cannot place is reported and skipped. */
static int max_epoch = 0;   /* --max-epoch: only epochs 1..max_epoch count (0: all) */

static void add_run(RunList *L, const char *dir, int pytorch) {
    RunRec rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.path, sizeof rec.path, "%s", dir);
    rec.pytorch = pytorch;
    if (parse_tag(dir, &rec) != 0) { fprintf(stderr, "dkd table: skipped %s\n", dkd_errbuf); return; }
    EpochLog *rows = NULL;
    int n = run_log_read(dir, &rows, &rec.finished);
    if (n < 0) { fprintf(stderr, "dkd table: skipped %s\n", dkd_errbuf); return; }
    rec.best = -1;
    for (int i = 0; i < n; i++) {
        if (rows[i].epoch > rec.epochs) rec.epochs = rows[i].epoch;
        if (max_epoch && rows[i].epoch > max_epoch) continue;
        if (isfinite(rows[i].test_acc) && rows[i].test_acc > rec.best) rec.best = rows[i].test_acc;
    }
    free(rows);
    rec.planned = planned_epochs(dir);
    if (rec.best < 0) { fprintf(stderr, "dkd table: skipped %s: no test accuracy logged\n", dir); return; }
    if (L->n == L->cap) { L->cap = L->cap ? 2 * L->cap : 32; L->r = (RunRec *)xrealloc(L->r, (size_t)L->cap * sizeof(RunRec)); }
    L->r[L->n++] = rec;
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

/* A run folder, or every run folder below dir (depth levels at most). Returns runs found. */
static int collect(RunList *L, const char *dir, int pytorch, int depth) {
    if (is_run_folder(dir)) { int n0 = L->n; add_run(L, dir, pytorch); return L->n - n0; }
    if (depth == 0) return 0;
    struct dirent **ents;
    int ne = scandir(dir, &ents, NULL, by_name), found = 0;
    if (ne < 0) return 0;
    for (int i = 0; i < ne; i++) {
        char sub[1024];
        struct stat st;
        if (ents[i]->d_name[0] != '.') {
            snprintf(sub, sizeof sub, "%s/%s", dir, ents[i]->d_name);
            if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) found += collect(L, sub, pytorch, depth - 1);
        }
        free(ents[i]);
    }
    free(ents);
    return found;
}

/* ---------------------------------------------------------------- the tables */

typedef struct { double mean, sd; int n, epochs_min, epochs_max; } Stat;

/* The runs of one method on pair p (vanilla: of p's student), dkd's or PyTorch's. */
static Stat pair_stat(const RunList *L, int method, const PairInfo *p, int pytorch) {
    Stat s = {NAN, NAN, 0, 0, 0};
    double sum = 0, sum2 = 0;
    for (int i = 0; i < L->n; i++) {
        const RunRec *r = &L->r[i];
        if (r->pytorch != pytorch || r->method != method) continue;
        if (method == METH_VANILLA ? strcmp(r->student, p->student) != 0 : r->pair != p) continue;
        sum += r->best; sum2 += r->best * r->best;
        if (s.n == 0 || r->epochs < s.epochs_min) s.epochs_min = r->epochs;
        if (r->epochs > s.epochs_max) s.epochs_max = r->epochs;
        s.n++;
    }
    if (s.n) {
        s.mean = sum / s.n;
        if (s.n > 1) s.sd = sqrt(fmax(0, (sum2 - s.n * s.mean * s.mean) / (s.n - 1)));
    }
    return s;
}

static void fmt_stat(char *buf, size_t cap, Stat s) {
    if (s.n == 0) snprintf(buf, cap, "—");
    else if (s.n == 1) snprintf(buf, cap, "%.2f", s.mean);
    else snprintf(buf, cap, "%.2f ± %.2f", s.mean, s.sd);
}

/* A growing text (the Markdown). */
typedef struct { char *s; size_t n, cap; } Text;
static void addf(Text *t, const char *fmt, ...) {
    for (;;) {
        va_list ap; va_start(ap, fmt);
        int k = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? t->cap - t->n : 0, fmt, ap);
        va_end(ap);
        if (t->s && k >= 0 && t->n + (size_t)k < t->cap) { t->n += (size_t)k; return; }
        t->cap = 2 * t->cap + (size_t)k + 256;
        t->s = (char *)xrealloc(t->s, t->cap);
    }
}

static void method_table(Text *t, const RunList *L, int method, int first, int count, const char *heading, int with_pt) {
    addf(t, "\n### %s\n\n| teacher | student | paper |%s dkd | difference | fluctuation %% | runs |\n", heading,
         with_pt ? " PyTorch |" : "");
    addf(t, "|---|---|---:|%s---:|---:|---:|---|\n", with_pt ? "---:|" : "");
    for (int i = first; i < first + count; i++) {
        const PairInfo *p = &pair_table[i];
        double paper = paper_number(p, method);
        Stat d = pair_stat(L, method, p, 0), pt = pair_stat(L, method, p, 1);
        char ds[64], ps[64], diff[32] = "—", fl[32] = "—", runs[96] = "none";
        fmt_stat(ds, sizeof ds, d);
        fmt_stat(ps, sizeof ps, pt);
        double ref = pt.n ? pt.mean : paper;
        if (d.n && isfinite(ref)) {
            snprintf(diff, sizeof diff, "%+.2f", d.mean - ref);
            snprintf(fl, sizeof fl, "%+.2f", 100 * (d.mean - ref) / ref);
        }
        if (d.n) {
            if (d.epochs_min == d.epochs_max) snprintf(runs, sizeof runs, "%d x %d ep", d.n, d.epochs_min);
            else snprintf(runs, sizeof runs, "%d x %d-%d ep", d.n, d.epochs_min, d.epochs_max);
        }
        addf(t, "| %s | %s | %.2f |", p->teacher, p->student, paper);
        if (with_pt) addf(t, " %s |", ps);
        addf(t, " %s | %s | %s | %s |\n", ds, diff, fl, runs);
    }
}

/* Missing pairs, unfinished and short runs of one method. */
static void method_notes(Text *t, const RunList *L, int method) {
    int missing = 0;
    for (int i = 0; i < n_pairs; i++)
        if (pair_stat(L, method, &pair_table[i], 0).n == 0) {
            addf(t, "%s%s->%s", missing ? ", " : "\n- missing (no run): ", pair_table[i].teacher, pair_table[i].student);
            missing++;
        }
    if (missing) addf(t, " (%d of %d pairs)\n", missing, n_pairs);
    for (int i = 0; i < L->n; i++) {
        const RunRec *r = &L->r[i];
        if (r->method != method) continue;
        int unfinished = !r->finished || (r->planned && r->epochs < r->planned);
        const char *who = r->pytorch ? "PyTorch run" : "run";
        if (unfinished && r->planned)
            addf(t, "- unfinished %s: %s (%d of %d epochs)\n", who, r->path, r->epochs, r->planned);
        else if (unfinished)
            addf(t, "- unfinished %s: %s (%d epoch%s logged, no final best_acc in worklog.txt)\n", who, r->path, r->epochs,
                 r->epochs == 1 ? "" : "s");
        else if (r->epochs < RECIPE_EPOCHS)
            addf(t, "- short %s: %s (finished after %d epoch%s; the recipe has %d)\n", who, r->path, r->epochs,
                 r->epochs == 1 ? "" : "s", RECIPE_EPOCHS);
    }
}

/* The bar chart of one method: per pair, paper / PyTorch / dkd. */
static int method_chart(const char *out, const RunList *L, int method, int with_pt) {
    const char *groups[32];
    char glab[32][64];
    double *vals = (double *)xmalloc((size_t)n_pairs * 3 * sizeof(double));
    int ns = with_pt ? 3 : 2;
    for (int i = 0; i < n_pairs; i++) {
        const PairInfo *p = &pair_table[i];
        snprintf(glab[i], sizeof glab[i], "%s\n%s", p->teacher, p->student);
        groups[i] = glab[i];
        int k = 0;
        vals[i * ns + k++] = paper_number(p, method);
        if (with_pt) vals[i * ns + k++] = pair_stat(L, method, p, 1).mean;
        vals[i * ns + k++] = pair_stat(L, method, p, 0).mean;
    }
    const char *series3[3] = {"paper", "PyTorch (mdistiller)", "dkd"}, *series2[2] = {"paper", "dkd"};
    char title[128];
    snprintf(title, sizeof title, "CIFAR-100 test top-1 (%%), %s: best epoch, mean over runs", METH_TITLE[method]);
    int rc = plot_bars(out, title, "top-1 (%)", n_pairs, groups, ns, with_pt ? series3 : series2, vals);
    free(vals);
    return rc;
}

static void table_usage(FILE *f) {
    fprintf(f,
        "usage: dkd table RUN_DIR|DIR... [--pytorch RUN_DIR|DIR...] [-o OUT.md]\n"
        "  The paper's two CIFAR-100 accuracy tables (6 same-family pairs, 5 cross-family pairs),\n"
        "  per method found (dkd, kd, vanilla), from run folders: the best test top-1 of each run,\n"
        "  mean ± std over the runs of a pair (seeds). Columns: paper (published), PyTorch (mdistiller\n"
        "  runs given with --pytorch), dkd, difference (dkd - PyTorch, else dkd - paper), fluctuation %%\n"
        "  (difference / that reference x 100), runs (count x epochs). Then the pairs with no run and\n"
        "  the unfinished or short runs.\n"
        "  A run folder holds log.csv (dkd) or worklog.txt (mdistiller) and is named by its tag,\n"
        "  e.g. dkd,res56,res20 (anything after a third comma, like ,seed2, tells runs apart).\n"
        "  Any other folder is searched for run folders (output/, output_1/, results/runs/ ...).\n"
        "options:\n"
        "  --pytorch DIR...  mdistiller run folders (or folders holding them): the PyTorch column\n"
        "  --max-epoch N     only the first N epochs of each run count (to compare runs of unequal length)\n"
        "  -o OUT.md         also write the Markdown to OUT.md and a bar chart per method to\n"
        "                    OUT_<method>.png (+ .svg)\n"
        "example:\n"
        "  ./dkd table output/ --pytorch ../mdistiller/output -o results/table.md\n");
}

int cmd_table(int argc, char **argv) {
    const char *out = NULL;
    RunList L = {NULL, 0, 0};
    int given = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { table_usage(stdout); free(L.r); return 0; }
        if (!strcmp(a, "--pytorch")) continue;
        if (!strcmp(a, "-o") || !strcmp(a, "--out") || !strcmp(a, "--max-epoch")) {
            if (i + 1 >= argc) { fprintf(stderr, "dkd: error: %s needs a value\n", a); free(L.r); return 2; }
            if (strcmp(a, "--max-epoch")) { out = argv[++i]; continue; }
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 1 || v > 100000) {
                fprintf(stderr, "dkd: error: --max-epoch expects a positive integer, got '%s'\n", argv[i]); free(L.r); return 2;
            }
            max_epoch = (int)v;
            continue;
        }
        if (a[0] == '-' && a[1]) { fprintf(stderr, "dkd: error: unknown option '%s'\n\n", a); table_usage(stderr); free(L.r); return 2; }
        struct stat st;
        if (stat(a, &st) != 0 || !S_ISDIR(st.st_mode)) { fprintf(stderr, "dkd: error: %s: no such folder\n", a); free(L.r); return 1; }
        given++;
    }
    for (int i = 1, pt = 0; i < argc; i++) {     /* the folders, once every option is known */
        const char *a = argv[i];
        if (!strcmp(a, "--pytorch")) pt = 1;
        else if (!strcmp(a, "-o") || !strcmp(a, "--out") || !strcmp(a, "--max-epoch")) i++;
        else if (collect(&L, a, pt, 4) == 0) fprintf(stderr, "dkd table: no run folder found in %s\n", a);
    }
    if (!given) { fprintf(stderr, "dkd: error: table needs at least one run folder\n\n"); table_usage(stderr); free(L.r); return 2; }
    int any[N_METH] = {0}, with_pt = 0, n_dkd = 0;
    for (int i = 0; i < L.n; i++) {
        if (!L.r[i].pytorch) { any[L.r[i].method] = 1; n_dkd++; }
        else with_pt = 1;
    }
    if (n_dkd == 0) { fprintf(stderr, "dkd: error: no dkd run folder found (a folder with log.csv or worklog.txt, named by its tag)\n"); free(L.r); return 1; }

    Text t = {NULL, 0, 0};
    addf(&t, "## CIFAR-100 test top-1 (%%): best epoch per run, mean ± std over runs\n");
    if (max_epoch) addf(&t, "\nOnly epochs 1-%d of each run count (--max-epoch %d).\n", max_epoch, max_epoch);
    for (int m = 0; m < N_METH; m++) {
        if (!any[m]) continue;
        addf(&t, "\n## %s\n", METH_TITLE[m]);
        method_table(&t, &L, m, 0, N_SAME_FAMILY, "Teacher and student of the same family", with_pt);
        method_table(&t, &L, m, N_SAME_FAMILY, n_pairs - N_SAME_FAMILY, "Teacher and student of different families", with_pt);
        method_notes(&t, &L, m);
    }
    addf(&t, "\npaper: %s. difference: dkd - %s; fluctuation %% = difference / that number x 100. "
             "runs: number of runs x epochs logged.\n",
         "DKD and KD from mdistiller's README, vanilla = the student trained alone (CRD's table, reused by the DKD paper)",
         with_pt ? "PyTorch where there is a PyTorch run, else dkd - paper" : "paper");
    fputs(t.s, stdout);
    if (out) {
        if (write_file_atomic(out, t.s, t.n) != 0) { fprintf(stderr, "dkd: error: %s\n", dkd_errbuf); rc = 1; }
        else fprintf(stderr, "wrote %s\n", out);
        char stem[1024], chart[1100];
        size_t Ls = strlen(out);
        snprintf(stem, sizeof stem, "%.*s", (int)(Ls > 3 && !strcmp(out + Ls - 3, ".md") ? Ls - 3 : Ls), out);
        for (int m = 0; m < N_METH && rc == 0; m++) {
            if (!any[m]) continue;
            snprintf(chart, sizeof chart, "%s_%s.png", stem, METH_NAME[m]);
            if (method_chart(chart, &L, m, with_pt) != 0) { fprintf(stderr, "dkd: error: %s\n", dkd_errbuf); rc = 1; }
            else if (plot_png_available()) fprintf(stderr, "wrote %s and %s_%s.svg\n", chart, stem, METH_NAME[m]);
            else fprintf(stderr, "wrote %s_%s.svg only: this dkd was built without stb (libstb-dev), PNG output is disabled\n",
                         stem, METH_NAME[m]);
        }
    }
    free(t.s);
    free(L.r);
    return rc;
}
