/*
 * cmp_dump.c - compares two `--dump` files (layout: runtime/cli/rt_cli_dump.c, version 1) field
 * by field, for test_emit.sh: the generated program and cnnrun must compute the same
 * forward, loss and backward pass.
 *   cmp_dump A B TOL [-q]
 * The header (shapes, counts, mode) and the labels must be equal; every float field is
 * compared with a relative tolerance TOL: |a - b| <= TOL * max(|a|, |b|, 1e-6 * the largest
 * magnitude in the field), so that values near zero in a field of large ones are judged
 * against that field's scale. Prints one line per field with its worst relative error
 * (unless -q) and a last line saying whether the files are bit-identical.
 * Exit status: 0 within the tolerance, 1 not, 2 unreadable or malformed input.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char *p;
    size_t len;
    const char *name;
} blob;

static int load(const char *path, blob *b)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1 << 16;
    b->p = malloc(cap);
    b->len = 0;
    b->name = path;
    for (;;) {
        if (!b->p) {
            fclose(f);
            fprintf(stderr, "cmp_dump: out of memory\n");
            return -1;
        }
        size_t got = fread(b->p + b->len, 1, cap - b->len, f);
        b->len += got;
        if (b->len < cap) break;
        cap *= 2;
        unsigned char *grown = realloc(b->p, cap);
        if (!grown)
            free(b->p);
        b->p = grown;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "cmp_dump: cannot read %s\n", path);
        return -1;
    }
    return 0;
}

static uint64_t le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static float f32(const unsigned char *p)
{
    uint32_t u = (uint32_t)le(p, 4);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static double f64(const unsigned char *p)
{
    uint64_t u = le(p, 8);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* The header fields of a dump, and where each section starts. */
typedef struct {
    uint64_t version, n, c, h, w, k, training, P, S;
    size_t off_x, off_labels, off_logits, off_loss, off_params, off_grads, off_state0, off_state1, end;
} layout;

static int parse(const blob *b, layout *L)
{
    if (b->len < 48 || memcmp(b->p, "CNND", 4) != 0) {
        fprintf(stderr, "cmp_dump: %s is not a dump file (no CNND header)\n", b->name);
        return -1;
    }
    L->version = le(b->p + 4, 4);
    if (L->version != 1) {
        fprintf(stderr, "cmp_dump: %s has dump version %llu, this program reads version 1\n", b->name,
                (unsigned long long)L->version);
        return -1;
    }
    L->n = le(b->p + 8, 4);
    L->c = le(b->p + 12, 4);
    L->h = le(b->p + 16, 4);
    L->w = le(b->p + 20, 4);
    L->k = le(b->p + 24, 4);
    L->training = le(b->p + 28, 4);
    L->P = le(b->p + 32, 8);
    L->S = le(b->p + 40, 8);
    if (L->P > ((uint64_t)1 << 40) || L->S > ((uint64_t)1 << 40)) {
        fprintf(stderr, "cmp_dump: %s: implausible parameter count\n", b->name);
        return -1;
    }
    uint64_t N = L->n * L->c * L->h * L->w;
    L->off_x = 48;
    L->off_labels = L->off_x + 4 * N;
    L->off_logits = L->off_labels + 4 * L->n;
    L->off_loss = L->off_logits + 4 * L->n * L->k;
    L->off_params = L->off_loss + 8;
    L->off_grads = L->off_params + 4 * L->P;
    L->off_state0 = L->off_grads + 4 * L->P;
    L->off_state1 = L->off_state0 + 4 * L->S;
    L->end = L->off_state1 + 4 * L->S;
    if (L->end != b->len) {
        fprintf(stderr, "cmp_dump: %s is %zu bytes long, its header says %zu\n", b->name, b->len, L->end);
        return -1;
    }
    return 0;
}

static int quiet;

/* Compares count float32 values at off in both files; returns 1 when beyond tol. */
static int cmp_floats(const char *field, const blob *a, const blob *b, size_t off, size_t count, double tol)
{
    double scale = 0;
    for (size_t i = 0; i < count; i++) {
        double x = fabs((double)f32(a->p + off + 4 * i)), y = fabs((double)f32(b->p + off + 4 * i));
        if (isfinite(x) && x > scale) scale = x;
        if (isfinite(y) && y > scale) scale = y;
    }
    double worst = 0;
    size_t worst_i = 0, differ = 0;
    for (size_t i = 0; i < count; i++) {
        const unsigned char *pa = a->p + off + 4 * i, *pb = b->p + off + 4 * i;
        if (memcmp(pa, pb, 4) == 0) continue;
        differ++;
        double x = f32(pa), y = f32(pb), e;
        if (isnan(x) || isnan(y) || isinf(x) || isinf(y)) {
            e = INFINITY;
        } else {
            double den = fmax(fmax(fabs(x), fabs(y)), 1e-6 * scale);
            e = den > 0 ? fabs(x - y) / den : 0;
        }
        if (e > worst || (differ == 1 && e == 0)) {
            worst = e;
            worst_i = i;
        }
    }
    int bad = worst > tol;
    if (!quiet || bad) {
        if (!differ)
            printf("  %-8s %8zu values, bit-identical\n", field, count);
        else
            printf("  %-8s %8zu values, %zu differ, worst relative error %.3g at [%zu] (%.9g vs %.9g)%s\n", field,
                   count, differ, worst, worst_i, (double)f32(a->p + off + 4 * worst_i),
                   (double)f32(b->p + off + 4 * worst_i), bad ? "  BEYOND TOLERANCE" : "");
    }
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[4], "-q") == 0) {
        quiet = 1;
        argc--;
    }
    char *end = NULL;
    double tol = argc == 4 ? strtod(argv[3], &end) : -1;
    if (argc != 4 || !end || *end || !(tol >= 0)) {
        fprintf(stderr, "usage: cmp_dump A.dump B.dump RELATIVE_TOLERANCE [-q]\n");
        return 2;
    }
    /* every exit below frees both files (a leak would fail the sanitizer build) */
    blob a = {NULL, 0, argv[1]}, b = {NULL, 0, argv[2]};
    layout la, lb;
    int bad = 0;
    if (load(argv[1], &a) || load(argv[2], &b) || parse(&a, &la) || parse(&b, &lb)) {
        bad = 2;
        goto out;
    }
    const char *names[] = {"n", "c", "h", "w", "classes", "training", "params", "state"};
    uint64_t va[] = {la.n, la.c, la.h, la.w, la.k, la.training, la.P, la.S};
    uint64_t vb[] = {lb.n, lb.c, lb.h, lb.w, lb.k, lb.training, lb.P, lb.S};
    for (int i = 0; i < 8; i++)
        if (va[i] != vb[i]) {
            printf("  header: %s is %llu in %s but %llu in %s\n", names[i], (unsigned long long)va[i], argv[1],
                   (unsigned long long)vb[i], argv[2]);
            bad = 1;
        }
    if (bad) {
        printf("dumps differ in their headers\n");
        goto out;
    }
    size_t N = la.n * la.c * la.h * la.w;
    bad |= cmp_floats("x", &a, &b, la.off_x, N, tol);
    if (memcmp(a.p + la.off_labels, b.p + lb.off_labels, 4 * la.n) != 0) {
        printf("  labels   differ\n");
        bad = 1;
    } else if (!quiet) {
        printf("  %-8s %8llu values, identical\n", "labels", (unsigned long long)la.n);
    }
    bad |= cmp_floats("logits", &a, &b, la.off_logits, la.n * la.k, tol);
    double xa = f64(a.p + la.off_loss), xb = f64(b.p + lb.off_loss);
    double le_ = xa == xb ? 0 : fabs(xa - xb) / fmax(fabs(xa), fabs(xb));
    if (!(le_ <= tol)) bad = 1;
    if (!quiet || !(le_ <= tol))
        printf("  %-8s %.17g vs %.17g, relative error %.3g%s\n", "loss", xa, xb, le_,
               le_ <= tol ? "" : "  BEYOND TOLERANCE");
    bad |= cmp_floats("params", &a, &b, la.off_params, la.P, tol);
    bad |= cmp_floats("grads", &a, &b, la.off_grads, la.P, tol);
    bad |= cmp_floats("state", &a, &b, la.off_state0, la.S, tol);
    bad |= cmp_floats("state'", &a, &b, la.off_state1, la.S, tol);
    int same = a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
    printf("%s\n", same ? "bit-identical" : bad ? "DIFFERENT beyond the tolerance" : "equal within the tolerance");
out:
    free(a.p);
    free(b.p);
    return bad;
}
