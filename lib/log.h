/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_LOG_H
#define TWILL_LOG_H

enum log_level { TWILL_LOG_ERROR, TWILL_LOG_WARN, TWILL_LOG_INFO, TWILL_LOG_DEBUG };

void log_set_ident(const char *ident);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_level_parse(const char *name, enum log_level *out);
int log_open_file(const char *path);
void log_close_file(void);
void log_set_stderr(int enabled);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(TWILL_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(TWILL_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(TWILL_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(TWILL_LOG_DEBUG, __VA_ARGS__)

#endif
