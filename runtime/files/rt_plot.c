/*
 * rt_plot.c - learning curves of a training run: loss and accuracy per epoch, train and
 * validation, side by side with axes, ticks, grid, legend and the best epoch marked; a
 * learning rate that changed over the run is drawn thin over the loss panel, scaled from 0
 * to its largest value (labelled at the panel's top right). One
 * layout drawn by two small back ends: SVG text, or a PNG rasterised here (anti-aliased
 * lines, stb_easy_font glyphs) and encoded by stb_image_write.
 */
#include "rt_train_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-braces"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

enum { W = 960, H = 400, ML = 64, MR = 24, MT = 64, MB = 48 };
enum { ALIGN_LEFT, ALIGN_CENTER, ALIGN_RIGHT };

typedef struct { unsigned char r, g, b; } color;
static const color C_TEXT = {40, 40, 40}, C_AXIS = {90, 90, 90}, C_GRID = {225, 225, 225},
                   C_TRAIN = {31, 119, 180}, C_VAL = {255, 127, 14}, C_BEST = {150, 150, 150},
                   C_WHITE = {255, 255, 255}, C_LR = {44, 160, 44};

/* A drawing back end: what the layout needs, nothing more. */
typedef struct canvas canvas;
struct canvas {
    void (*line)(canvas *c, double x0, double y0, double x1, double y1, color col, double wid,
                 int dashed);
    void (*polyline)(canvas *c, const double *xy, int n, color col, double wid);
    void (*dot)(canvas *c, double x, double y, double r, color col);
    /* y is the text's baseline; size in pixels of a capital letter's height */
    void (*text)(canvas *c, double x, double y, const char *s, double size, int align,
                 color col);
    FILE *f;                /* svg */
    unsigned char *img;     /* png: W*H*3 */
    float *cov;             /* png: per-pixel coverage of the shape being drawn */
};

/* ------------------------------------------------------------ svg back end */

static void svg_color(char *buf, color c)
{
    snprintf(buf, 8, "#%02x%02x%02x", c.r, c.g, c.b);
}

static void svg_line(canvas *c, double x0, double y0, double x1, double y1, color col,
                     double wid, int dashed)
{
    char s[8];
    svg_color(s, col);
    fprintf(c->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"%.1f\"%s/>\n", x0, y0, x1, y1, s, wid,
            dashed ? " stroke-dasharray=\"5,4\"" : "");
}

static void svg_polyline(canvas *c, const double *xy, int n, color col, double wid)
{
    char s[8];
    svg_color(s, col);
    fprintf(c->f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" "
            "stroke-linejoin=\"round\" points=\"", s, wid);
    for (int i = 0; i < n; i++)
        fprintf(c->f, "%s%.1f,%.1f", i ? " " : "", xy[2 * i], xy[2 * i + 1]);
    fprintf(c->f, "\"/>\n");
}

static void svg_dot(canvas *c, double x, double y, double r, color col)
{
    char s[8];
    svg_color(s, col);
    fprintf(c->f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", x, y, r, s);
}

static void svg_text(canvas *c, double x, double y, const char *str, double size, int align,
                     color col)
{
    static const char *anchor[] = {"start", "middle", "end"};
    char s[8];
    svg_color(s, col);
    fprintf(c->f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" text-anchor=\"%s\" "
            "fill=\"%s\">", x, y, size / 0.7, anchor[align], s);
    for (const char *p = str; *p; p++) {
        switch (*p) {
        case '<': fputs("&lt;", c->f); break;
        case '>': fputs("&gt;", c->f); break;
        case '&': fputs("&amp;", c->f); break;
        default: fputc(*p, c->f);
        }
    }
    fputs("</text>\n", c->f);
}

/* ------------------------------------------------------------ png back end */

static void put(canvas *c, int x, int y, color col, double a)
{
    if (x < 0 || y < 0 || x >= W || y >= H || a <= 0)
        return;
    if (a > 1)
        a = 1;
    unsigned char *p = c->img + 3 * ((size_t)y * W + x);
    p[0] = (unsigned char)(p[0] + (col.r - p[0]) * a + 0.5);
    p[1] = (unsigned char)(p[1] + (col.g - p[1]) * a + 0.5);
    p[2] = (unsigned char)(p[2] + (col.b - p[2]) * a + 0.5);
}

static void fill_rect(canvas *c, double x0, double y0, double x1, double y1, color col)
{
    for (int y = (int)floor(y0 + 0.5); y < (int)floor(y1 + 0.5); y++)
        for (int x = (int)floor(x0 + 0.5); x < (int)floor(x1 + 0.5); x++)
            put(c, x, y, col, 1);
}

/* Adds a segment of half-width hw to the coverage mask (distance to the segment). */
static void cover_segment(canvas *c, double x0, double y0, double x1, double y1, double hw,
                          int *bx0, int *by0, int *bx1, int *by1)
{
    int xa = (int)floor(fmin(x0, x1) - hw - 1), xb = (int)ceil(fmax(x0, x1) + hw + 1);
    int ya = (int)floor(fmin(y0, y1) - hw - 1), yb = (int)ceil(fmax(y0, y1) + hw + 1);
    if (xa < 0) xa = 0;
    if (ya < 0) ya = 0;
    if (xb > W - 1) xb = W - 1;
    if (yb > H - 1) yb = H - 1;
    double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (int y = ya; y <= yb; y++)
        for (int x = xa; x <= xb; x++) {
            double px = x + 0.5 - x0, py = y + 0.5 - y0;
            double t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            double ex = px - t * dx, ey = py - t * dy;
            double a = hw + 0.5 - sqrt(ex * ex + ey * ey);
            float *cv = &c->cov[(size_t)y * W + x];
            if (a > *cv)
                *cv = (float)(a > 1 ? 1 : a);
        }
    if (xa < *bx0) *bx0 = xa;
    if (ya < *by0) *by0 = ya;
    if (xb > *bx1) *bx1 = xb;
    if (yb > *by1) *by1 = yb;
}

/* Blends the mask in one colour and clears it (so overlapping segments do not darken). */
static void cover_flush(canvas *c, color col, int bx0, int by0, int bx1, int by1)
{
    for (int y = by0; y <= by1; y++)
        for (int x = bx0; x <= bx1; x++) {
            float *cv = &c->cov[(size_t)y * W + x];
            if (*cv > 0)
                put(c, x, y, col, *cv);
            *cv = 0;
        }
}

static void png_polyline(canvas *c, const double *xy, int n, color col, double wid)
{
    int bx0 = W, by0 = H, bx1 = -1, by1 = -1;
    for (int i = 0; i + 1 < n; i++)
        cover_segment(c, xy[2 * i], xy[2 * i + 1], xy[2 * i + 2], xy[2 * i + 3], wid / 2, &bx0,
                      &by0, &bx1, &by1);
    if (n == 1)
        cover_segment(c, xy[0], xy[1], xy[0], xy[1], wid / 2, &bx0, &by0, &bx1, &by1);
    cover_flush(c, col, bx0, by0, bx1, by1);
}

static void png_line(canvas *c, double x0, double y0, double x1, double y1, color col,
                     double wid, int dashed)
{
    if (!dashed) {
        double xy[4] = {x0, y0, x1, y1};
        /* crisp one-pixel axis-parallel lines: centre them on pixel centres */
        if (wid <= 1 && (x0 == x1 || y0 == y1)) {
            fill_rect(c, fmin(x0, x1) - 0.5, fmin(y0, y1) - 0.5, fmax(x0, x1) + 0.5,
                      fmax(y0, y1) + 0.5, col);
            return;
        }
        png_polyline(c, xy, 2, col, wid);
        return;
    }
    double len = hypot(x1 - x0, y1 - y0);
    for (double s = 0; s < len; s += 9) {
        double e = fmin(s + 5, len);
        double xy[4] = {x0 + (x1 - x0) * s / len, y0 + (y1 - y0) * s / len,
                        x0 + (x1 - x0) * e / len, y0 + (y1 - y0) * e / len};
        png_polyline(c, xy, 2, col, wid);
    }
}

static void png_dot(canvas *c, double x, double y, double r, color col)
{
    double xy[2] = {x, y};
    png_polyline(c, xy, 1, col, 2 * r);
}

/* stb_easy_font draws capitals 7 units tall from y (top) down; quads are rectangles. */
static void png_text(canvas *c, double x, double y, const char *str, double size, int align,
                     color col)
{
    char s[256];
    size_t n = 0;
    for (const char *p = str; *p && n + 1 < sizeof s; p++)   /* printable ASCII only */
        s[n++] = (*p >= 32 && *p < 127) ? *p : '?';
    s[n] = 0;
    double k = size / 7.0;
    double w = stb_easy_font_width(s) * k;
    double x0 = align == ALIGN_LEFT ? x : align == ALIGN_CENTER ? x - w / 2 : x - w;
    double y0 = y - size;
    int vbsize = 64 * 16 * (int)(n + 1);   /* a glyph has at most ~12 quads of 64 bytes */
    float *vb = malloc((size_t)vbsize);
    if (!vb)
        return;
    int q = stb_easy_font_print(0, 0, s, NULL, vb, vbsize);
    for (int i = 0; i < q; i++) {
        const float *v = &vb[16 * i];   /* vertex j: x at v[4j], y at v[4j+1] */
        double ax = fmin(v[0], v[8]), bx = fmax(v[0], v[8]);
        double ay = fmin(v[1], v[9]), by = fmax(v[1], v[9]);
        fill_rect(c, x0 + ax * k, y0 + ay * k, x0 + bx * k, y0 + by * k, col);
    }
    free(vb);
}

/* ------------------------------------------------------------ layout */

/* Ticks at a 1-2-5 step covering [lo, hi] with about n intervals. */
static double nice_step(double span, int n)
{
    double raw = span / n, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

typedef struct {
    double x0, x1, y0, y1;          /* pixel box */
    double xlo, xhi, ylo, yhi;      /* data range */
} panel;

static double px(const panel *p, double v)
{
    return p->x0 + (v - p->xlo) / (p->xhi - p->xlo) * (p->x1 - p->x0);
}

static double py(const panel *p, double v)
{
    return p->y1 - (v - p->ylo) / (p->yhi - p->ylo) * (p->y1 - p->y0);
}

static void draw_panel(canvas *c, int which, const rt_history *h, const char *name,
                       int percent)
{
    const double *tr = which ? h->train_acc : h->train_loss;
    const double *va = which ? h->val_acc : h->val_loss;
    double scale = percent ? 100 : 1;
    int E = h->epochs;
    panel p = {which * W / 2.0 + ML, (which + 1) * W / 2.0 - MR, MT, H - MB, 1, E > 1 ? E : 2,
               INFINITY, -INFINITY};
    for (int e = 0; e < E; e++) {
        p.ylo = fmin(p.ylo, tr[e] * scale);
        p.yhi = fmax(p.yhi, tr[e] * scale);
        if (h->has_val) {
            p.ylo = fmin(p.ylo, va[e] * scale);
            p.yhi = fmax(p.yhi, va[e] * scale);
        }
    }
    double datamin = p.ylo;
    if (!isfinite(p.ylo) || !isfinite(p.yhi)) {
        p.ylo = 0;
        p.yhi = 1;
    }
    if (p.yhi - p.ylo < 1e-9 * (fabs(p.yhi) + 1)) {
        p.ylo -= 0.5 * (fabs(p.ylo) + 1) * 0.1;
        p.yhi += 0.5 * (fabs(p.yhi) + 1) * 0.1;
    }
    double ys = nice_step(p.yhi - p.ylo, 5);
    p.ylo = floor(p.ylo / ys) * ys;
    p.yhi = ceil(p.yhi / ys) * ys;
    if (p.ylo < 0 && datamin >= 0)     /* losses and accuracies are never negative */
        p.ylo = 0;
    if (percent && p.yhi > 100)
        p.yhi = 100;
    double xs = nice_step(p.xhi - p.xlo, 8);
    if (xs < 1)
        xs = 1;

    char buf[64];
    /* grid and y ticks */
    for (double v = p.ylo; v <= p.yhi + ys * 1e-6; v += ys) {
        double y = floor(py(&p, v)) + 0.5;
        c->line(c, p.x0, y, p.x1, y, C_GRID, 1, 0);
        c->line(c, p.x0 - 4, y, p.x0, y, C_AXIS, 1, 0);
        int dec = ys >= 1 ? 0 : (int)ceil(-log10(ys) - 1e-9);
        snprintf(buf, sizeof buf, "%.*f%s", dec, fabs(v) < ys * 1e-6 ? 0.0 : v,
                 percent ? "%" : "");
        c->text(c, p.x0 - 7, y + 4, buf, 8, ALIGN_RIGHT, C_TEXT);
    }
    /* x ticks at whole epochs */
    for (double v = xs > 1 ? xs : 1; v <= p.xhi + 1e-9; v += xs) {
        double x = floor(px(&p, v)) + 0.5;
        c->line(c, x, p.y0, x, p.y1, C_GRID, 1, 0);
        c->line(c, x, p.y1, x, p.y1 + 4, C_AXIS, 1, 0);
        snprintf(buf, sizeof buf, "%.0f", v);
        c->text(c, x, p.y1 + 17, buf, 8, ALIGN_CENTER, C_TEXT);
    }
    if (xs > 1) {           /* epoch 1 always labelled, unless it would touch the next */
        double x = floor(px(&p, 1)) + 0.5;
        c->line(c, x, p.y1, x, p.y1 + 4, C_AXIS, 1, 0);
        if (px(&p, xs) - px(&p, 1) >= 20)
            c->text(c, x, p.y1 + 17, "1", 8, ALIGN_CENTER, C_TEXT);
    }
    c->text(c, (p.x0 + p.x1) / 2, H - 10, "epoch", 9, ALIGN_CENTER, C_TEXT);
    c->text(c, p.x0, p.y0 - 12, name, 11, ALIGN_LEFT, C_TEXT);
    /* axes */
    c->line(c, floor(p.x0) + 0.5, p.y0, floor(p.x0) + 0.5, p.y1, C_AXIS, 1, 0);
    c->line(c, p.x0, floor(p.y1) + 0.5, p.x1, floor(p.y1) + 0.5, C_AXIS, 1, 0);
    /* best epoch */
    if (h->best_epoch >= 0) {
        double x = px(&p, h->best_epoch + 1);
        c->line(c, x, p.y0, x, p.y1, C_BEST, 1.2, 1);
        if (x + 40 < p.x1)
            c->text(c, x + 4, p.y0 + 12, "best", 8, ALIGN_LEFT, C_BEST);
        else                /* at the right edge: label on the left of the line */
            c->text(c, x - 4, p.y0 + 12, "best", 8, ALIGN_RIGHT, C_BEST);
    }
    /* curves */
    double *xy = malloc(sizeof(double) * 2 * (size_t)(E > 0 ? E : 1));
    if (!xy)
        return;
    for (int s = 0; s < 1 + h->has_val; s++) {
        const double *v = s ? va : tr;
        for (int e = 0; e < E; e++) {
            xy[2 * e] = px(&p, e + 1);
            xy[2 * e + 1] = py(&p, v[e] * scale);
        }
        c->polyline(c, xy, E, s ? C_VAL : C_TRAIN, 2);
        if (E <= 40)
            for (int e = 0; e < E; e++)
                c->dot(c, xy[2 * e], xy[2 * e + 1], 2.6, s ? C_VAL : C_TRAIN);
    }
    /* the learning rate, when it changed: its own scale, 0 at the bottom, its largest
     * value at the top */
    double lmin = INFINITY, lmax = -INFINITY;
    for (int e = 0; which == 0 && h->lr && e < E; e++) {
        lmin = fmin(lmin, h->lr[e]);
        lmax = fmax(lmax, h->lr[e]);
    }
    if (isfinite(lmax) && lmax > 0 && lmax > lmin) {
        for (int e = 0; e < E; e++) {
            xy[2 * e] = px(&p, e + 1);
            xy[2 * e + 1] = p.y1 - h->lr[e] / lmax * (p.y1 - p.y0);
        }
        c->polyline(c, xy, E, C_LR, 1.2);
        snprintf(buf, sizeof buf, "lr (0 to %.3g)", lmax);
        c->text(c, p.x1, p.y0 - 12, buf, 8, ALIGN_RIGHT, C_LR);
    }
    free(xy);
}

static void draw(canvas *c, const rt_history *h, const char *title)
{
    char t[160];
    snprintf(t, sizeof t, "%s - %d epoch%s", title && *title ? title : "training",
             h->epochs, h->epochs == 1 ? "" : "s");
    c->text(c, 16, 26, t, 13, ALIGN_LEFT, C_TEXT);
    /* legend, top right */
    double x = W - MR - (h->has_val ? 210 : 90);
    c->line(c, x, 21, x + 24, 21, C_TRAIN, 2.5, 0);
    c->text(c, x + 30, 25, "train", 9, ALIGN_LEFT, C_TEXT);
    if (h->has_val) {
        c->line(c, x + 90, 21, x + 114, 21, C_VAL, 2.5, 0);
        c->text(c, x + 120, 25, "validation", 9, ALIGN_LEFT, C_TEXT);
    }
    draw_panel(c, 0, h, "loss", 0);
    draw_panel(c, 1, h, "accuracy", 1);
}

/* ------------------------------------------------------------ files */

typedef struct {
    FILE *f;
    int failed;
} png_sink;

static void png_write(void *ctx, void *data, int size)
{
    png_sink *s = ctx;
    if (!s->failed && fwrite(data, 1, (size_t)size, s->f) != (size_t)size)
        s->failed = 1;
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    if (n < k)
        return 0;
    for (size_t i = 0; i < k; i++) {
        char a = s[n - k + i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (a != suf[i])
            return 0;
    }
    return 1;
}

int rt_plot_write(const char *file, const rt_history *h, const char *title, char *err)
{
    if (h->epochs < 1) {
        snprintf(err, RT_ERRLEN, "no epochs to plot");
        return -1;
    }
    int svg = ends_with(file, ".svg");
    canvas c = {0};
    if (!svg) {
        c.img = malloc((size_t)W * H * 3);
        c.cov = calloc((size_t)W * H, sizeof(float));
        if (!c.img || !c.cov) {
            free(c.img);
            free(c.cov);
            snprintf(err, RT_ERRLEN, "out of memory");
            return -1;
        }
    }
    rt_atomic_file af;
    if (rt_atomic_open(&af, file) < 0) {
        snprintf(err, RT_ERRLEN, "cannot write plot %s: %s", file, strerror(errno));
        free(c.img);
        free(c.cov);
        return -1;
    }
    FILE *f = af.f;
    int bad = 0;
    if (svg) {
        c.f = f;
        c.line = svg_line;
        c.polyline = svg_polyline;
        c.dot = svg_dot;
        c.text = svg_text;
        fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                "viewBox=\"0 0 %d %d\" font-family=\"Helvetica, Arial, sans-serif\">\n"
                "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H, W, H);
        draw(&c, h, title);
        fprintf(f, "</svg>\n");
    } else {
        c.line = png_line;
        c.polyline = png_polyline;
        c.dot = png_dot;
        c.text = png_text;
        fill_rect(&c, 0, 0, W, H, C_WHITE);
        draw(&c, h, title);
        png_sink s = {f, 0};
        bad = !stbi_write_png_to_func(png_write, &s, W, H, 3, c.img, W * 3) || s.failed;
    }
    bad = rt_atomic_close(&af, !bad, 0) < 0;
    int e = errno;
    free(c.img);
    free(c.cov);
    if (bad) {
        snprintf(err, RT_ERRLEN, "cannot write plot %s: %s", file, strerror(e ? e : EIO));
        return -1;
    }
    return 0;
}
