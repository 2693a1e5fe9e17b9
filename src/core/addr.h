/* "host:port" parsing for command-line and configuration values. */
#ifndef WG_CORE_ADDR_H
#define WG_CORE_ADDR_H

#include <stddef.h>
#include <stdint.h>

/*
 * Splits "host:port", "[v6]:port" or ":port" (host defaults to 127.0.0.1).
 * Returns 0, or WG_EINVAL for a missing or out-of-range port or an oversized host.
 */
int wg_addr_split(const char *s, char *host, size_t hostlen, uint16_t *port);

#endif
