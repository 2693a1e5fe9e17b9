/* The ClientPayload bytes, against the reference client's recorded payloads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/enc.h"
#include "proto/wa.pb-c.h"
#include "wa/payload.h"

/* Baileys 6.17.16's login payload for 15551234567 device 7 (protocol notes, §3). */
static const char bl_login[] =
	"088784b4f73918002a36080e120b080210b81718c6839ee6031a0330303022033030302a03302e313a07"
	"4465736b746f704203302e3150005a02656e620255533202200060016801900107880201";

static void
test_login_matches_reference(void **state)
{
	struct wa_login_opts o = {.user = 15551234567ull, .device = 7, .passive = 0,
				  .lid_db_migrated = -1};
	struct wg_buf b = {0};
	assert_int_equal(wa_payload_login(&o, &b), 0);
	char *hex = malloc(b.len * 2 + 1);
	wg_hex_encode(hex, b.data, b.len);
	assert_string_equal(hex, bl_login);
	free(hex);
	wg_buf_free(&b);
	/* Current clients' choice adds passive=true and lidDbMigrated=false. */
	struct wa_login_opts cur = {WA_LOGIN_DEFAULTS, .user = 15551234567ull, .device = 7};
	assert_int_equal(wa_payload_login(&cur, &b), 0);
	Wa__ClientPayload *p = wa__client_payload__unpack(NULL, b.len, b.data);
	assert_non_null(p);
	assert_true(p->has_passive && p->passive);
	assert_true(p->has_lid_db_migrated && !p->lid_db_migrated);
	assert_true(p->has_pull && p->pull);
	assert_int_equal(p->user_agent->app_version->tertiary, wa_web_version[2]);
	wa__client_payload__free_unpacked(p, NULL);
	wg_buf_free(&b);
}

static void
test_registration(void **state)
{
	struct wa_register_opts o = {.registration_id = 0x1234, .signed_prekey_id = 1,
				     .os = "Ubuntu", .platform_type = 1};
	memset(o.identity_pub, 0xAA, 32);
	memset(o.signed_prekey_pub, 0xBB, 32);
	memset(o.signed_prekey_sig, 0xCC, 64);
	struct wg_buf b = {0};
	assert_int_equal(wa_payload_register(&o, &b), 0);
	Wa__ClientPayload *p = wa__client_payload__unpack(NULL, b.len, b.data);
	assert_non_null(p);
	Wa__ClientPayload__DevicePairingRegistrationData *r = p->device_pairing_data;
	assert_non_null(r);
	assert_memory_equal(r->e_regid.data, "\x00\x00\x12\x34", 4);
	assert_memory_equal(r->e_keytype.data, "\x05", 1);
	assert_memory_equal(r->e_skey_id.data, "\x00\x00\x01", 3);
	assert_int_equal(r->e_skey_sig.len, 64);
	/* MD5 of "2.3000.1019707846", and Baileys' DeviceProps bytes for {Ubuntu, Chrome, no full sync}. */
	char hex[80];
	wg_hex_encode(hex, r->build_hash.data, r->build_hash.len);
	assert_string_equal(hex, "1c24b32925da6df1b1d672b61de4f238");
	wg_hex_encode(hex, r->device_props.data, r->device_props.len);
	assert_string_equal(hex, "0a065562756e747518012000");
	assert_true(p->has_passive && !p->passive);
	assert_true(p->has_pull && !p->pull);
	assert_false(p->has_username);
	wa__client_payload__free_unpacked(p, NULL);
	wg_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login_matches_reference),
		cmocka_unit_test(test_registration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
