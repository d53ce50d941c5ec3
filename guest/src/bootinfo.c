/* Reads the PVH hvm_start_info: command line, memory map and the framebuffer module (fb.c). Everything
 * is copied into the kernel, so the loader's pages (and the trampoline page) may be reused afterwards. */
#include "bootinfo.h"
#include "fbcons.h"
#include "net.h"
#include "acpi.h"

#define PVH_MAGIC 0x336ec578
#define E820_RAM 1

struct hvm_start_info {
    u32 magic, version, flags, nr_modules;
    u64 modlist_paddr, cmdline_paddr, rsdp_paddr;
    u64 memmap_paddr;               /* version >= 1 */
    u32 memmap_entries, reserved;
};

struct hvm_modlist_entry {
    u64 paddr, size, cmdline_paddr, reserved;
};

struct hvm_memmap_entry {
    u64 addr, size;
    u32 type, reserved;
};

struct range ram[MAX_RANGES];
u32 nram;
u64 ram_bytes;
char cmdline[1024];
const char *boot_commands = "";
u32 cpus_hint;

static void add_ram(u64 base, u64 len)
{
    u32 i;
    ram_bytes += len;
    if (nram == MAX_RANGES)
        return;
    for (i = nram++; i > 0 && ram[i - 1].base > base; i--)
        ram[i] = ram[i - 1];
    ram[i].base = base;
    ram[i].len = len;
}

/* Splits "options -- cmd; cmd" and reads the cpus=N option and the net options (net_cmd.c). */
static void parse_cmdline(void)
{
    char *s = cmdline;
    for (u32 i = 0; s[i]; i++) {
        if (s[i] == '-' && s[i + 1] == '-' && (i == 0 || s[i - 1] == ' ') && (s[i + 2] == ' ' || !s[i + 2])) {
            boot_commands = s[i + 2] ? &s[i + 3] : &s[i + 2];
            break;
        }
        if (i == 0 || s[i - 1] == ' ')
            net_option(&s[i]);
        if ((i == 0 || s[i - 1] == ' ') && s[i] == 'c' && s[i + 1] == 'p' && s[i + 2] == 'u' && s[i + 3] == 's' && s[i + 4] == '=') {
            u64 n = 0;
            for (u32 j = i + 5; s[j] >= '0' && s[j] <= '9'; j++)
                n = n * 10 + (u64)(s[j] - '0');
            cpus_hint = n > MAX_CPUS ? MAX_CPUS : (u32)n;
        }
    }
}

void bootinfo_parse(u64 pa)
{
    const struct hvm_start_info *si = (const void *)pa;
    if (!pa || si->magic != PVH_MAGIC)
        return;
    acpi_rsdp = si->rsdp_paddr;
    if (si->cmdline_paddr) {
        const char *src = (const char *)si->cmdline_paddr;
        u32 n = 0;
        while (src[n] && n < sizeof cmdline - 1) {
            cmdline[n] = src[n];
            n++;
        }
        cmdline[n] = 0;
        parse_cmdline();
        boot_commands = virtio_strip(cmdline, boot_commands);
    }
    if (si->version >= 1 && si->memmap_paddr) {
        const struct hvm_memmap_entry *e = (const void *)si->memmap_paddr;
        for (u32 i = 0; i < si->memmap_entries; i++)
            if (e[i].type == E820_RAM && e[i].size)
                add_ram(e[i].addr, e[i].size);
    }
    if (si->modlist_paddr) {
        const struct hvm_modlist_entry *m = (const void *)si->modlist_paddr;
        for (u32 i = 0; i < si->nr_modules && i < 16; i++)
            fb_module(m[i].paddr, m[i].size, m[i].cmdline_paddr);
    }
}

int ram_contains(u64 base, u64 len)
{
    for (u32 i = 0; i < nram; i++)
        if (base >= ram[i].base && base + len <= ram[i].base + ram[i].len)
            return 1;
    return 0;
}
