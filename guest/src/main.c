/* Boot sequence of the BSP and its idle loop. */
#include "kernel.h"
#include "bootinfo.h"
#include "platform.h"
#include "shell.h"
#include "fbcons.h"
#include "virtio.h"
#include "acpi.h"

/* Order matters for boot time: APs are started first so their (emulated) trampolines run while the
 * BSP sets up devices and prints; then the BSP waits, halted, for check-ins to stop. */
void __attribute__((noreturn)) kmain(u64 start_info)
{
    struct cpu *c = this_cpu();
    cpu_init(c);
    bootinfo_parse(start_info);
    smp_start();
    uart_init();
    pic_init();
    pit_init();
    acpi_init();
    fb_init();                      /* a ring-3 job: needs the PIC set up, since jobs run with IF=1 */
    kbd_init();
    shell_init();
    virtio_boot();
    kprintf("ENGRAM-TEST-KERNEL version=%s\n", KERNEL_VERSION);
    kprintf("CMDLINE ");             /* not one kprintf: its 512-byte buffer would cut a long line */
    cons_write(cmdline, strlen(cmdline));
    kprintf("\n");
    smp_wait(cpus_hint);
    shell_status();                 /* the status line appears with the READY line */
    kprintf("ENGRAM-TEST-KERNEL READY cpus=%u mem_mib=%u\n", (u64)cpus_online, (ram_bytes + (1UL << 19)) >> 20);
    shell_run_list(boot_commands);
    shell_prompt();
    for (;;) {
        int ch;
        while ((ch = cons_getc()) >= 0)
            shell_input(ch);
        if (shell_poll())
            continue;               /* input may have arrived while a ring-3 slice ran */
        sti_hlt();
    }
}
