/*
 * rt_resize_impl.h - how every image is resized, in one place: cnnrun's loader includes it
 * (rt_image.c) and cnnc prints it verbatim into the main of every standalone file, so that a
 * deployed classifier sees the very pixels the network was trained on. Plain C with libc
 * only, and integer arithmetic only, so that any compiler and flags give the same bytes.
 *
 * A side at least twice the target is first area-averaged by the integer factor that leaves
 * it 1 to 2 times the target (every source pixel counts once, rounded mean). Then each axis
 * is resampled with a tent filter centred on the output pixel's centre, (j + 0.5) * in /
 * out - 0.5 in source pixels, of radius max(1, in / out) source pixels (antialiased bilinear,
 * as PIL's BILINEAR): taps outside the image are dropped and the rest renormalised. Weights
 * are exact integers scaled to sum to 2^14; rows first, then columns, rounded to nearest.
 */

#define RT_RSZ_TAPS 8           /* taps per output pixel: at most 6 after the area pass */
#define RT_RSZ_ONE 16384        /* the weights of one output pixel sum to this */

/* The area pass: w x h -> nw x nh (nw <= w, nh <= h); output pixel (jx, jy) is the rounded
 * mean of source columns [jx*w/nw, (jx+1)*w/nw) and the matching rows. A band of rows is
 * summed first into col (fixed-length blocks: vectorised at plain -O2), then the column
 * blocks of that sum. Returns 0, or -1 when memory runs out. */
static int rt_rsz_box(const unsigned char *in, int w, int h, int comp, unsigned char *out, int nw, int nh)
{
    const size_t rowlen = (size_t)w * comp;
    unsigned *col = (unsigned *)malloc(rowlen * sizeof *col);
    if (!col)
        return -1;
    for (int jy = 0; jy < nh; jy++) {
        int y0 = (int)((long long)jy * h / nh), y1 = (int)((long long)(jy + 1) * h / nh);
        memset(col, 0, rowlen * sizeof *col);
        for (int y = y0; y < y1; y++) {
            const unsigned char *row = in + (size_t)y * rowlen;
            size_t i = 0;
            for (; i + 16 <= rowlen; i += 16)
                for (int k = 0; k < 16; k++)
                    col[i + k] += row[i + k];
            for (; i < rowlen; i++)
                col[i] += row[i];
        }
        for (int jx = 0; jx < nw; jx++) {
            int x0 = (int)((long long)jx * w / nw), x1 = (int)((long long)(jx + 1) * w / nw);
            unsigned long cnt = (unsigned long)(y1 - y0) * (unsigned long)(x1 - x0);
            for (int c = 0; c < comp; c++) {
                unsigned long sum = 0;
                for (int x = x0; x < x1; x++)
                    sum += col[(size_t)x * comp + c];
                out[((size_t)jy * nw + jx) * comp + c] = (unsigned char)((sum + cnt / 2) / cnt);
            }
        }
    }
    free(col);
    return 0;
}

/* The taps of every output pixel of one axis, in to out pixels: first source pixel lo[j] and
 * RT_RSZ_TAPS weights wt[j][k] (zeros after the last tap). Distances are measured in units
 * of 1 / (2 * out) source pixels, where the centre and the radius are integers. */
static void rt_rsz_axis(int in, int out, int *lo, int *wt)
{
    const long long unit = 2LL * out, rad = in > out ? 2LL * in : 2LL * out;
    for (int j = 0; j < out; j++) {
        const long long ctr = (2LL * j + 1) * in - out;
        long long first = ctr - rad < 0 ? 0 : (ctr - rad) / unit;
        long long last = (ctr + rad) / unit + 1;
        if (last > in - 1)
            last = in - 1;
        long long raw[RT_RSZ_TAPS], sum = 0;
        int n = 0;
        lo[j] = -1;
        for (long long x = first; x <= last && n < RT_RSZ_TAPS; x++) {
            long long d = unit * x - ctr, v = rad - (d < 0 ? -d : d);
            if (v <= 0) {
                if (lo[j] < 0)
                    continue;
                break;
            }
            if (lo[j] < 0)
                lo[j] = (int)x;
            raw[n++] = v;
            sum += v;
        }
        int *w = wt + (size_t)j * RT_RSZ_TAPS, total = 0, big = 0;
        for (int k = 0; k < RT_RSZ_TAPS; k++) {
            w[k] = k < n ? (int)(raw[k] * RT_RSZ_ONE / sum) : 0;
            total += w[k];
            if (w[k] > w[big])
                big = k;
        }
        w[big] += RT_RSZ_ONE - total; /* the rounding's remainder to the largest tap */
    }
}

/* Resizes w x h pixels of comp interleaved channels to W x H (out: W * H * comp bytes).
 * Returns 0, or -1 when memory runs out. */
static int rt_resize_u8(const unsigned char *in, int w, int h, int comp, unsigned char *out, int W, int H)
{
    unsigned char *pre = NULL;
    int kx = w / W, ky = h / H;
    if (kx >= 2 || ky >= 2) {
        int nw = kx >= 2 ? w / kx : w, nh = ky >= 2 ? h / ky : h;
        pre = (unsigned char *)malloc((size_t)nw * nh * comp);
        if (!pre || rt_rsz_box(in, w, h, comp, pre, nw, nh) != 0) {
            free(pre);
            return -1;
        }
        in = pre;
        w = nw;
        h = nh;
    }
    int *lox = (int *)malloc(sizeof(int) * (size_t)W), *loy = (int *)malloc(sizeof(int) * (size_t)H);
    int *wx = (int *)malloc(sizeof(int) * (size_t)W * RT_RSZ_TAPS);
    int *wy = (int *)malloc(sizeof(int) * (size_t)H * RT_RSZ_TAPS);
    long *rows = (long *)malloc(sizeof(long) * (size_t)h * W * comp); /* rows done, 14 fraction bits */
    if (!lox || !loy || !wx || !wy || !rows) {
        free(pre);
        free(lox);
        free(loy);
        free(wx);
        free(wy);
        free(rows);
        return -1;
    }
    rt_rsz_axis(w, W, lox, wx);
    rt_rsz_axis(h, H, loy, wy);
    for (int y = 0; y < h; y++)
        for (int j = 0; j < W; j++)
            for (int c = 0; c < comp; c++) {
                long s = 0;
                for (int k = 0; k < RT_RSZ_TAPS && lox[j] + k < w; k++)
                    s += (long)wx[(size_t)j * RT_RSZ_TAPS + k] * in[((size_t)y * w + lox[j] + k) * comp + c];
                rows[((size_t)y * W + j) * comp + c] = s;
            }
    for (int i = 0; i < H; i++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < comp; c++) {
                long long s = 0;
                for (int k = 0; k < RT_RSZ_TAPS && loy[i] + k < h; k++)
                    s += (long long)wy[(size_t)i * RT_RSZ_TAPS + k] * rows[((size_t)(loy[i] + k) * W + x) * comp + c];
                long long v = (s + (1LL << 27)) >> 28;
                out[((size_t)i * W + x) * comp + c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    free(pre);
    free(lox);
    free(loy);
    free(wx);
    free(wy);
    free(rows);
    return 0;
}
