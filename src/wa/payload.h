/*
 * The ClientPayload a client sends inside the Noise ClientFinish: LOGIN for a
 * paired device, REGISTRATION (with the Signal keys the phone will vouch for)
 * for a new one. docs/wire.md lists the field choices.
 */
#ifndef WA_PAYLOAD_H
#define WA_PAYLOAD_H

#include <stdint.h>

#include "core/buf.h"

/* The WhatsApp Web version we present; the registration build hash is MD5 of its dotted form. */
extern const uint32_t wa_web_version[3];

struct wa_login_opts {
	uint64_t user;   /* phone number from the device JID */
	uint32_t device; /* device number from the device JID */
	int passive;     /* 1: passive until <active/> (current clients), 0: Baileys 6 */
	int lid_db_migrated; /* -1: omit the field (Baileys 6), 0 or 1: send it */
};

/* Current clients' choice: passive, pull, lidDbMigrated=false (our store has no LID migration). */
#define WA_LOGIN_DEFAULTS .passive = 1, .lid_db_migrated = 0

int wa_payload_login(const struct wa_login_opts *o, struct wg_buf *out);

struct wa_register_opts {
	uint32_t registration_id;
	uint8_t identity_pub[32];
	uint32_t signed_prekey_id;
	uint8_t signed_prekey_pub[32];
	uint8_t signed_prekey_sig[64];
	const char *os;    /* DeviceProps.os, shown on the phone's linked devices list */
	int platform_type; /* DeviceProps.PlatformType: 1 Chrome, 7 Desktop */
};

int wa_payload_register(const struct wa_register_opts *o, struct wg_buf *out);

#endif
