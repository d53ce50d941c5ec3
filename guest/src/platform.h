#ifndef PLATFORM_H
#define PLATFORM_H
void pic_init(void);
void pic_unmask(unsigned irq);
void pit_init(void);
void poweroff(void) __attribute__((noreturn));
#endif
