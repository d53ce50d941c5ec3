/* Per-CPU setup (TSS, IDT), running ring-3 jobs, and the C side of traps. */
#include "kernel.h"
#include "fbcons.h"

_Static_assert(__builtin_offsetof(struct cpu, saved_rsp) == CPU_SAVED_RSP, "isr.S offset");
_Static_assert(__builtin_offsetof(struct cpu, tss) + 4 == CPU_TSS_RSP0, "isr.S offset");
_Static_assert(sizeof(struct tss) == 104, "TSS layout");

u8 cpu_area[MAX_CPUS][KSTACK_SIZE] __attribute__((aligned(KSTACK_SIZE)));
static u8 user_stacks[MAX_CPUS][USTACK_SIZE] __attribute__((aligned(16)));
volatile u64 ticks;

extern u64 gdt[];
extern u8 idt_ptr[];

/* Writes this CPU's TSS descriptor and loads TR and the shared, prebuilt IDT: ~20 instructions. */
void cpu_init(struct cpu *c)
{
    u64 base = (u64)&c->tss;
    u32 slot = SEL_TSS0 + 16 * (u32)c->index;
    c->tss.iomap_base = sizeof(struct tss);   /* no I/O bitmap */
    gdt[slot / 8] = (sizeof(struct tss) - 1) | (base & 0xffffff) << 16 | 0x89UL << 40 | ((base >> 24) & 0xff) << 56;
    gdt[slot / 8 + 1] = base >> 32;
    __asm__ volatile("lidt (%0); ltr %w1" :: "r"(idt_ptr), "r"(slot) : "memory");
}

/* Runs fn(arg) at CPL 3 on this CPU's user stack; returns its result (0 and job_failed on a fault). */
u64 run_job(struct cpu *c, u64 (*fn)(u64), u64 arg)
{
    c->job_failed = 0;
    return run_user(fn, arg, (u64)user_stacks[c->index] + USTACK_SIZE);
}

static u64 read_cr2(void)
{
    u64 v;
    __asm__ volatile("movq %%cr2, %0" : "=r"(v));
    return v;
}

void trap(struct frame *f)
{
    struct cpu *c = this_cpu();
    if (f->vec == VEC_UART) {
        uart_irq();
        return;
    }
    if (f->vec == VEC_KBD) {
        kbd_irq();
        return;
    }
    if (f->cs & 3) {
        /* A ring-3 job faulted: report on the BSP, then unwind to run_user's caller. APs only flag it
         * (the BSP owns the console) and the `cpus` command reports FAIL. */
        if (c->index == 0) {
            fb_hold = 1;            /* no ring-3 render job inside a job: the screen gets it next time */
            kprintf("ERROR exception %u in ring 3 rip=0x%x err=0x%x cr2=0x%x\n", f->vec, f->rip, f->err, read_cr2());
            fb_hold = 0;
        }
        c->job_failed = 1;
        user_abort();
    }
    fb_hold = 1;                    /* serial only from here */
    kprintf("PANIC cpu %u exception %u rip=0x%x err=0x%x cr2=0x%x\n", c->index, f->vec, f->rip, f->err, read_cr2());
    for (;;)
        __asm__ volatile("cli; hlt");
}
