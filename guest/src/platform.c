/* Legacy platform devices: 8259 PIC pair, 8254 PIT, and the power-off paths. */
#include "kernel.h"
#include "platform.h"

#define PIT_HZ 1193182

static u8 pic_mask = (u8)~((1 << 0) | (1 << 4));

/* The PIC (not the IOAPIC) carries IRQ 0 and 4: QEMU routes GSI 0 to IOAPIC pin 2 but KVM's default
 * routing uses pin 0, while both route GSI 0 and 4 to PIC pins 0 and 4. Auto-EOI mode spares an
 * EOI exit in every handler; handlers run with IF=0 so nothing nests. */
void pic_init(void)
{
    outb(0x20, 0x11);               /* ICW1: edge, cascade, ICW4 follows */
    outb(0xa0, 0x11);
    outb(0x21, VEC_PIC_BASE);       /* ICW2: vector base */
    outb(0xa1, VEC_PIC_BASE + 8);
    outb(0x21, 0x04);               /* ICW3: slave on IRQ 2 */
    outb(0xa1, 0x02);
    outb(0x21, 0x03);               /* ICW4: 8086 mode, auto-EOI */
    outb(0xa1, 0x03);
    outb(0x21, pic_mask);           /* unmask PIT and COM1 only; kbd_init adds IRQ 1 */
    outb(0xa1, 0xff);
}

/* Master PIC lines only. */
void pic_unmask(unsigned irq)
{
    pic_mask &= (u8)~(1u << irq);
    outb(0x21, pic_mask);
}

/* 100 Hz: each tick is an emulated ring-0 interrupt (~20-30 us here), so a faster tick costs real
 * CPU on a 2-core host running guests side by side; 10 ms is fine enough for pacing and heartbeats. */
void pit_init(void)
{
    u32 div = (PIT_HZ + HZ / 2) / HZ;
    outb(0x43, 0x34);               /* channel 0, lo/hi byte, mode 2 (rate generator) */
    outb(0x40, (u8)div);
    outb(0x40, (u8)(div >> 8));
}

void poweroff(void)
{
    cons_drain();
    outw(0x604, 0x2000);            /* ACPI PM1a SLP_EN, as QEMU pc/q35 and Engram decode it */
    outb(0xf4, 0);                  /* QEMU isa-debug-exit, when configured */
    outb(0x64, 0xfe);               /* i8042 pulse reset line */
    for (;;)
        __asm__ volatile("cli; hlt");
}
