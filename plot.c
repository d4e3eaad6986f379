/* plot.c — training curves and bar charts as PNG files, drawn from scratch.
 *
 *   dkd plot RUN_DIR... [-o out.png]        (cmd_plot)
 *   plot_run_curves(run_dir)                 run_dir/log.csv -> run_dir/curves.png
 *   plot_curves(out, runs, n, title)         one chart for one or several runs
 *   plot_bars(out, title, ylabel, ...)       grouped bars (result tables)
 *
 * What a curves chart shows: two panels side by side, the loss (train and
 * test) and the top-1 accuracy (train and test) per epoch. One run: train in
 * blue, test in orange, the learning-rate decays as dashed grey verticals and
 * the best test accuracy marked. Several runs: one colour per run (the legend
 * names its folder), test solid, train dashed.
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
 *  - stb_image_write encodes the PNG into memory, which is then written
 *    atomically (temp file + rename: a chart redrawn every epoch is never
 *    seen half-written).
 *
 * The log.csv contract (train.c writes it) is in dkd.h, DKD_LOG_CSV_HEADER.
 */
#include "dkd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int log_csv_read(const char *path, EpochLog **rows_out) {
    *rows_out = NULL;
    size_t len;
    char *text = (char *)read_file(path, &len);   /* NUL-terminated */
    if (!text) return -1;
    enum { MAXF = 32 };
    static const char *names[] = {"epoch", "lr", "train_acc", "train_loss", "test_acc", "test_acc_top5",
                                  "test_loss", "img_per_s", "seconds"};
    enum { NCOL = 9 };
    int col[NCOL];                  /* column index of each known name, -1 if absent */
    for (int k = 0; k < NCOL; k++) col[k] = -1;
    int nf_header = 0, n = 0, cap = 0, lineno = 0, rc = 0;
    EpochLog *rows = NULL;
    char *save = NULL;
    for (char *line = text; line && rc == 0; line = save) {
        char *nl = strchr(line, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl) *nl = 0;
        lineno++;
        line = trim(line);
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
    }
    free(text);
    if (rc == 0 && nf_header == 0) rc = dkd_fail("%s: empty file (expected the header \"%s\")", path, DKD_LOG_CSV_HEADER);
    if (rc == 0 && n == 0) rc = dkd_fail("%s: no epochs logged yet", path);
    if (rc) { free(rows); return -1; }
    *rows_out = rows;
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
} Canvas;

static void canvas_init(Canvas *cv, int w, int h) {
    cv->w = w; cv->h = h;
    cv->px = (uint8_t *)xmalloc((size_t)w * h * 3);
    memset(cv->px, 255, (size_t)w * h * 3);
    cv->mask = (float *)xcalloc((size_t)w * h, sizeof(float));
    cv->dirty = (Box){w, h, 0, 0};
    cv->clip = (Box){0, 0, w, h};
    cv->vbuf_size = 1 << 17;
    cv->vbuf = (char *)xmalloc((size_t)cv->vbuf_size);
}

static void canvas_free(Canvas *cv) {
    free(cv->px); free(cv->mask); free(cv->vbuf);
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
static void stroke_polyline(Canvas *cv, const float *xs, const float *ys, int n, float width, Rgb c,
                            float dash, float gap) {
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

/* One line at (x, y) = top-left of its cap box; rot = 1 turns it 90 degrees
 * counter-clockwise (it then reads upwards, its top-left corner at (x, y)
 * becoming the bottom-left). */
static void draw_line_text(Canvas *cv, float x, float y, char *line, float scale, Rgb c, int rot) {
    int nq = stb_easy_font_print(0, 0, line, NULL, cv->vbuf, cv->vbuf_size);
    for (int q = 0; q < nq; q++) {
        const float *v0 = (const float *)(cv->vbuf + q * 64);        /* 4 vertices of 16 bytes */
        const float *v2 = (const float *)(cv->vbuf + q * 64 + 32);
        float u0 = v0[0] * scale, u1 = v2[0] * scale, w0 = v0[1] * scale, w1 = v2[1] * scale;
        if (!rot) fill_rect(cv, x + u0, y + w0, x + u1, y + w1, c, 1);
        else fill_rect(cv, x + w0, y - u1, x + w1, y - u0, c, 1);
    }
}

/* Text block (lines split at '\n', each aligned on its own), anchored at (x, y). */
static void draw_text(Canvas *cv, float x, float y, const char *s, float scale, Rgb c, int ha, int va) {
    float top = va == TOP ? y : va == MIDDLE ? y - text_height(s, scale) / 2 : y - text_height(s, scale);
    char line[512];
    int k = 0;
    for (const char *p = s; p; k++) {
        p = take_line(p, line, sizeof line);
        float w = text_width(line, scale);
        float left = ha == LEFT ? x : ha == CENTER ? x - w / 2 : x - w;
        draw_line_text(cv, roundf(left), roundf(top + k * FONT_PITCH * scale), line, scale, c, 0);
    }
}

/* Bold: the same text twice, one pixel apart. */
static void draw_text_bold(Canvas *cv, float x, float y, const char *s, float scale, Rgb c, int ha, int va) {
    draw_text(cv, x, y, s, scale, c, ha, va);
    draw_text(cv, x + 1, y, s, scale, c, ha, va);
}

/* One line, turned to read upwards, centred on (cx, cy). */
static void draw_text_up(Canvas *cv, float cx, float cy, const char *s, float scale, Rgb c) {
    char line[512];
    take_line(s, line, sizeof line);
    float w = text_width(line, scale), h = FONT_CAP * scale;
    draw_line_text(cv, roundf(cx - h / 2), roundf(cy + w / 2), line, scale, c, 1);
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
    if (best == 1e300) { a.lo = lo; a.hi = hi; a.step = span / 5; }
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
    if (xticks)
        for (int k = 0;; k++) {        /* vertical grid lines + x tick labels */
            double v = f->x.lo + k * f->x.step;
            if (v > f->x.hi + f->x.step * 1e-6) break;
            float x = roundf(fx(f, v));
            fill_rect(cv, x, (float)b->y0, x + 1, (float)b->y1, GRID, 1);
            fill_rect(cv, x, (float)b->y1, x + 1, (float)b->y1 + 6, FRAME, 1);
            snprintf(s, sizeof s, "%.*f", f->x.decimals, fabs(v) < 1e-12 ? 0.0 : v);
            draw_text(cv, x + 0.5f, (float)b->y1 + 12, s, 2, INK, CENTER, TOP);
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

static int canvas_save_png(const Canvas *cv, const char *path) {
    MemBuf m = {NULL, 0, 0};
    if (!stbi_write_png_to_func(membuf_write, &m, cv->w, cv->h, 3, cv->px, cv->w * 3)) {
        free(m.p);
        return dkd_fail("cannot encode the PNG for %s", path);
    }
    int r = write_file_atomic(path, m.p, m.n);
    free(m.p);
    return r;
}

/* ------------------------------------------------------------------------- */
/* Curves                                                                     */
/* ------------------------------------------------------------------------- */
typedef struct {
    char name[160];        /* legend name: the run folder */
    EpochLog *rows; int n;
} Run;

/* A run from a folder (reads folder/log.csv) or a .csv file. name: the folder's
 * last component (for a .../log.csv file: its folder's). */
static int run_read(Run *r, const char *arg) {
    char path[DKD_PATH_MAX + 16], dir[DKD_PATH_MAX];
    struct stat st;
    if (strlen(arg) >= sizeof dir) { r->n = -1; return dkd_fail("%s: path longer than %d characters", arg, DKD_PATH_MAX - 1); }
    snprintf(dir, sizeof dir, "%s", arg);
    size_t L = strlen(dir);
    while (L > 1 && dir[L - 1] == '/') dir[--L] = 0;
    if (stat(dir, &st) != 0) { r->n = -1; return dkd_fail("%s: no such run folder or log file", arg); }
    if (S_ISDIR(st.st_mode)) snprintf(path, sizeof path, "%s/log.csv", dir);
    else {
        snprintf(path, sizeof path, "%s", dir);
        char *sl = strrchr(dir, '/');
        if (sl && !strcmp(sl + 1, "log.csv")) *sl = 0;           /* name it after its folder */
        else if (!sl && !strcmp(dir, "log.csv")) snprintf(dir, sizeof dir, ".");
    }
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    if (!strcmp(base, ".") || !*base) {                          /* "." : the current folder's name */
        char cwd[1024];
        base = "run";
        if (getcwd(cwd, sizeof cwd)) { char *s = strrchr(cwd, '/'); if (s && s[1]) base = s + 1; }
        snprintf(r->name, sizeof r->name, "%s", base);
    } else snprintf(r->name, sizeof r->name, "%s", base);
    r->n = log_csv_read(path, &r->rows);
    return r->n > 0 ? 0 : -1;
}

/* Best test accuracy of a run and its epoch (first of ties... mdistiller keeps the last). */
static double run_best(const Run *r, int *epoch) {
    double best = -1; *epoch = 0;
    for (int i = 0; i < r->n; i++)
        if (isfinite(r->rows[i].test_acc) && r->rows[i].test_acc >= best) { best = r->rows[i].test_acc; *epoch = r->rows[i].epoch; }
    return best;
}

enum { Q_TRAIN_LOSS, Q_TEST_LOSS, Q_TRAIN_ACC, Q_TEST_ACC };
static double row_q(const EpochLog *e, int q) {
    return q == Q_TRAIN_LOSS ? e->train_loss : q == Q_TEST_LOSS ? e->test_loss : q == Q_TRAIN_ACC ? e->train_acc : e->test_acc;
}

/* One panel: quantities qa (train) and qb (test) of every run. */
static void draw_curve_panel(Canvas *cv, Box outer, const char *title, const char *ylabel, const Run *runs, int nr,
                             int qa, int qb, int is_acc, float *xs, float *ys) {
    /* data ranges */
    double xmax = 1, ymin = 0, ymax = -1e300;
    for (int r = 0; r < nr; r++)
        for (int i = 0; i < runs[r].n; i++) {
            const EpochLog *e = &runs[r].rows[i];
            if (e->epoch > xmax) xmax = e->epoch;
            for (int q = 0; q < 2; q++) {
                double v = row_q(e, q ? qb : qa);
                if (!isfinite(v)) continue;
                if (v > ymax) ymax = v;
                if (v < ymin) ymin = v;
            }
        }
    if (ymax < ymin) ymax = ymin + 1;
    Frame f;
    f.x = nice_axis(0, xmax, 1);
    f.y = nice_axis(ymin, ymax + 0.02 * (ymax - ymin), 0);   /* a little headroom above the top point */
    if (is_acc && f.y.hi > 100 && ymax <= 100) f.y.hi = 100;   /* accuracy axis tops out at 100 */
    f.b = (Box){outer.x0 + 100, outer.y0 + 44, outer.x1 - 24, outer.y1 - 74};

    draw_text_bold(cv, (f.b.x0 + f.b.x1) / 2.0f, (float)outer.y0 + 8, title, 2, INK, CENTER, TOP);
    draw_axes(cv, &f, "epoch", ylabel, 1);

    cv->clip = (Box){f.b.x0 - 6, f.b.y0 - 6, f.b.x1 + 6, f.b.y1 + 6};
    /* learning-rate decays of a single run: dashed verticals */
    if (nr == 1)
        for (int i = 1; i < runs[0].n; i++) {
            double l0 = runs[0].rows[i - 1].lr, l1 = runs[0].rows[i].lr;
            if (isfinite(l0) && isfinite(l1) && l1 < l0 * 0.999) {
                float x = roundf(fx(&f, runs[0].rows[i].epoch - 0.5)) + 0.5f;
                stroke_line(cv, x, (float)f.b.y0, x, (float)f.b.y1, 1.2f, DECAY, 5, 4);
            }
        }
    for (int r = 0; r < nr; r++) {
        const Run *R = &runs[r];
        for (int q = 0; q < 2; q++) {
            Rgb c = nr == 1 ? PALETTE[q] : PALETTE[r % NPAL];
            int dashed = nr > 1 && q == 0;          /* several runs: train dashed */
            for (int i = 0; i < R->n; i++) {
                double v = row_q(&R->rows[i], q ? qb : qa);
                xs[i] = fx(&f, R->rows[i].epoch);
                ys[i] = isfinite(v) ? fy(&f, v) : NAN;
            }
            stroke_polyline(cv, xs, ys, R->n, dashed ? 2.0f : 2.5f, c, dashed ? 8 : 0, 5);
            if (R->n <= 30)                          /* few points: show them */
                for (int i = 0; i < R->n; i++) dot(cv, xs[i], ys[i], 3.2f, c);
        }
        if (is_acc && nr == 1) {                     /* the best test accuracy */
            int be; double b = run_best(R, &be);
            if (b >= 0) {
                Rgb c = PALETTE[1];
                float x = fx(&f, be), y = fy(&f, b);
                dot(cv, x, y, 6, WHITE);
                dot(cv, x, y, 4.5f, c);
                char s[64]; snprintf(s, sizeof s, "best %.2f", b);
                float tw = text_width(s, 2);
                /* above-left of the point (the curve arrives from below-left), kept inside the frame */
                float tx = x - 8 - tw >= f.b.x0 + 4 ? x - 8 - tw : x + 10;
                float ty = y - 28 >= f.b.y0 + 4 ? y - 28 : y + 14;
                fill_rect(cv, tx - 3, ty - 3, tx + tw + 3, ty + 17, WHITE, 0.85f);
                draw_text(cv, tx, ty, s, 2, c, LEFT, TOP);
            }
        }
    }
    cv->clip = (Box){0, 0, cv->w, cv->h};
}

int plot_curves(const char *out_png, const char *const *run_args, int n_runs, const char *title) {
    if (n_runs < 1) return dkd_fail("plot: no run given");
    Run *runs = (Run *)xcalloc((size_t)n_runs, sizeof(Run));
    int rc = 0, maxn = 0;
    for (int r = 0; r < n_runs && rc == 0; r++) {
        rc = run_read(&runs[r], run_args[r]);
        if (rc == 0 && runs[r].n > maxn) maxn = runs[r].n;
    }
    if (rc == 0) {
        /* legend */
        int nl = 0;
        LegendEntry *leg = (LegendEntry *)xcalloc((size_t)n_runs + 4, sizeof(LegendEntry));
        int single = n_runs == 1, has_decay = 0;
        if (single) {
            for (int i = 1; i < runs[0].n; i++)
                if (runs[0].rows[i].lr < runs[0].rows[i - 1].lr * 0.999) has_decay = 1;
            leg[nl++] = (LegendEntry){"train", PALETTE[0], 0};
            leg[nl++] = (LegendEntry){"test", PALETTE[1], 0};
            if (has_decay) leg[nl++] = (LegendEntry){"learning-rate decay", DECAY, 1};
        } else {
            for (int r = 0; r < n_runs; r++) {
                int be; double b = run_best(&runs[r], &be);
                leg[nl].color = PALETTE[r % NPAL]; leg[nl].style = 0;
                if (b >= 0) snprintf(leg[nl].label, sizeof leg[nl].label, "%s (best %.2f)", runs[r].name, b);
                else snprintf(leg[nl].label, sizeof leg[nl].label, "%s", runs[r].name);
                nl++;
            }
            leg[nl++] = (LegendEntry){"test", MUTED, 0};
            leg[nl++] = (LegendEntry){"train", MUTED, 1};
        }
        const int W = 1600, margin = 30;
        int lrows = legend_rows(leg, nl, W - 2 * margin);
        int top = 92, panel_h = 560, H = top + panel_h + 16 + lrows * LEG_ROW + 16;
        Canvas cv;
        canvas_init(&cv, W, H);

        /* title and one line of facts */
        char t[512], sub[512];
        if (title && *title) snprintf(t, sizeof t, "%s", title);
        else if (single) snprintf(t, sizeof t, "%s", runs[0].name);
        else snprintf(t, sizeof t, "%d runs", n_runs);
        draw_text_bold(&cv, W / 2.0f, 18, t, 3, INK, CENTER, TOP);
        sub[0] = 0;
        if (single) {
            const EpochLog *last = &runs[0].rows[runs[0].n - 1];
            int be; double b = run_best(&runs[0], &be);
            size_t k = (size_t)snprintf(sub, sizeof sub, "%d epochs   last test top-1 %.2f%%", last->epoch, last->test_acc);
            if (isfinite(last->test_acc_top5)) k += (size_t)snprintf(sub + k, sizeof sub - k, ", top-5 %.2f%%", last->test_acc_top5);
            if (b >= 0) k += (size_t)snprintf(sub + k, sizeof sub - k, "   best top-1 %.2f%% (epoch %d)", b, be);
            if (isfinite(last->img_per_s) && last->img_per_s > 0)
                snprintf(sub + k, sizeof sub - k, "   %.0f img/s", last->img_per_s);
        } else {
            snprintf(sub, sizeof sub, "solid: test   dashed: train");
        }
        draw_text(&cv, W / 2.0f, 56, sub, 2, MUTED, CENTER, TOP);

        float *xs = (float *)xmalloc((size_t)maxn * sizeof(float)), *ys = (float *)xmalloc((size_t)maxn * sizeof(float));
        int pw = (W - 2 * margin) / 2;
        draw_curve_panel(&cv, (Box){margin, top, margin + pw, top + panel_h}, "Loss", "loss", runs, n_runs,
                         Q_TRAIN_LOSS, Q_TEST_LOSS, 0, xs, ys);
        draw_curve_panel(&cv, (Box){margin + pw, top, W - margin, top + panel_h}, "Top-1 accuracy", "accuracy (%)",
                         runs, n_runs, Q_TRAIN_ACC, Q_TEST_ACC, 1, xs, ys);
        draw_legend(&cv, leg, nl, margin, W - 2 * margin, top + panel_h + 16 + LEG_ROW / 2.0f);
        rc = canvas_save_png(&cv, out_png);
        free(xs); free(ys); free(leg);
        canvas_free(&cv);
    }
    for (int r = 0; r < n_runs; r++) free(runs[r].rows);
    free(runs);
    return rc;
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
    int rc = canvas_save_png(&cv, out_png);
    canvas_free(&cv);
    free(leg);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* dkd plot                                                                   */
/* ------------------------------------------------------------------------- */
static void plot_usage(FILE *f) {
    fprintf(f,
        "usage: dkd plot RUN_DIR... [-o OUT.png] [--title TEXT]\n"
        "  Draws the loss and top-1 accuracy curves (train and test, per epoch) of one or\n"
        "  more runs from their log.csv (RUN_DIR/log.csv, or a .csv file given directly).\n"
        "  One run: train and test in two colours, learning-rate decays and the best test\n"
        "  accuracy marked; written to RUN_DIR/curves.png unless -o is given.\n"
        "  Several runs: one colour per run (named after its folder), test solid, train\n"
        "  dashed; written to -o OUT.png (default: compare.png in the current folder).\n"
        "options:\n"
        "  -o, --out FILE   the PNG to write\n"
        "  --title TEXT     the chart's title (default: the run folder's name)\n"
        "example:\n"
        "  ./dkd plot output/cifar100_baselines/dkd,res56,res20 output/cifar100_baselines/kd,res56,res20 -o res56_res20.png\n");
}

int cmd_plot(int argc, char **argv) {
    const char *out = NULL, *title = NULL;
    const char **runs = (const char **)xcalloc((size_t)(argc > 0 ? argc : 1), sizeof(char *));
    int nr = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { plot_usage(stdout); free(runs); return 0; }
        if (!strcmp(a, "-o") || !strcmp(a, "--out") || !strcmp(a, "--title")) {
            if (i + 1 >= argc) { fprintf(stderr, "dkd: error: %s needs a value\n", a); free(runs); return 2; }
            if (!strcmp(a, "--title")) title = argv[++i]; else out = argv[++i];
            continue;
        }
        if (a[0] == '-' && a[1]) { fprintf(stderr, "dkd: error: unknown option '%s'\n\n", a); plot_usage(stderr); free(runs); return 2; }
        runs[nr++] = a;
    }
    if (nr == 0) { fprintf(stderr, "dkd: error: plot needs at least one run folder\n\n"); plot_usage(stderr); free(runs); return 2; }
    char def[1200];
    if (!out) {
        struct stat st;
        if (nr == 1 && stat(runs[0], &st) == 0 && S_ISDIR(st.st_mode)) snprintf(def, sizeof def, "%s/curves.png", runs[0]);
        else snprintf(def, sizeof def, "compare.png");
        out = def;
    }
    int rc = plot_curves(out, runs, nr, title);
    free(runs);
    if (rc != 0) { fprintf(stderr, "dkd: error: %s\n", dkd_errbuf); return 1; }
    printf("wrote %s\n", out);
    return 0;
}
