/* Entry paths: the PVH note, the BSP's 32-bit PVH entry, the AP real-mode trampoline, and the GDT.
 * All of this runs in KVM's emulator (~2 M instr/s here), so each path is a handful of instructions
 * and uses tables built at link time. */
#include "layout.h"

#define EFER_MSR   0xc0000080
#define EFER_LME   0x100
#define CR4_PAE    0x20
#define CR0_PG_PE  0x80000011       /* PG | ET | PE */

/* XEN_ELFNOTE_PHYS32_ENTRY: 8-byte descriptor as Linux uses (QEMU reads a size_t there); the value fits 32 bits. */
        .section .note.Xen, "a", @note
        .balign 4
        .long 4, 8, 18
        .asciz "Xen"
        .quad pvh_entry

        .section .text.boot, "ax"
        .code32
        .globl pvh_entry
pvh_entry:                          /* 32-bit protected mode, paging off, %ebx = hvm_start_info */
        cli
        movl %ebx, %edi
        movl $pml4, %eax
        movl %eax, %cr3
        movl $CR4_PAE, %eax
        movl %eax, %cr4
        movl $EFER_MSR, %ecx
        movl $EFER_LME, %eax
        xorl %edx, %edx
        wrmsr
        lgdt gdt_ptr
        movl $CR0_PG_PE, %eax
        movl %eax, %cr0
        ljmp $SEL_KCODE, $bsp_entry64

        .code64
bsp_entry64:
        movl $SEL_KDATA, %eax
        movl %eax, %ds
        movl %eax, %es
        movl %eax, %ss
        leaq cpu_area + KSTACK_SIZE(%rip), %rsp
        movl %edi, %edi             /* upper half is undefined after the mode switch */
        call kmain
1:      cli
        hlt
        jmp 1b

/* Entered from the trampoline already in 64-bit mode; claims a CPU index and a stack. */
        .globl ap_entry64
ap_entry64:
        movl $SEL_KDATA, %eax
        movl %eax, %ds
        movl %eax, %es
        movl %eax, %ss
        movl $1, %eax
        lock xaddl %eax, next_cpu_index(%rip)
        cmpl $MAX_CPUS, %eax
        jae 2f
        movl %eax, %edi
        incl %eax
        shlq $KSTACK_SHIFT, %rax
        leaq cpu_area(%rip), %rsp
        addq %rax, %rsp
        call ap_main
2:      cli                         /* more CPUs than we have room for: park */
        hlt
        jmp 2b

/* Copied to TRAMP_ADDR at boot. Goes straight from real mode to long mode (PE and PG together)
 * using the kernel's own page tables and GDT, then far-jumps into ap_entry64. */
        .section .rodata.tramp, "a"
        .code16
        .globl ap_tramp, ap_tramp_end
ap_tramp:
        cli
        movl $pml4, %eax
        movl %eax, %cr3
        movl $CR4_PAE, %eax
        movl %eax, %cr4
        movl $EFER_MSR, %ecx
        movl $EFER_LME, %eax
        xorl %edx, %edx
        wrmsr
        lgdtl %cs:(ap_gdt_ptr - ap_tramp)
        movl $CR0_PG_PE, %eax
        movl %eax, %cr0
        ljmpl $SEL_KCODE, $ap_entry64
        .balign 4
ap_gdt_ptr:
        .short gdt_end - gdt - 1
        .long gdt
ap_tramp_end:
        .code64

        .data
        .balign 4
        .globl next_cpu_index
next_cpu_index:
        .long 1                     /* the BSP is CPU 0 */

        .balign 16
        .globl gdt, gdt_end
gdt:
        .quad 0
        .quad 0x00af9a000000ffff    /* 0x08 kernel code, 64-bit */
        .quad 0x00cf92000000ffff    /* 0x10 kernel data */
        .quad 0x00cff2000000ffff    /* 0x18 user data, DPL 3 */
        .quad 0x00affa000000ffff    /* 0x20 user code, 64-bit, DPL 3 */
        .fill 2 * MAX_CPUS, 8, 0    /* 0x28: per-CPU TSS descriptors, written by each CPU */
gdt_end:
        .balign 8
        .globl gdt_ptr
gdt_ptr:                            /* 32-bit lgdt reads the first 6 bytes, 64-bit all 10 */
        .short gdt_end - gdt - 1
        .quad gdt
