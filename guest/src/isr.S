/* Interrupt entry: 256 fixed-size stubs, an IDT built at link time from their addresses, the common
 * trap path into C, and the ring-3 job call (run_user) with its ud2 return.
 * Handlers run emulated (~2 M instr/s), so the hot ones (timer, wake IPI) are two to five instructions.
 * COM1 and the keyboard go through trap_common to C. */
#include "layout.h"

#define STUB_SIZE 16
#define LAPIC_EOI 0xfee000b0

        .section .isr, "ax"
        .globl isr_stubs
isr_stubs:
        .set vec, 0
        .rept 256
        .balign STUB_SIZE
        .if vec == 6
        jmp ud_entry
        .elseif vec == 8 || vec == 10 || vec == 11 || vec == 12 || vec == 13 || vec == 14 || vec == 17 || vec == 21 || vec == 29 || vec == 30
        pushq $vec                  /* the CPU pushed an error code */
        jmp trap_common
        .elseif vec < 32 || vec == VEC_UART || vec == VEC_KBD
        pushq $0
        pushq $vec
        jmp trap_common
        .elseif vec == VEC_TIMER
        incq ticks(%rip)            /* PIC runs in auto-EOI mode: nothing else to do */
        iretq
        .elseif vec == VEC_GENID
        incq genid_events(%rip)     /* a new VM generation ID (acpi.c) */
        iretq
        .elseif vec >= VEC_VIRTIO && vec < VEC_VIRTIO + 16
        pushq $(vec - VEC_VIRTIO)
        jmp vio_entry
        .elseif vec == VEC_WAKE
        pushq %rax
        movl $LAPIC_EOI, %eax
        movl $0, (%rax)
        popq %rax
        iretq
        .else
        iretq                       /* other PIC lines (auto-EOI), LAPIC spurious: ignore */
        .endif
        .set vec, vec + 1
        .endr
        .balign STUB_SIZE
        .globl isr_stubs_end
isr_stubs_end:                      /* linker.ld checks 256 * STUB_SIZE: no stub overflowed */

        .text
ud_entry:                           /* #UD pushes no error code: RIP, CS, ... */
        testb $3, 8(%rsp)           /* CS of the interrupted code */
        jz 1f
        cmpq $user_return_stub, (%rsp)
        je user_exit                /* a ring-3 job returned */
1:      pushq $0
        pushq $6
        jmp trap_common

trap_common:                        /* stack: vec, err, iret frame; builds struct frame */
        pushq %r15
        pushq %r14
        pushq %r13
        pushq %r12
        pushq %r11
        pushq %r10
        pushq %r9
        pushq %r8
        pushq %rbp
        pushq %rdi
        pushq %rsi
        pushq %rdx
        pushq %rcx
        pushq %rbx
        pushq %rax
        cld
        movq %rsp, %rdi
        call trap
        popq %rax
        popq %rbx
        popq %rcx
        popq %rdx
        popq %rsi
        popq %rdi
        popq %rbp
        popq %r8
        popq %r9
        popq %r10
        popq %r11
        popq %r12
        popq %r13
        popq %r14
        popq %r15
        addq $16, %rsp
        iretq

/* virtio-mmio device interrupt (IOAPIC, edge): read InterruptStatus, write it to InterruptACK (QEMU
 * then drops its level), count it for the waiting command, EOI. vio_irq[n] = {base, count, status}. */
vio_entry:
        pushq %rax
        pushq %rcx
        pushq %rdx
        movq 24(%rsp), %rdx
        shlq $5, %rdx
        leaq vio_irq(%rip), %rcx
        addq %rcx, %rdx
        movq (%rdx), %rax
        testq %rax, %rax
        jz 1f
        movl 0x60(%rax), %ecx
        movl %ecx, 0x64(%rax)
        orq %rcx, 16(%rdx)
        incq 8(%rdx)
1:      movl $LAPIC_EOI, %eax
        movl $0, (%rax)
        popq %rdx
        popq %rcx
        popq %rax
        addq $8, %rsp
        iretq

/* u64 run_user(u64 (*fn)(u64), u64 arg, u64 ustack_top): runs fn(arg) in ring 3 with IF=1 and returns
 * its result. The kernel context is saved on this CPU's stack and TSS.rsp0 points just below it, so
 * traps from ring 3 land under the saved frame. fn returns into user_return_stub, whose ud2 comes
 * back through ud_entry to user_exit. */
        .globl run_user
run_user:
        pushq %rbx
        pushq %rbp
        pushq %r12
        pushq %r13
        pushq %r14
        pushq %r15
        movq %rsp, %rax
        andq $-KSTACK_SIZE, %rax
        movq %rsp, CPU_SAVED_RSP(%rax)
        movq %rsp, CPU_TSS_RSP0(%rax)
        leaq user_return_stub(%rip), %rcx
        movq %rcx, -8(%rdx)
        subq $8, %rdx
        pushq $SEL_UDATA
        pushq %rdx
        pushq $0x202                /* IF=1, IOPL=0 */
        pushq $SEL_UCODE
        pushq %rdi
        movq %rsi, %rdi
        iretq

/* Also the way out of a ring-3 job that faulted (trap.c calls user_abort); %rax is the result. */
        .globl user_abort
user_abort:
        xorl %eax, %eax
user_exit:
        movq %rsp, %rcx
        andq $-KSTACK_SIZE, %rcx
        movq CPU_SAVED_RSP(%rcx), %rsp
        popq %r15
        popq %r14
        popq %r13
        popq %r12
        popq %rbp
        popq %rbx
        ret

/* Ring-3 code: a job's way back. A fault (#UD), not a software interrupt: a fault leaves RIP on the
 * instruction, so if a save of the vCPU's state loses the exception on its way in, the ud2 runs again
 * and raises it again. An int3's #BP is a trap (RIP already past it), and KVM_GET_VCPU_EVENTS never
 * reports software exceptions, expecting RIP not to have moved; under PVM it has, and a live update
 * or snapshot at that instant lost the job's return (the guest ran on into whatever followed). */
        .globl user_return_stub
user_return_stub:
        ud2

        .data
        .balign 16
        .globl idt_ptr
idt:
        .set vec, 0
        .rept 256
        .short isr_lo16 + vec * STUB_SIZE   /* isr_lo16/hi16: linker-script symbols from isr_stubs */
        .short SEL_KCODE
        .byte 0
        .byte 0x8e                  /* interrupt gate, DPL 0: ring 3 raises no software interrupt */
        .short isr_hi16
        .long 0                     /* kernel lives below 4 GiB */
        .long 0
        .set vec, vec + 1
        .endr
idt_ptr:
        .short 256 * 16 - 1
        .quad idt
