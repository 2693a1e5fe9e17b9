/*
 * The mock's memory of phones and paired devices, and the --state file that
 * keeps it across restarts (JSON, docs/mock.md). The file holds the phones'
 * account private keys, so it is created with mode 0600. Saving writes a
 * temporary file, fsyncs it and renames it over the old one, so a crash leaves
 * either the old or the new state, never half a file. The mock saves only on
 * pairing and pre-key uploads: a few small writes, acceptable on the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/enc.h"
#include "core/err.h"
#include "core/mem.h"
#include "mock/mock_int.h"
#include "wa/crypto.h"

#define STATE_VERSION 1
/* A state file of the maximum size (10,000 devices) is about 3 MiB. */
#define STATE_MAX_BYTES (16u << 20)

bool
mock__phone_valid(const char *phone)
{
	size_t n = strlen(phone);
	if (n < 5 || n > MOCK_PHONE_MAX || phone[0] == '0')
		return false;
	for (size_t i = 0; i < n; i++)
		if (phone[i] < '0' || phone[i] > '9')
			return false;
	return true;
}

static bool
digits(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* A fresh LID user part: 15 digits, as WhatsApp's are. */
static void
new_lid(char out[MOCK_LID_MAX])
{
	uint64_t r;
	wa_random((uint8_t *)&r, sizeof(r));
	snprintf(out, MOCK_LID_MAX, "%llu",
		 (unsigned long long)(100000000000000ull + r % 900000000000000ull));
}

void
mock__lid_for(const struct mock_store *s, const char *phone, char out[MOCK_LID_MAX])
{
	for (size_t i = 0; i < s->nphones; i++)
		if (strcmp(s->phones[i]->phone, phone) == 0) {
			snprintf(out, MOCK_LID_MAX, "%s", s->phones[i]->lid);
			return;
		}
	/* Stable per phone without storing anything: the same unknown phone gets the same LID. */
	uint8_t h[32];
	wa_crypto_sha256(h, phone, strlen(phone));
	uint64_t r = 0;
	for (int i = 0; i < 8; i++)
		r = r << 8 | h[i];
	snprintf(out, MOCK_LID_MAX, "%llu",
		 (unsigned long long)(100000000000000ull + r % 900000000000000ull));
}

struct mock_phone *
mock__store_phone(struct mock_store *s, const char *phone, bool create)
{
	for (size_t i = 0; i < s->nphones; i++)
		if (strcmp(s->phones[i]->phone, phone) == 0)
			return s->phones[i];
	if (!create || s->nphones >= MOCK_MAX_DEVICES || !mock__phone_valid(phone))
		return NULL;
	struct mock_phone *p = wg_calloc(1, sizeof(*p));
	snprintf(p->phone, sizeof(p->phone), "%s", phone);
	new_lid(p->lid);
	struct wa_keypair kp;
	wa_crypto_keypair(&kp);
	memcpy(p->account_priv, kp.priv, 32);
	memcpy(p->account_pub, kp.pub, 32);
	wg_wipe(&kp, sizeof(kp));
	s->phones = wg_realloc(s->phones, (s->nphones + 1) * sizeof(*s->phones));
	s->phones[s->nphones++] = p;
	return p;
}

struct mock_device *
mock__store_device(const struct mock_store *s, const char *jid)
{
	for (size_t i = 0; i < s->ndevices; i++)
		if (!s->devices[i]->pending && strcmp(s->devices[i]->jid, jid) == 0)
			return s->devices[i];
	return NULL;
}

static void
device_names(struct mock_device *d)
{
	snprintf(d->jid, sizeof(d->jid), "%s:%u@s.whatsapp.net", d->phone->phone, d->dev);
	snprintf(d->lid, sizeof(d->lid), "%s:%u@lid", d->phone->lid, d->dev);
}

static void
add_device(struct mock_store *s, struct mock_device *d)
{
	s->devices = wg_realloc(s->devices, (s->ndevices + 1) * sizeof(*s->devices));
	s->devices[s->ndevices++] = d;
}

struct mock_device *
mock__store_reserve(struct mock_store *s, struct mock_phone *p)
{
	if (s->ndevices >= MOCK_MAX_DEVICES)
		return NULL;
	/* The lowest free number, as a phone numbers its linked devices. */
	bool used[MOCK_MAX_DEV + 1] = {false};
	for (size_t i = 0; i < s->ndevices; i++)
		if (s->devices[i]->phone == p)
			used[s->devices[i]->dev] = true;
	unsigned dev = 1;
	while (dev <= MOCK_MAX_DEV && used[dev])
		dev++;
	if (dev > MOCK_MAX_DEV)
		return NULL;
	struct mock_device *d = wg_calloc(1, sizeof(*d));
	d->phone = p;
	d->dev = dev;
	d->pending = true;
	device_names(d);
	add_device(s, d);
	return d;
}

void
mock__store_remove(struct mock_store *s, struct mock_device *d)
{
	for (size_t i = 0; i < s->ndevices; i++)
		if (s->devices[i] == d) {
			memmove(&s->devices[i], &s->devices[i + 1],
				(s->ndevices - i - 1) * sizeof(*s->devices));
			s->ndevices--;
			free(d);
			return;
		}
}

void
mock__store_free(struct mock_store *s)
{
	for (size_t i = 0; i < s->nphones; i++) {
		wg_wipe(s->phones[i], sizeof(*s->phones[i]));
		free(s->phones[i]);
	}
	for (size_t i = 0; i < s->ndevices; i++)
		free(s->devices[i]);
	free(s->phones);
	free(s->devices);
	free(s->path);
	memset(s, 0, sizeof(*s));
}

static json_t *
hex_json(const uint8_t *p, size_t n)
{
	char hex[2 * 32 + 1];
	wg_hex_encode(hex, p, n);
	json_t *j = json_string(hex);
	wg_wipe(hex, sizeof(hex));
	return j;
}

static json_t *
device_json(const struct mock_device *d)
{
	char at[32];
	wg_iso8601(at, d->paired_at);
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:s}", "jid", d->jid, "lid", d->lid,
			      "phone", d->phone->phone, "device", (int)d->dev, "keyIndex",
			      (json_int_t)d->key_index, "prekeys", (json_int_t)d->prekeys,
			      "pairedAt", at);
	json_object_set_new(o, "noisePub", hex_json(d->noise_pub, 32));
	json_object_set_new(o, "identityPub", hex_json(d->identity_pub, 32));
	return o;
}

json_t *
mock__store_devices_json(const struct mock_store *s)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < s->ndevices; i++)
		if (!s->devices[i]->pending)
			json_array_append_new(arr, device_json(s->devices[i]));
	return arr;
}

static json_t *
store_json(const struct mock_store *s)
{
	json_t *phones = json_array(), *devices = json_array();
	for (size_t i = 0; i < s->nphones; i++) {
		const struct mock_phone *p = s->phones[i];
		json_t *o = json_pack("{s:s, s:s, s:I}", "phone", p->phone, "lid", p->lid,
				      "keyIndex", (json_int_t)p->key_index);
		json_object_set_new(o, "accountPriv", hex_json(p->account_priv, 32));
		json_object_set_new(o, "accountPub", hex_json(p->account_pub, 32));
		json_array_append_new(phones, o);
	}
	for (size_t i = 0; i < s->ndevices; i++)
		if (!s->devices[i]->pending)
			json_array_append_new(devices, device_json(s->devices[i]));
	return json_pack("{s:i, s:o, s:o}", "version", STATE_VERSION, "phones", phones, "devices",
			 devices);
}

int
mock__store_save(const struct mock_store *s, char *err, size_t errlen)
{
	if (s->path == NULL)
		return 0;
	json_t *doc = store_json(s);
	char *text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", s->path) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "state file path too long");
		free(text);
		return WG_EINVAL;
	}
	int r = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		r = WG_EIO;
	} else {
		size_t len = strlen(text), off = 0;
		while (off < len) {
			ssize_t w = write(fd, text + off, len - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		if (off != len || write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
			snprintf(err, errlen, "%s: write failed: %s", tmp, strerror(errno));
			r = WG_EIO;
		}
		if (close(fd) != 0 && r == 0) {
			snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
			r = WG_EIO;
		}
		if (r == 0 && rename(tmp, s->path) != 0) {
			snprintf(err, errlen, "rename %s to %s: %s", tmp, s->path, strerror(errno));
			r = WG_EIO;
		}
		if (r)
			unlink(tmp);
	}
	wg_wipe(text, strlen(text));
	free(text);
	return r;
}

static bool
hex32(const char *text, uint8_t out[32])
{
	size_t bad;
	uint8_t tmp[40];
	if (strlen(text) != 64)
		return false;
	bool ok = wg_hex_decode(tmp, text, 64, &bad) == 32;
	if (ok)
		memcpy(out, tmp, 32);
	wg_wipe(tmp, sizeof(tmp));
	return ok;
}

static int
bad(char *err, size_t errlen, const char *path, const char *what, size_t index, const char *why)
{
	snprintf(err, errlen, "%s: %s[%zu]: %s", path, what, index, why);
	return WG_EINVAL;
}

static int
load_phone(struct mock_store *s, json_t *o, size_t i, const char *path, char *err, size_t errlen)
{
	const char *phone, *lid, *priv, *pub;
	json_int_t key_index;
	json_error_t je;
	if (json_unpack_ex(o, &je, JSON_STRICT, "{s:s, s:s, s:I, s:s, s:s}", "phone", &phone, "lid",
			   &lid, "keyIndex", &key_index, "accountPriv", &priv, "accountPub",
			   &pub))
		return bad(err, errlen, path, "phones", i, je.text);
	if (!mock__phone_valid(phone))
		return bad(err, errlen, path, "phones", i, "phone is not 5-20 digits");
	if (mock__store_phone(s, phone, false))
		return bad(err, errlen, path, "phones", i, "phone listed twice");
	if (!digits(lid, 1, MOCK_LID_MAX - 1))
		return bad(err, errlen, path, "phones", i, "lid is not digits");
	if (key_index < 0 || key_index > UINT32_MAX)
		return bad(err, errlen, path, "phones", i, "keyIndex out of range");
	struct mock_phone *p = wg_calloc(1, sizeof(*p));
	uint8_t derived[32];
	if (!hex32(priv, p->account_priv) || !hex32(pub, p->account_pub)) {
		free(p);
		return bad(err, errlen, path, "phones", i, "account keys are not 64 hex digits");
	}
	if (wa_crypto_pub_from_priv(derived, p->account_priv) ||
	    memcmp(derived, p->account_pub, 32) != 0) {
		wg_wipe(p, sizeof(*p));
		free(p);
		return bad(err, errlen, path, "phones", i, "accountPub is not accountPriv's key");
	}
	snprintf(p->phone, sizeof(p->phone), "%s", phone);
	snprintf(p->lid, sizeof(p->lid), "%s", lid);
	p->key_index = (uint32_t)key_index;
	s->phones = wg_realloc(s->phones, (s->nphones + 1) * sizeof(*s->phones));
	s->phones[s->nphones++] = p;
	return 0;
}

static int
load_device(struct mock_store *s, json_t *o, size_t i, const char *path, char *err, size_t errlen)
{
	const char *jid, *lid, *phone, *at, *noise, *ident;
	int dev;
	json_int_t key_index, prekeys;
	json_error_t je;
	if (json_unpack_ex(o, &je, JSON_STRICT, "{s:s, s:s, s:s, s:i, s:I, s:I, s:s, s:s, s:s}",
			   "jid", &jid, "lid", &lid, "phone", &phone, "device", &dev, "keyIndex",
			   &key_index, "prekeys", &prekeys, "pairedAt", &at, "noisePub", &noise,
			   "identityPub", &ident))
		return bad(err, errlen, path, "devices", i, je.text);
	struct mock_phone *p = mock__store_phone(s, phone, false);
	if (p == NULL)
		return bad(err, errlen, path, "devices", i, "phone not listed in phones");
	if (dev < 1 || dev > MOCK_MAX_DEV)
		return bad(err, errlen, path, "devices", i, "device number not in 1..99");
	if (key_index < 0 || key_index > UINT32_MAX || prekeys < 0 || prekeys > UINT32_MAX)
		return bad(err, errlen, path, "devices", i, "keyIndex or prekeys out of range");
	struct mock_device *d = wg_calloc(1, sizeof(*d));
	d->phone = p;
	d->dev = (unsigned)dev;
	device_names(d);
	if (strcmp(d->jid, jid) != 0 || strcmp(d->lid, lid) != 0) {
		free(d);
		return bad(err, errlen, path, "devices", i,
			   "jid/lid do not match phone, device and the phone's lid");
	}
	if (mock__store_device(s, jid)) {
		free(d);
		return bad(err, errlen, path, "devices", i, "device listed twice");
	}
	if (!hex32(noise, d->noise_pub) || !hex32(ident, d->identity_pub)) {
		free(d);
		return bad(err, errlen, path, "devices", i, "keys are not 64 hex digits");
	}
	d->key_index = (uint32_t)key_index;
	d->prekeys = (uint32_t)prekeys;
	/* pairedAt is informational; keep the load time if it does not parse. */
	struct tm tm = {0};
	int ms = 0;
	if (sscanf(at, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) == 7) {
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		time_t t = timegm(&tm);
		d->paired_at = t < 0 ? 0 : (uint64_t)t * 1000 + (uint64_t)ms;
	} else {
		d->paired_at = wg_wall_ms();
	}
	add_device(s, d);
	return 0;
}

int
mock__store_load(struct mock_store *s, const char *path, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	s->path = wg_strdup(path);
	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return WG_EIO;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > STATE_MAX_BYTES) {
		snprintf(err, errlen, "%s: not a regular file of at most 16 MiB", path);
		return WG_EINVAL;
	}
	json_error_t je;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL) {
		snprintf(err, errlen, "%s: not a mock state file: line %d: %s", path, je.line,
			 je.text);
		return WG_EINVAL;
	}
	int version;
	json_t *phones, *devices;
	int r = 0;
	if (json_unpack_ex(doc, &je, JSON_STRICT, "{s:i, s:o, s:o}", "version", &version,
			   "phones", &phones, "devices", &devices)) {
		snprintf(err, errlen, "%s: not a mock state file: %s", path, je.text);
		r = WG_EINVAL;
	} else if (version != STATE_VERSION) {
		snprintf(err, errlen, "%s: state file version %d, this mock reads %d", path,
			 version, STATE_VERSION);
		r = WG_EINVAL;
	} else if (!json_is_array(phones) || !json_is_array(devices) ||
		   json_array_size(phones) > MOCK_MAX_DEVICES ||
		   json_array_size(devices) > MOCK_MAX_DEVICES) {
		snprintf(err, errlen, "%s: phones and devices must be arrays of at most %d", path,
			 MOCK_MAX_DEVICES);
		r = WG_EINVAL;
	}
	for (size_t i = 0; r == 0 && i < json_array_size(phones); i++)
		r = load_phone(s, json_array_get(phones, i), i, path, err, errlen);
	for (size_t i = 0; r == 0 && i < json_array_size(devices); i++)
		r = load_device(s, json_array_get(devices, i), i, path, err, errlen);
	json_decref(doc);
	if (r) {
		char *keep = s->path;
		s->path = NULL;
		mock__store_free(s);
		s->path = keep;
	}
	return r;
}
