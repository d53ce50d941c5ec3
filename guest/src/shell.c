/* The console command interpreter (ring 0) and its background tasks. Heavy work is handed to
 * ring-3 jobs (work.c); this file only parses, dispatches and prints. */
#include "kernel.h"
#include "bootinfo.h"
#include "platform.h"
#include "shell.h"
#include "work.h"
#include "fbcons.h"
#include "virtio.h"
#include "net.h"
#include "mem.h"
#include "balloon.h"
#include "acpi.h"

#define LINE_MAX 256
#define DIRTY_DEFAULT_MIB 64

static char line[LINE_MAX];
static u32 line_len;
static int last_was_cr;

static struct work fill_work, dirty_work;
static u64 area_mib;                /* MiB the workload area can hold */
static u64 filled_mib, filled_seed;
static u64 dirty_rate, dirty_last, dirty_acc;
static u64 hb_interval, hb_next, hb_ms;
static u64 commands_run;

/* Workload segments: RAM at or above WORK_BASE, inside the identity map, page-aligned. */
void shell_init(void)
{
    struct work *w = &fill_work;
    u64 total = 0;
    for (u32 i = 0; i < nram && w->nseg < MAX_SEGS; i++) {
        u64 lo = ram[i].base, hi = ram[i].base + ram[i].len;
        if (lo < WORK_BASE)
            lo = WORK_BASE;
        if (hi > (u64)MAP_GIB << 30)
            hi = (u64)MAP_GIB << 30;
        lo = (lo + 4095) & ~4095UL;
        hi &= ~4095UL;
        if (hi <= lo)
            continue;
        w->seg[w->nseg].base = lo;
        w->seg[w->nseg].len = hi - lo;
        w->nseg++;
        total += hi - lo;
    }
    for (u32 i = w->nseg; i-- > 0;) {
        if (!virtio_reserve(&w->seg[i].base, &w->seg[i].len))
            continue;
        if (!w->seg[i].len) {       /* the device area took the whole piece */
            for (u32 j = i; j + 1 < w->nseg; j++)
                w->seg[j] = w->seg[j + 1];
            w->nseg--;
        }
        total = 0;
        for (u32 j = 0; j < w->nseg; j++)
            total += w->seg[j].len;
        break;
    }
    (void)total;
    mem_init(&fill_work);
    area_mib = nblocks;
    dirty_work = fill_work;
}

void shell_prompt(void)
{
    cons_write("> ", 2);
}

/* A line printed while the prompt is up (heartbeat): own line, then redraw prompt and typed text. */
static void async_begin(void)
{
    if (!cons_at_line_start())
        cons_write("\r\n", 2);
}

static void async_end(void)
{
    shell_prompt();
    cons_write(line, line_len);
}

/* Blocks for a fill of `mib`: after waiting for reports and deflates in flight, and on OOM
 * taking them back from the balloon if it allows. */
static int take_blocks(u32 mib)
{
    if (mem_fill(mib) == 0)
        return 0;
    balloon_settle();
    if (mem_fill(mib) == 0)
        return 0;
    u32 avail = mem_count(MB_FREE, 0) + nfill;
    if (avail < mib && balloon_deflate_for(mib - avail))
        return mem_fill(mib);
    return -1;
}

static void cmd_fill(char **argv, int argc)
{
    u64 mib, seed;
    if (argc != 3 || !parse_u64(argv[1], &mib) || !parse_u64(argv[2], &seed)) {
        kprintf("ERROR usage: fill <MiB> <seed>\n");
        return;
    }
    if (mib == 0 || mib > area_mib) {
        kprintf("ERROR fill: %u MiB does not fit (workload area holds %u MiB)\n", mib, area_mib);
        return;
    }
    if (take_blocks((u32)mib) < 0) {
        kprintf("ERROR fill: %u MiB does not fit (%u MiB free, %u MiB in the balloon)\n", mib,
                (u64)(mem_count(MB_FREE, 0) + nfill), (u64)mem_count(MB_BALLOON, 0));
        return;
    }
    balloon.minor_faults += mib;
    balloon_kick();                 /* blocks the last fill held and this one does not: report them */
    fill_work.blocks = dirty_work.blocks = fill_list;
    fill_work.bytes = mib << 20;
    fill_work.seed = seed;
    u64 h = run_job(this_cpu(), user_fill, (u64)&fill_work);
    if (this_cpu()->job_failed) {
        filled_mib = 0;
        mem_release(nfill);
        kprintf("ERROR fill failed\n");
        return;
    }
    filled_mib = mib;
    filled_seed = seed;
    dirty_work.bytes = mib << 20;
    dirty_work.cursor = 0;
    kprintf("FILL mib=%u seed=%u digest=%X\n", mib, seed, h);
}

/* Gives back the last MiB of the filled area: the digest then covers what is left. */
static void cmd_free(char **argv, int argc)
{
    u64 mib;
    if (argc != 2 || !parse_u64(argv[1], &mib)) {
        kprintf("ERROR usage: free <MiB>\n");
        return;
    }
    if (mib > filled_mib) {
        kprintf("ERROR free: %u MiB is more than the %u MiB filled\n", mib, filled_mib);
        return;
    }
    mem_release((u32)mib);
    filled_mib -= mib;
    fill_work.bytes = dirty_work.bytes = filled_mib << 20;
    if (!filled_mib)
        dirty_work.blocks = 0;      /* the dirtier falls back to the area's first blocks */
    if (!filled_mib)
        dirty_work.bytes = (area_mib < DIRTY_DEFAULT_MIB ? area_mib : DIRTY_DEFAULT_MIB) << 20;
    if (dirty_work.cursor >= (dirty_work.bytes >> 12))
        dirty_work.cursor = 0;
    balloon_kick();
    kprintf("FREE mib=%u filled_mib=%u\n", mib, filled_mib);
}

static void cmd_mem(void)
{
    kprintf("MEM area_mib=%u used_mib=%u free_mib=%u clean_mib=%u balloon_mib=%u\n", area_mib, (u64)nfill,
            (u64)mem_count(MB_FREE, 0), (u64)mem_count(MB_FREE, 1), (u64)mem_count(MB_BALLOON, 0));
}

static void cmd_digest(void)
{
    if (!filled_mib) {
        kprintf("ERROR digest: nothing filled\n");
        return;
    }
    u64 h = run_job(this_cpu(), user_digest, (u64)&fill_work);
    if (this_cpu()->job_failed)
        kprintf("ERROR digest failed\n");
    else
        kprintf("DIGEST mib=%u digest=%X\n", filled_mib, h);
}

static void cmd_dirty(char **argv, int argc)
{
    u64 rate;
    if (argc != 2 || !parse_u64(argv[1], &rate)) {
        kprintf("ERROR usage: dirty <MiB/s>\n");
        return;
    }
    u64 mib = filled_mib ? filled_mib : (area_mib < DIRTY_DEFAULT_MIB ? area_mib : DIRTY_DEFAULT_MIB);
    if (rate && !mib) {
        kprintf("ERROR dirty: no workload area\n");
        return;
    }
    dirty_work.bytes = mib << 20;
    if (dirty_work.cursor >= (mib << 8))
        dirty_work.cursor = 0;
    dirty_rate = rate;
    dirty_last = ticks;
    dirty_acc = 0;
    kprintf("DIRTY rate_mib_s=%u\n", rate);
}

static void cmd_tag(const char *text)
{
    size_t n = strlen(text);
    if (!n) {
        kprintf("ERROR usage: tag <string>\n");
        return;
    }
    if (!ram_contains(TAG_GPA, 4096)) {
        kprintf("ERROR tag: tag page 0x%x is not RAM\n", (u64)TAG_GPA);
        return;
    }
    memcpy((void *)TAG_GPA, text, n + 1);
    kprintf("TAG %s gpa=0x%x\n", text, (u64)TAG_GPA);
}

static void cmd_heartbeat(char **argv, int argc)
{
    u64 ms;
    if (argc != 2 || !parse_u64(argv[1], &ms)) {
        kprintf("ERROR usage: heartbeat <ms>\n");
        return;
    }
    hb_interval = ms ? (ms * HZ + 500) / 1000 : 0;
    if (ms && !hb_interval)
        hb_interval = 1;
    hb_next = ticks + hb_interval;
    hb_ms = ms;
    kprintf("HEARTBEAT ms=%u\n", ms);
}

/* Every online CPU runs user_cpu(id) in ring 3; APs are woken by IPI and answer within 1 s. */
static void cmd_cpus(void)
{
    u32 ok = 0;
    for (u32 i = 1; i < MAX_CPUS; i++) {
        struct cpu *c = cpu_of(i);
        if (!c->online)
            continue;
        c->job_fn = user_cpu;
        c->job_arg = i;
        barrier();
        c->job_state = JOB_POSTED;
    }
    ipi_wake_all();
    u64 r = run_job(this_cpu(), user_cpu, 0);
    if (this_cpu()->job_failed) {
        kprintf("CPU 0 FAIL\n");
    } else {
        kprintf("CPU 0 OK %X\n", r);
        ok++;
    }
    u64 deadline = ticks + HZ;
    for (u32 i = 1; i < MAX_CPUS; i++) {
        struct cpu *c = cpu_of(i);
        if (!c->online)
            continue;
        while (c->job_state != JOB_DONE && ticks < deadline)
            sti_hlt();
        if (c->job_state != JOB_DONE) {
            kprintf("CPU %u TIMEOUT\n", (u64)i);
        } else if (c->job_failed) {
            kprintf("CPU %u FAIL\n", (u64)i);
        } else {
            kprintf("CPU %u OK %X\n", (u64)i, c->job_result);
            ok++;
        }
        if (c->job_state == JOB_DONE)
            c->job_state = JOB_IDLE;
    }
    kprintf("CPUS online=%u\n", (u64)ok);
}

static void cmd_help(void)
{
    kprintf("commands: fill <MiB> <seed> | digest | free <MiB> | mem | dirty <MiB/s> | tag <string> | ticks | "
            "heartbeat <ms> | cpus | genid | poweroff | help\n");
}

/* Sets the status line's values; the next render job draws them if they changed (none without a
 * framebuffer: then this is a call and a test). */
void shell_status(void)
{
    if (!fb_on)
        return;
    struct fb_status st = {
        .cpus = cpus_online,
        .mem_mib = (ram_bytes + (1UL << 19)) >> 20,
        .filled_mib = filled_mib,
        .dirty_mib_s = dirty_rate,
        .heartbeat_ms = hb_interval ? hb_ms : 0,
        .commands = commands_run,
    };
    fb_set_status(&st);
}

static void dispatch(char *s)
{
    char *argv[10] = {0};
    int argc = 0;
    if (s[0] == 't' && s[1] == 'a' && s[2] == 'g' && (s[3] == ' ' || !s[3])) {
        const char *text = s + 3;   /* the tag keeps its inner spaces */
        while (*text == ' ')
            text++;
        cmd_tag(text);
        return;
    }
    while (*s && argc < 10) {
        argv[argc++] = s;
        while (*s && *s != ' ')
            s++;
        while (*s == ' ')
            *s++ = 0;
    }
    if (streq(argv[0], "fill"))
        cmd_fill(argv, argc);
    else if (streq(argv[0], "digest"))
        cmd_digest();
    else if (streq(argv[0], "free"))
        cmd_free(argv, argc);
    else if (streq(argv[0], "mem"))
        cmd_mem();
    else if (streq(argv[0], "dirty"))
        cmd_dirty(argv, argc);
    else if (streq(argv[0], "ticks"))
        kprintf("TICKS %u\n", ticks);
    else if (streq(argv[0], "heartbeat"))
        cmd_heartbeat(argv, argc);
    else if (streq(argv[0], "cpus"))
        cmd_cpus();
    else if (streq(argv[0], "genid"))
        cmd_genid();
    else if (virtio_command(argv, argc))
        ;
    else if (streq(argv[0], "help"))
        cmd_help();
    else if (streq(argv[0], "poweroff")) {
        kprintf("POWEROFF\n");
        poweroff();
    } else
        kprintf("ERROR unknown command: %s\n", argv[0]);
}

static void run_command(char *s)
{
    while (*s == ' ')
        s++;
    if (!*s)
        return;
    dispatch(s);
    commands_run++;
    shell_status();
}

/* Kernel command line commands: each is shown after a prompt as if typed, then run. */
void shell_run_list(const char *cmds)
{
    char buf[LINE_MAX];
    while (*cmds) {
        u32 n = 0;
        while (*cmds && *cmds != ';') {
            if (n < LINE_MAX - 1)
                buf[n++] = *cmds;
            cmds++;
        }
        if (*cmds == ';')
            cmds++;
        while (n && buf[n - 1] == ' ')
            n--;
        buf[n] = 0;
        char *b = buf;
        while (*b == ' ')
            b++;
        if (!*b)
            continue;
        kprintf("> %s\n", b);
        run_command(b);
    }
}

/* Line editing on the BSP: echo, backspace, Enter runs (CR, LF and CRLF each count once). */
void shell_input(int ch)
{
    if (ch == '\n' && last_was_cr) {
        last_was_cr = 0;
        return;
    }
    last_was_cr = ch == '\r';
    if (ch == '\r' || ch == '\n') {
        char buf[LINE_MAX];
        memcpy(buf, line, line_len);
        buf[line_len] = 0;
        line_len = 0;
        cons_write("\r\n", 2);
        run_command(buf);
        shell_prompt();
    } else if (ch == 8 || ch == 0x7f) {
        if (line_len) {
            line_len--;
            cons_write("\b \b", 3);
        }
    } else if (ch >= 0x20 && ch < 0x7f && line_len < LINE_MAX - 1) {
        char c = (char)ch;
        line[line_len++] = c;
        cons_write(&c, 1);
    }
}

/* Heartbeat lines and one paced slice of dirtying per tick; called by the idle loop. */
int shell_poll(void)
{
    u64 now = ticks;
    int did = 0;
    if (hb_interval && now >= hb_next) {
        async_begin();
        kprintf("TICK %u\n", now);
        async_end();
        hb_next = now + hb_interval;
        did = 1;
    }
    if (dirty_rate && now != dirty_last) {
        u64 per_tick = dirty_rate * 256;       /* pages per second, divided by HZ below */
        dirty_acc += (now - dirty_last) * per_tick;
        if (dirty_acc > 2 * per_tick)          /* fell behind: keep at most 2 ticks of backlog */
            dirty_acc = 2 * per_tick;
        dirty_last = now;
        dirty_work.npages = dirty_acc / HZ;
        dirty_acc %= HZ;
        if (dirty_work.npages) {
            dirty_work.cursor = run_job(this_cpu(), user_dirty, (u64)&dirty_work);
            if (this_cpu()->job_failed) {
                dirty_rate = 0;
                dirty_work.cursor = 0;
            }
        }
        did = 1;
    }
    if (virtio_poll())
        did = 1;
    if (net_poll())
        did = 1;
    if (balloon_poll())
        did = 1;
    return did;
}
