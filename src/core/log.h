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

/*
 * For a process with an event loop: when stderr is a pipe or a socket (a
 * supervisor, journald, a log shipper), makes it non-blocking so a slow reader
 * can never hold the loop. Lines that do not fit the pipe wait in memory, in
 * order, up to WG_LOG_BUFFER bytes (beyond, they are dropped and counted, and
 * a line says how many once the reader catches up); pending(arg) is called
 * when lines start waiting, and the loop then calls wg_log_flush() whenever
 * stderr is writable until it returns 0. A terminal or a file is left as it
 * is. wg_log_blocking() undoes it and writes what waits (at exit).
 */
#define WG_LOG_BUFFER (1u << 20)

/*
 * A phone number or a JID as the log may show it, masked as the dashboard
 * masks it: "15551234567:2@s.whatsapp.net" -> "+1 **** 4567", anything with
 * fewer than 7 digits -> "****". Phone numbers never appear whole in the log.
 */
#define WG_MASKED_MAX 24
const char *wg_mask_phone(char buf[WG_MASKED_MAX], const char *phone_or_jid);
void wg_log_nonblocking(void (*pending)(void *arg), void *arg);
/* Writes what waits; 1 while some still waits, 0 when nothing does. */
int wg_log_flush(void);
void wg_log_blocking(void);

#define log_debug(who, ...) wg_log(WG_LOG_DEBUG, who, __VA_ARGS__)
#define log_info(who, ...) wg_log(WG_LOG_INFO, who, __VA_ARGS__)
#define log_warn(who, ...) wg_log(WG_LOG_WARN, who, __VA_ARGS__)
#define log_error(who, ...) wg_log(WG_LOG_ERROR, who, __VA_ARGS__)

#endif
