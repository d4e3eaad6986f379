/* plot.c — training curves and bar charts as PNG and SVG files, drawn from scratch.
 *
 *   dkd plot RUN_DIR... [-o out.png]        (cmd_plot)
 *   plot_run_curves(run_dir)                 run_dir's log -> run_dir/curves.png + curves.svg
 *   plot_curves(out, runs, n, title)         one chart for one or several runs
 *   plot_bars(out, title, ylabel, ...)       grouped bars (result tables)
 *
 * What a curves chart shows: six panels, epochs on x (from 1, integer ticks):
 *   top-1 accuracy (test solid, train dashed)   test top-5 accuracy   test loss (CE)
 *   train loss (as optimised)   train CE (solid) and distillation term (dashed)   learning rate
 * One colour per run; the legend names each run (its folder). A run is a dkd
 * run folder (log.csv) or an mdistiller run folder (worklog.txt only), so
 * `dkd plot PYTORCH_RUN DKD_RUN` overlays PyTorch's curves on ours.
 *
 * How it is drawn (no graphics library, only two single-file stb headers):
 *  - a Canvas is an RGB byte buffer [H,W,3] on a white background;
 *  - lines are anti-aliased "capsules": a pixel's coverage is
 *      clamp(half_width + 0.5 - distance(pixel centre, segment), 0, 1);
 *    the segments of one polyline are max-combined in a coverage mask first,
 *    then blended once, so joints and dashes come out without dark spots;
 *  - text comes from stb_easy_font, which turns a string into axis-aligned
 *    quads (a 7-unit-high segment font); we scale them and fill them as
 *    rectangles (rotated by 90 degrees for the y-axis labels);
 *  - every drawing call also appends its SVG element (rect, polyline, circle,
 *    text) to a text buffer in the same pixel coordinates, so the SVG is the
 *    same picture as vectors, written by this file (no library);
 *  - stb_image_write encodes the PNG into memory, which is then written
 *    atomically (temp file + rename: a chart redrawn every epoch is never
 *    seen half-written).
 * Built without stb (no libstb-dev; build.sh says so), only the SVG is written.
 *
 * The log.csv contract (train.c writes it) is in dkd.h, DKD_LOG_CSV_HEADER;
 * mdistiller's worklog.txt is read by worklog_read.
 */
#include "dkd.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef DKD_HAVE_STB
/* The stb headers are third-party code: silence their warnings only. */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-braces"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#define STB_IMAGE_WRITE_STATIC          /* private copy: no clash with another user of stb */
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>            // defines: stbi_write_png_to_func
#include <stb_easy_font.h>              // defines: stb_easy_font_print, stb_easy_font_width
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
int plot_png_available(void) { return 1; }
#else
/* No stb: no glyphs in the raster (which is then never saved) and widths
 * estimated as stb_easy_font's average advance, for the SVG's layout. */
static int stb_easy_font_width(char *text) { return 6 * (int)strlen(text); }
static int stb_easy_font_print(float x, float y, char *text, unsigned char *color, void *buf, int size) {
    (void)x; (void)y; (void)text; (void)color; (void)buf; (void)size;
    return 0;
}
int plot_png_available(void) { return 0; }
#endif

/* ------------------------------------------------------------------------- */
/* log.csv                                                                    */
/* ------------------------------------------------------------------------- */

/* Split line (modified in place) at commas; returns the number of fields. */
static int split_csv(char *line, char **field, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return max + 1;   /* too many */
        field[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = 0; p = c + 1;
    }
    return n;
}

/* Trim spaces in place. */
static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = 0;
    return s;
}

/* The line starting at line, cut at its '\n' and trimmed; *next = the line after it
 * (NULL after the last). Walks a NUL-terminated text in place. */
static char *cut_line(char *line, char **next) {
    char *nl = strchr(line, '\n');
    *next = nl ? nl + 1 : NULL;
    if (nl) *nl = 0;
    return trim(line);
}

int log_csv_read(const char *path, EpochLog **rows_out) {
    *rows_out = NULL;
    size_t len;
    char *text = (char *)read_file(path, &len);   /* NUL-terminated */
    if (!text) return -1;
    enum { MAXF = 32 };
    static const char *names[] = {"epoch", "lr", "train_acc", "train_loss", "test_acc", "test_acc_top5",
                                  "test_loss", "img_per_s", "seconds", "train_ce", "train_kd"};
    enum { NCOL = 11 };
    int col[NCOL];                  /* column index of each known name, -1 if absent */
    for (int k = 0; k < NCOL; k++) col[k] = -1;
    int nf_header = 0, n = 0, cap = 0, lineno = 0, rc = 0;
    EpochLog *rows = NULL;
    char *save = NULL;
    for (char *line = text; line && rc == 0; line = save) {
        line = cut_line(line, &save);
        lineno++;
        if (!*line) continue;
        char *f[MAXF + 1];
        int nf = split_csv(line, f, MAXF);
        if (nf > MAXF) { rc = dkd_fail("%s:%d: more than %d columns", path, lineno, MAXF); break; }
        if (nf_header == 0) {        /* the header */
            nf_header = nf;
            for (int i = 0; i < nf; i++)
                for (int k = 0; k < NCOL; k++)
                    if (!strcmp(trim(f[i]), names[k])) col[k] = i;
            const int required[] = {0, 2, 3, 4, 6};   /* epoch, train_acc, train_loss, test_acc, test_loss */
            for (int r = 0; r < 5; r++)
                if (col[required[r]] < 0)
                    rc = dkd_fail("%s:%d: the header has no '%s' column (expected \"%s\")", path, lineno,
                                  names[required[r]], DKD_LOG_CSV_HEADER);
            continue;
        }
        if (nf != nf_header) { rc = dkd_fail("%s:%d: %d fields, the header has %d", path, lineno, nf, nf_header); break; }
        double v[NCOL];
        for (int k = 0; k < NCOL; k++) {
            v[k] = NAN;
            if (col[k] < 0) continue;
            char *s = trim(f[col[k]]), *end;
            v[k] = strtod(s, &end);
            if (end == s || *end) {
                rc = dkd_fail("%s:%d: column '%s' is not a number: '%s'", path, lineno, names[k], s);
                break;
            }
        }
        if (rc) break;
        if (!(v[0] >= 0 && v[0] < 1e7 && v[0] == floor(v[0]))) {
            rc = dkd_fail("%s:%d: bad epoch number", path, lineno);
            break;
        }
        if (n == cap) { cap = cap ? 2 * cap : 256; rows = (EpochLog *)xrealloc(rows, (size_t)cap * sizeof *rows); }
        EpochLog *r = &rows[n++];
        r->epoch = (int)v[0]; r->lr = v[1]; r->train_acc = v[2]; r->train_loss = v[3]; r->test_acc = v[4];
        r->test_acc_top5 = v[5]; r->test_loss = v[6]; r->img_per_s = v[7]; r->seconds = v[8];
        r->train_ce = v[9]; r->train_kd = v[10];
    }
    free(text);
    if (rc == 0 && nf_header == 0) rc = dkd_fail("%s: empty file (expected the header \"%s\")", path, DKD_LOG_CSV_HEADER);
    if (rc == 0 && n == 0) rc = dkd_fail("%s: no epochs logged yet", path);
    if (rc) { free(rows); return -1; }
    *rows_out = rows;
    return n;
}

/* ------------------------------------------------------------------------- */
/* mdistiller's worklog.txt                                                   */
/* ------------------------------------------------------------------------- */
/* One block per epoch, as mdistiller's BaseTrainer.log writes it:
 *   -------------------------
 *   epoch: 3
 *   lr: 0.05
 *   train_acc: 41.20
 *   ...
 *   -------------------------
 * and "best_acc\t76.32" once training has finished. A resumed mdistiller run
 * appends again from its checkpoint's epoch: a block for an epoch already seen
 * replaces that epoch and every later one. */
static void epochlog_clear(EpochLog *r, int epoch) {
    r->epoch = epoch;
    r->lr = r->train_acc = r->train_loss = r->test_acc = r->test_acc_top5 = r->test_loss = NAN;
    r->img_per_s = r->seconds = r->train_ce = r->train_kd = NAN;
}

int worklog_read(const char *path, EpochLog **rows_out, int *finished) {
    *rows_out = NULL;
    if (finished) *finished = 0;
    size_t len;
    char *text = (char *)read_file(path, &len);   /* NUL-terminated */
    if (!text) return -1;
    if (memchr(text, 0, len)) { free(text); return dkd_fail("%s: not a text file", path); }
    EpochLog *rows = NULL;
    int n = 0, cap = 0, lineno = 0, rc = 0, done = 0;
    char *save = NULL;
    for (char *line = text; line && rc == 0; line = save) {
        line = cut_line(line, &save);
        lineno++;
        if (!*line || line[strspn(line, "-")] == 0) continue;           /* blank or a separator */
        char *sep = strpbrk(line, ":\t");
        if (!sep) { rc = dkd_fail("%s:%d: expected 'key: value', got '%.40s'", path, lineno, line); break; }
        *sep = 0;
        char *key = trim(line), *val = trim(sep + 1), *end;
        double v = strtod(val, &end);
        if (end == val || *end) { rc = dkd_fail("%s:%d: '%s' is not a number: '%.40s'", path, lineno, key, val); break; }
        if (!strcmp(key, "best_acc")) { done = 1; continue; }
        done = 0;                                                        /* epochs after best_acc: resumed */
        if (!strcmp(key, "epoch")) {
            if (!(v >= 1 && v < 1e7 && v == floor(v))) { rc = dkd_fail("%s:%d: bad epoch number", path, lineno); break; }
            while (n > 0 && rows[n - 1].epoch >= (int)v) n--;          /* a resumed run rewrites these */
            if (n == cap) { cap = cap ? 2 * cap : 256; rows = (EpochLog *)xrealloc(rows, (size_t)cap * sizeof *rows); }
            epochlog_clear(&rows[n++], (int)v);
            continue;
        }
        if (n == 0) { rc = dkd_fail("%s:%d: '%s' before the first 'epoch:' line", path, lineno, key); break; }
        EpochLog *r = &rows[n - 1];
        if (!strcmp(key, "lr")) r->lr = v;
        else if (!strcmp(key, "train_acc")) r->train_acc = v;
        else if (!strcmp(key, "train_loss")) r->train_loss = v;
        else if (!strcmp(key, "test_acc")) r->test_acc = v;
        else if (!strcmp(key, "test_acc_top5")) r->test_acc_top5 = v;
        else if (!strcmp(key, "test_loss")) r->test_loss = v;
        /* other keys (mdistiller variants log more) are ignored */
    }
    free(text);
    for (int i = 0; rc == 0 && i < n; i++)
        if (!isfinite(rows[i].test_acc)) rc = dkd_fail("%s: epoch %d has no test_acc", path, rows[i].epoch);
    if (rc == 0 && n == 0) rc = dkd_fail("%s: no epochs logged yet", path);
    if (rc) { free(rows); return -1; }
    if (finished) *finished = done;
    *rows_out = rows;
    return n;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A dkd run folder has log.csv (and a worklog.txt made from it); an mdistiller
 * one has worklog.txt only. finished comes from worklog.txt in both cases. */
int run_log_read(const char *path, EpochLog **rows, int *finished) {
    struct stat st;
    *rows = NULL;
    if (finished) *finished = 0;
    if (stat(path, &st) != 0) return dkd_fail("%s: no such run folder or log file", path);
    char csv[DKD_PATH_MAX + 16], wl[DKD_PATH_MAX + 16];
    if (strlen(path) >= DKD_PATH_MAX) return dkd_fail("%s: path longer than %d characters", path, DKD_PATH_MAX - 1);
    if (S_ISDIR(st.st_mode)) {
        snprintf(csv, sizeof csv, "%s/log.csv", path);
        snprintf(wl, sizeof wl, "%s/worklog.txt", path);
    } else {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (!strcmp(base, "worklog.txt")) return worklog_read(path, rows, finished);
        return log_csv_read(path, rows);      /* a .csv given directly: finished unknown (0) */
    }
    if (!is_file(csv)) {
        if (is_file(wl)) return worklog_read(wl, rows, finished);
        return dkd_fail("%s: neither log.csv (a dkd run) nor worklog.txt (an mdistiller run)", path);
    }
    int n = log_csv_read(csv, rows);
    if (n > 0 && finished && is_file(wl)) {
        EpochLog *w = NULL;
        if (worklog_read(wl, &w, finished) < 0) *finished = 0;
        free(w);
    }
    return n;
}

/* ------------------------------------------------------------------------- */
/* Canvas, colours, pixels                                                    */
/* ------------------------------------------------------------------------- */
typedef struct { uint8_t r, g, b; } Rgb;

static const Rgb WHITE = {255, 255, 255}, INK = {34, 34, 34}, MUTED = {100, 100, 100},
                 GRID = {229, 229, 229}, FRAME = {120, 120, 120}, DECAY = {150, 150, 150};
/* matplotlib's "tab10" (distinct, familiar) + two dark ones, so that all 11 pairs differ */
enum { NPAL = 12 };
static const Rgb PALETTE[NPAL] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
                                  {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
                                  {57, 59, 121},  {0, 0, 0}};

typedef struct { int x0, y0, x1, y1; } Box;   /* pixels x0..x1-1, y0..y1-1 */

typedef struct {
    int w, h;
    uint8_t *px;        /* [h,w,3] RGB */
    float *mask;        /* [h,w] coverage of the stroke being drawn (0 outside) */
    Box dirty;          /* where mask may be non-zero */
    Box clip;           /* strokes are clipped to this box */
    char *vbuf;         /* stb_easy_font quads */
    int vbuf_size;
    char *svg;          /* the same drawing as SVG elements, NUL-terminated */
    size_t svg_len, svg_cap;
    int svg_mute;       /* > 0: raster only (the glyph quads of a text already written as <text>) */
    const char *series; /* names the next stroked polyline in the SVG (data-series), or NULL */
} Canvas;

/* Append to the SVG text. */
static void svg_add(Canvas *cv, const char *fmt, ...) {
    if (cv->svg_mute) return;
    for (;;) {
        va_list ap; va_start(ap, fmt);
        int k = vsnprintf(cv->svg + cv->svg_len, cv->svg_cap - cv->svg_len, fmt, ap);
        va_end(ap);
        if (k >= 0 && cv->svg_len + (size_t)k < cv->svg_cap) { cv->svg_len += (size_t)k; return; }
        cv->svg_cap = 2 * cv->svg_cap + (size_t)(k > 0 ? k : 0);
        cv->svg = (char *)xrealloc(cv->svg, cv->svg_cap);
    }
}

/* Text for an SVG attribute or element: &, <, >, " escaped; non-ASCII as '?'. */
static void svg_add_escaped(Canvas *cv, const char *t) {
    for (; *t; t++) {
        unsigned char c = (unsigned char)*t;
        if (c == '&') svg_add(cv, "&amp;");
        else if (c == '<') svg_add(cv, "&lt;");
        else if (c == '>') svg_add(cv, "&gt;");
        else if (c == '"') svg_add(cv, "&quot;");
        else svg_add(cv, "%c", c >= 32 && c < 127 ? c : '?');
    }
}

static void canvas_init(Canvas *cv, int w, int h) {
    cv->w = w; cv->h = h;
    cv->px = (uint8_t *)xmalloc((size_t)w * h * 3);
    memset(cv->px, 255, (size_t)w * h * 3);
    cv->mask = (float *)xcalloc((size_t)w * h, sizeof(float));
    cv->dirty = (Box){w, h, 0, 0};
    cv->clip = (Box){0, 0, w, h};
    cv->vbuf_size = 1 << 17;
    cv->vbuf = (char *)xmalloc((size_t)cv->vbuf_size);
    cv->svg_cap = 1 << 16;
    cv->svg = (char *)xmalloc(cv->svg_cap);
    cv->svg_len = 0; cv->svg_mute = 0; cv->series = NULL;
    svg_add(cv, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                "font-family=\"DejaVu Sans, Arial, sans-serif\">\n<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
            w, h, w, h, w, h);
}

static void canvas_free(Canvas *cv) {
    free(cv->px); free(cv->mask); free(cv->vbuf); free(cv->svg);
    memset(cv, 0, sizeof *cv);
}

/* Blend colour c with opacity a (0..1) into pixel (x, y). */
static void blend(Canvas *cv, int x, int y, Rgb c, float a) {
    if (x < 0 || y < 0 || x >= cv->w || y >= cv->h || !(a > 0)) return;
    if (a > 1) a = 1;
    uint8_t *p = cv->px + ((size_t)y * cv->w + x) * 3;
    p[0] = (uint8_t)(p[0] + (c.r - p[0]) * a + 0.5f);
    p[1] = (uint8_t)(p[1] + (c.g - p[1]) * a + 0.5f);
    p[2] = (uint8_t)(p[2] + (c.b - p[2]) * a + 0.5f);
}

static float overlap(float a0, float a1, float b0, float b1) {
    float lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    return hi > lo ? hi - lo : 0;
}

/* Rectangle [x0,x1) x [y0,y1) in pixel units, fractional edges anti-aliased. */
static void fill_rect(Canvas *cv, float x0, float y0, float x1, float y1, Rgb c, float alpha) {
    if (x1 < x0) { float t = x0; x0 = x1; x1 = t; }
    if (y1 < y0) { float t = y0; y0 = y1; y1 = t; }
    svg_add(cv, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#%02x%02x%02x\"", x0, y0, x1 - x0,
            y1 - y0, c.r, c.g, c.b);
    if (alpha < 1) svg_add(cv, " fill-opacity=\"%.2f\"", alpha);
    svg_add(cv, "/>\n");
    int ix0 = (int)floorf(x0), ix1 = (int)ceilf(x1), iy0 = (int)floorf(y0), iy1 = (int)ceilf(y1);
    if (ix0 < 0) ix0 = 0;
    if (iy0 < 0) iy0 = 0;
    if (ix1 > cv->w) ix1 = cv->w;
    if (iy1 > cv->h) iy1 = cv->h;
    for (int y = iy0; y < iy1; y++) {
        float cy = overlap((float)y, (float)y + 1, y0, y1);
        for (int x = ix0; x < ix1; x++) blend(cv, x, y, c, alpha * cy * overlap((float)x, (float)x + 1, x0, x1));
    }
}

/* Stroke coverage of one segment a-b with half width hw, max-combined into the mask. */
static void mask_segment(Canvas *cv, float ax, float ay, float bx, float by, float hw) {
    float r = hw + 1;
    int x0 = (int)floorf(fminf(ax, bx) - r), x1 = (int)ceilf(fmaxf(ax, bx) + r);
    int y0 = (int)floorf(fminf(ay, by) - r), y1 = (int)ceilf(fmaxf(ay, by) + r);
    if (x0 < cv->clip.x0) x0 = cv->clip.x0;
    if (y0 < cv->clip.y0) y0 = cv->clip.y0;
    if (x1 > cv->clip.x1) x1 = cv->clip.x1;
    if (y1 > cv->clip.y1) y1 = cv->clip.y1;
    if (x0 >= x1 || y0 >= y1) return;
    float dx = bx - ax, dy = by - ay, L2 = dx * dx + dy * dy;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            float px = x + 0.5f - ax, py = y + 0.5f - ay;
            float t = L2 > 0 ? (px * dx + py * dy) / L2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            float ex = px - t * dx, ey = py - t * dy;
            float cov = hw + 0.5f - sqrtf(ex * ex + ey * ey);
            if (cov <= 0) continue;
            if (cov > 1) cov = 1;
            float *m = &cv->mask[(size_t)y * cv->w + x];
            if (cov > *m) *m = cov;
        }
    if (x0 < cv->dirty.x0) cv->dirty.x0 = x0;
    if (y0 < cv->dirty.y0) cv->dirty.y0 = y0;
    if (x1 > cv->dirty.x1) cv->dirty.x1 = x1;
    if (y1 > cv->dirty.y1) cv->dirty.y1 = y1;
}

/* Paint the mask with colour c and clear it. */
static void mask_paint(Canvas *cv, Rgb c) {
    for (int y = cv->dirty.y0; y < cv->dirty.y1; y++)
        for (int x = cv->dirty.x0; x < cv->dirty.x1; x++) {
            float *m = &cv->mask[(size_t)y * cv->w + x];
            if (*m > 0) { blend(cv, x, y, c, *m); *m = 0; }
        }
    cv->dirty = (Box){cv->w, cv->h, 0, 0};
}

/* A polyline through (xs[i], ys[i]); non-finite points break it. dash = 0:
 * solid, else dashes of dash px with gaps of gap px (the pattern runs on
 * across vertices). */
static void svg_polyline(Canvas *cv, const float *xs, const float *ys, int n, float width, Rgb c, float dash, float gap) {
    for (int i = 0; i < n;) {                   /* one <polyline> per run of finite points */
        while (i < n && !(isfinite(xs[i]) && isfinite(ys[i]))) i++;
        int j = i;
        while (j < n && isfinite(xs[j]) && isfinite(ys[j])) j++;
        if (j - i >= 2) {
            svg_add(cv, "<polyline");
            if (cv->series) { svg_add(cv, " data-series=\""); svg_add_escaped(cv, cv->series); svg_add(cv, "\""); }
            svg_add(cv, " fill=\"none\" stroke=\"#%02x%02x%02x\" stroke-width=\"%.1f\" stroke-linejoin=\"round\"", c.r, c.g,
                    c.b, width);
            if (dash > 0) svg_add(cv, " stroke-dasharray=\"%.0f %.0f\"", dash, gap);
            svg_add(cv, " points=\"");
            for (int k = i; k < j; k++) svg_add(cv, "%s%.1f,%.1f", k > i ? " " : "", xs[k], ys[k]);
            svg_add(cv, "\"/>\n");
        }
        i = j;
    }
}

static void stroke_polyline(Canvas *cv, const float *xs, const float *ys, int n, float width, Rgb c,
                            float dash, float gap) {
    svg_polyline(cv, xs, ys, n, width, c, dash, gap);
    float hw = width / 2, phase = 0, period = dash + gap;
    for (int i = 0; i + 1 < n; i++) {
        float ax = xs[i], ay = ys[i], bx = xs[i + 1], by = ys[i + 1];
        if (!isfinite(ax) || !isfinite(ay) || !isfinite(bx) || !isfinite(by)) continue;
        if (dash <= 0) { mask_segment(cv, ax, ay, bx, by, hw); continue; }
        float L = sqrtf((bx - ax) * (bx - ax) + (by - ay) * (by - ay)), t = 0;
        while (t < L) {
            float step;
            if (phase < dash) {                       /* inside a dash: draw up to its end */
                step = fminf(L - t, dash - phase);
                float t1 = t + step;
                mask_segment(cv, ax + (bx - ax) * t / L, ay + (by - ay) * t / L,
                             ax + (bx - ax) * t1 / L, ay + (by - ay) * t1 / L, hw);
            } else {
                step = fminf(L - t, period - phase);  /* inside a gap: skip it */
            }
            t += step;
            phase += step;
            if (phase >= period - 1e-4f) phase = 0;
        }
    }
    mask_paint(cv, c);
}

static void stroke_line(Canvas *cv, float ax, float ay, float bx, float by, float width, Rgb c, float dash, float gap) {
    float xs[2] = {ax, bx}, ys[2] = {ay, by};
    stroke_polyline(cv, xs, ys, 2, width, c, dash, gap);
}

static void dot(Canvas *cv, float x, float y, float radius, Rgb c) {
    if (!isfinite(x) || !isfinite(y)) return;
    svg_add(cv, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"#%02x%02x%02x\"/>\n", x, y, radius, c.r, c.g, c.b);
    mask_segment(cv, x, y, x, y, radius);
    mask_paint(cv, c);
}

/* ------------------------------------------------------------------------- */
/* Text (stb_easy_font: glyphs 7 units high, 12 units line pitch)             */
/* ------------------------------------------------------------------------- */
enum { FONT_CAP = 7, FONT_PITCH = 12 };

/* Copy one line of s (up to '\n' or the end) into buf, with anything stb_easy_font
 * cannot draw (outside printable ASCII) replaced by '?'. Returns the next line or NULL. */
static const char *take_line(const char *s, char *buf, size_t cap) {
    size_t n = 0;
    while (*s && *s != '\n') {
        unsigned char ch = (unsigned char)*s++;
        if (n + 1 < cap) buf[n++] = (ch >= 32 && ch < 127) ? (char)ch : '?';
    }
    buf[n] = 0;
    return *s == '\n' ? s + 1 : NULL;
}

/* Width in pixels of the widest line (without the trailing inter-letter gap). */
static float text_width(const char *s, float scale) {
    char line[512];
    float w = 0;
    for (const char *p = s; p;) {
        p = take_line(p, line, sizeof line);
        int lw = stb_easy_font_width(line);
        if (lw > 0) lw -= 1;
        if (lw * scale > w) w = lw * scale;
    }
    return w;
}

static int text_lines(const char *s) {
    int n = 1;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Height of a block of text: (lines-1) pitches + one cap height. */
static float text_height(const char *s, float scale) {
    return ((text_lines(s) - 1) * FONT_PITCH + FONT_CAP) * scale;
}

enum { LEFT = 0, CENTER = 1, RIGHT = 2 };   /* horizontal alignment */
enum { TOP = 0, MIDDLE = 1, BOTTOM = 2 };   /* vertical alignment (cap height) */

/* The SVG twin of one line of text whose cap box has its top-left corner at
 * (x, y) (rot = 1: turned to read upwards, as draw_line_text). The font's cap
 * height is about 0.72 em; textLength pins the width to the raster's, so the
 * layout holds whatever font the viewer picks. */
static void svg_text(Canvas *cv, float x, float y, const char *line, float scale, Rgb c, int rot, int bold) {
    float cap = FONT_CAP * scale, w = text_width(line, scale);
    float bx = rot ? x + cap : x, by = rot ? y : y + cap;     /* the baseline's start */
    svg_add(cv, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.1f\" fill=\"#%02x%02x%02x\"", bx, by, cap / 0.72f, c.r, c.g, c.b);
    if (bold) svg_add(cv, " font-weight=\"bold\"");
    if (w > 0) svg_add(cv, " textLength=\"%.1f\" lengthAdjust=\"spacingAndGlyphs\"", w);
    if (rot) svg_add(cv, " transform=\"rotate(-90 %.1f %.1f)\"", bx, by);
    svg_add(cv, ">");
    svg_add_escaped(cv, line);
    svg_add(cv, "</text>\n");
}

/* One line at (x, y) = top-left of its cap box; rot = 1 turns it 90 degrees
 * counter-clockwise (it then reads upwards, its top-left corner at (x, y)
 * becoming the bottom-left). Raster and SVG. */
static void draw_line_text(Canvas *cv, float x, float y, char *line, float scale, Rgb c, int rot, int bold) {
    svg_text(cv, x, y, line, scale, c, rot, bold);
    cv->svg_mute++;                                  /* the glyph quads are raster only */
    for (int pass = 0; pass <= bold; pass++) {       /* bold: the same glyphs twice, one pixel apart */
        int nq = stb_easy_font_print(0, 0, line, NULL, cv->vbuf, cv->vbuf_size);
        for (int q = 0; q < nq; q++) {
            const float *v0 = (const float *)(cv->vbuf + q * 64);        /* 4 vertices of 16 bytes */
            const float *v2 = (const float *)(cv->vbuf + q * 64 + 32);
            float u0 = v0[0] * scale + pass, u1 = v2[0] * scale + pass, w0 = v0[1] * scale, w1 = v2[1] * scale;
            if (!rot) fill_rect(cv, x + u0, y + w0, x + u1, y + w1, c, 1);
            else fill_rect(cv, x + w0, y - u1, x + w1, y - u0, c, 1);
        }
    }
    cv->svg_mute--;
}

/* Text block (lines split at '\n', each aligned on its own), anchored at (x, y). */
static void draw_text_styled(Canvas *cv, float x, float y, const char *s, float scale, Rgb c, int ha, int va, int bold) {
    float top = va == TOP ? y : va == MIDDLE ? y - text_height(s, scale) / 2 : y - text_height(s, scale);
    char line[512];
    int k = 0;
    for (const char *p = s; p; k++) {
        p = take_line(p, line, sizeof line);
        float w = text_width(line, scale);
        float left = ha == LEFT ? x : ha == CENTER ? x - w / 2 : x - w;
        draw_line_text(cv, roundf(left), roundf(top + k * FONT_PITCH * scale), line, scale, c, 0, bold);
    }
}

static void draw_text(Canvas *cv, float x, float y, const char *s, float scale, Rgb c, int ha, int va) {
    draw_text_styled(cv, x, y, s, scale, c, ha, va, 0);
}

static void draw_text_bold(Canvas *cv, float x, float y, const char *s, float scale, Rgb c, int ha, int va) {
    draw_text_styled(cv, x, y, s, scale, c, ha, va, 1);
}

/* One line, turned to read upwards, centred on (cx, cy). */
static void draw_text_up(Canvas *cv, float cx, float cy, const char *s, float scale, Rgb c) {
    char line[512];
    take_line(s, line, sizeof line);
    float w = text_width(line, scale), h = FONT_CAP * scale;
    draw_line_text(cv, roundf(cx - h / 2), roundf(cy + w / 2), line, scale, c, 1, 0);
}

/* ------------------------------------------------------------------------- */
/* Axes                                                                       */
/* ------------------------------------------------------------------------- */
typedef struct {
    double lo, hi, step;   /* axis range and tick spacing */
    int decimals;          /* tick label decimals */
} Axis;

/* A "nice" axis covering [lo, hi]: ticks every {1,2,4,5} x 10^k, 4..9 ticks,
 * the least unused range (then closest to 6-7 ticks) wins. integer: step >= 1. */
static Axis nice_axis(double lo, double hi, int integer) {
    Axis a = {lo, hi, 1, 0};
    if (!isfinite(lo) || !isfinite(hi)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-9) { double m = fabs(hi) > 1 ? fabs(hi) * 0.05 : 0.5; lo -= m; hi += m; if (lo < 0 && a.lo >= 0) lo = 0; }
    double span = hi - lo, mag = pow(10, floor(log10(span / 6))), best = 1e300;
    static const double mult[] = {1, 2, 4, 5};
    for (int e = -1; e <= 1; e++)
        for (int k = 0; k < 4; k++) {
            double st = mult[k] * mag * pow(10, e);
            if (integer && st < 1) continue;
            double a0 = floor(lo / st + 1e-9) * st, a1 = ceil(hi / st - 1e-9) * st;
            int nt = (int)floor((a1 - a0) / st + 0.5);
            if (nt < 3 || nt > 9) continue;
            double score = ((a1 - a0) - span) / span + 0.03 * fabs(nt - 6.5);
            if (score < best) { best = score; a.lo = a0; a.hi = a1; a.step = st; }
        }
    if (best == 1e300 && integer) {              /* a short integer axis (epochs 1..3): every integer */
        a.step = ceil(span / 6);
        a.lo = floor(lo / a.step) * a.step; a.hi = ceil(hi / a.step) * a.step;
    } else if (best == 1e300) { a.lo = lo; a.hi = hi; a.step = span / 5; }
    a.decimals = 0;
    while (a.decimals < 6) {
        double s = a.step * pow(10, a.decimals);
        if (fabs(s - floor(s + 0.5)) < 1e-6 * (s > 1 ? s : 1)) break;
        a.decimals++;
    }
    return a;
}

/* A plotting area: pixel box and the data ranges mapped onto it. */
typedef struct { Box b; Axis x, y; } Frame;

static float fx(const Frame *f, double x) { return (float)(f->b.x0 + (x - f->x.lo) / (f->x.hi - f->x.lo) * (f->b.x1 - f->b.x0)); }
static float fy(const Frame *f, double y) { return (float)(f->b.y1 - (y - f->y.lo) / (f->y.hi - f->y.lo) * (f->b.y1 - f->b.y0)); }

/* Grid, frame, ticks with labels and the axis labels. */
static void draw_axes(Canvas *cv, const Frame *f, const char *xlabel, const char *ylabel, int xticks) {
    char s[64];
    const Box *b = &f->b;
    for (int k = 0;; k++) {            /* horizontal grid lines + y tick labels */
        double v = f->y.lo + k * f->y.step;
        if (v > f->y.hi + f->y.step * 1e-6) break;
        float y = roundf(fy(f, v));
        fill_rect(cv, (float)b->x0, y, (float)b->x1, y + 1, GRID, 1);
        fill_rect(cv, (float)b->x0 - 6, y, (float)b->x0, y + 1, FRAME, 1);
        snprintf(s, sizeof s, "%.*f", f->y.decimals, fabs(v) < 1e-12 ? 0.0 : v);
        draw_text(cv, (float)b->x0 - 10, y + 0.5f, s, 2, INK, RIGHT, MIDDLE);
    }
    if (xticks) {                      /* vertical grid lines + x tick labels: at lo (epoch 1), then */
        double first = ceil(f->x.lo / f->x.step - 1e-9) * f->x.step;    /* every multiple of the step */
        int lo_tick = first - f->x.lo > 0.4 * f->x.step;
        for (int k = -lo_tick;; k++) {
            double v = k < 0 ? f->x.lo : first + k * f->x.step;
            if (v > f->x.hi + f->x.step * 1e-6) break;
            float x = roundf(fx(f, v));
            fill_rect(cv, x, (float)b->y0, x + 1, (float)b->y1, GRID, 1);
            fill_rect(cv, x, (float)b->y1, x + 1, (float)b->y1 + 6, FRAME, 1);
            snprintf(s, sizeof s, "%.*f", f->x.decimals, fabs(v) < 1e-12 ? 0.0 : v);
            draw_text(cv, x + 0.5f, (float)b->y1 + 12, s, 2, INK, CENTER, TOP);
        }
    }
    /* frame: left and bottom axis lines darker, top and right light */
    fill_rect(cv, (float)b->x0, (float)b->y0, (float)b->x1 + 1, (float)b->y0 + 1, GRID, 1);
    fill_rect(cv, (float)b->x1, (float)b->y0, (float)b->x1 + 1, (float)b->y1 + 1, GRID, 1);
    fill_rect(cv, (float)b->x0, (float)b->y1, (float)b->x1 + 1, (float)b->y1 + 1, FRAME, 1);
    fill_rect(cv, (float)b->x0, (float)b->y0, (float)b->x0 + 1, (float)b->y1 + 1, FRAME, 1);
    if (xlabel && *xlabel) draw_text(cv, (b->x0 + b->x1) / 2.0f, (float)b->y1 + 40, xlabel, 2, INK, CENTER, TOP);
    if (ylabel && *ylabel) {
        float wmax = 0;   /* clear of the widest tick label */
        for (int k = 0; k < 2; k++) {
            snprintf(s, sizeof s, "%.*f", f->y.decimals, k ? f->y.hi : f->y.lo);
            float w = text_width(s, 2);
            if (w > wmax) wmax = w;
        }
        draw_text_up(cv, b->x0 - 10 - wmax - 20, (b->y0 + b->y1) / 2.0f, ylabel, 2, INK);
    }
}

/* ------------------------------------------------------------------------- */
/* Legend: entries laid out in rows inside a width                            */
/* ------------------------------------------------------------------------- */
typedef struct {
    char label[160];
    Rgb color;
    int style;          /* 0 solid line, 1 dashed line, 2 filled box */
} LegendEntry;

enum { SWATCH = 34, LEG_GAP = 28, LEG_ROW = 26 };

static float legend_entry_width(const LegendEntry *e) { return SWATCH + 8 + text_width(e->label, 2); }

/* Rows needed to lay the entries out within width w. */
static int legend_rows(const LegendEntry *e, int n, float w) {
    int rows = n ? 1 : 0;
    float x = 0;
    for (int i = 0; i < n; i++) {
        float ew = legend_entry_width(&e[i]);
        if (x > 0 && x + ew > w) { rows++; x = 0; }
        x += ew + LEG_GAP;
    }
    return rows;
}

/* Entries centred row by row in [x0, x0+w), first row's centre line at y. */
static void draw_legend(Canvas *cv, const LegendEntry *e, int n, float x0, float w, float y) {
    int i = 0;
    while (i < n) {
        int j = i;                     /* entries i..j-1 form this row */
        float rw = 0;
        while (j < n) {
            float ew = legend_entry_width(&e[j]);
            if (j > i && rw + LEG_GAP + ew > w) break;
            rw += (j > i ? LEG_GAP : 0) + ew;
            j++;
        }
        float x = x0 + (w - rw) / 2;
        for (int k = i; k < j; k++) {
            float yc = roundf(y) + 0.5f;
            if (e[k].style == 2) fill_rect(cv, x + 6, yc - 8, x + SWATCH - 6, yc + 8, e[k].color, 1);
            else stroke_line(cv, x, yc, x + SWATCH, yc, 3, e[k].color, e[k].style ? 7 : 0, 5);
            draw_text(cv, x + SWATCH + 8, yc, e[k].label, 2, INK, LEFT, MIDDLE);
            x += legend_entry_width(&e[k]) + LEG_GAP;
        }
        i = j;
        y += LEG_ROW;
    }
}

/* ------------------------------------------------------------------------- */
/* PNG output                                                                 */
/* ------------------------------------------------------------------------- */
#ifdef DKD_HAVE_STB
typedef struct { unsigned char *p; size_t n, cap; } MemBuf;

static void membuf_write(void *ctx, void *data, int size) {
    MemBuf *m = (MemBuf *)ctx;
    if (size <= 0) return;
    if (m->n + (size_t)size > m->cap) {
        m->cap = (m->n + (size_t)size) * 2;
        m->p = (unsigned char *)xrealloc(m->p, m->cap);
    }
    memcpy(m->p + m->n, data, (size_t)size);
    m->n += (size_t)size;
}
#endif

static int canvas_save_png(const Canvas *cv, const char *path) {
#ifdef DKD_HAVE_STB
    MemBuf m = {NULL, 0, 0};
    if (!stbi_write_png_to_func(membuf_write, &m, cv->w, cv->h, 3, cv->px, cv->w * 3)) {
        free(m.p);
        return dkd_fail("cannot encode the PNG for %s", path);
    }
    int r = write_file_atomic(path, m.p, m.n);
    free(m.p);
    return r;
#else
    return dkd_fail("cannot write %s: this dkd was built without stb (libstb-dev), PNG output is disabled", path);
#endif
}

static int canvas_save_svg(Canvas *cv, const char *path) {
    size_t mark = cv->svg_len;
    svg_add(cv, "</svg>\n");
    int r = write_file_atomic(path, cv->svg, cv->svg_len);
    cv->svg_len = mark;
    cv->svg[mark] = 0;
    return r;
}

static int ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

/* out "NAME.svg": the SVG only. Otherwise the PNG at out and the SVG beside it
 * (NAME.png -> NAME.svg; another name gets ".svg" appended); without stb only
 * that SVG, and a note on stderr. */
static int canvas_save(Canvas *cv, const char *out) {
    if (ends_with(out, ".svg")) return canvas_save_svg(cv, out);
    char svg[DKD_PATH_MAX + 8];
    size_t L = strlen(out);
    if (L >= DKD_PATH_MAX) return dkd_fail("%s: path longer than %d characters", out, DKD_PATH_MAX - 1);
    if (ends_with(out, ".png")) snprintf(svg, sizeof svg, "%.*s.svg", (int)(L - 4), out);
    else snprintf(svg, sizeof svg, "%s.svg", out);
    if (plot_png_available() && canvas_save_png(cv, out) != 0) return -1;
    return canvas_save_svg(cv, svg);
}

/* ------------------------------------------------------------------------- */
/* Curves                                                                     */
/* ------------------------------------------------------------------------- */
typedef struct {
    char name[160];        /* legend name */
    char parent[160];      /* the folder above the run's (to tell runs of the same name apart) */
    int from_worklog;      /* an mdistiller run: worklog.txt only */
    EpochLog *rows; int n;
} Run;

/* Copy the last path component of dir (after trailing '/' are dropped) into out. */
static void last_component(const char *dir, char *out, size_t cap) {
    char d[DKD_PATH_MAX];
    snprintf(d, sizeof d, "%s", dir);
    size_t L = strlen(d);
    while (L > 1 && d[L - 1] == '/') d[--L] = 0;
    const char *base = strrchr(d, '/');
    base = base ? base + 1 : d;
    if (!strcmp(base, ".") || !*base) {                      /* "." : the current folder's name */
        char cwd[1024];
        base = "run";
        if (getcwd(cwd, sizeof cwd)) { char *sl = strrchr(cwd, '/'); if (sl && sl[1]) base = sl + 1; }
    }
    snprintf(out, cap, "%s", base);
}

/* A run from a folder or from its log.csv / worklog.txt. Its name: the folder's. */
static int run_read(Run *r, const char *arg) {
    char dir[DKD_PATH_MAX];
    struct stat st;
    if (strlen(arg) >= sizeof dir) { r->n = -1; return dkd_fail("%s: path longer than %d characters", arg, DKD_PATH_MAX - 1); }
    snprintf(dir, sizeof dir, "%s", arg);
    size_t L = strlen(dir);
    while (L > 1 && dir[L - 1] == '/') dir[--L] = 0;
    if (stat(dir, &st) != 0) { r->n = -1; return dkd_fail("%s: no such run folder or log file", arg); }
    if (S_ISDIR(st.st_mode)) {
        char csv[1100];
        snprintf(csv, sizeof csv, "%s/log.csv", dir);
        r->from_worklog = !is_file(csv);
    } else {
        char *sl = strrchr(dir, '/');
        const char *file = sl ? sl + 1 : dir;
        r->from_worklog = !strcmp(file, "worklog.txt");
        if (!strcmp(file, "log.csv") || r->from_worklog) {   /* name it after its folder */
            if (sl) *sl = 0; else snprintf(dir, sizeof dir, ".");
        }
    }
    last_component(dir, r->name, sizeof r->name);
    char *sl = strrchr(dir, '/');
    if (sl && sl != dir) { *sl = 0; last_component(dir, r->parent, sizeof r->parent); }
    else r->parent[0] = 0;
    r->n = run_log_read(arg, &r->rows, NULL);
    return r->n > 0 ? 0 : -1;
}

/* Legend names: given labels; else the folder names, "PyTorch: " / "dkd: " in
 * front when mdistiller and dkd runs are mixed, and "parent/" in front of a
 * name that two runs share. */
static void runs_name(Run *runs, int n, const char *const *labels) {
    int mixed = 0;
    for (int r = 1; r < n; r++) mixed |= runs[r].from_worklog != runs[0].from_worklog;
    for (int r = 0; r < n; r++) {
        char nm[160];
        if (labels && labels[r]) { snprintf(runs[r].name, sizeof runs[r].name, "%s", labels[r]); continue; }
        int clash = 0;
        for (int q = 0; q < n; q++)
            clash |= q != r && runs[q].from_worklog == runs[r].from_worklog && !strcmp(runs[q].name, runs[r].name);
        if (clash && runs[r].parent[0]) snprintf(nm, sizeof nm, "%.70s/%.80s", runs[r].parent, runs[r].name);
        else snprintf(nm, sizeof nm, "%s", runs[r].name);
        if (mixed) snprintf(runs[r].name, sizeof runs[r].name, "%s: %.140s", runs[r].from_worklog ? "PyTorch" : "dkd", nm);
        else snprintf(runs[r].name, sizeof runs[r].name, "%s", nm);
    }
}

/* Best test accuracy of a run and its epoch (the last of ties, as mdistiller keeps it). */
static double run_best(const Run *r, int *epoch) {
    double best = -1; *epoch = 0;
    for (int i = 0; i < r->n; i++)
        if (isfinite(r->rows[i].test_acc) && r->rows[i].test_acc >= best) { best = r->rows[i].test_acc; *epoch = r->rows[i].epoch; }
    return best;
}

/* The quantities a panel can draw, and their names in the SVG (data-series). */
enum { Q_NONE = -1, Q_TEST_ACC, Q_TRAIN_ACC, Q_TEST_TOP5, Q_TEST_LOSS, Q_TRAIN_LOSS, Q_TRAIN_CE, Q_TRAIN_KD, Q_LR };
static const char *const Q_NAME[] = {"test_acc", "train_acc", "test_acc_top5", "test_loss", "train_loss", "train_ce", "train_kd", "lr"};
static double row_q(const EpochLog *e, int q) {
    switch (q) {
    case Q_TEST_ACC: return e->test_acc;
    case Q_TRAIN_ACC: return e->train_acc;
    case Q_TEST_TOP5: return e->test_acc_top5;
    case Q_TEST_LOSS: return e->test_loss;
    case Q_TRAIN_LOSS: return e->train_loss;
    case Q_TRAIN_CE: return e->train_ce;
    case Q_TRAIN_KD: return e->train_kd;
    case Q_LR: return e->lr;
    default: return NAN;
    }
}

typedef struct {
    const char *title, *ylabel;
    int solid, dashed;      /* quantities drawn solid and dashed (Q_NONE: none) */
    int is_acc;             /* an accuracy: axis tops out at 100, best marked */
    const char *empty;      /* said in the panel when no run has its data */
} PanelSpec;

static const PanelSpec PANELS[6] = {
    {"Top-1 accuracy: test solid, train dashed", "accuracy (%)", Q_TEST_ACC, Q_TRAIN_ACC, 1, "no accuracy logged"},
    {"Test top-5 accuracy", "accuracy (%)", Q_TEST_TOP5, Q_NONE, 1, "no top-5 in these logs"},
    {"Test loss (cross-entropy)", "loss", Q_TEST_LOSS, Q_NONE, 0, "no test loss logged"},
    {"Train loss (as optimised: CE + distillation)", "loss", Q_TRAIN_LOSS, Q_NONE, 0, "no train loss logged"},
    {"Train CE solid, distillation term dashed", "loss", Q_TRAIN_CE, Q_TRAIN_KD, 0,
     "not logged: mdistiller's worklog.txt and\nolder dkd logs have the total only"},
    {"Learning rate", "learning rate", Q_LR, Q_NONE, 0, "no learning rate logged"},
};

/* One panel: its quantities for every run. xs, ys: scratch for the longest run. */
static void draw_curve_panel(Canvas *cv, Box outer, const PanelSpec *ps, const Run *runs, int nr, float *xs, float *ys) {
    double xmax = 2, ymin = 0, ymax = -1e300;
    for (int r = 0; r < nr; r++)
        for (int i = 0; i < runs[r].n; i++) {
            const EpochLog *e = &runs[r].rows[i];
            if (e->epoch > xmax) xmax = e->epoch;
            for (int k = 0; k < 2; k++) {
                double v = row_q(e, k ? ps->dashed : ps->solid);
                if (!isfinite(v)) continue;
                if (v > ymax) ymax = v;
                if (v < ymin) ymin = v;
            }
        }
    int empty = ymax < ymin;
    if (empty) ymax = ymin + 1;
    Frame f;
    f.x = nice_axis(1, xmax, 1);
    f.x.lo = 1;                                                /* epochs count from 1 */
    f.y = nice_axis(ymin, ymax + 0.02 * (ymax - ymin), 0);   /* a little headroom above the top point */
    if (ps->is_acc && f.y.hi > 100 && ymax <= 100) f.y.hi = 100;   /* accuracy axis tops out at 100 */
    f.b = (Box){outer.x0 + 110, outer.y0 + 44, outer.x1 - 24, outer.y1 - 74};

    draw_text_bold(cv, (f.b.x0 + f.b.x1) / 2.0f, (float)outer.y0 + 8, ps->title, 2, INK, CENTER, TOP);
    draw_axes(cv, &f, "epoch", ps->ylabel, 1);
    if (empty) {
        draw_text(cv, (f.b.x0 + f.b.x1) / 2.0f, (f.b.y0 + f.b.y1) / 2.0f, ps->empty, 2, MUTED, CENTER, MIDDLE);
        return;
    }
    cv->clip = (Box){f.b.x0 - 6, f.b.y0 - 6, f.b.x1 + 6, f.b.y1 + 6};
    if (nr == 1)                                 /* learning-rate decays of a single run: dashed verticals */
        for (int i = 1; i < runs[0].n; i++) {
            double l0 = runs[0].rows[i - 1].lr, l1 = runs[0].rows[i].lr;
            if (isfinite(l0) && isfinite(l1) && l1 < l0 * 0.999) {
                float x = roundf(fx(&f, runs[0].rows[i].epoch - 0.5)) + 0.5f;
                stroke_line(cv, x, (float)f.b.y0, x, (float)f.b.y1, 1.2f, DECAY, 5, 4);
            }
        }
    char series[200];
    for (int r = 0; r < nr; r++) {
        const Run *R = &runs[r];
        Rgb c = PALETTE[r % NPAL];
        for (int k = 0; k < 2; k++) {
            int q = k ? ps->dashed : ps->solid;
            if (q == Q_NONE) continue;
            for (int i = 0; i < R->n; i++) {
                double v = row_q(&R->rows[i], q);
                xs[i] = fx(&f, R->rows[i].epoch);
                ys[i] = isfinite(v) ? fy(&f, v) : NAN;
            }
            snprintf(series, sizeof series, "%s:%s", R->name, Q_NAME[q]);
            cv->series = series;
            stroke_polyline(cv, xs, ys, R->n, k ? 2.0f : 2.5f, c, k ? 8 : 0, 5);
            cv->series = NULL;
            if (R->n <= 30)                          /* few points: show them */
                for (int i = 0; i < R->n; i++) dot(cv, xs[i], ys[i], 3.2f, c);
        }
        if (!ps->is_acc || ps->solid != Q_TEST_ACC) continue;
        int be; double b = run_best(R, &be);         /* the best test accuracy: a ringed dot */
        if (b < 0) continue;
        float x = fx(&f, be), y = fy(&f, b);
        dot(cv, x, y, 6, WHITE);
        dot(cv, x, y, 4.5f, c);
        if (nr > 1) continue;
        char s[64]; snprintf(s, sizeof s, "best %.2f", b);
        float tw = text_width(s, 2);
        /* above-left of the point (the curve arrives from below-left), kept inside the frame */
        float tx = x - 8 - tw >= f.b.x0 + 4 ? x - 8 - tw : x + 10;
        float ty = y - 28 >= f.b.y0 + 4 ? y - 28 : y + 14;
        fill_rect(cv, tx - 3, ty - 3, tx + tw + 3, ty + 17, WHITE, 0.85f);
        draw_text(cv, tx, ty, s, 2, c, LEFT, TOP);
    }
    cv->clip = (Box){0, 0, cv->w, cv->h};
}

/* The title line and the line of facts under it. */
static void curves_heading(Canvas *cv, const Run *runs, int n_runs, const char *title) {
    char t[512], sub[512];
    int single = n_runs == 1, any_worklog = 0;
    for (int r = 0; r < n_runs; r++) any_worklog |= runs[r].from_worklog;
    if (title && *title) snprintf(t, sizeof t, "%s", title);
    else if (single) snprintf(t, sizeof t, "%s", runs[0].name);
    else snprintf(t, sizeof t, "%d runs", n_runs);
    draw_text_bold(cv, cv->w / 2.0f, 18, t, 3, INK, CENTER, TOP);
    size_t k = 0;
    sub[0] = 0;
    if (single) {
        const EpochLog *last = &runs[0].rows[runs[0].n - 1];
        int be; double b = run_best(&runs[0], &be);
        k += (size_t)snprintf(sub, sizeof sub, "%d epochs   last test top-1 %.2f%%", last->epoch, last->test_acc);
        if (isfinite(last->test_acc_top5)) k += (size_t)snprintf(sub + k, sizeof sub - k, ", top-5 %.2f%%", last->test_acc_top5);
        if (b >= 0) k += (size_t)snprintf(sub + k, sizeof sub - k, "   best top-1 %.2f%% (epoch %d)", b, be);
        if (isfinite(last->img_per_s) && last->img_per_s > 0)
            k += (size_t)snprintf(sub + k, sizeof sub - k, "   %.0f img/s", last->img_per_s);
    }
    if (any_worklog)
        snprintf(sub + k, sizeof sub - k, "%smdistiller's worklog.txt: lr rounded to 2 decimals, train loss as a total only",
                 k ? "   |   " : "");
    draw_text(cv, cv->w / 2.0f, 56, sub, 2, MUTED, CENTER, TOP);
}

int plot_curves_labeled(const char *out, const char *const *run_args, const char *const *labels, int n_runs,
                        const char *title) {
    if (n_runs < 1) return dkd_fail("plot: no run given");
    Run *runs = (Run *)xcalloc((size_t)n_runs, sizeof(Run));
    int rc = 0, maxn = 0;
    for (int r = 0; r < n_runs && rc == 0; r++) {
        rc = run_read(&runs[r], run_args[r]);
        if (rc == 0 && runs[r].n > maxn) maxn = runs[r].n;
    }
    if (rc == 0) {
        runs_name(runs, n_runs, labels);
        int nl = 0, has_decay = 0;
        LegendEntry *leg = (LegendEntry *)xcalloc((size_t)n_runs + 1, sizeof(LegendEntry));
        for (int r = 0; r < n_runs; r++) {
            int be; double b = run_best(&runs[r], &be);
            leg[nl].color = PALETTE[r % NPAL]; leg[nl].style = 0;
            if (b >= 0) snprintf(leg[nl].label, sizeof leg[nl].label, "%.120s (best top-1 %.2f)", runs[r].name, b);
            else snprintf(leg[nl].label, sizeof leg[nl].label, "%s", runs[r].name);
            nl++;
        }
        for (int i = 1; n_runs == 1 && i < runs[0].n; i++)
            if (runs[0].rows[i].lr < runs[0].rows[i - 1].lr * 0.999) has_decay = 1;
        if (has_decay) leg[nl++] = (LegendEntry){"learning-rate decay", DECAY, 1};

        const int W = 1800, margin = 30, cols = 3, rows = 2, panel_h = 440, top = 92;
        int lrows = legend_rows(leg, nl, W - 2 * margin);
        int H = top + rows * panel_h + 16 + lrows * LEG_ROW + 16;
        Canvas cv;
        canvas_init(&cv, W, H);
        curves_heading(&cv, runs, n_runs, title);
        float *xs = (float *)xmalloc((size_t)maxn * sizeof(float)), *ys = (float *)xmalloc((size_t)maxn * sizeof(float));
        int pw = (W - 2 * margin) / cols;
        for (int p = 0; p < cols * rows; p++) {
            int cx = p % cols, cy = p / cols;
            Box outer = {margin + cx * pw, top + cy * panel_h, margin + (cx + 1) * pw, top + (cy + 1) * panel_h};
            draw_curve_panel(&cv, outer, &PANELS[p], runs, n_runs, xs, ys);
        }
        draw_legend(&cv, leg, nl, margin, W - 2 * margin, top + rows * panel_h + 16 + LEG_ROW / 2.0f);
        rc = canvas_save(&cv, out);
        free(xs); free(ys); free(leg);
        canvas_free(&cv);
    }
    for (int r = 0; r < n_runs; r++) free(runs[r].rows);
    free(runs);
    return rc;
}

int plot_curves(const char *out, const char *const *run_args, int n_runs, const char *title) {
    return plot_curves_labeled(out, run_args, NULL, n_runs, title);
}

int plot_run_curves(const char *run_dir) {
    char out[DKD_PATH_MAX];
    if (snprintf(out, sizeof out, "%s/curves.png", run_dir) >= (int)sizeof out) return dkd_fail("%s: path too long", run_dir);
    const char *args[1] = {run_dir};
    return plot_curves(out, args, 1, NULL);
}

/* ------------------------------------------------------------------------- */
/* Bars                                                                       */
/* ------------------------------------------------------------------------- */
int plot_bars(const char *out_png, const char *title, const char *ylabel, int n_groups, const char *const *group_labels,
              int n_series, const char *const *series_names, const double *values) {
    if (n_groups < 1 || n_series < 1) return dkd_fail("plot_bars: nothing to draw (%d groups, %d series)", n_groups, n_series);
    double vmax = 0, vmin = 0;
    for (int i = 0; i < n_groups * n_series; i++)
        if (isfinite(values[i])) { if (values[i] > vmax) vmax = values[i]; if (values[i] < vmin) vmin = values[i]; }
    if (vmax <= vmin) vmax = vmin + 1;

    /* geometry: bars of BW px, value labels above them (turned upwards if wider than a bar) */
    const float BW = 30, inner = 4, scale_v = 2;
    float group_w = n_series * BW + (n_series - 1) * inner + 28;
    int label_lines = 1;
    for (int g = 0; g < n_groups; g++) {
        float w = text_width(group_labels[g] ? group_labels[g] : "", 2) + 16;
        if (w > group_w) group_w = w;
        int l = text_lines(group_labels[g] ? group_labels[g] : "");
        if (l > label_lines) label_lines = l;
    }
    char s[64];
    snprintf(s, sizeof s, "%.2f", vmax);
    int vertical_values = text_width(s, scale_v) > BW + inner;
    float value_room = vertical_values ? text_width(s, scale_v) + 10 : 24;
    int left = 110, right = 30;
    int W = (int)(left + right + n_groups * group_w);
    if (W < 900) W = 900;
    if (W > 8000) return dkd_fail("plot_bars: %d groups are too many for one chart", n_groups);

    LegendEntry *leg = (LegendEntry *)xcalloc((size_t)n_series, sizeof(LegendEntry));
    for (int k = 0; k < n_series; k++) {
        snprintf(leg[k].label, sizeof leg[k].label, "%s", series_names && series_names[k] ? series_names[k] : "");
        leg[k].color = PALETTE[k % NPAL]; leg[k].style = 2;
    }
    int lrows = n_series > 1 ? legend_rows(leg, n_series, W - 60.0f) : 0;
    int top = title && *title ? 70 : 24;
    int plot_h = 420;
    int below = 20 + (int)text_height(n_groups ? "x" : "", 2) + (label_lines - 1) * FONT_PITCH * 2 + 24;
    int H = top + (int)value_room + plot_h + below + lrows * LEG_ROW + 10;
    Canvas cv;
    canvas_init(&cv, W, H);
    if (title && *title) draw_text_bold(&cv, W / 2.0f, 20, title, 3, INK, CENTER, TOP);

    Frame f;
    f.b = (Box){left, top + (int)value_room, W - right, top + (int)value_room + plot_h};
    f.x = (Axis){0, 1, 1, 0};
    f.y = nice_axis(vmin, vmax, 0);
    draw_axes(&cv, &f, NULL, ylabel, 0);
    float span = (float)(f.b.x1 - f.b.x0) / n_groups;
    for (int g = 0; g < n_groups; g++) {
        float gx = f.b.x0 + g * span + span / 2;                 /* group centre */
        float x = gx - (n_series * BW + (n_series - 1) * inner) / 2;
        for (int k = 0; k < n_series; k++, x += BW + inner) {
            double v = values[g * n_series + k];
            if (!isfinite(v)) continue;
            float y0 = fy(&f, 0 > f.y.lo ? 0 : f.y.lo), y1 = fy(&f, v);
            fill_rect(&cv, roundf(x), y1, roundf(x + BW), y0, PALETTE[k % NPAL], 1);
            snprintf(s, sizeof s, "%.2f", v);
            if (vertical_values) draw_text_up(&cv, x + BW / 2, y1 - 8 - text_width(s, scale_v) / 2, s, scale_v, INK);
            else draw_text(&cv, x + BW / 2, y1 - 8, s, scale_v, INK, CENTER, BOTTOM);
        }
        if (group_labels[g]) draw_text(&cv, gx, (float)f.b.y1 + 14, group_labels[g], 2, INK, CENTER, TOP);
    }
    if (lrows) draw_legend(&cv, leg, n_series, 30, W - 60.0f, (float)(H - 10 - lrows * LEG_ROW + LEG_ROW / 2));
    int rc = canvas_save(&cv, out_png);
    canvas_free(&cv);
    free(leg);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* dkd plot                                                                   */
/* ------------------------------------------------------------------------- */
static void plot_usage(FILE *f) {
    fprintf(f,
        "usage: dkd plot RUN... [-o OUT.png|OUT.svg] [--title TEXT] [--label NAME]...\n"
        "  Draws the curves of one or more runs, per epoch from epoch 1, in six panels: top-1\n"
        "  accuracy (test solid, train dashed), test top-5, test loss (CE), train loss, train CE\n"
        "  and the distillation term, learning rate. One colour per run.\n"
        "  A RUN is a dkd run folder (its log.csv), an mdistiller run folder (its worklog.txt,\n"
        "  e.g. output/cifar100_baselines/dkd,res56,res20 of a PyTorch run), or one of those files,\n"
        "  so PyTorch's curves and dkd's can be overlaid.\n"
        "  Writes a PNG and an SVG beside it (OUT.png -> OUT.svg; -o OUT.svg: the SVG only).\n"
        "  Default: RUN/curves.png for one run folder, else compare.png in the current folder.\n"
        "options:\n"
        "  -o, --out FILE   the chart to write\n"
        "  --title TEXT     the chart's title (default: the run folder's name / \"N runs\")\n"
        "  --label NAME     legend name of the next run, in order (default: the folder's name,\n"
        "                   \"PyTorch: \" / \"dkd: \" in front when both kinds are plotted)\n"
        "example:\n"
        "  ./dkd plot pytorch/output/cifar100_baselines/dkd,res56,res20 output/cifar100_baselines/dkd,res56,res20 -o res56_res20.png\n");
    if (!plot_png_available())
        fprintf(f, "note: this dkd was built without stb (libstb-dev): PNG output is disabled, only the SVG is written.\n");
}

int cmd_plot(int argc, char **argv) {
    const char *out = NULL, *title = NULL;
    const char **runs = (const char **)xcalloc((size_t)(argc > 0 ? argc : 1), sizeof(char *));
    const char **labels = (const char **)xcalloc((size_t)(argc > 0 ? argc : 1), sizeof(char *));
    int nr = 0, nlab = 0, rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { plot_usage(stdout); rc = 0; goto done; }
        if (!strcmp(a, "-o") || !strcmp(a, "--out") || !strcmp(a, "--title") || !strcmp(a, "--label")) {
            if (i + 1 >= argc) { fprintf(stderr, "dkd: error: %s needs a value\n", a); goto done; }
            if (!strcmp(a, "--title")) title = argv[++i];
            else if (!strcmp(a, "--label")) labels[nlab++] = argv[++i];
            else out = argv[++i];
            continue;
        }
        if (a[0] == '-' && a[1]) { fprintf(stderr, "dkd: error: unknown option '%s'\n\n", a); plot_usage(stderr); goto done; }
        runs[nr++] = a;
    }
    if (nr == 0) { fprintf(stderr, "dkd: error: plot needs at least one run folder\n\n"); plot_usage(stderr); goto done; }
    if (nlab > nr) { fprintf(stderr, "dkd: error: %d --label for %d runs\n", nlab, nr); goto done; }
    char def[1200];
    if (!out) {
        struct stat st;
        if (nr == 1 && stat(runs[0], &st) == 0 && S_ISDIR(st.st_mode)) snprintf(def, sizeof def, "%s/curves.png", runs[0]);
        else snprintf(def, sizeof def, "compare.png");
        out = def;
    }
    if (plot_curves_labeled(out, runs, labels, nr, title) != 0) { fprintf(stderr, "dkd: error: %s\n", dkd_errbuf); rc = 1; goto done; }
    if (ends_with(out, ".svg")) printf("wrote %s\n", out);
    else {
        size_t L = strlen(out);
        int png = ends_with(out, ".png");
        if (plot_png_available()) printf("wrote %s and %.*s.svg\n", out, (int)(png ? L - 4 : L), out);
        else printf("wrote %.*s.svg only: this dkd was built without stb (libstb-dev), PNG output is disabled\n",
                    (int)(png ? L - 4 : L), out);
    }
    rc = 0;
done:
    free(runs); free(labels);
    return rc;
}
