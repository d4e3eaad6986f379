/* tests/test_config.c — the YAML subset reader and mdistiller's config schema (config.c).
 *
 *   1. every file shipped under configs/ parses, and says what the registry says:
 *      each DKD and KD file is one of the 11 pairs with that pair's settings (each
 *      pair once per method), each vanilla file one of the 15 models (each once);
 *   2. what dkd writes as config.yaml reads back to the same settings;
 *   3. malformed YAML and bad values fail with "FILE:LINE: reason";
 *   4. KEY VALUE pairs and strict numbers (no hex, inf, nan, junk);
 *   5. thousands of random mutations of a real file: parsed or refused, never a crash
 *      (run under ASan/UBSan in CI).
 * Reads configs/ of the checkout (the files under test); writes only to a temp dir.
 */
#include "dkd.h"
#include "test.h"

#include <dirent.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

static int parse_str(DkdConfig *c, const char *text) {
    config_defaults(c);
    return config_parse_text(c, text, strlen(text), "t.yaml");
}

static int same_settings(const DkdConfig *a, const DkdConfig *b) {
    DkdConfig x = *a, y = *b;   /* compare the settings, not which keys were set explicitly */
    memset(x.set, 0, sizeof x.set); memset(y.set, 0, sizeof y.set);
    return memcmp(&x, &y, sizeof x) == 0;
}

static int close_to(double a, double b) { return fabs(a - b) <= 1e-6 * fabs(b); }

/* --------------------------------------------------- 1. the shipped configs */

static int pair_index(const DkdConfig *c) {
    const PairInfo *p = pair_find(c->teacher, c->student);
    return p ? (int)(p - pair_table) : -1;
}

static void check_shipped(const char *dir, const char *method, const DkdConfig *ref_solver) {
    DIR *d = opendir(dir);
    if (!d) { check(0, "%s: cannot open the folder", dir); return; }
    int seen[64] = {0}, files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".yaml")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        DkdConfig c;
        config_defaults(&c);
        if (config_load_file(&c, path)) { check(0, "%s: %s", path, dkd_errbuf); continue; }
        files++;
        int ok = !strcmp(c.method, method) && !strcmp(c.dataset, "cifar100") && !strcmp(c.project, "cifar100_baselines");
        /* the solver settings every recipe shares (all but the LR) */
        ok &= c.batch == ref_solver->batch && c.epochs == ref_solver->epochs && c.n_stages == ref_solver->n_stages &&
              !memcmp(c.stages, ref_solver->stages, sizeof c.stages) && c.wd == ref_solver->wd &&
              c.momentum == ref_solver->momentum && c.decay_rate == ref_solver->decay_rate;
        char why[512] = "";
        if (!strcmp(method, "NONE")) {
            const ModelInfo *mi = model_find(c.student);
            int k = mi ? (int)(mi - model_table) : -1;
            char tag[300];
            snprintf(tag, sizeof tag, "vanilla,%s", e->d_name);
            tag[strlen(tag) - 5] = 0;    /* the file is named after the tag's model alias */
            if (k < 0 || seen[k]++ || strcmp(c.tag, tag)) { ok = 0; snprintf(why, sizeof why, "model/tag %s %s", c.student, c.tag); }
        } else {
            int k = pair_index(&c);
            if (k < 0) { ok = 0; snprintf(why, sizeof why, "%s -> %s is not one of the 11 pairs", c.teacher, c.student); }
            else {
                const PairInfo *p = &pair_table[k];
                char tag[64];
                snprintf(tag, sizeof tag, "%s%s", !strcmp(method, "KD") ? "kd" : "dkd", strchr(p->tag, ','));
                ok &= !seen[k]++ && close_to(c.lr, p->lr) && !strcmp(c.tag, tag);
                if (!strcmp(method, "DKD"))
                    ok &= close_to(c.alpha, p->alpha) && close_to(c.beta, p->beta) && close_to(c.dkd_T, p->T) &&
                          c.warmup == p->warmup && c.dkd_ce_weight == 1.0;
                if (!ok) snprintf(why, sizeof why, "settings differ from the pair table (lr %g beta %g tag %s)", c.lr, c.beta, c.tag);
            }
        }
        check(ok, "%s: %s %s -> %s %s", path, c.method, c.teacher, c.student, why);
        /* 2. written back as config.yaml, it reads the same */
        char out[] = "/tmp/dkd_test_config_XXXXXX";
        int fd = mkstemp(out);
        if (fd < 0) { check(0, "mkstemp"); continue; }
        close(fd);
        DkdConfig back;
        config_defaults(&back);
        int rw = config_write_yaml(&c, out, "# a header comment\n") == 0 && config_load_file(&back, out) == 0;
        check(rw && same_settings(&c, &back), "%s: config.yaml round trip %s", path, rw ? "" : dkd_errbuf);
        unlink(out);
    }
    closedir(d);
    int want = !strcmp(method, "NONE") ? n_models : n_pairs, covered = 0;
    for (int k = 0; k < 64; k++) covered += seen[k] == 1;
    check(files == want && covered == want, "%s: %d files cover %d of the %d %s", dir, files, covered, want,
          !strcmp(method, "NONE") ? "models" : "pairs");
}

/* ----------------------------------------------------- 3. malformed input */

typedef struct { const char *name, *text, *expect; } Bad;
static const Bad bad_cases[] = {
    {"tab indentation", "SOLVER:\n\tLR: 0.1\n", "t.yaml:2: a tab in the indentation"},
    {"tab after the colon", "SOLVER:\n  LR:\t0.1\n", "t.yaml:2: a tab"},
    {"deeper without a parent", "SOLVER:\n  LR: 0.1\n    EPOCHS: 3\n", "t.yaml:3: bad indentation"},
    {"dedent to no level", "SOLVER:\n    LR: 0.1\n  EPOCHS: 3\n", "t.yaml:3: bad indentation"},
    {"indented first line", "  SOLVER:\n    LR: 0.1\n", "t.yaml:1: bad indentation"},
    {"unterminated double quote", "DISTILLER:\n  TYPE: \"DKD\n", "t.yaml:2: unterminated double-quoted"},
    {"unterminated single quote", "DISTILLER:\n  TYPE: 'DKD\n", "t.yaml:2: unterminated single-quoted"},
    {"text after a quote", "DISTILLER:\n  TYPE: \"DKD\" x\n", "t.yaml:2: unexpected text after a quoted"},
    {"duplicate key", "SOLVER:\n  LR: 0.1\n  LR: 0.2\n", "t.yaml:3: duplicate key SOLVER.LR (first on line 2)"},
    {"duplicate section", "SOLVER:\n  LR: 0.1\nSOLVER:\n  EPOCHS: 2\n", "t.yaml:3: duplicate key SOLVER"},
    {"unknown key", "SOLVER:\n  LR_DECAY: 0.1\n", "t.yaml:2: unknown key SOLVER.LR_DECAY (known in SOLVER"},
    {"unknown section", "CRD:\n  FEAT: 1\n", "t.yaml:2: unknown key CRD.FEAT"},
    {"unsupported method", "DISTILLER:\n  TYPE: \"CRD\"\n", "t.yaml:2: DISTILLER.TYPE: 'CRD' is not supported"},
    {"unknown model", "DISTILLER:\n  STUDENT: \"resnet21\"\n", "t.yaml:2: DISTILLER.STUDENT: unknown model"},
    {"hex number", "SOLVER:\n  LR: 0x10\n", "t.yaml:2: SOLVER.LR expects a decimal number"},
    {"inf", "SOLVER:\n  LR: inf\n", "t.yaml:2: SOLVER.LR expects a decimal number"},
    {"nan", "SOLVER:\n  LR: nan\n", "t.yaml:2: SOLVER.LR expects a decimal number"},
    {"negative LR", "SOLVER:\n  LR: -0.1\n", "t.yaml:2: SOLVER.LR expects a number in"},
    {"overflowing number", "SOLVER:\n  LR: 1e999\n", "t.yaml:2: SOLVER.LR expects a number in"},
    {"float for an integer", "SOLVER:\n  EPOCHS: 2.5\n", "t.yaml:2: SOLVER.EPOCHS expects a decimal integer"},
    {"quoted number", "SOLVER:\n  EPOCHS: \"240\"\n", "t.yaml:2: SOLVER.EPOCHS expects a number, got the string"},
    {"list junk", "SOLVER:\n  LR_DECAY_STAGES: [1, 2, 3junk]\n", "t.yaml:2: SOLVER.LR_DECAY_STAGES expects a decimal integer"},
    {"list not increasing", "SOLVER:\n  LR_DECAY_STAGES: [5, 5, 6]\n", "t.yaml:2: SOLVER.LR_DECAY_STAGES must increase"},
    {"list negative", "SOLVER:\n  LR_DECAY_STAGES: [-5, -4, -3]\n", "t.yaml:2: SOLVER.LR_DECAY_STAGES expects"},
    {"list unterminated", "SOLVER:\n  LR_DECAY_STAGES: [1, 2\n", "t.yaml:2: unterminated list"},
    {"list trailing comma", "SOLVER:\n  LR_DECAY_STAGES: [1, 2,]\n", "t.yaml:2: an empty item"},
    {"nested list", "SOLVER:\n  LR_DECAY_STAGES: [[1], 2]\n", "t.yaml:2: nested lists"},
    {"list for a scalar", "SOLVER:\n  LR: [0.1]\n", "t.yaml:2: SOLVER.LR expects a single value"},
    {"scalar for a list", "SOLVER:\n  LR_DECAY_STAGES: 150\n", "t.yaml:2: SOLVER.LR_DECAY_STAGES expects a list"},
    {"block list", "SOLVER:\n  LR_DECAY_STAGES:\n    - 150\n", "t.yaml:3: block lists"},
    {"flow map", "SOLVER: {LR: 0.1}\n", "t.yaml:1: '{' starts YAML syntax"},
    {"anchor", "SOLVER:\n  LR: &x 0.1\n", "t.yaml:2: '&' starts YAML syntax"},
    {"block scalar", "EXPERIMENT:\n  NAME: |\n", "t.yaml:2: '|' starts YAML syntax"},
    {"key without value at the end", "SOLVER:\n", "t.yaml:1: 'SOLVER' has no value"},
    {"key without value, then a sibling", "EXPERIMENT:\nSOLVER:\n  LR: 0.1\n", "t.yaml:2: 'EXPERIMENT' has no value"},
    {"no colon", "SOLVER\n", "t.yaml:1: expected 'KEY: value'"},
    {"colon without space", "SOLVER:\n  LR:0.1\n", "t.yaml:2: expected 'KEY: value'"},
    {"document marker", "---\nSOLVER:\n  LR: 0.1\n", "t.yaml:1: document markers"},
    {"bad escape", "EXPERIMENT:\n  NAME: \"a\\qb\"\n", "t.yaml:2: unsupported escape"},
    {"bad bool", "LOG:\n  WANDB: yes\n", "t.yaml:2: LOG.WANDB expects true or false"},
    {"dataset", "DATASET:\n  TYPE: \"imagenet\"\n", "t.yaml:2: DATASET.TYPE: 'imagenet' is not supported"},
};

static void check_malformed(void) {
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        DkdConfig c;
        dkd_errbuf[0] = 0;
        int rc = parse_str(&c, bad_cases[i].text);
        check(rc == -1 && strstr(dkd_errbuf, bad_cases[i].expect) != NULL, "malformed: %s -> %s", bad_cases[i].name,
              rc ? dkd_errbuf : "ACCEPTED");
    }
    /* a NUL byte, a huge file, a huge line, deep nesting */
    DkdConfig c;
    config_defaults(&c);
    check(config_parse_text(&c, "SOLVER:\n  LR: 0.1\0x\n", 18, "t.yaml") == -1 && strstr(dkd_errbuf, "NUL byte"),
          "malformed: a NUL byte -> %s", dkd_errbuf);
    size_t big = (size_t)CFG_MAX_BYTES + 1;
    char *huge = (char *)xmalloc(big + 1);
    memset(huge, '#', big); huge[big] = 0;
    check(config_parse_text(&c, huge, big, "t.yaml") == -1 && strstr(dkd_errbuf, "more than a config can be"),
          "malformed: %zu bytes -> %s", big, dkd_errbuf);
    memset(huge, ' ', 10000); memcpy(huge + 10000, "X: 1\n", 6);
    check(config_parse_text(&c, huge, strlen(huge), "t.yaml") == -1 && strstr(dkd_errbuf, "t.yaml:1: line longer"),
          "malformed: a 10000-character line -> %s", dkd_errbuf);
    char deep[2048]; size_t n = 0;
    for (int lvl = 0; lvl < 12; lvl++) n += (size_t)snprintf(deep + n, sizeof deep - n, "%*sK%d:\n", 2 * lvl, "", lvl);
    n += (size_t)snprintf(deep + n, sizeof deep - n, "%*sX: 1\n", 24, "");
    check(config_parse_text(&c, deep, n, "t.yaml") == -1 && strstr(dkd_errbuf, "nested deeper"), "malformed: 12 levels -> %s", dkd_errbuf);
    free(huge);
}

/* ------------------------------------------------ the subset that is accepted */

static void check_accepted(void) {
    DkdConfig c;
    const char *text =
        "# a comment line\r\n"
        "EXPERIMENT:   # a comment after a key\r\n"
        "\r\n"
        "  NAME: \"with # inside\"   # and a comment\r\n"
        "  TAG: 'it''s'\r\n"
        "  PROJECT: plain text\r\n"
        "SOLVER:\r\n"
        "    LR_DECAY_STAGES: []\r\n"
        "    LR: 1e-2\r\n"
        "DATASET:\r\n"
        "  TEST:\r\n"
        "    BATCH_SIZE: 32\r\n"
        "  TYPE: cifar100\r\n"
        "DKD:\n"
        "  BETA: 2\n";
    int rc = parse_str(&c, text);
    check(rc == 0, "accepted: comments, CRLF, quotes, an empty list, a 2-level map %s", rc ? dkd_errbuf : "");
    check(!strcmp(c.name, "with # inside") && !strcmp(c.tag, "it's") && !strcmp(c.project, "plain text"),
          "accepted: strings read as written ('%s' '%s' '%s')", c.name, c.tag, c.project);
    check(c.n_stages == 0 && c.lr == 0.01 && c.test_batch == 32 && c.beta == 2.0, "accepted: values (stages %d, lr %g, test batch %d, beta %g)",
          c.n_stages, c.lr, c.test_batch, c.beta);
    check(config_is_set(&c, "SOLVER.LR") && !config_is_set(&c, "SOLVER.EPOCHS"), "accepted: which keys a file set is known");
}

/* ------------------------------------------------ 4. KEY VALUE and numbers */

static void check_key_value(void) {
    DkdConfig c;
    config_defaults(&c);
    check(config_set(&c, "SOLVER.BATCH_SIZE", "128", "cli") == 0 && c.batch == 128, "KEY VALUE: SOLVER.BATCH_SIZE 128");
    check(config_set(&c, "SOLVER.LR_DECAY_STAGES", "[100,150]", "cli") == 0 && c.n_stages == 2 && c.stages[1] == 150,
          "KEY VALUE: SOLVER.LR_DECAY_STAGES [100,150]");
    check(config_set(&c, "DISTILLER.TYPE", "KD", "cli") == 0 && !strcmp(c.method, "KD"), "KEY VALUE: DISTILLER.TYPE KD");
    check(config_set(&c, "DISTILLER.STUDENT", "res20", "cli") == 0 && !strcmp(c.student, "resnet20"),
          "KEY VALUE: an alias is stored as mdistiller's name (%s)", c.student);
    const char *bad[][2] = {{"SOLVER.BATCHSIZE", "1"}, {"SOLVER.LR", "0x10"}, {"SOLVER.EPOCHS", "-5"}, {"SOLVER.LR", ""},
                            {"SOLVER.EPOCHS", "1 2"}, {"DKD.BETA", "nan"}, {"SOLVER", "1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        DkdConfig before = c;
        int rc = config_set(&c, bad[i][0], bad[i][1], "cli");
        check(rc == -1 && strstr(dkd_errbuf, "cli") && same_settings(&before, &c), "KEY VALUE refused: %s '%s' -> %s", bad[i][0],
              bad[i][1], dkd_errbuf);
    }
    const char *ok_nums[] = {"0", "5", "-0.5", "1e-4", "2.5E+3", ".5", "5."};
    for (size_t i = 0; i < sizeof ok_nums / sizeof ok_nums[0]; i++) {
        double x;
        check(parse_number("n", ok_nums[i], 0, -1e9, 1e9, &x) == 0 && x == strtod(ok_nums[i], NULL), "number accepted: %s", ok_nums[i]);
    }
    const char *bad_nums[] = {"0x10", "inf", "-inf", "nan", "1e", "+5", " 5", "5 ", "5junk", "", "1e999", "--5", "1.2.3"};
    for (size_t i = 0; i < sizeof bad_nums / sizeof bad_nums[0]; i++) {
        double x;
        check(parse_number("n", bad_nums[i], 0, -1e9, 1e9, &x) == -1, "number refused: '%s' (%s)", bad_nums[i], dkd_errbuf);
    }
    double x;
    check(parse_number("n", "2.0", 1, 0, 10, &x) == -1 && parse_number("n", "11", 1, 0, 10, &x) == -1 &&
          parse_number("n", "10", 1, 0, 10, &x) == 0, "integer: 2.0 and out-of-range refused, the bound accepted");
}

/* ------------------------------------------------ 5. mutations of a real file */

static void check_mutations(const char *path) {
    size_t len;
    unsigned char *orig = read_file(path, &len);
    if (!orig) { skip("mutations: cannot read %s", path); return; }
    const char alphabet[] = " \t\n\r:#'\"[],-{}&*|>0123456789.eAZ_x\\";
    unsigned long long s = 12345;
    char *buf = (char *)xmalloc(len + 64);
    int parsed = 0, refused = 0;
    enum { N_MUTATIONS = 5000 };
    for (int it = 0; it < N_MUTATIONS; it++) {
        memcpy(buf, orig, len);
        size_t n = len;
        int edits = 1 + (int)((test_rand(&s) + 1) * 2);
        for (int k = 0; k < edits; k++) {
            size_t at = (size_t)((test_rand(&s) + 1) * 0.5 * (double)n);
            if (at >= n) at = n - 1;
            char ch = alphabet[(size_t)((test_rand(&s) + 1) * 0.5 * (sizeof alphabet - 1)) % (sizeof alphabet - 1)];
            double op = test_rand(&s);
            if (op < -0.3) buf[at] = ch;                                                 /* replace */
            else if (op < 0.3 && n + 1 < len + 64) { memmove(buf + at + 1, buf + at, n - at); buf[at] = ch; n++; }   /* insert */
            else if (n > 1) { memmove(buf + at, buf + at + 1, n - at - 1); n--; }        /* delete */
        }
        DkdConfig c;
        config_defaults(&c);
        if (config_parse_text(&c, buf, n, "mutant") == 0) parsed++;
        else if (dkd_errbuf[0]) refused++;
    }
    check(parsed + refused == N_MUTATIONS, "%d mutations of %s: %d parsed, %d refused with a message, none crashed",
          N_MUTATIONS, path, parsed, refused);
    free(buf); free(orig);
}

int main(void) {
    DkdConfig ref;
    config_defaults(&ref);
    if (config_load_file(&ref, "configs/cifar100/dkd/res56_res20.yaml")) {
        check(0, "configs/cifar100/dkd/res56_res20.yaml: %s", dkd_errbuf);
        return test_summary();
    }
    check_shipped("configs/cifar100/dkd", "DKD", &ref);
    check_shipped("configs/cifar100/kd", "KD", &ref);
    check_shipped("configs/cifar100/vanilla", "NONE", &ref);
    check_malformed();
    check_accepted();
    check_key_value();
    check_mutations("configs/cifar100/dkd/res56_res20.yaml");
    return test_summary();
}
