/* Local APIC, starting the APs by broadcast INIT-SIPI-SIPI, and the APs' job loop. */
#include "kernel.h"
#include "bootinfo.h"

#define APIC_ID     0x20
#define APIC_EOI    0xb0
#define APIC_SVR    0xf0
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define APIC_LVT0   0x350
#define APIC_LVT1   0x360
#define ICR_ALL_BUT_SELF 0xc0000
#define ICR_ASSERT  0x4000

/* Bounded wait for check-ins, in 10 ms ticks. An AP checks in 0.3-0.5 ms after the SIPI here
 * (its trampoline runs emulated), so without a hint the wait stops once no check-in has come for
 * QUIET ticks (10-20 ms of quiet, allowing for a host that is slow to schedule the vCPU thread).
 * With a cpus=N hint it stops as soon as N CPUs are online. MAX bounds both. */
#define AP_QUIET_TICKS 2
#define AP_MAX_TICKS   30

volatile u32 cpus_online = 1;
static u32 bsp_apic_id;
extern const u8 ap_tramp[], ap_tramp_end[];

void smp_start(void)
{
    lapic_write(APIC_SVR, 0x100 | VEC_SPURIOUS);   /* software-enable: needed to take IPIs */
    lapic_write(APIC_LVT0, 0x700);                 /* ExtINT: the PIC reaches the BSP through LINT0 */
    lapic_write(APIC_LVT1, 0x400);                 /* NMI */
    bsp_apic_id = lapic_read(APIC_ID) >> 24;
    if (!ram_contains(TRAMP_ADDR, 4096))
        return;
    memcpy((void *)TRAMP_ADDR, ap_tramp, (size_t)(ap_tramp_end - ap_tramp));
    /* No delays between INIT and SIPIs: KVM's LAPIC handles them in order. The second SIPI is the
     * architectural retry; an AP that is already running ignores it. */
    lapic_write(APIC_ICR_LO, ICR_ALL_BUT_SELF | ICR_ASSERT | 0x500);
    lapic_write(APIC_ICR_LO, ICR_ALL_BUT_SELF | ICR_ASSERT | 0x600 | (TRAMP_ADDR >> 12));
    lapic_write(APIC_ICR_LO, ICR_ALL_BUT_SELF | ICR_ASSERT | 0x600 | (TRAMP_ADDR >> 12));
}

/* BSP, interrupts on: waits for `hint` CPUs (if nonzero) or for check-ins to stop, within the bound. */
void smp_wait(u32 hint)
{
    u64 start = ticks, last = start;
    u32 seen = cpus_online;
    for (;;) {
        u32 n = cpus_online;
        if (n != seen) {
            seen = n;
            last = ticks;
        }
        if (hint ? n >= hint : ticks - last >= AP_QUIET_TICKS)
            return;
        if (ticks - start >= AP_MAX_TICKS)
            return;
        sti_hlt();
    }
}

void ipi_wake_all(void)
{
    lapic_write(APIC_ICR_LO, ICR_ALL_BUT_SELF | ICR_ASSERT | VEC_WAKE);
}

void ipi_wake_bsp(void)
{
    lapic_write(APIC_ICR_HI, bsp_apic_id << 24);
    lapic_write(APIC_ICR_LO, ICR_ASSERT | VEC_WAKE);
}

/* AP: halt until the BSP posts a job, run it in ring 3, report, and wake the BSP. */
static void __attribute__((noreturn)) ap_loop(struct cpu *c)
{
    for (;;) {
        if (c->job_state == JOB_POSTED) {
            c->job_result = run_job(c, c->job_fn, c->job_arg);
            barrier();
            c->job_state = JOB_DONE;
            ipi_wake_bsp();
            continue;
        }
        sti_hlt();
    }
}

void __attribute__((noreturn)) ap_main(u64 index)
{
    struct cpu *c = this_cpu();
    c->index = index;
    cpu_init(c);
    lapic_write(APIC_SVR, 0x100 | VEC_SPURIOUS);
    c->apic_id = lapic_read(APIC_ID) >> 24;
    c->online = 1;
    __atomic_fetch_add(&cpus_online, 1, __ATOMIC_SEQ_CST);
    ipi_wake_bsp();
    ap_loop(c);
}
