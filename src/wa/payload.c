#include "wa/payload.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "proto/wa.pb-c.h"

const uint32_t wa_web_version[3] = {2, 3000, 1019707846};

/* Fills the part common to both payloads; strings point at static storage. */
static void
common(Wa__ClientPayload *p, Wa__ClientPayload__UserAgent *ua,
       Wa__AppVersion *ver, Wa__ClientPayload__WebInfo *web)
{
	ver->has_primary = ver->has_secondary = ver->has_tertiary = 1;
	ver->primary = wa_web_version[0];
	ver->secondary = wa_web_version[1];
	ver->tertiary = wa_web_version[2];
	ua->has_platform = 1;
	ua->platform = WA__CLIENT_PAYLOAD__USER_AGENT__PLATFORM__WEB;
	ua->app_version = ver;
	ua->mcc = "000";
	ua->mnc = "000";
	ua->os_version = "0.1";
	ua->device = "Desktop";
	ua->os_build_number = "0.1";
	ua->has_release_channel = 1;
	ua->release_channel = WA__CLIENT_PAYLOAD__USER_AGENT__RELEASE_CHANNEL__RELEASE;
	ua->locale_language_iso_639_1 = "en";
	ua->locale_country_iso_3166_1_alpha_2 = "US";
	web->has_web_sub_platform = 1;
	web->web_sub_platform = WA__CLIENT_PAYLOAD__WEB_INFO__WEB_SUB_PLATFORM__WEB_BROWSER;
	p->user_agent = ua;
	p->web_info = web;
	p->has_connect_type = 1;
	p->connect_type = WA__CLIENT_PAYLOAD__CONNECT_TYPE__WIFI_UNKNOWN;
	p->has_connect_reason = 1;
	p->connect_reason = WA__CLIENT_PAYLOAD__CONNECT_REASON__USER_ACTIVATED;
}

static void
pack(const Wa__ClientPayload *p, struct wg_buf *out)
{
	size_t n = wa__client_payload__get_packed_size(p);
	wg_buf_reserve(out, n);
	wa__client_payload__pack(p, out->data + out->len);
	out->len += n;
}

int
wa_payload_login(const struct wa_login_opts *o, struct wg_buf *out)
{
	Wa__ClientPayload p = WA__CLIENT_PAYLOAD__INIT;
	Wa__ClientPayload__UserAgent ua = WA__CLIENT_PAYLOAD__USER_AGENT__INIT;
	Wa__AppVersion ver =
		WA__APP_VERSION__INIT;
	Wa__ClientPayload__WebInfo web = WA__CLIENT_PAYLOAD__WEB_INFO__INIT;
	if (o->user == 0)
		return WG_EINVAL;
	common(&p, &ua, &ver, &web);
	p.has_username = 1;
	p.username = o->user;
	p.has_passive = 1;
	p.passive = o->passive != 0;
	p.has_device = 1;
	p.device = o->device;
	p.has_pull = 1;
	p.pull = 1;
	if (o->lid_db_migrated >= 0) {
		p.has_lid_db_migrated = 1;
		p.lid_db_migrated = o->lid_db_migrated != 0;
	}
	pack(&p, out);
	return 0;
}

static void
be(uint8_t *out, uint32_t v, int n)
{
	for (int i = 0; i < n; i++)
		out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

int
wa_payload_register(const struct wa_register_opts *o, struct wg_buf *out)
{
	Wa__ClientPayload p = WA__CLIENT_PAYLOAD__INIT;
	Wa__ClientPayload__UserAgent ua = WA__CLIENT_PAYLOAD__USER_AGENT__INIT;
	Wa__AppVersion ver =
		WA__APP_VERSION__INIT;
	Wa__ClientPayload__WebInfo web = WA__CLIENT_PAYLOAD__WEB_INFO__INIT;
	Wa__ClientPayload__DevicePairingRegistrationData reg =
		WA__CLIENT_PAYLOAD__DEVICE_PAIRING_REGISTRATION_DATA__INIT;
	Wa__DeviceProps props = WA__DEVICE_PROPS__INIT;
	common(&p, &ua, &ver, &web);

	uint8_t regid[4], keytype[1] = {5}, skey_id[3], hash[16];
	be(regid, o->registration_id, 4);
	be(skey_id, o->signed_prekey_id, 3);
	char dotted[48];
	int dn = snprintf(dotted, sizeof(dotted), "%u.%u.%u", wa_web_version[0], wa_web_version[1],
			  wa_web_version[2]);
	unsigned hlen = 0;
	if (!EVP_Digest(dotted, (size_t)dn, hash, &hlen, EVP_md5(), NULL) || hlen != 16)
		return WG_ECRYPTO;

	props.os = (char *)(o->os ? o->os : "Linux");
	props.has_platform_type = 1;
	props.platform_type = (Wa__DeviceProps__PlatformType)o->platform_type;
	props.has_require_full_sync = 1;
	props.require_full_sync = 0;
	size_t plen = wa__device_props__get_packed_size(&props);
	uint8_t *pbytes = wg_malloc(plen);
	wa__device_props__pack(&props, pbytes);

#define FIELD(f, ptr, n) reg.has_##f = 1, reg.f.data = (uint8_t *)(ptr), reg.f.len = (n)
	FIELD(e_regid, regid, 4);
	FIELD(e_keytype, keytype, 1);
	FIELD(e_ident, o->identity_pub, 32);
	FIELD(e_skey_id, skey_id, 3);
	FIELD(e_skey_val, o->signed_prekey_pub, 32);
	FIELD(e_skey_sig, o->signed_prekey_sig, 64);
	FIELD(build_hash, hash, 16);
	FIELD(device_props, pbytes, plen);
#undef FIELD
	p.device_pairing_data = &reg;
	p.has_passive = 1;
	p.passive = 0;
	p.has_pull = 1;
	p.pull = 0;
	pack(&p, out);
	free(pbytes);
	return 0;
}
