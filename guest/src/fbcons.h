/* Framebuffer console: a text grid drawn on the VMM's linear framebuffer, plus a status line.
 * fb.c is the ring-0 side (a few stores and one ring-3 job per cons_write); fbcons.c holds the
 * ring-3 jobs that parse the module, keep the grid and draw pixels. */
#ifndef FBCONS_H
#define FBCONS_H
#include "kernel.h"

#define FONT_W       8
#define FONT_H       16
#define FONT_FIRST   0x20           /* font8x16 covers ASCII 0x20 .. 0x7e */
#define FONT_GLYPHS  95
extern const u8 font8x16[FONT_GLYPHS][16];

#define FB_FG        0xc0c0c0       /* xrgb8888: light grey text ... */
#define FB_BG        0x101820       /* ... on dark blue-grey; the status line and cursor swap them */
#define FB_MAX_COLS  256            /* grid limits: larger screens use the top-left part */
#define FB_MAX_ROWS  128            /* text rows, the status row not included */
#define FB_HELD_MAX  512            /* output held while rendering is not allowed (trap paths) */
#define FB_DIM_MAX   16384          /* sanity bound on width and height */

/* Status line values, written by ring 0 (fb_set_status), drawn by the next render job if changed. */
struct fb_status {
    u64 cpus, mem_mib, filled_mib, dirty_mib_s, heartbeat_ms, commands;
};

struct fbterm {
    /* The module, copied by ring 0 at boot (bootinfo_parse -> fb_module). */
    u64 paddr, size;
    char modline[128];              /* cmdline after "engram-framebuffer " */
    /* Geometry, set by fb_setup. */
    u32 *base;
    u64 width, height, pitch;       /* pitch: pixels per scanline (stride / 4) */
    u32 cols, rows;                 /* text area; the status line is the last text row of the screen */
    u32 status_y;                   /* first scanline of the status line */
    /* Terminal state. cx == cols means the row is full: the next printable character wraps first. */
    u32 cx, cy;
    const char *in;                 /* the chunk to render (cons_write's buffer, read in place) */
    u64 in_len;
    u32 nheld;
    char held[FB_HELD_MAX];
    struct fb_status status, drawn;
    u16 dlo[FB_MAX_ROWS], dhi[FB_MAX_ROWS];   /* per row: columns [dlo, dhi) need drawing */
    u8 grid[FB_MAX_ROWS][FB_MAX_COLS];
    u8 shown[FB_MAX_ROWS][FB_MAX_COLS];       /* what the pixels show: the char, | 0x80 for the cursor */
};

extern struct fbterm fbterm;
extern int fb_on;                   /* a framebuffer was found and set up */
extern int fb_hold;                 /* trap paths: keep output for later, do not run jobs */

/* fb.c, ring 0 */
void fb_module(u64 paddr, u64 size, u64 cmdline_paddr);
void fb_init(void);
void fb_write(const char *s, size_t n);
void fb_set_status(const struct fb_status *st);

/* fbcons.c, ring 3 (jobs: arg is &fbterm) */
u64 fb_setup(u64 term);             /* parses modline, checks it, clears the screen; 1 if usable */
u64 fb_render(u64 term);            /* held bytes, then in/in_len; dirty cells; status if changed */
#endif
