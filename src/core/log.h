/*
 * Logging: one line per event on stderr, "LEVEL [who] message". Log once, at the
 * layer that decides; libraries return error codes instead. Never pass keys,
 * credentials or API keys to these functions.
 */
#ifndef WG_CORE_LOG_H
#define WG_CORE_LOG_H

enum wg_log_level { WG_LOG_DEBUG, WG_LOG_INFO, WG_LOG_WARN, WG_LOG_ERROR };

void wg_log_set_level(enum wg_log_level lvl);
void wg_log(enum wg_log_level lvl, const char *who, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(who, ...) wg_log(WG_LOG_DEBUG, who, __VA_ARGS__)
#define log_info(who, ...) wg_log(WG_LOG_INFO, who, __VA_ARGS__)
#define log_warn(who, ...) wg_log(WG_LOG_WARN, who, __VA_ARGS__)
#define log_error(who, ...) wg_log(WG_LOG_ERROR, who, __VA_ARGS__)

#endif
