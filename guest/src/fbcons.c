/* Ring-3 side of the framebuffer console (runs natively): parses the framebuffer module, keeps the
 * character grid, and draws only the cells that changed, so an idle screen is never written.
 * No kernel calls; everything here reads and writes plain memory. */
#include "fbcons.h"

/* "key=<decimal>" or "key=<word>" tokens: returns the value's start if `tok` begins with key=. */
static const char *value_of(const char *tok, const char *key)
{
    while (*key)
        if (*tok++ != *key++)
            return 0;
    return *tok == '=' ? tok + 1 : 0;
}

static int parse_dec(const char *s, u64 *out)
{
    u64 v = 0;
    int n = 0;
    for (; *s >= '0' && *s <= '9'; s++, n++) {
        if (v > 1000000000UL)
            return 0;
        v = v * 10 + (u64)(*s - '0');
    }
    if (!n || (*s && *s != ' '))
        return 0;
    *out = v;
    return 1;
}

static int word_is(const char *s, const char *w)
{
    while (*w)
        if (*s++ != *w++)
            return 0;
    return !*s || *s == ' ';
}

static void mark(struct fbterm *t, u32 row, u32 lo, u32 hi)
{
    if (lo < t->dlo[row])
        t->dlo[row] = (u16)lo;
    if (hi > t->dhi[row])
        t->dhi[row] = (u16)hi;
}

static void fill_rect(struct fbterm *t, u64 x, u64 y, u64 w, u64 h, u32 colour)
{
    u32 *p = t->base + y * t->pitch + x;
    for (u64 j = 0; j < h; j++, p += t->pitch)
        for (u64 i = 0; i < w; i++)
            p[i] = colour;
}

static void draw_cell(struct fbterm *t, u32 col, u32 y, u8 ch, u32 fg, u32 bg)
{
    const u8 *g = font8x16[(ch >= FONT_FIRST && ch < FONT_FIRST + FONT_GLYPHS ? ch : '?') - FONT_FIRST];
    u32 *p = t->base + (u64)y * t->pitch + (u64)col * FONT_W;
    for (u32 r = 0; r < FONT_H; r++, p += t->pitch) {
        u32 bits = g[r];
        for (u32 i = 0; i < FONT_W; i++)
            p[i] = bits & (0x80u >> i) ? fg : bg;
    }
}

u64 fb_setup(u64 arg)
{
    struct fbterm *t = (struct fbterm *)arg;
    u64 w = 0, h = 0, stride = 0, v;
    int fmt = 0;
    for (const char *s = t->modline; *s;) {
        const char *val;
        if ((val = value_of(s, "width")) && parse_dec(val, &v))
            w = v;
        else if ((val = value_of(s, "height")) && parse_dec(val, &v))
            h = v;
        else if ((val = value_of(s, "stride")) && parse_dec(val, &v))
            stride = v;
        else if ((val = value_of(s, "format")))
            fmt = word_is(val, "xrgb8888") ? 1 : -1;
        while (*s && *s != ' ')
            s++;
        while (*s == ' ')
            s++;
    }
    if (fmt != 1 || w < FONT_W || h < 2 * FONT_H || w > FB_DIM_MAX || h > FB_DIM_MAX ||
        stride < w * 4 || stride % 4 || stride > 4 * FB_DIM_MAX || t->size < stride * h || t->paddr % 4)
        return 0;
    t->base = (u32 *)t->paddr;
    t->width = w;
    t->height = h;
    t->pitch = stride / 4;
    t->cols = w / FONT_W < FB_MAX_COLS ? (u32)(w / FONT_W) : FB_MAX_COLS;
    t->rows = h / FONT_H - 1 < FB_MAX_ROWS ? (u32)(h / FONT_H - 1) : FB_MAX_ROWS;
    t->status_y = (u32)(h / FONT_H - 1) * FONT_H;
    t->cx = t->cy = 0;
    for (u32 r = 0; r < FB_MAX_ROWS; r++) {
        t->dlo[r] = FB_MAX_COLS;
        t->dhi[r] = 0;
        for (u32 c = 0; c < FB_MAX_COLS; c++)
            t->grid[r][c] = t->shown[r][c] = ' ';
    }
    fill_rect(t, 0, 0, w, h, FB_BG);
    return 1;
}

static void newline(struct fbterm *t)
{
    if (t->cy + 1 < t->rows) {
        t->cy++;
        return;
    }
    for (u32 r = 0; r + 1 < t->rows; r++) {
        u64 *d = (u64 *)t->grid[r], *s = (u64 *)t->grid[r + 1];
        for (u32 k = 0; k < FB_MAX_COLS / 8; k++)
            d[k] = s[k];
    }
    for (u32 c = 0; c < FB_MAX_COLS; c++)
        t->grid[t->rows - 1][c] = ' ';
    for (u32 r = 0; r < t->rows; r++)
        mark(t, r, 0, t->cols);
}

/* \r, \n (also returns to column 0), \b (moves left, back onto the previous row from column 0),
 * printable bytes; other control bytes are ignored and bytes >= 0x7f show as '?'. */
static void feed(struct fbterm *t, const char *s, u64 n)
{
    for (u64 k = 0; k < n; k++) {
        u8 ch = (u8)s[k];
        if (ch == '\r') {
            t->cx = 0;
        } else if (ch == '\n') {
            t->cx = 0;
            newline(t);
        } else if (ch == '\b') {
            if (t->cx > 0) {
                t->cx--;
            } else if (t->cy > 0) {
                t->cy--;
                t->cx = t->cols - 1;
            }
        } else if (ch >= 0x20) {
            if (t->cx >= t->cols) {
                t->cx = 0;
                newline(t);
            }
            t->grid[t->cy][t->cx] = ch < 0x7f ? ch : '?';
            mark(t, t->cy, t->cx, t->cx + 1);
            t->cx++;
        }
    }
}

static char *put_str(char *p, char *end, const char *s)
{
    while (*s && p < end)
        *p++ = *s++;
    return p;
}

static char *put_num(char *p, char *end, u64 v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && p < end)
        *p++ = tmp[--n];
    return p;
}

/* " ENGRAM TEST KERNEL 1.0 | cpus=2 | mem=512 MiB | filled=64 MiB | dirty=0 MiB/s | heartbeat=off |
 * commands=3", in inverse colours across the whole width. */
static void draw_status(struct fbterm *t)
{
    const struct fb_status *st = &t->status;
    char buf[FB_MAX_COLS], *p = buf, *end = buf + t->cols;
    p = put_str(p, end, " ENGRAM TEST KERNEL " KERNEL_VERSION " | cpus=");
    p = put_num(p, end, st->cpus);
    p = put_str(p, end, " | mem=");
    p = put_num(p, end, st->mem_mib);
    p = put_str(p, end, " MiB | filled=");
    p = put_num(p, end, st->filled_mib);
    p = put_str(p, end, " MiB | dirty=");
    p = put_num(p, end, st->dirty_mib_s);
    p = put_str(p, end, " MiB/s | heartbeat=");
    if (st->heartbeat_ms) {
        p = put_num(p, end, st->heartbeat_ms);
        p = put_str(p, end, " ms");
    } else {
        p = put_str(p, end, "off");
    }
    p = put_str(p, end, " | commands=");
    p = put_num(p, end, st->commands);
    while (p < end)
        *p++ = ' ';
    for (u32 c = 0; c < t->cols; c++)
        draw_cell(t, c, t->status_y, (u8)buf[c], FB_BG, FB_FG);
    if (t->width > (u64)t->cols * FONT_W)
        fill_rect(t, (u64)t->cols * FONT_W, t->status_y, t->width - (u64)t->cols * FONT_W, FONT_H, FB_FG);
    t->drawn = *st;
}

static int status_changed(const struct fbterm *t)
{
    const u64 *a = (const u64 *)&t->status, *b = (const u64 *)&t->drawn;
    for (u32 i = 0; i < sizeof t->status / 8; i++)
        if (a[i] != b[i])
            return 1;
    return 0;
}

/* The cursor is the cell at (cx, cy) drawn in inverse; on a full row it sits on the last column.
 * Only marked cells whose content differs from what the pixels show are drawn, so a scroll rewrites
 * the text that moved and not the blank parts of the screen. */
u64 fb_render(u64 arg)
{
    struct fbterm *t = (struct fbterm *)arg;
    u32 ccol = t->cx < t->cols ? t->cx : t->cols - 1;
    mark(t, t->cy, ccol, ccol + 1);             /* the old cursor cell goes back to normal */
    if (t->nheld) {
        feed(t, t->held, t->nheld);
        t->nheld = 0;
    }
    feed(t, t->in, t->in_len);
    ccol = t->cx < t->cols ? t->cx : t->cols - 1;
    mark(t, t->cy, ccol, ccol + 1);
    for (u32 r = 0; r < t->rows; r++) {
        for (u32 c = t->dlo[r]; c < t->dhi[r]; c++) {
            int cur = r == t->cy && c == ccol;
            u8 v = (u8)(t->grid[r][c] | (cur ? 0x80 : 0));
            if (t->shown[r][c] == v)
                continue;
            t->shown[r][c] = v;
            draw_cell(t, c, r * FONT_H, t->grid[r][c], cur ? FB_BG : FB_FG, cur ? FB_FG : FB_BG);
        }
        t->dlo[r] = FB_MAX_COLS;
        t->dhi[r] = 0;
    }
    if (t->status.cpus && status_changed(t))
        draw_status(t);
    return 0;
}
