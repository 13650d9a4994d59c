/* The vector table and reset handler: enable the FPU (the library and this
 * program are built for hard float), then newlib's semihosting start-up
 * (rdimon's _start: zeroes .bss, sets up the heap, calls main, exits with
 * its status through semihosting, which QEMU turns into its own). */
#include <stdint.h>

extern void _start(void);
extern uint32_t __stack;

void Reset_Handler(void) {
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20; /* CP10 and CP11: full access */
    __asm volatile("dsb\n isb");
    _start();
    for (;;) {
    }
}

void Fault_Handler(void) {
    for (;;) {
    }
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))&__stack, Reset_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, 0, 0, 0, 0,
    Fault_Handler, Fault_Handler, 0, Fault_Handler, Fault_Handler,
};

/* newlib's init/fini hooks: nothing to run (-nostartfiles drops crti/crtn). */
void _init(void) {}
void _fini(void) {}
