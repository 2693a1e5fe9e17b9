#include "core/err.h"

const char *
wg_strerror(int err)
{
	switch (err) {
	case WG_OK: return "success";
	case WG_EINVAL: return "malformed input";
	case WG_ETRUNC: return "input ends too early";
	case WG_ELIMIT: return "input exceeds a limit";
	case WG_ECRYPTO: return "authentication failed";
	case WG_ECERT: return "certificate chain rejected";
	case WG_EIO: return "input/output error";
	case WG_ETIMEDOUT: return "timed out";
	case WG_ECLOSED: return "connection closed";
	case WG_ESTATE: return "not allowed in this state";
	case WG_ENOTFOUND: return "not found";
	case WG_EPROTO: return "protocol violation";
	case WG_EZLIB: return "compressed frame is corrupt";
	case WG_ENOTSUP: return "not supported";
	}
	return "unknown error";
}
