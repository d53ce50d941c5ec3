/* Shared types, hardware accessors and cross-file declarations. */
#ifndef KERNEL_H
#define KERNEL_H
#include "layout.h"

typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;
typedef unsigned long size_t;

#define HZ 100                      /* PIT rate; see README for why 100 */
#define KERNEL_VERSION "1.0"

struct tss {
    u32 reserved0;
    u64 rsp0, rsp1, rsp2, reserved1;
    u64 ist[7];
    u64 reserved2;
    u16 reserved3, iomap_base;
} __attribute__((packed));

/* One per CPU, at the bottom of its 16 KiB kernel stack area, so this_cpu() is a mask of %rsp. */
struct cpu {
    u64 saved_rsp;                  /* CPU_SAVED_RSP: kernel rsp while a ring-3 job runs */
    u64 index;
    struct tss tss;                 /* CPU_TSS_RSP0 = 16 + 4 */
    u32 apic_id;
    volatile u32 online;
    volatile u32 job_state;         /* JOB_* */
    volatile u32 job_failed;        /* set when the ring-3 job took an exception */
    u64 (*job_fn)(u64);
    u64 job_arg;
    volatile u64 job_result;
};
enum { JOB_IDLE, JOB_POSTED, JOB_DONE };

struct frame {
    u64 rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
    u64 vec, err, rip, cs, rflags, rsp, ss;
};

/* Port and MMIO access. */
static inline void outb(u16 p, u8 v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outw(u16 p, u16 v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(p)); }
static inline u8 inb(u16 p) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline void lapic_write(u32 reg, u32 v) { *(volatile u32 *)(0xfee00000UL + reg) = v; }
static inline u32 lapic_read(u32 reg) { return *(volatile u32 *)(0xfee00000UL + reg); }
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt; cli" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

static inline struct cpu *this_cpu(void)
{
    u64 sp;
    __asm__("movq %%rsp, %0" : "=r"(sp));
    return (struct cpu *)(sp & ~(u64)(KSTACK_SIZE - 1));
}

extern u8 cpu_area[MAX_CPUS][KSTACK_SIZE];
static inline struct cpu *cpu_of(u32 i) { return (struct cpu *)cpu_area[i]; }

/* isr.S / boot.S */
u64 run_user(u64 (*fn)(u64), u64 arg, u64 ustack_top);
void user_abort(void) __attribute__((noreturn));
extern volatile u64 ticks;          /* BSP timer ticks since boot, HZ per second */

/* cpu.c */
void cpu_init(struct cpu *c);
u64 run_job(struct cpu *c, u64 (*fn)(u64), u64 arg);

/* lib.c */
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
size_t strlen(const char *s);
int streq(const char *a, const char *b);
int parse_u64(const char *s, u64 *out);
void kprintf(const char *fmt, ...);

/* console.c */
void uart_init(void);
void uart_irq(void);
void cons_write(const char *s, size_t n);
int cons_at_line_start(void);
int cons_getc(void);                /* -1 if nothing buffered */
void cons_push(u8 ch);              /* keyboard input into the same ring (dropped if full) */
void cons_drain(void);

/* kbd.c */
void kbd_init(void);
void kbd_irq(void);
int kbd_decode(u8 scancode);         /* set 1 byte -> character or -1 */

/* smp.c */
extern volatile u32 cpus_online;
void smp_start(void);
void smp_wait(u32 hint);
void ipi_wake_all(void);
void ipi_wake_bsp(void);


#endif
