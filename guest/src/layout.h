/* Constants shared by the C and assembly sources: the kernel's fixed memory layout and machine numbers. */
#ifndef LAYOUT_H
#define LAYOUT_H

#define KERNEL_BASE   0x100000      /* PVH loads the ELF here (1 MiB) */
#define TRAMP_ADDR    0x8000        /* AP real-mode trampoline page; SIPI vector 0x08 */
#define TAG_GPA       0x300000      /* the `tag` page (3 MiB) */
#define WORK_BASE     0x400000      /* workload area starts here (4 MiB) */
#define MAP_GIB       64            /* identity map covers 0 .. 64 GiB with 2 MiB pages */

#define MAX_CPUS      16
#define KSTACK_SHIFT  14            /* 16 KiB per-CPU area: struct cpu at the bottom, stack above */
#define KSTACK_SIZE   (1 << KSTACK_SHIFT)
#define USTACK_SIZE   16384

#define SEL_KCODE     0x08
#define SEL_KDATA     0x10
#define SEL_UDATA     0x1b          /* 0x18 | RPL 3 */
#define SEL_UCODE     0x23          /* 0x20 | RPL 3 */
#define SEL_TSS0      0x28          /* one 16-byte TSS descriptor per CPU from here */

#define VEC_PIC_BASE  0x20          /* master PIC IRQ0..7 -> 0x20..0x27, slave -> 0x28..0x2f */
#define VEC_TIMER     0x20
#define VEC_KBD       0x21          /* i8042 keyboard, IRQ 1 */
#define VEC_UART      0x24
#define VEC_GENID     0x23          /* ACPI generic event device on IRQ 3: a new VM generation ID */
#define VEC_VIRTIO    0x50          /* virtio-mmio device n (n < 16): vector 0x50 + n, IOAPIC */
#define VEC_WAKE      0x40          /* IPI used to wake a halted CPU */
#define VEC_SPURIOUS  0xff

/* Offsets into struct cpu used by isr.S. */
#define CPU_SAVED_RSP 0
#define CPU_TSS_RSP0  20

#endif
