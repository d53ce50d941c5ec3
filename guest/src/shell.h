#ifndef SHELL_H
#define SHELL_H
void shell_init(void);
void shell_run_list(const char *cmds);  /* ';'-separated, echoed after a prompt */
void shell_input(int ch);
int shell_poll(void);                   /* background work; 1 if it did any */
void shell_prompt(void);
void shell_status(void);                /* framebuffer status line values */
#endif
