/* config.c — the run configuration in mdistiller's schema: a small YAML reader,
 * the table of settings, strict number parsing, and the config.yaml writer.
 *
 * mdistiller describes a run with a yacs config: nested upper-case keys such as
 *
 *     DISTILLER:
 *       TYPE: "DKD"
 *       TEACHER: "resnet56"
 *     SOLVER:
 *       LR_DECAY_STAGES: [150, 180, 210]
 *
 * read from a YAML file (`--cfg FILE`) and then changed by `KEY VALUE` pairs on
 * the command line (`SOLVER.BATCH_SIZE 128`). dkd reads the same files and the
 * same pairs into one DkdConfig. Every setting has ONE row in `cfg_keys` below:
 * its dotted name, its type (the yacs type, so that a config.yaml dkd writes
 * loads back into mdistiller), where it lives in DkdConfig and its valid range.
 * dkd's older flags (--lr, --epochs, ...) are set through the same rows.
 *
 * The YAML subset (all that yacs configs use):
 *   - mappings nested by indentation with spaces ("KEY:" alone opens one);
 *   - scalars: plain (64, 0.05, SGD), double-quoted ("DKD", escapes \" \\) or
 *     single-quoted ('it''s'); "#" starts a comment outside quotes;
 *   - flow lists of scalars on one line: [150, 180, 210], [].
 * Anything else (tabs in indentation, "- item" lists, {maps}, anchors, tags,
 * multi-line scalars, duplicate keys, a file over CFG_MAX_BYTES) is refused with
 * "FILE:LINE: what is wrong". Numbers are decimal only: 0x10, inf and nan are
 * refused everywhere (files, KEY VALUE pairs and flags share parse_number).
 */
#include "dkd.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* Strict numbers                                                             */
/* ------------------------------------------------------------------------- */

/* Decimal integer or float: [-]digits[.digits][e[+-]digits], or [-].digits...
 * Nothing before or after it, no hex, no inf/nan, no leading '+'. */
static int is_decimal(const char *s, int want_int) {
    const char *p = s;
    if (*p == '-') p++;
    int digits = 0;
    while (isdigit((unsigned char)*p)) { p++; digits++; }
    if (!want_int && *p == '.') { p++; while (isdigit((unsigned char)*p)) { p++; digits++; } }
    if (!digits) return 0;
    if (!want_int && (*p == 'e' || *p == 'E')) {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return 0;
        while (isdigit((unsigned char)*p)) p++;
    }
    return *p == 0;
}

int parse_number(const char *what, const char *text, int want_int, double lo, double hi, double *out) {
    if (!text || !*text) return dkd_fail("%s expects %s, got an empty value", what, want_int ? "an integer" : "a number");
    if (!is_decimal(text, want_int))
        return dkd_fail("%s expects %s in [%.15g, %.15g], got '%s'", what, want_int ? "a decimal integer" : "a decimal number",
                        lo, hi, text);
    errno = 0;
    char *end;
    double x = strtod(text, &end);
    if (errno == ERANGE || !isfinite(x) || !(x >= lo && x <= hi))
        return dkd_fail("%s expects %s in [%.15g, %.15g], got '%s'", what, want_int ? "an integer" : "a number", lo, hi, text);
    *out = x;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* The YAML subset                                                            */
/* ------------------------------------------------------------------------- */

enum { YAML_MAX_DEPTH = 8, YAML_MAX_ITEMS = 64, YAML_MAX_LINE = 4096 };

/* One scalar or list value as written after "KEY:" (or on the command line). */
typedef struct {
    int is_list, n;                      /* list: n items; scalar: n = 1 */
    char item[YAML_MAX_ITEMS][256];      /* unquoted text of each item */
    int quoted[YAML_MAX_ITEMS];          /* the item was written in quotes (a string for sure) */
} YamlValue;

/* Scan one scalar at *pp (stops at end, '#' after a space, or any of stop_chars
 * outside quotes). Leaves *pp after it. 0 or -1 (dkd_errbuf, prefixed by where). */
static int scan_scalar(const char **pp, const char *stop_chars, char *out, size_t cap, int *quoted, const char *where) {
    const char *p = *pp;
    size_t n = 0;
    *quoted = 0;
    while (*p == ' ') p++;
    if (*p == '"' || *p == '\'') {
        char q = *p++;
        *quoted = 1;
        for (;;) {
            if (!*p) return dkd_fail("%s: unterminated %s-quoted string", where, q == '"' ? "double" : "single");
            char c = *p++;
            if (q == '"' && c == '\\') {
                char e = *p++;
                if (e == '"' || e == '\\') c = e;
                else if (e == 'n') c = '\n';
                else if (e == 't') c = '\t';
                else return dkd_fail("%s: unsupported escape \\%c in a quoted string", where, e ? e : '0');
            } else if (c == q) {
                if (q == '\'' && *p == '\'') p++;   /* '' inside single quotes is one ' */
                else break;
            }
            if (n + 1 >= cap) return dkd_fail("%s: a string longer than %zu characters", where, cap - 1);
            out[n++] = c;
        }
        out[n] = 0;
        while (*p == ' ') p++;
        if (*p && *p != '#' && !strchr(stop_chars, *p)) return dkd_fail("%s: unexpected text after a quoted string: '%s'", where, p);
        *pp = p;
        return 0;
    }
    const char *start = p;
    while (*p && !strchr(stop_chars, *p) && !(*p == '#' && (p == start || p[-1] == ' '))) p++;
    const char *end = p;
    while (end > start && end[-1] == ' ') end--;
    if ((size_t)(end - start) >= cap) return dkd_fail("%s: a value longer than %zu characters", where, cap - 1);
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = 0;
    if (out[0] && strchr("{&*!|>%@`", out[0]))
        return dkd_fail("%s: '%c' starts YAML syntax this reader does not support (use plain scalars and [a, b] lists)", where, out[0]);
    if (out[0] == '-' && (out[1] == ' ' || out[1] == 0))
        return dkd_fail("%s: block lists ('- item') are not supported: write [a, b, c]", where);
    *pp = p;
    return 0;
}

/* The value text after "KEY:" (comment allowed) or a command-line VALUE. */
static int parse_value(const char *text, YamlValue *v, const char *where) {
    const char *p = text;
    memset(v, 0, sizeof *v);
    while (*p == ' ') p++;
    if (*p != '[') {
        if (scan_scalar(&p, "", v->item[0], sizeof v->item[0], &v->quoted[0], where)) return -1;
        if (*p && *p != '#') return dkd_fail("%s: unexpected text '%s'", where, p);
        if (strchr(v->item[0], ']')) return dkd_fail("%s: ']' without '['", where);
        v->n = 1;
        return 0;
    }
    v->is_list = 1;
    p++;
    while (*p == ' ') p++;
    if (*p == ']') { p++; goto after; }
    for (;;) {
        if (v->n == YAML_MAX_ITEMS) return dkd_fail("%s: a list of more than %d items", where, YAML_MAX_ITEMS);
        while (*p == ' ') p++;
        if (*p == '[') return dkd_fail("%s: nested lists are not supported", where);
        if (scan_scalar(&p, ",]", v->item[v->n], sizeof v->item[0], &v->quoted[v->n], where)) return -1;
        if (!v->item[v->n][0] && !v->quoted[v->n]) return dkd_fail("%s: an empty item in a list", where);
        v->n++;
        if (*p == ',') { p++; continue; }
        if (*p == ']') { p++; break; }
        return dkd_fail("%s: unterminated list (a list must close with ']' on the same line)", where);
    }
after:
    while (*p == ' ') p++;
    if (*p && *p != '#') return dkd_fail("%s: unexpected text after the list: '%s'", where, p);
    return 0;
}

typedef int (*YamlEntryFn)(void *ctx, const char *key, const YamlValue *v, const char *where);

/* Does the line (after its indentation) hold only a comment or nothing? */
static int blank_line(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    return *s == 0 || *s == '#';
}

/* Parse text (len bytes, need not be NUL-terminated) and call fn for every
 * scalar or list with its dotted key ("SOLVER.LR"). 0, or -1 with dkd_errbuf
 * "name:line: ...". */
static int yaml_parse(const char *text, size_t len, const char *name, YamlEntryFn fn, void *ctx) {
    if (len > CFG_MAX_BYTES) return dkd_fail("%s: %zu bytes, more than a config can be (%d bytes at most)", name, len, CFG_MAX_BYTES);
    if (memchr(text, 0, len)) return dkd_fail("%s: a NUL byte: not a text file", name);
    /* stack of open mappings: indentation of their keys and their dotted path */
    int indent[YAML_MAX_DEPTH + 1];
    char path[YAML_MAX_DEPTH + 1][CFG_MAX_KEY];
    int depth = 0, expect_deeper = 0, lineno = 0;
    indent[0] = 0; path[0][0] = 0;
    /* every full key seen, with its line (duplicates are errors) */
    int nseen = 0, seen_cap = 0;
    char (*seen)[CFG_MAX_KEY] = NULL;
    int *seen_line = NULL, rc = 0;
    char line[YAML_MAX_LINE + 1], where[512];
    size_t pos = 0;
    while (pos < len && rc == 0) {
        size_t e = pos;
        while (e < len && text[e] != '\n') e++;
        size_t ll = e - pos;
        lineno++;
        snprintf(where, sizeof where, "%s:%d", name, lineno);
        if (ll > YAML_MAX_LINE) { rc = dkd_fail("%s: line longer than %d characters", where, YAML_MAX_LINE); break; }
        memcpy(line, text + pos, ll);
        line[ll] = 0;
        pos = e + 1;
        if (ll && line[ll - 1] == '\r') line[--ll] = 0;
        int ind = 0;
        while (line[ind] == ' ') ind++;
        if (line[ind] == '\t') { rc = dkd_fail("%s: a tab in the indentation (YAML allows only spaces)", where); break; }
        if (blank_line(line)) continue;
        const char *s = line + ind;
        if (!strncmp(s, "---", 3) || !strncmp(s, "...", 3)) { rc = dkd_fail("%s: document markers are not supported", where); break; }
        /* indentation: deeper only right after "KEY:", else back to an open level */
        if (expect_deeper) {
            if (ind <= indent[depth]) { rc = dkd_fail("%s: '%s' has no value (a key alone must be followed by indented keys)", where, path[depth + 1]); break; }
            depth++;
            indent[depth] = ind;
            expect_deeper = 0;
        } else {
            while (depth > 0 && ind < indent[depth]) depth--;
            if (ind != indent[depth]) {
                rc = dkd_fail("%s: bad indentation (%d spaces; the enclosing keys are at %d)", where, ind, indent[depth]);
                break;
            }
        }
        /* KEY: [value] */
        const char *k = s;
        while (isalnum((unsigned char)*k) || *k == '_') k++;
        if (k == s || *k != ':' || (k[1] && k[1] != ' ' && k[1] != '\t')) {
            if (*s == '-') rc = dkd_fail("%s: block lists ('- item') are not supported: write [a, b, c]", where);
            else rc = dkd_fail("%s: expected 'KEY: value' with KEY of letters, digits and '_', got '%s'", where, s);
            break;
        }
        char full[CFG_MAX_KEY];
        size_t plen = strlen(path[depth]), klen = (size_t)(k - s);
        if (plen + klen + 2 > sizeof full) { rc = dkd_fail("%s: key path too long", where); break; }
        if (plen) { memcpy(full, path[depth], plen); full[plen] = '.'; memcpy(full + plen + 1, s, klen); full[plen + 1 + klen] = 0; }
        else { memcpy(full, s, klen); full[klen] = 0; }
        for (int i = 0; i < nseen; i++)
            if (!strcmp(seen[i], full)) { rc = dkd_fail("%s: duplicate key %s (first on line %d)", where, full, seen_line[i]); break; }
        if (rc) break;
        if (nseen == seen_cap) {
            seen_cap = seen_cap ? 2 * seen_cap : 32;
            seen = (char (*)[CFG_MAX_KEY])xrealloc(seen, (size_t)seen_cap * sizeof *seen);
            seen_line = (int *)xrealloc(seen_line, (size_t)seen_cap * sizeof(int));
        }
        memcpy(seen[nseen], full, sizeof full); seen_line[nseen++] = lineno;
        const char *rest = k + 1;
        for (const char *t = rest; *t; t++)
            if (*t == '\t') { rc = dkd_fail("%s: a tab after '%s:' (use spaces)", where, full); break; }
        if (rc) break;
        if (blank_line(rest)) {            /* opens a mapping: its keys come on the next, deeper lines */
            if (depth == YAML_MAX_DEPTH) { rc = dkd_fail("%s: nested deeper than %d levels", where, YAML_MAX_DEPTH); break; }
            memcpy(path[depth + 1], full, sizeof full);
            expect_deeper = 1;
            continue;
        }
        YamlValue v;
        if (parse_value(rest, &v, where)) { rc = -1; break; }
        rc = fn(ctx, full, &v, where);
    }
    if (rc == 0 && expect_deeper)
        rc = dkd_fail("%s:%d: '%s' has no value", name, lineno, path[depth + 1]);
    free(seen); free(seen_line);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* The settings                                                               */
/* ------------------------------------------------------------------------- */

typedef enum { CK_INT, CK_FLOAT, CK_STR, CK_BOOL, CK_INT_LIST, CK_MODEL } CfgKind;
typedef struct {
    const char *key;       /* dotted yacs name */
    CfgKind kind;
    size_t off, size;      /* field in DkdConfig (size: for strings and lists) */
    double lo, hi;         /* numbers (and list items): valid range */
    const char *choices;   /* CK_STR: "A|B|C" the accepted values, NULL = any */
} CfgKey;

#define F(field) offsetof(DkdConfig, field), sizeof(((DkdConfig *)0)->field)
static const CfgKey cfg_keys[] = {
    {"EXPERIMENT.PROJECT",        CK_STR,   F(project),      0, 0, NULL},
    {"EXPERIMENT.NAME",           CK_STR,   F(name),         0, 0, NULL},
    {"EXPERIMENT.TAG",            CK_STR,   F(tag),          0, 0, NULL},
    {"DATASET.TYPE",              CK_STR,   F(dataset),      0, 0, "cifar100"},
    {"DATASET.NUM_WORKERS",       CK_INT,   F(num_workers),  0, 1024, NULL},
    {"DATASET.TEST.BATCH_SIZE",   CK_INT,   F(test_batch),   1, 4096, NULL},
    {"DISTILLER.TYPE",            CK_STR,   F(method),       0, 0, "NONE|KD|DKD"},
    {"DISTILLER.TEACHER",         CK_MODEL, F(teacher),      0, 0, NULL},
    {"DISTILLER.STUDENT",         CK_MODEL, F(student),      0, 0, NULL},
    {"SOLVER.TRAINER",            CK_STR,   F(trainer),      0, 0, "base"},
    {"SOLVER.BATCH_SIZE",         CK_INT,   F(batch),        1, 4096, NULL},
    {"SOLVER.EPOCHS",             CK_INT,   F(epochs),       1, CFG_MAX_EPOCHS, NULL},
    {"SOLVER.LR",                 CK_FLOAT, F(lr),           1e-12, 1e30, NULL},
    {"SOLVER.LR_DECAY_STAGES",    CK_INT_LIST, F(stages),    1, CFG_MAX_EPOCHS, NULL},
    {"SOLVER.LR_DECAY_RATE",      CK_FLOAT, F(decay_rate),   0, 1, NULL},
    {"SOLVER.WEIGHT_DECAY",       CK_FLOAT, F(wd),           0, 1, NULL},
    {"SOLVER.MOMENTUM",           CK_FLOAT, F(momentum),     0, 1, NULL},
    {"SOLVER.TYPE",               CK_STR,   F(solver),       0, 0, "SGD"},
    {"LOG.TENSORBOARD_FREQ",      CK_INT,   F(tb_freq),      0, 1e9, NULL},
    {"LOG.SAVE_CHECKPOINT_FREQ",  CK_INT,   F(save_every),   1, CFG_MAX_EPOCHS, NULL},
    {"LOG.PREFIX",                CK_STR,   F(prefix),       0, 0, NULL},
    {"LOG.WANDB",                 CK_BOOL,  F(wandb),        0, 1, NULL},
    {"KD.TEMPERATURE",            CK_INT,   F(kd_T),         1, 1000, NULL},
    {"KD.LOSS.CE_WEIGHT",         CK_FLOAT, F(kd_ce_weight), 0, 1000, NULL},
    {"KD.LOSS.KD_WEIGHT",         CK_FLOAT, F(kd_kd_weight), 0, 1000, NULL},
    {"DKD.CE_WEIGHT",             CK_FLOAT, F(dkd_ce_weight), 0, 1000, NULL},
    {"DKD.ALPHA",                 CK_FLOAT, F(alpha),        0, 1000, NULL},
    {"DKD.BETA",                  CK_FLOAT, F(beta),         0, 1000, NULL},
    {"DKD.T",                     CK_FLOAT, F(dkd_T),        1e-3, 1000, NULL},
    {"DKD.WARMUP",                CK_INT,   F(warmup),       1, CFG_MAX_EPOCHS, NULL},
};
#undef F
enum { N_CFG_KEYS = (int)(sizeof cfg_keys / sizeof cfg_keys[0]) };
_Static_assert(N_CFG_KEYS <= (int)sizeof(((DkdConfig *)0)->set), "DkdConfig.set has a flag per key");

void config_defaults(DkdConfig *c) {
    /* mdistiller's own defaults (its engine/cfg.py), used for keys a file leaves out */
    memset(c, 0, sizeof *c);
    snprintf(c->project, sizeof c->project, "distill");
    snprintf(c->tag, sizeof c->tag, "default");
    snprintf(c->dataset, sizeof c->dataset, "cifar100");
    c->num_workers = 2; c->test_batch = 64;
    snprintf(c->method, sizeof c->method, "NONE");
    snprintf(c->teacher, sizeof c->teacher, "ResNet50");
    snprintf(c->student, sizeof c->student, "resnet32");
    snprintf(c->trainer, sizeof c->trainer, "base");
    c->batch = 64; c->epochs = 240; c->lr = 0.05;
    c->n_stages = 3; c->stages[0] = 150; c->stages[1] = 180; c->stages[2] = 210;
    c->decay_rate = 0.1; c->wd = 0.0001; c->momentum = 0.9;
    snprintf(c->solver, sizeof c->solver, "SGD");
    c->tb_freq = 500; c->save_every = 40;
    snprintf(c->prefix, sizeof c->prefix, "./output");
    c->wandb = 1;
    c->kd_T = 4; c->kd_ce_weight = 0.1; c->kd_kd_weight = 0.9;
    c->dkd_ce_weight = 1.0; c->alpha = 1.0; c->beta = 8.0; c->dkd_T = 4.0; c->warmup = 20;
}

static const CfgKey *find_key(const char *key) {
    for (int i = 0; i < N_CFG_KEYS; i++) if (!strcmp(cfg_keys[i].key, key)) return &cfg_keys[i];
    return NULL;
}

static int unknown_key(const char *where, const char *key) {
    /* name the section's keys, so a typo is easy to fix */
    char sect[CFG_MAX_KEY], known[1024] = "";
    const char *dot = strchr(key, '.');
    size_t sl = dot ? (size_t)(dot - key) : strlen(key);
    if (sl >= sizeof sect) sl = sizeof sect - 1;
    memcpy(sect, key, sl); sect[sl] = 0;
    size_t n = 0;
    for (int i = 0; i < N_CFG_KEYS; i++)
        if (!strncmp(cfg_keys[i].key, sect, sl) && cfg_keys[i].key[sl] == '.' && n < sizeof known - 64)
            n += (size_t)snprintf(known + n, sizeof known - n, "%s%s", n ? ", " : "", cfg_keys[i].key);
    if (n) return dkd_fail("%s: unknown key %s (known in %s: %s)", where, key, sect, known);
    return dkd_fail("%s: unknown key %s (dkd knows the sections EXPERIMENT, DATASET, DISTILLER, SOLVER, LOG, KD, DKD; "
                    "other methods of mdistiller are not implemented)", where, key);
}

static int set_value(DkdConfig *c, const char *key, const YamlValue *v, const char *where) {
    const CfgKey *k = find_key(key);
    if (!k) return unknown_key(where, key);
    char what[CFG_MAX_KEY + 512];
    snprintf(what, sizeof what, "%s: %s", where, key);
    void *field = (char *)c + k->off;
    if (k->kind == CK_INT_LIST) {
        if (!v->is_list) return dkd_fail("%s expects a list like [150, 180, 210], got '%s'", what, v->item[0]);
        if (v->n > CFG_MAX_STAGES) return dkd_fail("%s: at most %d items", what, CFG_MAX_STAGES);
        int tmp[CFG_MAX_STAGES];
        for (int i = 0; i < v->n; i++) {
            double x;
            if (v->quoted[i]) return dkd_fail("%s expects integers, got the string \"%s\"", what, v->item[i]);
            if (parse_number(what, v->item[i], 1, k->lo, k->hi, &x)) return -1;
            tmp[i] = (int)x;
            if (i && tmp[i] <= tmp[i - 1]) return dkd_fail("%s must increase, got %d after %d", what, tmp[i], tmp[i - 1]);
        }
        memcpy(field, tmp, (size_t)v->n * sizeof(int));
        c->n_stages = v->n;
    } else {
        if (v->is_list) return dkd_fail("%s expects a single value, got a list", what);
        const char *s = v->item[0];
        double x;
        switch (k->kind) {
        case CK_INT:
        case CK_FLOAT:
            if (v->quoted[0]) return dkd_fail("%s expects a number, got the string \"%s\"", what, s);
            if (parse_number(what, s, k->kind == CK_INT, k->lo, k->hi, &x)) return -1;
            if (k->kind == CK_INT) *(int *)field = (int)x; else *(double *)field = x;
            break;
        case CK_BOOL:
            if (!v->quoted[0] && (!strcmp(s, "true") || !strcmp(s, "True"))) *(int *)field = 1;
            else if (!v->quoted[0] && (!strcmp(s, "false") || !strcmp(s, "False"))) *(int *)field = 0;
            else return dkd_fail("%s expects true or false, got '%s'", what, s);
            break;
        case CK_MODEL:   /* stored as a string: mdistiller's name of the model */
        case CK_STR:
            if (k->kind == CK_MODEL) {
                const ModelInfo *mi = model_find(s);
                if (!mi) return dkd_fail("%s: unknown model '%s' (dkd list shows the 15 models and their aliases)", what, s);
                s = mi->name;
            }
            if (k->choices) {
                const char *p = k->choices; size_t sl = strlen(s); int ok = 0;
                while (*p) {
                    const char *bar = strchr(p, '|'); size_t n = bar ? (size_t)(bar - p) : strlen(p);
                    if (n == sl && !strncmp(p, s, n)) ok = 1;
                    p += n + (bar != NULL);
                }
                if (!ok) return dkd_fail("%s: '%s' is not supported by dkd (accepted: %s)", what, s, k->choices);
            }
            if (strlen(s) >= k->size) return dkd_fail("%s: longer than %zu characters", what, k->size - 1);
            memcpy(field, s, strlen(s) + 1);
            break;
        default: break;
        }
    }
    c->set[k - cfg_keys] = 1;
    return 0;
}

int config_set(DkdConfig *c, const char *key, const char *value, const char *where) {
    YamlValue v;
    char w[512];
    snprintf(w, sizeof w, "%s", where);
    if (!value) return dkd_fail("%s: %s needs a value", where, key);
    if (strlen(value) >= YAML_MAX_LINE) return dkd_fail("%s: the value of %s is too long", where, key);
    if (parse_value(value, &v, w)) return -1;
    if (!v.is_list && !v.quoted[0] && !v.item[0][0] && find_key(key) && find_key(key)->kind != CK_STR)
        return dkd_fail("%s: %s needs a value", where, key);
    return set_value(c, key, &v, where);
}

int config_is_set(const DkdConfig *c, const char *key) {
    const CfgKey *k = find_key(key);
    return k ? c->set[k - cfg_keys] : 0;
}

int config_is_key(const char *key) { return find_key(key) != NULL; }

static int file_entry(void *ctx, const char *key, const YamlValue *v, const char *where) {
    return set_value((DkdConfig *)ctx, key, v, where);
}

int config_parse_text(DkdConfig *c, const char *text, size_t len, const char *name) {
    return yaml_parse(text, len, name, file_entry, c);
}

int config_load_file(DkdConfig *c, const char *path) {
    size_t len;
    unsigned char *buf = read_file(path, &len);
    if (!buf) { char why[sizeof dkd_errbuf]; memcpy(why, dkd_errbuf, sizeof why); return dkd_fail("--cfg: %s", why); }
    int rc = config_parse_text(c, (const char *)buf, len, path);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Writing config.yaml                                                        */
/* ------------------------------------------------------------------------- */

/* A double the way Python prints it back (shortest round-trip), always with a
 * '.' or exponent so that yaml reads a float. */
static void fmt_float(char *out, size_t cap, double x) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, x);
        if (strtod(out, NULL) == x) break;
    }
    if (!strpbrk(out, ".eEn")) { size_t n = strlen(out); if (n + 2 < cap) memcpy(out + n, ".0", 3); }
}

/* "text" with " and \ escaped (YAML double-quoted). */
static void put_quoted(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if (*s == '\n') { fputs("\\n", f); continue; }
        fputc(*s, f);
    }
    fputc('"', f);
}

/* One argument as the shell would need it quoted (so the line can be pasted back). */
static void put_shell_arg(FILE *f, const char *a) {
    int plain = *a != 0;
    for (const char *p = a; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("_-./,:=+@%", *p))) plain = 0;
    if (plain) { fputs(a, f); return; }
    fputc('\'', f);
    for (const char *p = a; *p; p++) {
        if (*p == '\'') fputs("'\\''", f);
        else if (*p == '\n') fputs("'$'\\n''", f);
        else fputc(*p, f);
    }
    fputc('\'', f);
}

char *config_command_line(int argc, char **argv) {
    char *buf = NULL; size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) dkd_die("out of memory");
    for (int i = 0; i < argc; i++) { if (i) fputc(' ', f); put_shell_arg(f, argv[i]); }
    fclose(f);
    return buf;
}

static void put_key(FILE *f, const CfgKey *k, const DkdConfig *c, int indent) {
    const char *leaf = strrchr(k->key, '.') + 1;
    const void *field = (const char *)c + k->off;
    char num[64];
    fprintf(f, "%*s%s: ", indent, "", leaf);
    switch (k->kind) {
    case CK_INT: fprintf(f, "%d", *(const int *)field); break;
    case CK_FLOAT: fmt_float(num, sizeof num, *(const double *)field); fputs(num, f); break;
    case CK_BOOL: fputs(*(const int *)field ? "true" : "false", f); break;
    case CK_INT_LIST:
        fputc('[', f);
        for (int i = 0; i < c->n_stages; i++) fprintf(f, "%s%d", i ? ", " : "", ((const int *)field)[i]);
        fputc(']', f);
        break;
    default: put_quoted(f, (const char *)field); break;
    }
    fputc('\n', f);
}

int config_write_yaml(const DkdConfig *c, const char *path, const char *header) {
    char *buf = NULL; size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return dkd_fail("cannot build %s: out of memory", path);
    if (header) fputs(header, f);
    /* sections in mdistiller's order; the KD/DKD section only for that method (as mdistiller's show_cfg) */
    const char *sections[] = {"EXPERIMENT", "DATASET", "DISTILLER", "SOLVER", "LOG", "KD", "DKD"};
    for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++) {
        const char *sec = sections[s];
        if ((!strcmp(sec, "KD") || !strcmp(sec, "DKD")) && strcmp(sec, c->method)) continue;
        fprintf(f, "%s:\n", sec);
        size_t sl = strlen(sec);
        char open_sub[CFG_MAX_KEY] = "";
        for (int i = 0; i < N_CFG_KEYS; i++) {
            const CfgKey *k = &cfg_keys[i];
            if (strncmp(k->key, sec, sl) || k->key[sl] != '.') continue;
            const char *rest = k->key + sl + 1, *dot = strchr(rest, '.');
            if (dot) {   /* one more level: DATASET.TEST.BATCH_SIZE, KD.LOSS.CE_WEIGHT */
                size_t n = (size_t)(dot - rest);
                if (strlen(open_sub) != n || strncmp(open_sub, rest, n)) {
                    memcpy(open_sub, rest, n); open_sub[n] = 0;
                    fprintf(f, "  %s:\n", open_sub);
                }
                put_key(f, k, c, 4);
            } else {
                open_sub[0] = 0;
                put_key(f, k, c, 2);
            }
        }
    }
    if (fclose(f) != 0) { free(buf); return dkd_fail("cannot build %s", path); }
    int rc = write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}
