/* Ring-0 side of the framebuffer console. Ring 0 is emulated (~2 M instr/s), so it only records the
 * module at boot and, per cons_write, points the ring-3 renderer at the caller's buffer (all kernel
 * memory is user-accessible) and runs it as one job: ~70 emulated instructions plus the ring-3
 * round trip, however long the text. Only the BSP draws, and never from a trap path. */
#include "fbcons.h"

struct fbterm fbterm;
int fb_on;
int fb_hold;

/* Boot, for each PVH module: keeps the first one whose cmdline starts "engram-framebuffer ". */
void fb_module(u64 paddr, u64 size, u64 cmdline_paddr)
{
    static const char key[] = "engram-framebuffer ";
    const char *s = (const char *)cmdline_paddr;
    const u64 limit = (u64)MAP_GIB << 30;
    u32 i, n = 0;
    if (fbterm.size || !size || !cmdline_paddr || cmdline_paddr >= limit - 4096 || paddr >= limit || size > limit - paddr)
        return;
    for (i = 0; key[i]; i++)
        if (s[i] != key[i])
            return;
    while (s[i] && n < sizeof fbterm.modline - 1)
        fbterm.modline[n++] = s[i++];
    fbterm.modline[n] = 0;
    fbterm.paddr = paddr;
    fbterm.size = size;
}

/* After pic_init/pit_init (the job runs with IF=1): checks the geometry and clears the screen. */
void fb_init(void)
{
    struct cpu *c = this_cpu();
    if (fbterm.size && run_job(c, fb_setup, (u64)&fbterm) && !c->job_failed)
        fb_on = 1;
}

/* cons_write's tail (only called when fb_on). A job that faults turns the framebuffer off. */
void fb_write(const char *s, size_t n)
{
    struct cpu *c = this_cpu();
    if (c->index)
        return;
    if (fb_hold) {
        for (size_t k = 0; k < n && fbterm.nheld < FB_HELD_MAX; k++)
            fbterm.held[fbterm.nheld++] = s[k];
        return;
    }
    u32 failed = c->job_failed;
    fbterm.in = s;
    fbterm.in_len = n;
    run_job(c, fb_render, (u64)&fbterm);
    if (c->job_failed)
        fb_on = 0;
    c->job_failed = failed;
}

/* Drawn by the next render job, and only if a value changed. */
void fb_set_status(const struct fb_status *st)
{
    if (fb_on)
        fbterm.status = *st;
}
